"""Regression errors and interval coverage against numpy, weights included; the coverage
alert's decision rule; ModelMonitor wiring."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from detectors.autoaccept import wilson_upper
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction, RegressionPrediction
from detectors.regression_quality import RegressionQualityMonitor

Item = tuple[RegressionPrediction, float, float]


def _stream(n: int, seed: int, sigma: float = 1.0, scale: float = 1.0) -> list[Item]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = rng.uniform(-100.0, 100.0) * scale
        interval = None if i % 5 == 0 else (value - 1.645 * scale, value + 1.645 * scale)
        truth = value + rng.gauss(0.3 * scale, sigma * scale)
        out.append((RegressionPrediction(value, interval), truth, rng.choice((1.0, 50.0, 7.7))))
    return out


def _direct(items: list[Item]) -> dict[str, float]:
    e = np.array([p.value - y for p, y, _ in items])
    w = np.array([w for _, _, w in items])
    has = np.array([p.interval is not None for p, _, _ in items])
    cov = np.array(
        [p.interval is not None and p.interval[0] <= y <= p.interval[1] for p, y, _ in items]
    )
    return {
        "mae": float(np.sum(w * np.abs(e)) / w.sum()),
        "rmse": float(np.sqrt(np.sum(w * e**2) / w.sum())),
        "bias": float(np.sum(w * e) / w.sum()),
        "coverage": float(np.sum(w[has] * cov[has]) / w[has].sum()),
        "effective": float(w[has].sum() ** 2 / np.sum(w[has] ** 2)),
    }


@pytest.mark.parametrize(
    ("window", "n", "scale"), [(500, 300, 1.0), (400, 3000, 1.0), (300, 900, 1e6)]
)
def test_figures_equal_a_direct_computation_on_the_window(
    window: int, n: int, scale: float
) -> None:
    items = _stream(n, seed=n, scale=scale)
    mon = RegressionQualityMonitor(window=window)
    for p, y, w in items:
        mon.update(p, y, w)
    want = _direct(items[-window:])
    assert mon.count == min(n, window)
    assert mon.mae == pytest.approx(want["mae"], rel=1e-12)
    assert mon.rmse == pytest.approx(want["rmse"], rel=1e-12)
    assert mon.bias == pytest.approx(want["bias"], rel=1e-10)
    assert mon.coverage == pytest.approx(want["coverage"], rel=1e-12)
    assert mon.effective_count == pytest.approx(want["effective"], rel=1e-12)
    assert mon.coverage_count == sum(p.interval is not None for p, _, _ in items[-window:])


def test_unit_weights_give_the_unweighted_figures_and_weights_matter() -> None:
    items = _stream(800, seed=3, sigma=2.0)
    weighted, plain = RegressionQualityMonitor(), RegressionQualityMonitor()
    for p, y, w in items:
        weighted.update(p, y, w)
        plain.update(p, y)
    want = _direct([(p, y, 1.0) for p, y, _ in items])
    assert plain.mae == pytest.approx(want["mae"], rel=1e-12)
    assert plain.coverage == pytest.approx(want["coverage"], rel=1e-12)
    assert plain.effective_count == pytest.approx(plain.coverage_count)
    assert weighted.mae != pytest.approx(plain.mae, rel=1e-3)


def test_empty_and_interval_free_windows_read_nan() -> None:
    mon = RegressionQualityMonitor()
    assert math.isnan(mon.mae) and math.isnan(mon.coverage) and math.isnan(mon.coverage_upper)
    mon.update(RegressionPrediction(2.0), 1.0)
    assert mon.mae == 1.0 and mon.bias == 1.0 and mon.rmse == 1.0
    assert math.isnan(mon.coverage) and mon.coverage_count == 0


def test_alert_when_the_upper_bound_falls_below_the_floor_and_recovery_at_the_floor() -> None:
    mon = RegressionQualityMonitor(
        window=200, interval_level=0.9, coverage_tolerance=0.05, confidence=0.95, min_labelled=50
    )
    inside, outside = (
        (RegressionPrediction(0.0, (-1.0, 1.0)), 0.5),
        (RegressionPrediction(0.0, (-1.0, 1.0)), 5.0),
    )
    events = []
    for i in range(200):  # 90% covered: calibrated
        events += mon.update(*(outside if i % 10 == 0 else inside))
    assert events == [] and mon.coverage == pytest.approx(0.9)
    for i in range(400):  # then 70% covered
        for change in mon.update(*(outside if i % 10 < 3 else inside)):
            events.append((i, change))
    assert len(events) == 1
    i, change = events[0]
    assert change.signal == "coverage" and change.state == "drift"
    assert change.threshold == pytest.approx(0.85) and change.reference == 0.9
    # The decision: the bound just crossed the floor, one label earlier it had not.
    assert change.statistic < 0.85
    assert change.statistic == pytest.approx(
        wilson_upper(change.current["coverage"], change.current["effective_count"], mon._z)
    )
    assert mon.state().drifting and mon.state().threshold == pytest.approx(0.85)
    events.clear()
    for i in range(400):
        events += mon.update(*(outside if i % 10 == 0 else inside))
    assert [c.state for c in events] == ["recovered"]
    assert events[0].statistic >= 0.85


def test_few_labels_never_alert() -> None:
    mon = RegressionQualityMonitor(min_labelled=100)
    bad = (RegressionPrediction(0.0, (-1.0, 1.0)), 5.0)
    assert [c for _ in range(99) for c in mon.update(*bad)] == []
    assert mon.update(*bad)[0].state == "drift"


def test_settings_are_checked() -> None:
    for kwargs in (
        {"window": 0},
        {"interval_level": 1.0},
        {"interval_level": 0.0},
        {"coverage_tolerance": 0.9},
        {"coverage_tolerance": -0.1},
        {"confidence": 0.4},
        {"confidence": 1.0},
        {"min_labelled": 0},
    ):
        with pytest.raises(SettingsError):
            RegressionQualityMonitor(**kwargs)  # type: ignore[arg-type]


def test_huge_errors_are_refused_not_overflowed() -> None:
    mon = RegressionQualityMonitor()
    with pytest.raises(InvalidObservationError, match="too large"):
        mon.update(RegressionPrediction(1e200), 0.0)
    mon.update(RegressionPrediction(1e130), 0.0)
    assert mon.rmse == pytest.approx(1e130)


def test_model_monitor_feeds_regression_labels_with_weights() -> None:
    mon = ModelMonitor(
        "r", EscalationPolicy(), regression=RegressionQualityMonitor(min_labelled=10)
    )
    assert mon.regression is not None
    p = RegressionPrediction(3.0, (2.0, 4.0))
    assert mon.observe_label(p, 1.0, was_escalated=False, inclusion_probability=0.02) == []
    mon.observe_label(p, 3.5, was_escalated=True)
    assert mon.regression.count == 2 and mon.labels_seen == 2
    assert mon.regression.bias == pytest.approx((50 * 2.0 - 0.5) / 51)
    assert mon.regression.coverage == pytest.approx(1 / 51)
    changes = []
    for _ in range(20):
        changes += mon.observe_label(p, 10.0, was_escalated=True)
    # Coverage reads 1/71, but one label weighs 50 of the 70: Kish's effective size is
    # (70**2 / 2520) < 2, too few to show anything.
    assert changes == [] and mon.regression.effective_count < 2
    for _ in range(80):
        changes += mon.observe_label(p, 10.0, was_escalated=True)
    assert [c.signal for c in changes] == ["coverage"]
    assert [s.signal for s in mon.states()] == ["coverage"]
    assert mon.calibration.count == 0  # a regression label is not a classification's


def test_model_monitor_refuses_bad_regression_labels_before_changing_anything() -> None:
    mon = ModelMonitor("r", EscalationPolicy(), regression=RegressionQualityMonitor())
    mon.observe_label(RegressionPrediction(3.0), 1.0, was_escalated=False)
    before = mon.snapshot()
    for truth in ("1.0", float("nan"), True, 1e300):
        with pytest.raises(InvalidObservationError):
            mon.observe_label(RegressionPrediction(3.0), truth, was_escalated=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidObservationError):
        mon.observe_label(ClassPrediction("a", 0.5), 1.0, was_escalated=False)
    assert mon.snapshot() == before


def test_without_the_monitor_regression_labels_are_counted_only() -> None:
    mon = ModelMonitor("r", EscalationPolicy())
    assert mon.observe_label(RegressionPrediction(3.0), 1.0, was_escalated=False) == []
    assert mon.labels_seen == 1 and mon.regression is None


def test_model_monitor_clone_repr_and_snapshots_carry_it() -> None:
    reg = RegressionQualityMonitor(window=9, interval_level=0.8, coverage_tolerance=0.1)
    mon = ModelMonitor("r", EscalationPolicy(), regression=reg)
    mon.observe_label(RegressionPrediction(3.0, (2.0, 4.0)), 3.5, was_escalated=True)
    assert "regression=RegressionQualityMonitor(window=9, interval_level=0.8" in repr(mon)
    clone = mon.clone()
    assert clone.regression is not None and clone.regression.window == 9
    assert clone.regression.count == 0
    restored = ModelMonitor.restore(mon.snapshot())
    assert restored.snapshot() == mon.snapshot()
    old = mon.snapshot()
    del old["regression"], old["classwise"]
    assert ModelMonitor.restore(old).regression is None
