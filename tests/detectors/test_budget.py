from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.budget import EscalationBudget
from detectors.errors import InvalidObservationError, SettingsError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def traffic(seed: int, minutes: int, per_minute: float, burst_every: int = 0):
    rng = np.random.default_rng(seed)
    times, prios = [], []
    for m in range(minutes):
        lam = per_minute * (3.0 if burst_every and m % burst_every == burst_every - 1 else 1.0)
        k = rng.poisson(lam)
        times += sorted((60.0 * m + 60.0 * rng.random(k)).tolist())
        prios += rng.beta(2.0, 5.0, k).tolist()
    return np.array(times), np.array(prios)


@pytest.mark.parametrize(("per_minute", "budget"), [(1000, 100), (300, 20), (50, 100), (20, 100)])
def test_cap_holds_and_keeps_the_most_uncertain(per_minute: float, budget: int) -> None:
    times, prios = traffic(4, 40, per_minute, burst_every=13)
    gate = EscalationBudget(budget_per_minute=budget)
    sent = np.array(
        [gate.update(p, T0 + timedelta(seconds=t)) for p, t in zip(prios, times, strict=True)]
    )
    minute = (times // 60).astype(int)
    overlaps = []
    for m in range(40):
        idx = np.flatnonzero(minute == m)
        assert sent[idx].sum() <= budget
        top = idx[np.argsort(-prios[idx])[:budget]]
        overlaps.append(sent[top].mean())
    assert np.mean(overlaps[1:]) >= 0.85
    assert gate.suppressed + gate.admitted == len(times)
    if 3 * per_minute < budget:
        assert gate.suppressed == 0


def test_quiet_minutes_lower_the_forecast() -> None:
    gate = EscalationBudget(budget_per_minute=5, smoothing=0.5)
    for i in range(100):
        gate.update(0.5, T0 + timedelta(seconds=0.6 * i))
    assert gate.expected_per_minute == 0.0  # no minute has closed yet
    gate.update(0.5, T0 + timedelta(minutes=1))
    assert gate.expected_per_minute == 100
    gate.update(0.5, T0 + timedelta(minutes=4))  # minute 1 had 1 item, minutes 2-3 none
    assert gate.expected_per_minute == pytest.approx((100 + 0.5 * (1 - 100)) * 0.25)


def test_late_items_count_in_current_minute() -> None:
    gate = EscalationBudget(budget_per_minute=2)
    assert gate.update(0.9, T0 + timedelta(minutes=5))
    assert gate.update(0.9, T0)  # out of order: still minute 5
    assert not gate.update(0.9, T0)
    assert gate.sent_this_minute == 2


@pytest.mark.parametrize(
    "bad",
    [
        (float("nan"), T0),
        (1.2, T0),
        ("0.5", T0),
        (0.5, datetime(2024, 1, 1)),  # noqa: DTZ001 - rejected on purpose
        (0.5, 0),
    ],
)
def test_rejects_bad_input(bad: tuple) -> None:
    gate = EscalationBudget()
    gate.update(0.3, T0)
    before = gate.snapshot()
    with pytest.raises(InvalidObservationError):
        gate.update(*bad)
    assert gate.snapshot() == before


@pytest.mark.parametrize(
    "kwargs", [{"budget_per_minute": 0}, {"budget_per_minute": 2.5}, {"smoothing": 0}]
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        EscalationBudget(**kwargs)
