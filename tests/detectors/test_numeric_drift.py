import random

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
