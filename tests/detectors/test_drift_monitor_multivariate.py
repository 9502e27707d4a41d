"""DriftMonitor's multivariate signal, outlier flags and drift impact (issue 16)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from detectors.drift_monitor import DriftMonitor, Outlier
from detectors.errors import SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction
from detectors.reference import ReferenceBuilder, ReferenceProfile

RHO = 0.8


def event(rng: random.Random, rho: float = RHO) -> tuple[dict[str, Any], ClassPrediction]:
    """a and b correlated ``rho`` (marginals N(0, 1) whatever ``rho``), c and d independent."""
    a, e = rng.gauss(0, 1), rng.gauss(0, 1)
    b = rho * a + math.sqrt(1 - rho * rho) * e
    features = {"a": a, "b": b, "c": rng.gauss(0, 1), "d": rng.gauss(5, 2), "k": rng.choice("xy")}
    return features, ClassPrediction(rng.choice(["yes", "no"]), rng.uniform(0.5, 1.0))


def profile(seed: int = 0, n: int = 5000) -> dict[str, Any]:
    rng = random.Random(seed)
    return ReferenceBuilder.from_events((event(rng) for _ in range(n)), "m", "1").to_dict()


def drifts(changes: list[Any]) -> list[str]:
    return [c.signal for c in changes if c.state == "drift"]


@pytest.mark.parametrize("outlier_quantile", [None, 0.99999])
def test_a_correlation_flip_alerts_multivariate_only(outlier_quantile: float | None) -> None:
    """Learned reference; every marginal unchanged: only ``multivariate`` fires, within
    a few hundred events, on the per-block path (no outlier scoring) and the per-event
    one alike."""
    rng = random.Random(1)
    mon = DriftMonitor(outlier_quantile=outlier_quantile)
    before = [c for _ in range(6000) for c in mon.update(*event(rng))]
    assert drifts(before) == []
    after = []
    for i in range(3000):
        for c in mon.update(*event(rng, -RHO)):
            after.append((i, c))
    assert [c.signal for _, c in after if c.state == "drift"] == ["multivariate"]
    assert after[0][0] < 500
    assert mon.drift_active
    assert any(s.signal == "multivariate" and s.drifting for s in mon.states())


def test_the_budget_counts_multivariate_as_one_more_signal() -> None:
    rng = random.Random(2)
    on, off = DriftMonitor(), DriftMonitor(multivariate=False)
    f, p = event(rng)
    on.update(f, p)
    off.update(f, p)
    features = len(f)  # 4 numeric + 1 categorical
    assert off.signal_sensitivity == 1_000_000 * (2 * features + 2)
    assert on.signal_sensitivity == 1_000_000 * (2 * features + 3)
    mv = on.multivariate_detector
    assert mv is not None and mv.sensitivity == on.signal_sensitivity
    assert off.multivariate_detector is None


def test_fewer_than_two_numeric_features_has_no_multivariate_signal() -> None:
    mon = DriftMonitor()
    rng = random.Random(3)
    for _ in range(2000):
        f, p = event(rng)
        mon.update({"a": f["a"], "k": f["k"]}, p)
    assert mon.multivariate_detector is None
    assert mon.signal_sensitivity == 1_000_000 * 6
    assert all(s.signal != "multivariate" for s in mon.states())


def test_a_profile_carries_the_fit_and_the_monitor_uses_it_from_the_first_event() -> None:
    prof = profile()
    assert ReferenceProfile.from_dict(prof).multivariate is not None
    assert prof["multivariate"]["features"] == ["a", "b", "c", "d"]
    mon = DriftMonitor(reference=prof)
    rng = random.Random(4)
    changes = [c for _ in range(600) for c in mon.update(*event(rng, -RHO))]
    assert drifts(changes) == ["multivariate"]
    # An old profile (without the key) still loads; the fit is then learned.
    old = {k: v for k, v in prof.items() if k != "multivariate"}
    legacy = DriftMonitor(reference=old)
    legacy.update(*event(rng))
    mv = legacy.multivariate_detector
    assert mv is not None and not mv.active and mv.reference is None


def test_an_event_that_breaks_the_correlation_is_an_outlier_with_its_features() -> None:
    mon = DriftMonitor(reference=profile())
    rng = random.Random(5)
    for _ in range(200):
        mon.update(*event(rng))
        assert mon.last_outlier is None or mon.events_seen > 0
    pred = ClassPrediction("yes", 0.9)
    mon.update({"a": 3.0, "b": 3.0, "c": 0.0, "d": 5.0, "k": "x"}, pred)  # along the structure
    assert mon.last_outlier is None
    mon.update({"a": 3.0, "b": -3.0, "c": 0.0, "d": 5.0, "k": "x"}, pred)  # against it
    found = mon.last_outlier
    assert isinstance(found, Outlier)
    assert found.score > found.threshold
    assert {name for name, _ in found.features[:2]} == {"a", "b"}
    assert found.detail.startswith(f"score {found.score:.1f} > {found.threshold:.1f}; ")
    # Off: the same event is not flagged (nor scored per event).
    quiet = DriftMonitor(reference=profile(), outlier_quantile=None)
    quiet.update({"a": 3.0, "b": -3.0, "c": 0.0, "d": 5.0, "k": "x"}, pred)
    assert quiet.last_outlier is None


def test_clean_events_are_flagged_at_most_at_the_nominal_rate() -> None:
    mon = DriftMonitor(reference=profile(), outlier_quantile=0.999)
    rng = random.Random(6)
    flagged = 0
    for _ in range(20_000):
        mon.update(*event(rng))
        flagged += mon.last_outlier is not None
    assert flagged <= 20_000 * 0.001 * 2  # nominal 20; a broken tail gives hundreds


def test_model_monitor_escalates_an_outlier_with_reason_outlier() -> None:
    from datetime import UTC, datetime

    mon = ModelMonitor("m", EscalationPolicy(), DriftMonitor(reference=profile()))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    for _ in range(50):
        f, _ = event(rng)
        v = mon.observe(f, ClassPrediction("yes", 0.95), now)
        assert not v.decision.escalate
    v = mon.observe(
        {"a": 3.0, "b": -3.0, "c": 0.0, "d": 5.0, "k": "x"}, ClassPrediction("yes", 0.95), now
    )
    assert v.decision.escalate
    (reason,) = v.decision.reasons
    assert reason.kind == "outlier" and reason.score > reason.threshold
    assert reason.detail is not None and "a " in reason.detail and "b " in reason.detail


def test_snapshot_mid_block_continues_exactly_and_old_snapshots_restore() -> None:
    for q in (None, 0.99999):
        rng = random.Random(8)
        events = [event(rng, RHO if i < 4000 else -RHO) for i in range(5000)]
        a = DriftMonitor(outlier_quantile=q)
        for e in events[:3010]:  # mid-block, the multivariate reference learned
            a.update(*e)
        b = DriftMonitor.restore(a.snapshot())
        out_a = [(c.signal, c.events_seen) for e in events[3010:] for c in a.update(*e)]
        out_b = [(c.signal, c.events_seen) for e in events[3010:] for c in b.update(*e)]
        assert out_a == out_b and ("multivariate", out_a[0][1]) in out_a
    # A version-2 snapshot (before multivariate) restores without it.
    snap = DriftMonitor(multivariate=False).snapshot()
    state = {k: v for k, v in snap["state"].items() if not k.startswith(("mv", "outlier"))}
    settings = {
        k: v for k, v in snap["settings"].items() if k not in ("multivariate", "outlier_quantile")
    }
    old = DriftMonitor.restore({**snap, "version": 2, "settings": settings, "state": state})
    assert old.multivariate is False and old.outlier_quantile is None
    old.update(*event(rng))
    assert old.multivariate_detector is None


def test_feature_alerts_carry_their_impact() -> None:
    rng = random.Random(9)
    mon = DriftMonitor({"d": {"type": "numeric", "importance": 3.0}})
    for _ in range(3000):
        mon.update(*event(rng))
    changes = []
    for _ in range(2000):
        f, p = event(rng)
        f["d"] += 2.0  # one sd
        changes += mon.update(f, p)
    (alert,) = [c for c in changes if c.signal == "feature:d" and c.state == "drift"]
    assert alert.impact == pytest.approx(3.0 * alert.statistic / alert.threshold, rel=1e-5)
    assert alert.impact >= 3.0
    impacts = dict(mon.impacts())
    assert set(impacts) == {"feature:a", "feature:b", "feature:c", "feature:d", "feature:k"}
    assert impacts["feature:d"] == max(impacts.values())
    others = [c for c in changes if c.signal != "feature:d" and c.signal.startswith("feature:")]
    assert all(c.impact is None or c.state == "drift" for c in others)


@pytest.mark.parametrize(
    "bad",
    [
        {"multivariate": 1},
        {"outlier_quantile": 0.3},
        {"outlier_quantile": 1.0},
        {"outlier_quantile": True},
        {"features": {"a": {"importance": -1.0}}},
        {"features": {"a": {"importance": math.inf}}},
        {"features": {"a": {"importance": "high"}}},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(SettingsError):
        DriftMonitor(**bad)
