"""The worker process's own health on its ``/metrics``: memory, CPU and collector pauses.

A worker's registry is its own (not prometheus_client's global one), so the standard
process series are registered here, once per worker process:

* ``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
  ``process_open_fds``, ... (prometheus_client's ``ProcessCollector``: Linux only, it
  reads ``/proc``), so that the bounded-memory promise (state does not grow with the
  stream's length) can be watched in production, not only in ``benchmarks/``;
* ``python_gc_objects_collected_total``, ``python_gc_collections_total`` (per
  generation) and ``python_info``;
* ``vigil_gc_pause_seconds{generation}``: how long each run of Python's cyclic garbage
  collector stopped the process (every thread waits for it). A full collection walks
  every tracked object the models' state holds: measured at 15-50 ms for ten models of
  ~750 KB state (issue 18), and a stall of that length is an event-latency spike.
  Labels: ``generation`` 0, 1 or 2 (bounded).

:meth:`GcPauses.install` adds a callback to :data:`gc.callbacks` (process-wide);
:meth:`GcPauses.uninstall` removes it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

__all__ = ["GC_PAUSE_BUCKETS", "GcPauses", "register_runtime_metrics"]

#: Seconds: a young collection takes well under a millisecond, a full one tens of ms.
GC_PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: CPython's generations; anything else (a future runtime's) is reported as the oldest.
_GENERATIONS = ("0", "1", "2")


class GcPauses:
    """``vigil_gc_pause_seconds{generation}`` fed by a :data:`gc.callbacks` hook.

    ``clock``: seconds, monotonic (injectable for tests).

    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> ticks = iter([10.0, 10.04])
    >>> pauses = GcPauses(registry, clock=lambda: next(ticks))
    >>> pauses._callback("start", {"generation": 2})
    >>> pauses._callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    >>> registry.get_sample_value("vigil_gc_pause_seconds_count", {"generation": "2"})
    1.0
    >>> registry.get_sample_value(
    ...     "vigil_gc_pause_seconds_bucket", {"generation": "2", "le": "0.025"})
    0.0
    >>> registry.get_sample_value(
    ...     "vigil_gc_pause_seconds_bucket", {"generation": "2", "le": "0.05"})
    1.0
    """

    def __init__(
        self, registry: CollectorRegistry, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._clock = clock
        histogram = Histogram(
            "vigil_gc_pause_seconds",
            "Pauses of the cyclic garbage collector by generation (the process stops).",
            ["generation"],
            buckets=GC_PAUSE_BUCKETS,
            registry=registry,
        )
        self._children = [histogram.labels(g) for g in _GENERATIONS]
        self._started: float | None = None

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        started, self._started = self._started, None
        if started is None:  # installed while a collection ran
            return
        generation = info.get("generation")
        i = generation if type(generation) is int and 0 <= generation < 3 else 2
        self._children[i].observe(self._clock() - started)

    def install(self) -> None:
        """Start observing (idempotent)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        """Stop observing (idempotent)."""
        while self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


def register_runtime_metrics(registry: CollectorRegistry) -> GcPauses:
    """Register the process, platform and GC series on ``registry`` and return the
    (installed) pause histogram; call once per process and registry."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)  # registers itself only on CPython
    pauses = GcPauses(registry)
    pauses.install()
    return pauses
