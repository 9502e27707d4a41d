"""The cyclic garbage collector as a worker process runs it: start-up heap frozen, full
collections rare.

CPython's collector walks every tracked container of a generation, and a full collection
(generation 2) walks all of them. A worker's long-lived state holds large containers
(each model's label join keeps up to ``labels.max_pending`` pending predictions and as
many joined ids), so a full collection stops the ingest thread for tens of milliseconds
(26–84 ms at 5k events/s in issue 18's eleventh session, growing with the join), and
with CPython's default thresholds one ran every ~5 s. Each of those found 0–32 objects
of cyclic garbage: almost everything a worker allocates is freed by reference counting,
and the cycles it makes die young, where the young collections (unchanged) find them.

So a worker freezes its start-up heap (:func:`gc.freeze`: modules, Faust, aiokafka,
config) and lets a full collection wait for :data:`FULL_AFTER_YOUNG` collections of the
middle generation instead of CPython's 10 (CPython adds its own condition: the objects
moved to the old generation since the last full collection must be at least a quarter
of those it kept). Memory stays bounded: what waits longer is only cyclic garbage that
outlived two young collections, and a full collection still comes after a bounded number
of allocations (about ``700 * 10 * FULL_AFTER_YOUNG`` tracked containers: ~9 minutes at
5k events/s, ~2 minutes at full load).
"""

from __future__ import annotations

import gc

__all__ = ["FULL_AFTER_YOUNG", "settle_collector"]

#: Collections of the middle generation before a full collection may run (CPython: 10).
FULL_AFTER_YOUNG = 1000


def settle_collector() -> None:
    """Collect and freeze what is alive now, and make full collections rare: for a
    worker process, once its start-up is done. Young collections keep CPython's
    thresholds.

    >>> import gc
    >>> before = gc.get_threshold()
    >>> settle_collector()
    >>> gc.get_threshold()[2] == FULL_AFTER_YOUNG, gc.get_freeze_count() > 0
    (True, True)
    >>> gc.unfreeze(); gc.set_threshold(*before)  # leave this interpreter as it was
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_AFTER_YOUNG)
