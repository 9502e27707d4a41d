"""The shared detector contract (tests/detectors/contract.py) over every drift class."""

import random

import numpy as np
import pytest

from detectors.categorical_drift import CategoricalDrift
from detectors.data_quality import DataQualityDrift
from detectors.drift_monitor import DriftMonitor
from detectors.numeric_drift import NumericDrift
from detectors.prediction import ClassPrediction
from detectors.reference import ReferenceBuilder
from tests.detectors.contract import (
    check_bounded_memory,
    check_rejects,
    check_snapshot_resume,
    snapshot_size,
)


def _shifting_numbers(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0, 1, n // 2), rng.normal(1, 1, n - n // 2)].tolist()


# -- NumericDrift ------------------------------------------------------------
def test_numeric_snapshot_resume() -> None:
    # 1700 values: the split (850) falls inside the learning phase, 3400 after it.
    for n in (1700, 3400):
        check_snapshot_resume(lambda: NumericDrift(reference_size=1000), _shifting_numbers(n, 1))


def test_numeric_rejects() -> None:
    det = NumericDrift(reference_size=100)
    for v in _shifting_numbers(500, 2):
        det.update(v)
    check_rejects(det, [float("nan"), float("inf"), "1.0", None, True])
    before = det.snapshot()
    with pytest.raises(ValueError):
        det.update_many([1.0, float("nan")])
    assert det.snapshot() == before


def test_numeric_bounded_memory_over_1m_values() -> None:
    rng = random.Random(3)
    check_bounded_memory(NumericDrift(), lambda i: rng.gauss(i * 1e-5, 1), 1_000_000)


# -- CategoricalDrift --------------------------------------------------------
def _categories(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice("aaabbc" if i < n // 2 else "abccc") for i in range(n)]


def test_categorical_snapshot_resume() -> None:
    for n in (1500, 4000):
        check_snapshot_resume(lambda: CategoricalDrift(), _categories(n, 4))


def test_categorical_rejects() -> None:
    det = CategoricalDrift(reference_size=100)
    for v in _categories(400, 5):
        det.update(v)
    check_rejects(det, [1, 2.5, None, float("nan"), b"a"])


def test_categorical_bounded_memory() -> None:
    rng = random.Random(6)
    check_bounded_memory(CategoricalDrift(), lambda i: f"v{rng.randrange(10 * i + 10)}", 200_000)


# -- DataQualityDrift --------------------------------------------------------
def _statuses(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["missing" if rng.random() < (0.01 if i < n // 2 else 0.1) else "ok" for i in range(n)]


def test_data_quality_snapshot_resume() -> None:
    check_snapshot_resume(lambda: DataQualityDrift(), _statuses(4000, 7))


def test_data_quality_rejects() -> None:
    det = DataQualityDrift()
    for s in _statuses(300, 8):
        det.update(s)  # type: ignore[arg-type]
    check_rejects(det, ["bad", None, float("nan"), 1])


def test_data_quality_bounded_memory() -> None:
    rng = random.Random(9)
    check_bounded_memory(
        DataQualityDrift(), lambda i: "missing" if rng.random() < 0.02 else "ok", 500_000
    )


# -- DriftMonitor ------------------------------------------------------------
def _events(n: int, seed: int, shift_at: int | None = None) -> list[tuple[dict, ClassPrediction]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        mu = 1.0 if shift_at is not None and i >= shift_at else 0.0
        feats: dict = {f"n{j}": rng.gauss(mu if j == 0 else 0.0, 1) for j in range(4)}
        feats["c"] = rng.choice("abc")
        feats["maybe"] = rng.random() if rng.random() < 0.9 else None
        if i % 97 == 0:
            feats["n2"] = "oops"
        if i == 1700:
            feats["late"] = True
        out.append((feats, ClassPrediction(rng.choice("xy"), rng.uniform(0.5, 1))))
    return out


def _feed_monitor(monitor: DriftMonitor, event) -> list:
    return monitor.update(*event)


def test_monitor_snapshot_resume() -> None:
    for n in (1600, 4000):
        check_snapshot_resume(
            lambda: DriftMonitor(), _events(n, 10, shift_at=n // 2), feed=_feed_monitor
        )


def test_monitor_snapshot_resume_with_profile() -> None:
    profile = ReferenceBuilder.from_events(_events(3000, 11), "m").to_dict()
    check_snapshot_resume(
        lambda: DriftMonitor(reference=profile), _events(3000, 12, 1500), feed=_feed_monitor
    )


def test_monitor_rejects() -> None:
    monitor = DriftMonitor()
    for e in _events(300, 13):
        monitor.update(*e)
    bad = [
        ({"n0": 1.0}, ClassPrediction("x", float("nan"))),
        ({"n0": 1.0}, None),
        ("n0", ClassPrediction("x", 0.5)),
    ]
    check_rejects(monitor, bad, feed=_feed_monitor)


def test_monitor_state_does_not_grow() -> None:
    monitor = DriftMonitor()
    events = _events(2000, 14)
    for e in events:
        monitor.update(*e)
    early = snapshot_size(monitor)
    for _ in range(10):
        for e in events:
            monitor.update(*e)
    # Only ADWIN's exponential histograms grow, logarithmically (the contract's slack).
    assert snapshot_size(monitor) <= 1.5 * early + 1024
