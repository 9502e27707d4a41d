import numpy as np
import pytest

from detectors.errors import InvalidObservationError, SettingsError
from detectors.performance import PerformanceEstimator


def fit(est: PerformanceEstimator, rng: np.random.Generator, n: int, link) -> None:
    conf = 0.5 + 0.5 * rng.beta(4.0, 1.5, n)
    for c, y in zip(conf.tolist(), (rng.random(n) < link(conf)).tolist(), strict=True):
        est.observe_label(c, y)


@pytest.mark.parametrize(
    "link", [lambda c: c, lambda c: c**1.5, lambda c: np.clip(c - 0.1, 0, 1)], ids=str
)
def test_estimate_follows_realized_accuracy_under_covariate_shift(link) -> None:
    rng = np.random.default_rng(8)
    est = PerformanceEstimator(window=20_000, calibration_window=20_000)
    fit(est, rng, 20_000, link)
    conf = 0.5 + 0.5 * rng.beta(2.0, 2.0, 20_000)  # inputs the model is less sure of
    for c in conf.tolist():
        est.update(c)
    realized = float(np.mean(rng.random(len(conf)) < link(conf)))
    assert abs(est.estimated_accuracy - realized) <= 0.015


def test_alert_is_edge_triggered_with_recovery() -> None:
    rng = np.random.default_rng(2)
    est = PerformanceEstimator(window=500, reference_accuracy=0.85, threshold=0.05)
    fit(est, rng, 5000, lambda c: c)
    events = []
    phases = [(4.0, 1.5)] * 1500 + [(1.5, 1.5)] * 1500 + [(4.0, 1.5)] * 1500
    for i, (a, b) in enumerate(phases):
        events += [(i, e.state) for e in est.update(0.5 + 0.5 * rng.beta(a, b))]
    assert [s for _, s in events] == ["drift", "recovered"]
    assert 1500 < events[0][0] < 1900 and 3000 < events[1][0] < 3500
    assert est.state().signal == "estimated_accuracy"


def test_calibration_map_shrinks_to_identity_without_labels() -> None:
    est = PerformanceEstimator(prior_strength=10)
    assert est.calibrate(0.73) == 0.73
    for _ in range(10):
        est.observe_label(0.9, False)
    # Ten wrong labels at 0.9 against a pseudo-count of 10: halfway to accuracy 0.
    assert est.calibrate(0.9) == pytest.approx(0.9 - 0.9 * 10 / 20)


def test_windows_are_bounded() -> None:
    est = PerformanceEstimator(window=50, calibration_window=70)
    for i in range(1000):
        est.update((i % 10) / 10)
        est.observe_label((i % 10) / 10, i % 3 == 0)
    assert (est.count, est.labelled) == (50, 70)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, "0.5", None, True])
def test_rejects_bad_confidence(bad) -> None:
    est = PerformanceEstimator()
    before = est.snapshot()
    with pytest.raises(InvalidObservationError):
        est.update(bad)
    with pytest.raises(InvalidObservationError):
        est.observe_label(bad, True)
    with pytest.raises(InvalidObservationError):
        est.observe_label(0.5, "yes")
    assert est.snapshot() == before


@pytest.mark.parametrize("kwargs", [{"bins": 0}, {"prior_strength": 0}, {"threshold": 2}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        PerformanceEstimator(**kwargs)
