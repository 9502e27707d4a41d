import random

import pytest

from detectors.drift_monitor import DriftMonitor, EventQuality
from detectors.errors import InvalidObservationError, SettingsError
from detectors.prediction import ClassPrediction, RegressionPrediction
from detectors.reference import ReferenceBuilder

CATS = {"c0": ["a", "b", "c"], "c1": ["x", "y"], "c2": [f"k{i}" for i in range(8)]}


def make_event(rng: random.Random, shift: dict[str, float] | None = None):
    shift = shift or {}
    features: dict = {f"n{j}": rng.gauss(shift.get(f"n{j}", 0.0), 1.0) for j in range(20)}
    for name, cats in CATS.items():
        features[name] = rng.choice(cats)
    return features, ClassPrediction(rng.choice(["yes", "no"]), rng.uniform(0.5, 1.0))


def feed(monitor: DriftMonitor, rng: random.Random, n: int, shift=None):
    changes = []
    for _ in range(n):
        changes += monitor.update(*make_event(rng, shift))
    return changes


def test_shift_on_one_feature_alerts_on_that_feature_only() -> None:
    rng = random.Random(1)
    monitor = DriftMonitor()
    assert feed(monitor, rng, 3000) == []
    changes = feed(monitor, rng, 1000, shift={"n3": 1.0})
    assert [(c.signal, c.state) for c in changes] == [("feature:n3", "drift")]
    assert changes[0].events_seen - 3000 <= 300
    assert monitor.drift_active
    changes = feed(monitor, rng, 2000)
    assert [(c.signal, c.state) for c in changes] == [("feature:n3", "recovered")]
    assert not monitor.drift_active


def test_signal_shares_add_up_to_the_model_budget() -> None:
    """Each feature's two signals keep two even shares (1.8 for its distribution, 0.2 for
    its data quality), confidence, prediction and multivariate one each: the union bound
    holds."""
    rng = random.Random(5)
    monitor = DriftMonitor(sensitivity=1_000_000)
    feed(monitor, rng, 10)
    dets = monitor._detectors()
    assert len(dets) == 2 * 23 + 2
    mv = monitor._mv
    assert mv is not None
    total = sum(monitor.sensitivity / d.signal_sensitivity for d in dets)
    assert total + monitor.sensitivity / mv.sensitivity == pytest.approx(1.0)
    assert mv.sensitivity == monitor.signal_sensitivity
    by_signal = {d.signal: d.signal_sensitivity for d in dets}
    assert by_signal["data_quality:n0"] == pytest.approx(9 * by_signal["feature:n0"])
    assert by_signal["feature:c0"] == by_signal["feature:n0"]
    assert by_signal["confidence"] == by_signal["prediction"] == monitor.signal_sensitivity


def test_states_cover_every_signal() -> None:
    rng = random.Random(2)
    monitor = DriftMonitor()
    feed(monitor, rng, 100)
    signals = {s.signal for s in monitor.states()}
    assert {"feature:n0", "data_quality:n0", "feature:c2", "confidence", "prediction"} <= signals
    assert len(signals) == 2 * 23 + 2


def test_type_change_is_a_data_quality_problem_not_a_crash() -> None:
    rng = random.Random(3)
    monitor = DriftMonitor()
    feed(monitor, rng, 2000)
    changes = []
    for _ in range(500):
        features, pred = make_event(rng)
        features["n5"] = "five"  # a producer starts sending strings
        changes += monitor.update(features, pred)
        # (other features can be out of the reference's [min, max] by chance)
        assert "n5" in monitor.last_quality.out_of_range
    assert [(c.signal, c.state, c.detector) for c in changes] == [
        ("data_quality:n5", "drift", "out_of_range_rate")
    ]


def test_missing_feature_is_flagged_and_alerted() -> None:
    rng = random.Random(4)
    monitor = DriftMonitor()
    feed(monitor, rng, 2000)
    changes = []
    for _ in range(500):
        features, pred = make_event(rng)
        del features["c1"]
        changes += monitor.update(features, pred)
    assert monitor.last_quality == EventQuality(missing=("c1",))
    assert ("data_quality:c1", "drift") in [(c.signal, c.state) for c in changes]


