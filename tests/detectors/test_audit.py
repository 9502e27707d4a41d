"""The audit sample: deterministic, at its rate, capped by a recorded probability."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from detectors.audit import AuditSampler, audit_draw
from detectors.errors import SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def audited_ids(sampler: AuditSampler, n: int, model: str = "fraud") -> set[str]:
    return {f"e-{i}" for i in range(n) if sampler.update(model, f"e-{i}", T0)}


def test_the_draw_depends_on_model_event_and_seed_only() -> None:
    first = audited_ids(AuditSampler(rate=0.1), 5000)
    # A second sampler (a restart, a replay) audits the very same events.
    assert audited_ids(AuditSampler(rate=0.1), 5000) == first
    assert audited_ids(AuditSampler(rate=0.1, seed=1), 5000) != first
    assert audited_ids(AuditSampler(rate=0.1), 5000, model="churn") != first
    # A higher rate audits a superset: u < 0.1 implies u < 0.2.
    assert first < audited_ids(AuditSampler(rate=0.2), 5000)


@pytest.mark.parametrize("rate", [0.02, 0.3])
def test_the_share_audited_is_the_rate(rate: float) -> None:
    n = 50_000
    share = len(audited_ids(AuditSampler(rate=rate), n)) / n
    assert abs(share - rate) < 4 * math.sqrt(rate * (1 - rate) / n)


def test_draws_are_uniform_over_sequential_ids() -> None:
    draws = [audit_draw("fraud", f"evt-{i:09d}") for i in range(40_000)]
    # Ten equal bins, chi-square with 9 degrees of freedom: 27.9 is its 0.999 quantile.
    counts = [0] * 10
    for u in draws:
        counts[int(u * 10)] += 1
    expected = len(draws) / 10
    assert sum((c - expected) ** 2 / expected for c in counts) < 27.9


def test_rate_zero_audits_nothing_and_rate_one_everything() -> None:
    assert not audited_ids(AuditSampler(rate=0.0), 1000)
    assert len(audited_ids(AuditSampler(rate=1.0), 1000)) == 1000


def test_the_cap_lowers_the_recorded_probability_and_weights_stay_unbiased() -> None:
    # 20 events a second for 20 minutes, then a 5x burst for 5 minutes; cap 60 a minute.
    sampler = AuditSampler(rate=0.2, per_minute=60)
    times = [T0 + timedelta(seconds=i / 20) for i in range(24_000)]
    t_burst = times[-1]
    times += [t_burst + timedelta(seconds=i / 100) for i in range(1, 30_001)]
    per_minute: dict[int, int] = {}
    horvitz_thompson = 0.0
    for i, t in enumerate(times):
        p = sampler.update("fraud", f"e-{i}", t)
        if p:
            minute = int((t - T0).total_seconds() // 60)
            per_minute[minute] = per_minute.get(minute, 0) + 1
            horvitz_thompson += 1.0 / p
    steady = [per_minute.get(m, 0) for m in range(2, 20)]
    burst = [per_minute.get(m, 0) for m in range(21, 25)]
    # Uncapped, 0.2 of 1200 (then 6000) a minute would be 240 (then 1200).
    assert 45 <= sum(steady) / len(steady) <= 66
    assert 45 <= sum(burst) / len(burst) <= 66
    assert sampler.probability == pytest.approx(60 / 6000, rel=0.1)
    # Each audited event stands for 1/p offered events: the estimate of how many were
    # offered is unbiased because p was recorded, not items dropped after the draw.
    assert horvitz_thompson == pytest.approx(len(times), rel=0.1)


@pytest.mark.parametrize(
    "settings",
    [{"rate": 1.5}, {"rate": -0.1}, {"per_minute": 0}, {"per_minute": 2.5}, {"seed": "x"}],
)
def test_bad_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        AuditSampler(**settings)  # type: ignore[arg-type]


def monitor(**policy: object) -> ModelMonitor:
    return ModelMonitor("fraud", EscalationPolicy(**policy), audit=AuditSampler(rate=0.5))  # type: ignore[arg-type]


def test_the_monitor_audits_only_what_the_rule_accepts() -> None:
    mon = monitor(min_confidence=0.7)
    audited = escalated = 0
    for i in range(2000):
        confident = i % 2 == 0
        v = mon.observe({}, ClassPrediction("ok", 0.9 if confident else 0.6), T0, f"e-{i}")
        d = v.decision
        if confident and d.escalate:
            audited += 1
            assert d.audited and d.inclusion_probability == 0.5
            assert [r.kind for r in d.reasons] == ["audit"]
        elif not confident:
            escalated += 1
            assert d.escalate and not d.audited and d.inclusion_probability == 1.0
    assert escalated == 1000
    assert 420 < audited < 580
    # Without an event id there is nothing to draw from: no audit.
    assert not mon.observe({}, ClassPrediction("ok", 0.9), T0).decision.escalate


def test_suppressed_candidates_are_audited_too_and_keep_their_reasons() -> None:
    mon = monitor(min_confidence=0.7, budget_per_minute=1)
    decisions = [
        mon.observe({}, ClassPrediction("ok", 0.6), T0, f"e-{i}").decision for i in range(400)
    ]
    audited = [d for d in decisions if d.audited]
    assert 150 < len(audited) < 250
    assert all([r.kind for r in d.reasons] == ["audit", "low_confidence"] for d in audited)
    assert all(not d.suppressed for d in audited)
    # The first candidate fits the budget; of the 399 it refused, those not audited stay
    # suppressed.
    assert decisions[0].escalate and not decisions[0].audited
    assert sum(d.suppressed for d in decisions) == 399 - len(audited)
