"""The contract every detector, monitor and policy passes (STYLE §4).

Each test module calls these checks with a factory (a fresh object) and a
seeded stream of observations; ``feed`` says how one observation is applied.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Any

from detectors.base import Detector

Feed = Callable[[Any, Any], Any]


def default_feed(det: Any, x: Any) -> Any:
    return det.update(x)


def check_snapshot_resume(
    factory: Callable[[], Detector], stream: Sequence[Any], feed: Feed = default_feed
) -> None:
    """snapshot → pickle → restore → continue gives the same outputs as never stopping."""
    whole = factory()
    out_whole = [feed(whole, x) for x in stream]
    half = len(stream) // 2
    first = factory()
    out_first = [feed(first, x) for x in stream[:half]]
    snap = pickle.loads(pickle.dumps(first.snapshot()))
    resumed = type(first).restore(snap)
    out_rest = [feed(resumed, x) for x in stream[half:]]
    assert out_first + out_rest == out_whole
    assert resumed.snapshot() == whole.snapshot()


def check_rejects(det: Detector, bad_inputs: Sequence[Any], feed: Feed = default_feed) -> None:
    """Each bad input raises ValueError naming the problem, and leaves state untouched."""
    before = det.snapshot()
    for bad in bad_inputs:
        try:
            feed(det, bad)
        except ValueError as exc:
            assert str(exc), f"empty error message for {bad!r}"
        else:
            raise AssertionError(f"{type(det).__name__} accepted {bad!r}")
        assert det.snapshot() == before, f"state changed after rejecting {bad!r}"


def snapshot_size(det: Detector) -> int:
    return len(pickle.dumps(det.snapshot()))


def check_bounded_memory(
    det: Detector,
    make_x: Callable[[int], Any],
    n: int,
    feed: Feed = default_feed,
    slack: float = 1.5,
) -> None:
    """Snapshot size after ``n`` updates is no larger than ``slack`` times its size
    after ``n // 10``: state does not grow with stream length."""
    early = n // 10
    for i in range(early):
        feed(det, make_x(i))
    size_early = snapshot_size(det)
    for i in range(early, n):
        feed(det, make_x(i))
    size_late = snapshot_size(det)
    assert size_late <= slack * size_early + 1024, (size_early, size_late)
    assert sys.getsizeof(det) < 10_000
