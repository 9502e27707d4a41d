import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from detectors.errors import SettingsError
from detectors.numeric_drift import NumericDrift
from detectors.reference import numeric_reference


def _run(det: NumericDrift, values) -> list[tuple[int, str, str]]:
    out = []
    for i in range(0, len(values), 50):
        for c in det.update_many(values[i : i + 50]):
            out.append((c.events_seen, c.state, c.detector))
    return out


def test_one_sigma_shift_is_found_within_150_values() -> None:
    delays = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        det = NumericDrift()
        values = np.r_[rng.normal(0, 1, 3000), rng.normal(1, 1, 1000)].tolist()
        changes = _run(det, values)
        assert changes and changes[0][1] == "drift"
        delays.append(changes[0][0] - 3000)
    assert max(delays) <= 150, delays


def test_stationary_200k_values_raise_no_alert() -> None:
    rng = np.random.default_rng(11)
    det = NumericDrift(sensitivity=1_000_000)
    assert _run(det, rng.lognormal(0, 1, 200_000).tolist()) == []
    assert not det.drifting


def test_recovery_is_emitted_once_after_the_shift_ends() -> None:
    rng = np.random.default_rng(3)
    det = NumericDrift()
    values = np.r_[rng.normal(0, 1, 3000), rng.normal(1, 1, 2000), rng.normal(0, 1, 3000)]
    changes = _run(det, values.tolist())
    assert [s for _, s, _ in changes] == ["drift", "recovered"]
    # the window must clear of the shift, then stay calm for one more window
    assert 5000 + det.window < changes[1][0] <= 5000 + 3 * det.window


def test_variance_change_is_found_by_the_scale_test() -> None:
    rng = np.random.default_rng(5)
    det = NumericDrift()
    values = np.r_[rng.normal(0, 1, 3000), rng.normal(0, 2.5, 1000)].tolist()
    changes = _run(det, values)
    assert changes[0][1:] == ("drift", "cusum_scale") and changes[0][0] - 3000 <= 100


def test_shape_change_with_same_mean_and_spread_is_found_by_the_ks_test() -> None:
    # N(0, 1) -> an even mix of N(-0.95, 0.3) and N(0.95, 0.3): mean 0, variance ~1.
    rng = np.random.default_rng(6)
    det = NumericDrift()
    after = rng.normal(0, 0.3, 2000) + rng.choice([-0.95, 0.95], 2000)
    changes = _run(det, np.r_[rng.normal(0, 1, 3000), after].tolist())
    assert changes and changes[0][1:] == ("drift", "ks"), changes


def test_scale_and_outliers_do_not_matter() -> None:
    rng = np.random.default_rng(8)
    base = np.r_[rng.normal(0, 1, 3000), rng.normal(0.7, 1, 1000)]
    a = _run(NumericDrift(), base.tolist())
    b = _run(NumericDrift(), (base * 1e6 + 5e9).tolist())
    assert a == b and a


def test_given_reference_is_used_from_the_first_value() -> None:
    rng = np.random.default_rng(9)
    ref = numeric_reference(rng.normal(0, 1, 20_000), bins=20)
    det = NumericDrift(reference=ref)
    changes = _run(det, rng.normal(1, 1, 500).tolist())
    assert changes and changes[0][0] <= 300


def test_update_many_equals_update() -> None:
    rng = random.Random(2)
    values = [rng.gauss(0, 1) + (1 if i > 2500 else 0) for i in range(4000)]
    one, many = NumericDrift(), NumericDrift()
    out_one = [c for v in values for c in one.update(v)]
    out_many = [c for i in range(0, 4000, 37) for c in many.update_many(values[i : i + 37])]
    assert out_one == out_many and one.snapshot() == many.snapshot()


def test_states_report_statistic_and_threshold() -> None:
    det = NumericDrift(signal="feature:x")
    (state,) = det.states()
    assert state.signal == "feature:x" and state.detector == "ks"
    assert state.threshold == det.ks_threshold and not state.drifting


