"""The live versions of one model: per-version statistics, their lifecycle, the canary.

A model's monitors (:class:`~detectors.model_monitor.ModelMonitor`) watch *all* its
traffic, whatever version served it: feature drift and data quality describe the
inputs, which do not depend on the version, and the escalation budget, the audit
sample and the model-level series stay what they were. What a new version changes
is the *answers*; those are watched per version, in a :class:`VersionBook`:

* counts of events and escalations, and the confidence histogram;
* accuracy from labels (a :class:`~detectors.calibration.CalibrationMonitor` of the
  version: a label reaches the version that made the prediction, the label join
  keeps it);
* the label-free accuracy estimate (a :class:`~detectors.performance.PerformanceEstimator`
  of the version: its calibration map is a property of the model that produced the
  confidences, so a new version learns its own from its own labels instead of
  inheriting the old version's);
* the canary (:class:`~detectors.canary.VersionCanary`): a version that starts while
  another is live has its predictions compared with that version's (the live one
  with most events) over the same time, signal ``version:<new>:prediction``. The old
  version is the canary's reference: a reference learned from history would mix the
  traffic's changes with the version's.

**Lifecycle.** A version gets its state with its first event. It is *retired*
(its state dropped, so the next checkpoint no longer holds it, and its series
removed) once no event of it arrived for ``idle_seconds`` of the worker's clock.
At most ``max_live`` versions per model hold state of their own; events of any
further version are counted under :data:`OTHER_VERSION` (counts, escalations,
confidence and accuracy only: no canary, no estimate) until a slot frees. Retiring
early the least recently seen version instead would let a stream of version
strings (a build hash per event) churn every version's state away; ``_other``
keeps the live ones and bounds the series at ``max_live + 1`` per model.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from detectors.calibration import CalibrationMonitor
from detectors.canary import VersionCanary
from detectors.performance import PerformanceEstimator
from detectors.signals import SignalChange, SignalState

__all__ = [
    "CANARY_SHARE",
    "OTHER_VERSION",
    "RETIRE_EVERY",
    "VersionBook",
    "VersionStats",
    "canary_signal",
]

OTHER_VERSION = "_other"
#: The canaries of a model share this fraction of the model's false-alarm budget, on
#: top of the drift monitor's (see README, "What is monitored").
CANARY_SHARE = 0.1
#: Upper bounds of the per-version confidence histogram (as vigil_prediction_confidence).
CONFIDENCE_BUCKETS = tuple(i / 20 for i in range(1, 21))
#: Seconds of the worker's clock between two looks for idle versions.
RETIRE_EVERY = 1.0


def canary_signal(version: str) -> str:
    """The signal name of ``version``'s canary (SPEC §5)."""
    return f"version:{version}:prediction"


@dataclass(slots=True)
class VersionStats:
    """One live version: what the ``vigil_version_*`` series read (scrape time)."""

    first_seen: float
    last_seen: float
    events: int = 0
    escalations: int = 0
    confidence: list[int] | None = None  # histogram counts, the last one +Inf
    confidence_sum: float = 0.0
    calibration: CalibrationMonitor | None = None
    performance: PerformanceEstimator | None = None
    canary: VersionCanary | None = None
    baseline: str | None = None  # the version the canary compares with

    def snapshot(self) -> dict[str, Any]:
        return {
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "events": self.events,
            "escalations": self.escalations,
            "confidence": None if self.confidence is None else list(self.confidence),
            "confidence_sum": self.confidence_sum,
            "calibration": None if self.calibration is None else self.calibration.snapshot(),
            "performance": None if self.performance is None else self.performance.snapshot(),
            "canary": None if self.canary is None else self.canary.snapshot(),
            "baseline": self.baseline,
        }

    @classmethod
    def restore(cls, s: dict[str, Any]) -> VersionStats:
        return cls(
            float(s["first_seen"]),
            float(s["last_seen"]),
            int(s["events"]),
            int(s["escalations"]),
            None if s["confidence"] is None else [int(c) for c in s["confidence"]],
            float(s["confidence_sum"]),
            None if s["calibration"] is None else CalibrationMonitor.restore(s["calibration"]),
            None if s["performance"] is None else PerformanceEstimator.restore(s["performance"]),
            None if s["canary"] is None else VersionCanary.restore(s["canary"]),
            s["baseline"],
        )


