"""CUSUM thresholds of a learned or grown reference, solved when the owner says.

A :class:`DriftMonitor`'s numeric features learn and grow their references in the same
block; it marks their thresholds due (``NumericDrift.defer_scores``) and solves at most
``SCORE_REFRESHES_PER_BLOCK`` per block, so a model's thresholds are not all solved at
once. A first reference's CUSUMs sum from the start and fire once solved. Alone, a
detector solves them at once, as before.
"""

from __future__ import annotations

import random

from detectors.drift_monitor import SCORE_REFRESHES_PER_BLOCK, DriftMonitor
from detectors.numeric_drift import NumericDrift
from detectors.prediction import ClassPrediction

SMALL = {"reference_size": 200, "window": 100, "step": 25}


def _feed_until_due(det: NumericDrift, rng: random.Random) -> int:
    for block in range(1, 400):
        det.update_many([rng.gauss(0, 1) for _ in range(25)])
        if det.scores_due:
            return block
    raise AssertionError("the reference never grew enough for new tables")


def test_deferred_tables_wait_for_refresh_and_then_match_an_immediate_refresh() -> None:
    rng = random.Random(8)
    deferred = NumericDrift(**SMALL)
    deferred.defer_scores = True
    block = _feed_until_due(deferred, rng)
    # The same values into a detector that refreshes at once.
    rng = random.Random(8)
    eager = NumericDrift(**SMALL)
    for _ in range(block):
        eager.update_many([rng.gauss(0, 1) for _ in range(25)])
    assert not eager.scores_due
    before = deferred.cusum_thresholds
    assert eager.cusum_thresholds != before  # the eager one has its new tables
    # Kept in the snapshot: a restored detector still has them due.
    restored = NumericDrift.restore(deferred.snapshot())
    assert restored.scores_due
    assert deferred.refresh_scores()
    assert not deferred.refresh_scores()  # nothing due any more
    assert deferred.cusum_thresholds == eager.cusum_thresholds
    assert deferred.snapshot() == eager.snapshot()


def test_a_monitor_computes_at_most_a_few_tables_per_block() -> None:
    names = [f"x{i}" for i in range(7)]

    def make() -> DriftMonitor:
        return DriftMonitor({n: {"type": "numeric"} for n in names}, multivariate=False, **SMALL)

    monitor = make()
    rng = random.Random(3)
    events = [{n: rng.gauss(0, 1) for n in names} for _ in range(60 * 25)]
    pred = ClassPrediction("a", 0.9)

    def due(m: DriftMonitor) -> int:
        return sum(s.drift.scores_due for s in m._slots.values() if s.numeric)  # type: ignore[union-attr]

    most_due = 0
    copy: DriftMonitor | None = None
    copied_at = 0
    for i, event in enumerate(events):
        before = due(monitor)
        started = monitor._block_start
        monitor.update(event, pred)
        if monitor._block_start != started:  # a block ended: its refreshes are done
            now = due(monitor)
            # At most a few computed per block (newly due ones only add to `now`).
            assert before - now <= SCORE_REFRESHES_PER_BLOCK
            most_due = max(most_due, now)
            if copy is None and now >= 3:  # a snapshot while tables are due
                copy, copied_at = DriftMonitor.restore(monitor.snapshot()), i + 1
    # Every feature's reference grew in the same block: all became due at once and
    # were worked off a few per block.
    assert most_due >= len(names) - SCORE_REFRESHES_PER_BLOCK
    assert due(monitor) == 0
    # A monitor restored while tables were due goes on exactly as the original.
    assert copy is not None
    for event in events[copied_at:]:
        copy.update(event, pred)
    assert copy.snapshot() == monitor.snapshot()


def _learned(det: NumericDrift, rng: random.Random) -> None:
    """Feed ``det`` its reference (200 values) and nothing more."""
    det.update_many([rng.gauss(0, 1) for _ in range(SMALL["reference_size"])])


def test_a_first_reference_runs_its_cusums_at_once_and_solves_their_thresholds_when_told() -> None:
    deferred, eager = NumericDrift(**SMALL), NumericDrift(**SMALL)
    deferred.defer_scores = True
    _learned(deferred, random.Random(5))
    _learned(eager, random.Random(5))
    assert deferred.scores_due and not eager.scores_due
    # The same score tables from the start, but thresholds nothing can reach.
    assert deferred._matrix.tolist() == eager._matrix.tolist()
    assert min(deferred.cusum_thresholds) > 1e9 > max(eager.cusum_thresholds)
    # Calm values: both CUSUMs sum the same.
    rng = random.Random(6)
    calm = [rng.gauss(0, 1) for _ in range(50)]
    deferred.update_many(calm)
    eager.update_many(calm)
    assert deferred._cusum.tolist() == eager._cusum.tolist()
    # A restored detector keeps them due, and unreachable.
    restored = NumericDrift.restore(deferred.snapshot())
    assert restored.scores_due and restored.cusum_thresholds == deferred.cusum_thresholds
    assert deferred.refresh_scores()
    assert deferred.cusum_thresholds == eager.cusum_thresholds
    assert deferred.snapshot() == eager.snapshot()


def test_a_shift_while_first_thresholds_are_due_fires_once_they_are_solved() -> None:
    deferred, eager = NumericDrift(**SMALL), NumericDrift(**SMALL)
    deferred.defer_scores = True
    _learned(deferred, random.Random(5))
    _learned(eager, random.Random(5))
    rng = random.Random(7)
    shifted = [rng.gauss(3, 1) for _ in range(40)]
    fired = [c for c in eager.update_many(shifted) if c.state == "drift"]
    assert fired and fired[0].detector.startswith("cusum")  # the eager one saw it
    assert not deferred.update_many(shifted)  # summed, but unable to fire
    deferred.refresh_scores()
    first = deferred.update_many([rng.gauss(3, 1)])
    # The evidence summed meanwhile was kept: it fires at the first value after.
    assert [c.state for c in first] == ["drift"]
    assert first[0].detector.startswith("cusum")
    assert first[0].statistic > first[0].threshold