@pytest.mark.parametrize(
    "kwargs", [{"window": 120, "step": 50}, {"bins": 0}, {"reference": {"type": "categorical"}}]
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        NumericDrift(**kwargs)


# -- issue 17: budget per model, reference error, snapshots of version 1 ----------

V1 = Path(__file__).parent / "data" / "drift_snapshots_v1.json"


def test_sensitivity_is_per_model_and_the_share_is_shown() -> None:
    shared = NumericDrift(1_000_000, n_signals=48)
    alone = NumericDrift(48_000_000)
    assert shared.signal_sensitivity == alone.signal_sensitivity == 48_000_000
    assert shared.ks_threshold == alone.ks_threshold
    assert "n_signals=48" in repr(shared)


def test_step_default_is_the_monitors() -> None:
    from detectors.drift_monitor import DriftMonitor
    from detectors.sensitivity import default_step

    for window in (250, 100, 75):
        assert NumericDrift(window=window).step == DriftMonitor(window=window).step
        assert NumericDrift(window=window).step == default_step(window)


def test_alarms_latch_until_recovery() -> None:
    """A shift that goes on raises one ``drift``, not one per CUSUM crossing."""
    rng = np.random.default_rng(12)
    det = NumericDrift()
    changes = _run(det, np.r_[rng.normal(0, 1, 3000), rng.normal(1, 1, 5000)].tolist())
    assert [s for _, s, _ in changes] == ["drift"] and det.drifting


def test_learned_reference_keeps_learning_calm_data_up_to_its_cap() -> None:
    rng = np.random.default_rng(13)
    det = NumericDrift(reference_size=200, window=100, step=50)
    _run(det, rng.normal(0, 1, 3200).tolist())
    # 3,000 tested values (60 blocks); blocks join 4 windows (8 blocks) late, 8 at a
    # time: 6 batches (2,400 values) joined, 12 blocks waiting.
    assert det.reference_values == 200 + 2400
    _run(det, rng.normal(0, 1, 20_000).tolist())
    assert det.reference_values == 50 * 200  # REFERENCE_GROWTH * reference_size
    size = len(pickle.dumps(det.snapshot()))
    _run(det, rng.normal(0, 1, 20_000).tolist())
    assert len(pickle.dumps(det.snapshot())) <= size + 64


def test_a_drift_stops_the_reference_learning_what_it_had_not_yet_taken() -> None:
    rng = np.random.default_rng(14)
    det = NumericDrift(reference_size=200, window=100, step=50)
    _run(det, rng.normal(0, 1, 1200).tolist())
    before = det.reference_values
    _run(det, rng.normal(2, 1, 1000).tolist())
    assert det.drifting
    # The blocks waiting when the shift came (the last 400 calm values) were dropped.
    assert det.reference_values <= before + 50


def test_given_reference_is_not_changed() -> None:
    rng = np.random.default_rng(15)
    ref = numeric_reference(rng.normal(0, 1, 5000), bins=20)
    det = NumericDrift(reference=ref)
    _run(det, rng.normal(0, 1, 20_000).tolist())
    assert det.reference_values == 5000 and det.learned_reference is ref


@pytest.mark.parametrize("reference_size", [1000, 20_000])
def test_realised_false_alarm_rate_uses_the_budget_across_references(reference_size) -> None:
    """Many independent references, a loose budget so alarms can be counted: the
    rate averaged over references is within 0.3-1.1x the budget."""
    sens, refs, n = 2_000.0, 12, 60_000
    alarms = 0
    for r in range(refs):
        rng = np.random.default_rng(300 + r)
        ref = None
        if reference_size > 1000:
            ref = numeric_reference(rng.normal(0, 1, reference_size), bins=20)
        det = NumericDrift(sens, reference=ref)
        values = rng.normal(0, 1, n + (1000 if ref is None else 0)).tolist()
        for i in range(0, len(values), 5000):
            alarms += sum(c.state == "drift" for c in det.update_many(values[i : i + 5000]))
    ratio = alarms / (refs * n) * sens
    assert 0.3 <= ratio <= 1.1, ratio


def test_version_1_snapshot_loads_and_continues() -> None:
    snap = json.loads(V1.read_text(encoding="utf-8"))["numeric_drift"]
    assert snap["version"] == 1 and "clock" in snap["settings"]
    det = NumericDrift.restore(snap)
    assert det.drifting and det.values_seen == 2030 and det.step == 25
    assert det.learned_reference == snap["state"]["learned"]
    rng = np.random.default_rng(16)
    changes = [c for v in rng.normal(0, 1, 3000).tolist() for c in det.update(v)]
    assert [c.state for c in changes] == ["recovered"]
    assert NumericDrift.restore(det.snapshot()).snapshot() == det.snapshot()


def test_version_1_drift_monitor_snapshot_loads_and_continues() -> None:
    from detectors.drift_monitor import DriftMonitor
    from detectors.prediction import ClassPrediction

    snap = json.loads(V1.read_text(encoding="utf-8"))["drift_monitor"]
    assert snap["version"] == 1
    monitor = DriftMonitor.restore(snap)
    assert monitor.drift_active and monitor.events_seen == 2030
    rng = random.Random(17)
    changes = []
    for _ in range(3000):
        features = {"a": rng.gauss(0, 1), "b": rng.gauss(5, 2), "c": rng.choice("xyz")}
        changes += monitor.update(features, ClassPrediction(rng.choice("pq"), rng.uniform(0.5, 1)))
    assert [(c.signal, c.state) for c in changes] == [("feature:a", "recovered")]
    assert DriftMonitor.restore(monitor.snapshot()).snapshot() == monitor.snapshot()


def _learned(seed: int = 21) -> NumericDrift:
    det = NumericDrift(reference_size=500)
    det.update_many(np.random.default_rng(seed).lognormal(0, 1, 3000).tolist())
    assert det.learned_reference is not None
    return det


def test_restore_takes_the_kept_cusum_thresholds_without_solving(monkeypatch) -> None:
    import detectors.numeric_drift as nd

    det = _learned()
    snap = det.snapshot()
    assert snap["state"]["limits"]["values"] == det._limits

    def no_solving(*args, **kwargs):
        raise AssertionError("cusum_threshold called on restore")

    with monkeypatch.context() as m:
        m.setattr(nd, "cusum_threshold", no_solving)
        back = NumericDrift.restore(snap)
    assert back._limits == det._limits and back.cusum_thresholds == det.cusum_thresholds
    rng = np.random.default_rng(22)
    values = np.r_[rng.lognormal(0, 1, 500), rng.lognormal(1, 1, 500)].tolist()
    changes = det.update_many(values)
    assert changes and back.update_many(values) == changes
    assert back.snapshot() == det.snapshot()


@pytest.mark.parametrize(
    "kept",
    [
        None,  # a snapshot written before the thresholds were kept
        {"key": [1e-9, 0.5, 1], "values": [1, 1, 1, 1]},  # solved for another level
        {"values": [1, 1, 1, 1]},
        {"key": "x", "values": "y"},
    ],
)
def test_restore_solves_again_unless_the_kept_thresholds_are_todays(kept) -> None:
    det = _learned()
    snap = det.snapshot()
    if kept is None:
        del snap["state"]["limits"]
    else:
        snap["state"]["limits"] = kept
    assert NumericDrift.restore(snap)._limits == det._limits


def test_kept_thresholds_of_another_formula_are_solved_again(monkeypatch) -> None:
    import detectors.numeric_drift as nd

    det = _learned()
    snap = det.snapshot()
    snap["state"]["limits"]["values"] = [1, 1, 1, 1]
    assert NumericDrift.restore(snap)._limits == [1, 1, 1, 1]  # today's key: taken
    monkeypatch.setattr(nd, "_LIMITS_FORMULA", nd._LIMITS_FORMULA + 1)
    assert NumericDrift.restore(snap)._limits == det._limits
