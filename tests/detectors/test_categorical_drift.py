import random

import pytest

from detectors.categorical_drift import CategoricalDrift
from detectors.errors import SettingsError
from detectors.reference import categorical_reference

BEFORE = ["a"] * 5 + ["b"] * 3 + ["c"] + ["d"]
AFTER = ["a"] * 3 + ["b"] * 3 + ["c"] * 3 + ["d"]  # c: 10% -> 30%


def _changes(det: CategoricalDrift, values):
    return [(c.events_seen, c.state, c.detector) for v in values for c in det.update(v)]


def test_frequency_shift_is_found() -> None:
    for seed in range(5):
        rng = random.Random(seed)
        stream = [rng.choice(BEFORE) for _ in range(3000)]
        stream += [rng.choice(AFTER) for _ in range(2000)]
        changes = _changes(CategoricalDrift(), stream)
        assert changes[0][1:] == ("drift", "chi2")
        assert changes[0][0] - 3000 <= 500


def test_stationary_200k_values_raise_no_alert() -> None:
    rng = random.Random(4)
    cats = [f"c{i}" for i in range(40)]
    weights = [1 / (i + 1) for i in range(40)]  # Zipf-like, with rare categories
    det = CategoricalDrift()
    values = rng.choices(cats, weights, k=200_000)
    assert [c for i in range(0, 200_000, 50) for c in det.update_many(values[i : i + 50])] == []


def test_burst_of_new_categories_is_found_by_the_unseen_test() -> None:
    rng = random.Random(6)
    stream = [rng.choice(BEFORE) for _ in range(3000)]
    stream += [rng.choice(BEFORE) if rng.random() > 0.05 else f"new{i}" for i in range(2000)]
    det = CategoricalDrift()
    changes = [c for v in stream for c in det.update(v)]
    assert changes and changes[0].state == "drift"
    assert changes[0].detector in ("unseen_rate", "chi2")
    assert not det.known("new5") and det.known("a")


def test_recovery_after_the_shift_ends() -> None:
    rng = random.Random(7)
    stream = [rng.choice(BEFORE) for _ in range(3000)] + [rng.choice(AFTER) for _ in range(1500)]
    stream += [rng.choice(BEFORE) for _ in range(3000)]
    assert [s for _, s, _ in _changes(CategoricalDrift(), stream)] == ["drift", "recovered"]


def test_ten_thousand_distinct_values_do_not_grow_state() -> None:
    det = CategoricalDrift(reference=categorical_reference({"a": 900, "b": 100}))
    for i in range(1000):
        det.update(f"v{i}")
    size = len(repr(det.snapshot()))
    for i in range(1000, 10_000):
        det.update(f"v{i}")
    assert len(repr(det.snapshot())) <= size + 200


@pytest.mark.parametrize("kwargs", [{"top_k": 0}, {"reference": {"type": "numeric"}}])
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        CategoricalDrift(**kwargs)


def test_chi2_runs_at_its_share_over_the_measured_tail_excess() -> None:
    from detectors.categorical_drift import CHI2_TAIL_FACTOR
    from detectors.sensitivity import SensitivityBudget, chi2_critical

    det = CategoricalDrift(1_000_000, n_signals=48, budget_weight=1.8)
    alpha = SensitivityBudget(1_000_000, n_signals=48, weight=1.8).window_alpha(det.step)
    rng = random.Random(3)
    det.update_many([rng.choice("abcd") for _ in range(2000)])
    assert det.threshold == pytest.approx(chi2_critical(3, alpha / CHI2_TAIL_FACTOR))
