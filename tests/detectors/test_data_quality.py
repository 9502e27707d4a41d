import random

import pytest

from detectors.data_quality import DataQualityDrift
from detectors.errors import InvalidObservationError


def _stream(rates, seed):
    rng = random.Random(seed)
    for p_missing, p_oor in rates:
        r = rng.random()
        yield "missing" if r < p_missing else "out_of_range" if r < p_missing + p_oor else "ok"


def test_missing_rate_jump_is_found_and_recovers() -> None:
    det = DataQualityDrift()
    rates = [(0.01, 0.0)] * 3000 + [(0.08, 0.0)] * 1500 + [(0.01, 0.0)] * 2000
    changes = [c for s in _stream(rates, 1) for c in det.update(s)]
    assert [(c.state, c.detector) for c in changes] == [
        ("drift", "missing_rate"),
        ("recovered", "missing_rate"),
    ]
    assert changes[0].events_seen - 3000 <= 300


def test_out_of_range_values_appearing_are_found() -> None:
    det = DataQualityDrift(reference={"events": 100_000, "missing": 0, "out_of_range": 0})
    changes = [c for s in _stream([(0.0, 0.03)] * 600, 2) for c in det.update(s)]
    assert changes and changes[0].detector == "out_of_range_rate"


def test_stationary_rates_raise_no_alert() -> None:
    det = DataQualityDrift()
    for _ in range(4000):  # 200k events in blocks of 50
        assert det.update_block(50, *_binomials(50)) == []


_rng = random.Random(3)


def _binomials(n: int) -> tuple[int, int]:
    missing = sum(_rng.random() < 0.02 for _ in range(n))
    oor = sum(_rng.random() < 0.005 for _ in range(n - missing))
    return missing, oor


def test_update_block_rejects_impossible_counts() -> None:
    det = DataQualityDrift()
    before = det.snapshot()
    for bad in [(10, 8, 5), (-1, 0, 0), (10, 1.5, 0)]:
        with pytest.raises(InvalidObservationError):
            det.update_block(*bad)
    assert det.snapshot() == before
