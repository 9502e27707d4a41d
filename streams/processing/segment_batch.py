"""A batch's segment-monitor work, put off to the end of the batch and done per model.

No decision depends on the segment monitors, so :meth:`Processor.inference_batch
<streams.processing.processor.Processor.inference_batch>` lets each event's
:meth:`~detectors.model_monitor.ModelMonitor.observe` queue its segment part
(``later``) and runs each model's queue at once at the end of the batch
(:meth:`~detectors.model_monitor.ModelMonitor.observe_segments`, columnar per segment
value). The alerts that produces are spliced into the batch's alerts where the
event-at-a-time path publishes them: after the event's own drift and performance
alerts, before its version canary's. So the batch publishes what its messages one at a
time publish, in the same order (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from detectors.model_monitor import ModelMonitor, SegmentWork
from detectors.signals import SignalChange

__all__ = ["SegmentBatch", "publish_segment_changes"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SegmentBatch:
    """One model monitor's queued segment work in a batch, and where each event's
    segment alerts belong."""

    monitor: ModelMonitor
    model_id: str
    work: list[SegmentWork] = field(default_factory=list)
    # Per entry of ``work``: (position in the batch's alerts, event order, when, model
    # version) once the event's own alerts are out; None if it never got there (an
    # error after observe: the event-at-a-time path published none of its changes).
    at: list[tuple[int, int, datetime, str] | None] = field(default_factory=list)


# emit(model_id, model_version, changes, now): appends the changes' alert records.
Emit = Callable[[str, str, list[SignalChange], datetime], None]


def publish_segment_changes(
    batches: list[SegmentBatch], alerts: list[tuple[bytes, bytes]], emit: Emit
) -> None:
    """Run every queued segment work and put each event's alerts (``emit`` appends them
    to ``alerts``) at that event's place in ``alerts``."""
    found: list[tuple[int, int, datetime, str, str, list[SignalChange]]] = []
    for batch in batches:
        try:
            per_event = batch.monitor.observe_segments(batch.work)
            placed = list(zip(batch.at, per_event, strict=True))
        except Exception:  # a bug: the events are processed; only these alerts are lost
            log.exception(
                "model %r: segment monitors failed on a batch of %d events",
                batch.model_id,
                len(batch.work),
            )
            continue
        for at, changes in placed:
            if changes and at is not None:
                pos, order, now, version = at
                found.append((pos, order, now, version, batch.model_id, changes))
    # From the end: an insertion leaves the positions before it valid; at one position,
    # the later event first, so the earlier one's alerts end up in front.
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    for pos, _, now, version, model_id, changes in found:
        tail = alerts[pos:]
        del alerts[pos:]
        emit(model_id, version, changes, now)
        alerts.extend(tail)
