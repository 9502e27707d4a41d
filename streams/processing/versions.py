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
  inheriting the old version's). Its alerts are not published (the model's estimate
  alerts), so :meth:`VersionBook.observe` holds the confidences back and
  :meth:`VersionBook.settle` gives them a run at a time
  (:meth:`~detectors.performance.PerformanceEstimator.update_many`: the same state as
  one at a time, ~3x cheaper until the estimate has its reference); a label, a snapshot or
  :data:`SETTLE_AT` held back settle first, and the processor settles at the end of
  every call, so nothing is held back between its calls;
* the drift of its output against *its own* reference (signal
  ``version:<v>:confidence`` for a classifier, ``version:<v>:value`` for a
  regression; a :class:`~detectors.numeric_drift.NumericDrift`): the reference is
  the version's profile (``reference_by_version``) or else its own first events, so
  a new version's reference is never the old version's;
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.calibration import CalibrationMonitor
from detectors.canary import VersionCanary
from detectors.numeric_drift import NumericDrift
from detectors.performance import PerformanceEstimator
from detectors.signals import SignalChange, SignalState

__all__ = [
    "OTHER_VERSION",
    "RETIRE_EVERY",
    "SETTLE_AT",
    "VERSION_SHARE",
    "VersionBook",
    "VersionStats",
    "canary_signal",
    "output_signal",
]

OTHER_VERSION = "_other"
#: The version signals of a model (canaries and output drift) share this fraction of the
#: model's false-alarm budget, on top of the drift monitor's (see README, "Model versions").
VERSION_SHARE = 0.1
#: Upper bounds of the per-version confidence histogram (as vigil_prediction_confidence).
CONFIDENCE_BUCKETS = tuple(i / 20 for i in range(1, 21))
#: Seconds of the worker's clock between two looks for idle versions.
RETIRE_EVERY = 1.0
#: Confidences a version holds back from its estimate at most (VersionStats.unsettled).
SETTLE_AT = 1024


def canary_signal(version: str) -> str:
    """The signal name of ``version``'s canary (SPEC §5)."""
    return f"version:{version}:prediction"


def output_signal(version: str, classification: bool) -> str:
    """The signal name of ``version``'s output drift against its own reference."""
    return f"version:{version}:{'confidence' if classification else 'value'}"


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
    drift: NumericDrift | None = None  # its output against its own reference
    #: Confidences not given to ``performance`` yet (:meth:`settle`); not state.
    unsettled: list[float] = field(default_factory=list)

    def settle(self) -> None:
        """Give ``performance`` the confidences held back, in order."""
        held = self.unsettled
        if held:
            self.unsettled = []
            if self.performance is not None:
                self.performance.update_many(held)  # its alerts: model-level

    def snapshot(self) -> dict[str, Any]:
        self.settle()
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
            "drift": None if self.drift is None else self.drift.snapshot(),
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
            None if s.get("drift") is None else NumericDrift.restore(s["drift"]),
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
    output_drift
        Settings of each version's output drift (:class:`NumericDrift` without
        ``reference`` and ``signal``); ``None`` turns it off.
    references
        Version -> ``{"confidence": entry, "prediction": entry}`` of its reference
        profile (``reference_by_version``).
    drift_all
        Every version gets an output drift (a version not in ``references`` learns
        its reference from its first events); else only the versions in
        ``references``.
    """

    def __init__(
        self,
        idle_seconds: float = 3600.0,
        max_live: int = 3,
        calibration: dict[str, Any] | None = None,
        performance: dict[str, Any] | None = None,
        canary: dict[str, Any] | None = None,
        output_drift: dict[str, Any] | None = None,
        references: dict[str, dict[str, Any]] | None = None,
        drift_all: bool = True,
    ) -> None:
        self.idle_seconds = float(idle_seconds)
        self.max_live = int(max_live)
        self.calibration = dict(calibration or {})
        self.performance = None if performance is None else dict(performance)
        self.canary = None if canary is None else dict(canary)
        self.output_drift = None if output_drift is None else dict(output_drift)
        self.references = dict(references or {})
        self.drift_all = bool(drift_all)
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
    ) -> tuple[str, VersionStats, Sequence[SignalChange]]:
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
            if stats.performance is not None:  # held back: settle()
                held = stats.unsettled
                held.append(confidence)
                if len(held) >= SETTLE_AT:
                    stats.settle()
        changes: Sequence[SignalChange] = ()  # no list built per event for no change
        drift = stats.drift
        if (
            drift is None
            and self.output_drift is not None
            and stats.events == 1
            and slot != OTHER_VERSION
            and (self.drift_all or slot in self.references)
        ):
            drift = stats.drift = self._output_drift(slot, confidence is not None)
        if drift is not None:
            # A regression's prediction is its value (a float): confidence None.
            changes = drift.update(prediction if confidence is None else confidence)  # type: ignore[arg-type]
        if stats.canary is not None:
            more = stats.canary.update(True, prediction)
            if more:
                changes = [*changes, *more]
        watchers = self._watchers.get(slot)
        if watchers:
            for w in watchers:
                more = w.canary.update(False, prediction)  # type: ignore[union-attr]
                if more:
                    changes = [*changes, *more]
        return slot, stats, changes

    def settle(self) -> None:
        """Give each version's estimate the confidences :meth:`observe` held back."""
        for stats in self._live.values():
            if stats.unsettled:
                stats.settle()

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

    def _output_drift(self, version: str, classification: bool) -> NumericDrift:
        ref = self.references.get(version) or {}
        entry = ref.get("confidence" if classification else "prediction")
        if not (isinstance(entry, dict) and entry.get("type") == "numeric"):
            entry = None  # none in the profile (or a class-label one): learn it
        return NumericDrift(
            **self.output_drift,  # type: ignore[arg-type]
            reference=entry,
            signal=output_signal(version, classification),
        )

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
            stats.settle()  # the confidences before this label, first
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
        """The version signals' readings (gauges at scrape time)."""
        out: list[SignalState] = []
        for s in list(self._live.values()):
            if s.drift is not None:
                out += s.drift.states()
            if s.canary is not None:
                out.append(s.canary.state())
        return out

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        return {
            "idle_seconds": self.idle_seconds,
            "max_live": self.max_live,
            "calibration": dict(self.calibration),
            "performance": self.performance,
            "canary": self.canary,
            "output_drift": self.output_drift,
            "references": self.references,
            "drift_all": self.drift_all,
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
            snapshot.get("output_drift"),
            snapshot.get("references"),
            bool(snapshot.get("drift_all", True)),
        )
        book.retired = int(snapshot["retired"])
        book._live = {str(v): VersionStats.restore(s) for v, s in snapshot["live"].items()}
        book._rewatch()
        return book