class VersionBook:
    """The live versions of one model (see the module docstring).

    Parameters
    ----------
    idle_seconds
        A version with no event for this long (worker's clock) is retired.
    max_live
        Versions holding state of their own; further ones count under ``_other``.
    calibration, performance
        Settings (constructor arguments) of each version's accuracy monitor and
        estimate; ``performance=None`` turns the estimate off.
    canary
        Settings of each version's canary (``signal`` is set per version);
        ``None`` turns the canary off.
    """

    def __init__(
        self,
        idle_seconds: float = 3600.0,
        max_live: int = 3,
        calibration: dict[str, Any] | None = None,
        performance: dict[str, Any] | None = None,
        canary: dict[str, Any] | None = None,
    ) -> None:
        self.idle_seconds = float(idle_seconds)
        self.max_live = int(max_live)
        self.calibration = dict(calibration or {})
        self.performance = None if performance is None else dict(performance)
        self.canary = None if canary is None else dict(canary)
        self._live: dict[str, VersionStats] = {}
        # baseline version -> the live versions whose canary compares with it
        self._watchers: dict[str, list[VersionStats]] = {}
        self.checked = float("-inf")  # when retire_idle last looked
        self.retired = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, version: object) -> bool:
        return version in self._live

    def get(self, version: str) -> VersionStats | None:
        return self._live.get(version)

    def items(self) -> Iterator[tuple[str, VersionStats]]:
        return iter(list(self._live.items()))

    # ------------------------------------------------------------ events

    def slot(self, version: str) -> str:
        """The name ``version``'s events are counted under: itself, or ``_other``."""
        if version in self._live:
            return version
        own = sum(1 for v in self._live if v != OTHER_VERSION)
        return version if own < self.max_live else OTHER_VERSION

    def observe(
        self, version: str, prediction: str | float, confidence: float | None, now: float
    ) -> tuple[str, VersionStats, list[SignalChange]]:
        """One event of ``version`` at ``now`` (epoch seconds): its slot, that slot's
        stats (the caller counts an escalation on them) and any canary edges."""
        stats = self._live.get(version)
        slot = version
        if stats is None:
            slot = self.slot(version)
            stats = self._live.get(slot)
            if stats is None:
                stats = self._start(slot, now)
        stats.events += 1
        stats.last_seen = now
        if confidence is not None:
            hist = stats.confidence
            if hist is None:
                hist = stats.confidence = [0] * (len(CONFIDENCE_BUCKETS) + 1)
            hist[bisect_left(CONFIDENCE_BUCKETS, confidence)] += 1
            stats.confidence_sum += confidence
            if stats.performance is not None:
                stats.performance.update(confidence)
        changes: list[SignalChange] = []
        if stats.canary is not None:
            changes = stats.canary.update(True, prediction)
        watchers = self._watchers.get(slot)
        if watchers:
            for w in watchers:
                more = w.canary.update(False, prediction)  # type: ignore[union-attr]
                if more:
                    changes = [*changes, *more]
        return slot, stats, changes

    def _start(self, slot: str, now: float) -> VersionStats:
        stats = VersionStats(now, now)
        stats.calibration = CalibrationMonitor(**self.calibration)
        if slot != OTHER_VERSION:
            if self.performance is not None:
                stats.performance = PerformanceEstimator(**self.performance)
            own = [(s.events, v) for v, s in self._live.items() if v != OTHER_VERSION]
            if self.canary is not None and own:
                stats.baseline = max(own)[1]  # the incumbent: most events
                stats.canary = VersionCanary(**{**self.canary, "signal": canary_signal(slot)})
        self._live[slot] = stats
        self._rewatch()
        return stats

    def _rewatch(self) -> None:
        watchers: dict[str, list[VersionStats]] = {}
        for s in self._live.values():
            if s.canary is not None and s.baseline is not None:
                watchers.setdefault(s.baseline, []).append(s)
        self._watchers = watchers

    def observe_label(self, slot: str, confidence: float, correct: bool, weight: float) -> bool:
        """A label of a prediction counted under ``slot``; False if that slot is gone."""
        stats = self._live.get(slot)
        if stats is None:
            return False
        if stats.calibration is not None:
            stats.calibration.update(confidence, correct, weight)  # its alerts: model-level
        if stats.performance is not None:
            stats.performance.observe_label(confidence, correct, weight)
        return True

    # ------------------------------------------------------------ lifecycle

    def retire_idle(self, now: float) -> list[str]:
        """Retire the versions idle for ``idle_seconds`` at ``now``; looks at most once
        per :data:`RETIRE_EVERY` seconds. A canary whose old version retired stops."""
        if now - self.checked < RETIRE_EVERY:
            return []
        self.checked = now
        gone = [v for v, s in self._live.items() if now - s.last_seen >= self.idle_seconds]
        if not gone:
            return []
        for v in gone:
            del self._live[v]
        for s in self._live.values():
            if s.baseline in gone:
                s.canary, s.baseline = None, None
        self.retired += len(gone)
        self._rewatch()
        return gone

    # ------------------------------------------------------------ readings

    def states(self) -> list[SignalState]:
        """The canaries' readings (gauges at scrape time)."""
        return [s.canary.state() for s in list(self._live.values()) if s.canary is not None]

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        return {
            "idle_seconds": self.idle_seconds,
            "max_live": self.max_live,
            "calibration": dict(self.calibration),
            "performance": self.performance,
            "canary": self.canary,
            "retired": self.retired,
            "live": {v: s.snapshot() for v, s in self._live.items()},
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> VersionBook:
        book = cls(
            snapshot["idle_seconds"],
            snapshot["max_live"],
            snapshot["calibration"],
            snapshot["performance"],
            snapshot["canary"],
        )
        book.retired = int(snapshot["retired"])
        book._live = {str(v): VersionStats.restore(s) for v, s in snapshot["live"].items()}
        book._rewatch()
        return book