def test_last_quality_reports_out_of_range_and_unseen() -> None:
    rng = random.Random(5)
    monitor = DriftMonitor({"n0": {"type": "numeric", "min": -10, "max": 10}})
    feed(monitor, rng, 1500)
    features, pred = make_event(rng)
    features["n0"] = 99.0
    features["c0"] = "never-seen"
    monitor.update(features, pred)
    assert monitor.last_quality.out_of_range == ("n0",)
    assert monitor.last_quality.unseen == ("c0",)
    monitor.update(*make_event(rng))
    assert monitor.last_quality.ok


def test_cardinality_attack_on_feature_names_does_not_grow_state() -> None:
    rng = random.Random(6)
    monitor = DriftMonitor(max_features=30)
    feed(monitor, rng, 200)
    size = len(repr(monitor.snapshot()))
    for i in range(10_000):
        features, pred = make_event(rng)
        features[f"attack{i}"] = 1.0
        features["cat"] = f"value{i}"  # and 10k distinct categorical values
        monitor.update(features, pred)
    assert len(monitor.monitored_features) == 30
    assert monitor.ignored_features >= 10_000 - 10
    assert len(repr(monitor.snapshot())) < 1.5 * size + 20_000


def test_reference_profile_is_used_from_the_first_event() -> None:
    rng = random.Random(7)
    profile = ReferenceBuilder.from_events(
        (make_event(rng) for _ in range(10_000)), "m", "v1"
    ).to_dict()
    monitor = DriftMonitor(reference=profile)
    changes = feed(monitor, rng, 600, shift={"n7": 1.0})
    assert [(c.signal, c.state) for c in changes] == [("feature:n7", "drift")]
    assert changes[0].events_seen <= 300


def test_regression_predictions_monitor_the_predicted_value() -> None:
    rng = random.Random(8)
    monitor = DriftMonitor()
    changes = []
    for i in range(4000):
        value = rng.gauss(10 if i < 3000 else 12, 2)
        changes += monitor.update({"x": rng.random()}, RegressionPrediction(value))
    assert [(c.signal, c.state) for c in changes] == [("prediction", "drift")]
    assert "confidence" not in {s.signal for s in monitor.states()}


def test_invalid_events_are_rejected_and_leave_no_trace() -> None:
    rng = random.Random(9)
    monitor = DriftMonitor()
    feed(monitor, rng, 120)
    before = monitor.snapshot()
    bad = [
        ({"n0": 1.0}, ClassPrediction("a", float("nan"))),
        ({"n0": 1.0}, ClassPrediction("a", 1.5)),
        ({"n0": 1.0}, ClassPrediction(3, 0.5)),  # type: ignore[arg-type]
        ({"n0": 1.0}, RegressionPrediction(1.0)),  # this model classifies
        ({"n0": 1.0}, "yes"),
        (["n0"], ClassPrediction("a", 0.5)),
    ]
    for features, pred in bad:
        with pytest.raises(InvalidObservationError):
            monitor.update(features, pred)  # type: ignore[arg-type]
        assert monitor.snapshot() == before


def test_nan_feature_values_do_not_poison_the_detectors() -> None:
    rng = random.Random(10)
    monitor = DriftMonitor()
    changes = []
    for i in range(3000):
        features, pred = make_event(rng)
        if i % 7 == 0:
            features["n1"] = float("nan")
        changes += monitor.update(features, pred)
    # 14% non-finite values is a data-quality problem, not a distribution one.
    assert {c.signal for c in changes} <= {"data_quality:n1"}
    assert all(s.statistic == s.statistic for s in monitor.states())  # no NaN


@pytest.mark.parametrize("bounds", [{}, {"min": -1e6, "max": 1e6}, {"min": 0}])
def test_integers_too_large_for_a_float_are_out_of_range_not_a_crash(bounds: dict) -> None:
    # Python ints are unbounded; 10**400 has no float. Seen per event and per block.
    rng = random.Random(11)
    monitor = DriftMonitor({"n2": {"type": "numeric", **bounds}})
    feed(monitor, rng, 1200)
    for _ in range(60):
        features, pred = make_event(rng)
        features["n2"] = 10**400
        monitor.update(features, pred)
        assert monitor.last_quality.out_of_range == ("n2",)
    assert all(s.statistic == s.statistic for s in monitor.states())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"features": {"x": {"type": "text"}}},
        {"features": {"x": {"type": "numeric", "min": float("nan")}}},
        {"reference": {"format": "nope"}},
        {"window": 100, "step": 30},
        {"max_features": 0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        DriftMonitor(**kwargs)
