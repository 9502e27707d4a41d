"""The multivariate reference, fitted in a block of its own.

A :class:`DriftMonitor` learns its features' references and its multivariate reference
from the same first events; fitting the latter in the same block (~4-6 ms at 20
features, after ~3 ms of per-feature references) made that block the model's longest
stall. The monitor leaves the completed fit due (``ReconstructionDrift.defer_fit``) and
fits it at the end of the first later block in which no feature reference was learned.
The reference is the same first events' either way; alone, a detector fits at once.
"""

from __future__ import annotations

import random
from typing import Any

from detectors.drift_monitor import DriftMonitor
from detectors.prediction import ClassPrediction
from detectors.reconstruction import ReconstructionDrift

NAMES = [f"x{i}" for i in range(5)]
SETTINGS: dict[str, Any] = {"reference_size": 200, "window": 100, "step": 25}
PRED = ClassPrediction("a", 0.9)


def _events(n: int, seed: int = 4) -> list[dict[str, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        z = rng.gauss(0, 1)
        out.append({name: z + 0.5 * rng.gauss(0, 1) for name in NAMES})
    return out


def _monitor() -> DriftMonitor:
    return DriftMonitor({n: {"type": "numeric"} for n in NAMES}, **SETTINGS)


def test_the_fit_waits_for_a_block_without_feature_references() -> None:
    monitor = _monitor()
    events = _events(400)
    features_learned = fitted = None
    for i, e in enumerate(events, 1):
        monitor.update(e, PRED)
        mv = monitor.multivariate_detector
        assert mv is not None
        slots = monitor._slots.values()
        if features_learned is None and all(s.drift.learned_reference for s in slots):
            features_learned = i
        if fitted is None and mv.active:
            fitted = i
        if i == 200:  # its reference is complete, and waits
            assert mv.fit_due and not mv.active
    assert features_learned == 200  # the block ending at event 200
    assert fitted == 225  # the next block's end, not the same one
    # The same reference as a detector alone fits on the first 200 events at once.
    alone = ReconstructionDrift(
        sensitivity=mv.sensitivity,
        outlier_quantile=mv.outlier_quantile,
        features=NAMES,
        reference_size=200,
        max_features=mv.max_features,
        window=100,
        step=25,
    )
    for e in events[:200]:
        alone.update(e)
    assert alone.active and not alone.fit_due
    assert mv.learned_reference == alone.learned_reference
    # Events while it was due were counted, neither learned from nor scored: its
    # windows are those of the events after the fit.
    for e in events[225:]:
        alone.update(e)
    assert mv.events_seen == 400 and alone.events_seen == 375
    assert mv._ring == alone._ring and mv.statistic == alone.statistic


def test_a_monitor_restored_while_the_fit_is_due_ends_as_one_never_restored() -> None:
    events = _events(400, seed=9)
    straight = _monitor()
    for e in events:
        straight.update(e, PRED)
    first = _monitor()
    for e in events[:210]:
        first.update(e, PRED)
    mv = first.multivariate_detector
    assert mv is not None and mv.fit_due
    restored = DriftMonitor.restore(first.snapshot())
    rmv = restored.multivariate_detector
    assert rmv is not None and rmv.defer_fit and rmv.fit_due
    for e in events[210:]:
        restored.update(e, PRED)
    assert restored.snapshot() == straight.snapshot()


def test_alone_a_detector_fits_at_the_event_that_completes_its_reference() -> None:
    det = ReconstructionDrift(features=NAMES, reference_size=200, window=100, step=25)
    for i, e in enumerate(_events(200), 1):
        det.update(e)
        assert det.active == (i == 200)
    assert not det.fit_due and not det.fit_learned()  # nothing left to fit


def test_a_due_detector_restored_without_its_owner_fits_at_its_next_event() -> None:
    det = ReconstructionDrift(features=NAMES, reference_size=200, window=100, step=25)
    det.defer_fit = True
    events = _events(210)
    for e in events[:200]:
        det.update(e)
    assert det.fit_due and not det.active
    restored = ReconstructionDrift.restore(det.snapshot())
    assert not restored.defer_fit and restored.fit_due
    assert restored.update(events[200]) == []
    assert restored.active and not restored.fit_due
    assert det.fit_learned() and det.learned_reference == restored.learned_reference
