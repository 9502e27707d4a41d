"""Whether a worker's ingest loop still goes round: what ``/healthz`` answers.

A worker serves ``/metrics`` from a thread of its own, so a worker whose ingest loop is
stuck (a blocking call that never returns, a deadlock) still answers ``/metrics`` and a
liveness probe on it never restarts the worker. The loop beats instead: the core's
:meth:`~streams.ingest.core.IngestCore.tick` runs after every batch and, when no
message arrives, at least every ``worker.batch_within_s`` (the batch driver) or on
Faust's 0.1 s timer (paused while a rebalance's checkpoint or restore waits). A worker
whose last beat is older than ``worker.liveness_timeout_s`` is not alive.

The timeout must outlast the loop's longest legitimate pause: a rebalance's checkpoint
(a flush and a synchronous commit, seconds) and a restore of many models' checkpoints
(up to a minute per assignment, :meth:`~streams.kafka.checkpoints.CheckpointStore.read`),
hence the default of 120 s. Before the loop's first beat the worker is starting: alive
for ``timeout_s`` from :meth:`Liveness.begin` (the worker calls it as it starts serving
``/healthz``, just before the loop starts), so a worker stuck before its loop ever went
round (in its first assignment's restore, say) is not alive either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["Liveness"]


class Liveness:
    """The ingest loop's last beat, and whether it is recent enough.

    >>> clock = iter([0.0, 10.0, 100.0, 200.0]).__next__
    >>> live = Liveness(120.0, clock=clock)  # at 0.0
    >>> live.beat()  # at 10.0
    >>> live.check()  # at 100.0
    (True, 'ok: the ingest loop went round 90 s ago')
    >>> live.check()  # at 200.0
    (False, 'the ingest loop has not gone round for 190 s (worker.liveness_timeout_s: 120)')
    """

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """``timeout_s``: the longest silence of a live loop; ``clock``: monotonic
        seconds, the clock the beats are read on (injectable for tests)."""
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"timeout_s must be a positive number of seconds; got {timeout_s!r}")
        self.timeout_s = timeout_s
        self._clock = clock
        self._last: float | None = None  # no beat yet: starting
        self._began = clock()

    def begin(self) -> None:
        """The loop starts now: until its first beat it is starting, alive for up to
        ``timeout_s`` from now."""
        self._last = None
        self._began = self._clock()

    def beat(self) -> None:
        """The loop went round, now."""
        self._last = self._clock()

    def check(self) -> tuple[bool, str]:
        """(alive, a line saying why): alive while the last beat, or before the first
        one the :meth:`begin` (or the creation), is at most ``timeout_s`` old."""
        last = self._last
        silent = self._clock() - (self._began if last is None else last)
        if silent > self.timeout_s:
            gone = f"since it began {silent:.0f} s ago" if last is None else f"for {silent:.0f} s"
            return False, (
                f"the ingest loop has not gone round {gone} "
                f"(worker.liveness_timeout_s: {self.timeout_s:g})"
            )
        if last is None:
            return True, f"ok: starting (the ingest loop began {silent:.0f} s ago)"
        return True, f"ok: the ingest loop went round {silent:.0f} s ago"
