"""Everything vigil knows about one model, composed: drift, escalation, calibration.

:class:`ModelMonitor` is the single entry point the worker and ``vigil replay``
share, so live and replayed streams run the same code. Per event it updates the
drift detectors, the label-free accuracy estimate, the escalation policy and
the audit sample; per label it updates calibration (top-label, and classwise when
the prediction carries ``scores``), the estimate's calibration map, the conformal
threshold and the auto-accept error estimate, or, for a regression, its errors and
interval coverage.

Every label is weighed by ``1 / inclusion_probability`` (Horvitz-Thompson):
the probability with which its item was sent for labelling, 1 for an item
escalated by rule or labelled by an outcome system that reports every event,
the audit probability for an audited item. The estimates are then those of all
traffic, not of the labelled items, under one assumption: whether an item was
labelled depends only on what vigil recorded (its inclusion probability), and
a sent item is labelled whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from detectors.audit import AuditSampler
from detectors.autoaccept import AutoAcceptMonitor
from detectors.base import check_bool, check_finite, check_inclusion_probability
from detectors.budget import check_aware
from detectors.calibration import CalibrationMonitor
from detectors.classwise_calibration import ClasswiseCalibrationMonitor
from detectors.drift_monitor import DriftMonitor
from detectors.errors import InvalidObservationError, SnapshotError
from detectors.escalation import Decision, Reason, check_prediction
from detectors.escalation_policy import NO_DATA_REASONS, EscalationPolicy
from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction, Prediction
from detectors.regression_quality import RegressionQualityMonitor
from detectors.segments import SegmentMonitor
from detectors.signals import SignalChange, SignalState

__all__ = ["ModelMonitor", "SegmentWork", "Verdict"]

SegmentWork = tuple[list[str | None], Mapping[str, Any], Prediction, bool]
"""One event's segment-monitor part put off by :meth:`ModelMonitor.observe` (``later``):
its values of the segment keys, features, prediction and whether it was escalated."""

_SNAPSHOT_FORMAT = "vigil.model_monitor/2"
_READABLE_FORMATS = ("vigil.model_monitor/1", _SNAPSHOT_FORMAT)


class Verdict(msgspec.Struct, frozen=True):
    """What one observed event produced: the escalation decision and any alert edges.

    One per event: a msgspec Struct, built in C in one step (a frozen dataclass set each
    field through ``object.__setattr__``).
    """

    decision: Decision
    changes: list[SignalChange] = msgspec.field(default_factory=list)


class ModelMonitor:
    """Monitors of one model.

    Parameters
    ----------
    model_id
        The model this monitor belongs to.
    policy
        Decides per prediction whether to escalate (threshold or conformal, budget).
    drift
        Feature, confidence, prediction and data-quality drift; ``None`` turns drift off.
    calibration
        Calibration and accuracy over labelled events; ``None`` turns it off.
    performance
        Label-free accuracy estimate (CBPE); ``None`` turns it off.
    data_reasons
        Escalate for out-of-range values, unseen categories and missing features.
        (Outliers are escalated, reason ``outlier``, whenever ``drift`` flags one:
        its ``outlier_quantile``, ``None`` for none.)
    audit
        Audit sample of auto-accepted events (reason ``audit``); ``None`` turns it off.
    autoaccept
        Error rate among auto-accepted items, learned from their labels (audits
        and outcomes); ``None`` turns it off.
    classwise
        Classwise ECE and multiclass Brier score from labelled predictions that
        carry ``scores``; ``None`` turns it off.
    regression
        MAE, RMSE, bias and interval coverage of a regression model from its
        labels (signal ``coverage``); ``None`` turns it off.
    segments
        Monitors per frequent segment value (signals ``segment:<key>=<value>:...``);
        ``None`` turns them off. Its ``sensitivity`` and ``drift``'s should split the
        model's budget (:func:`~detectors.segments.split_budget`).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> mon = ModelMonitor("fraud", EscalationPolicy(min_confidence=0.7))
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> mon.observe({"amount": 3.0}, ClassPrediction("ok", 0.9), now).decision.escalate
    False
    >>> v = mon.observe({"amount": 3.0}, ClassPrediction("ok", 0.6), now)
    >>> v.decision.escalate, [r.kind for r in v.decision.reasons]
    (True, ['low_confidence'])
    >>> mon.observe_label(ClassPrediction("ok", 0.6), "fraud", was_escalated=True)
    []
    >>> mon.events_seen, mon.labels_seen, round(mon.calibration.accuracy, 2)
    (2, 1, 0.0)

    With an audit sample, an auto-accepted event may go to review; its label
    then counts for ``1 / inclusion_probability`` auto-accepted items:

    >>> audited = ModelMonitor("fraud", EscalationPolicy(), audit=AuditSampler(rate=0.5))
    >>> v = audited.observe({}, ClassPrediction("ok", 0.9), now, event_id="e-1")
    >>> v.decision.escalate, v.decision.reasons[0].kind, v.decision.inclusion_probability
    (True, 'audit', 0.5)
    """

    def __init__(
        self,
        model_id: str,
        policy: EscalationPolicy,
        drift: DriftMonitor | None = None,
        calibration: CalibrationMonitor | None = None,
        performance: PerformanceEstimator | None = None,
        data_reasons: bool = True,
        audit: AuditSampler | None = None,
        autoaccept: AutoAcceptMonitor | None = None,
        classwise: ClasswiseCalibrationMonitor | None = None,
        regression: RegressionQualityMonitor | None = None,
        segments: SegmentMonitor | None = None,
    ) -> None:
        self.model_id = model_id
        self.policy = policy
        self.drift = drift
        self.calibration = calibration if calibration is not None else CalibrationMonitor()
        self.performance = performance
        self.data_reasons = data_reasons
        self.audit = audit
        self.autoaccept = autoaccept
        self.classwise = classwise
        self.regression = regression
        self.segments = segments
        self.model_version = "unknown"
        self._events_seen = 0
        self._labels_seen = 0
        # Between prepare(batch) and prepare(()): the confidences the label-free estimate
        # takes a run at a time (_settle), while no alert can come of them.
        self._held: list[float] | None = None

    def clone(self) -> ModelMonitor:
        """A fresh monitor with the same settings and components, none of their state."""
        return type(self)(
            self.model_id,
            self.policy.clone(),
            None if self.drift is None else self.drift.clone(),
            self.calibration.clone(),
            None if self.performance is None else self.performance.clone(),
            data_reasons=self.data_reasons,
            audit=None if self.audit is None else self.audit.clone(),
            autoaccept=None if self.autoaccept is None else self.autoaccept.clone(),
            classwise=None if self.classwise is None else self.classwise.clone(),
            regression=None if self.regression is None else self.regression.clone(),
            segments=None if self.segments is None else self.segments.clone(),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_id={self.model_id!r}, policy={self.policy!r}, "
            f"drift={self.drift!r}, calibration={self.calibration!r}, "
            f"performance={self.performance!r}, data_reasons={self.data_reasons!r}, "
            f"audit={self.audit!r}, autoaccept={self.autoaccept!r}, "
            f"classwise={self.classwise!r}, regression={self.regression!r})"
            f"segments={self.segments!r})"
        )

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        """Constructor arguments of the contract suite (see :class:`~detectors.base.Detector`)."""
        yield {
            "model_id": "fraud",
            "policy": EscalationPolicy(
                policy="conformal", budget_per_minute=30, budget_history=128
            ),
            "drift": DriftMonitor(window=100, reference_size=300),
            "calibration": CalibrationMonitor(window=300, min_labelled=50),
            "performance": PerformanceEstimator(window=200, calibration_window=300, min_events=50),
            "audit": AuditSampler(rate=0.2, per_minute=40),
            "autoaccept": AutoAcceptMonitor(window=300, min_labelled=20),
            "classwise": ClasswiseCalibrationMonitor(window=300, max_classes=4),
            "regression": RegressionQualityMonitor(window=200, min_labelled=50),
            "segments": SegmentMonitor(
                ["region"],
                top_k=2,
                features=["n0"],
                window=100,
                reference_size=300,
                calibration={"window": 200, "min_labelled": 30},
            ),
        }
        yield {
            "model_id": "m",
            "policy": EscalationPolicy(),
            "calibration": CalibrationMonitor(window=200, min_labelled=50),
            "data_reasons": False,
            "segments": SegmentMonitor(
                ["tenant", "region"],
                top_k=3,
                window=50,
                reference_size=100,
                calibration={"window": 50, "min_labelled": 20},
            ),
        }

    @property
    def events_seen(self) -> int:
        return self._events_seen

    @property
    def labels_seen(self) -> int:
        return self._labels_seen

    @property
    def drift_active(self) -> bool:
        return self.drift is not None and self.drift.drift_active

    def prepare(self, features: Sequence[Mapping[str, Any]]) -> None:
        """Do the columnar part of the drift work for a batch of events' features now
        (:meth:`DriftMonitor.prepare <detectors.drift_monitor.DriftMonitor.prepare>`):
        :meth:`observe` of the same feature mappings then gives the same results
        faster. An empty batch drops what was prepared.

        Until the empty batch, the label-free accuracy estimate may hold back the
        confidences :meth:`observe` gives it while none can raise an alert (before labels
        give it a calibration map: it only fills its window then), and takes them at
        the empty batch a run at a time
        (:meth:`~detectors.performance.PerformanceEstimator.update_many`: the same state
        as one by one). :meth:`observe_label` and :meth:`snapshot` first give it those
        held back: its state is what one by one gives whenever this monitor reads it or
        hands it on (a reading from another thread during a batch, a scrape's, may miss
        the batch's confidences so far).
        """
        if self.drift is not None:
            self.drift.prepare(features)
        self._settle()  # a batch that was never ended (an error) keeps what it held
        self._held = [] if features and self.performance is not None else None

    def _settle(self) -> None:
        """Give the label-free estimate the confidences held back in this batch."""
        held = self._held
        if held:
            self._held = []
            self.performance.update_many(held)  # type: ignore[union-attr]  # held: it is there

    def observe(
        self,
        features: Mapping[str, Any],
        prediction: Prediction,
        now: datetime,
        event_id: str | None = None,
        segment: Mapping[str, str] | None = None,
        *,
        later: list[SegmentWork] | None = None,
    ) -> Verdict:
        """One validated inference event: the decision and any alert edges.

        ``event_id`` identifies the event for the audit draw; without it the
        event is never audited. ``segment`` is the event's segment object (SPEC
        §2), read only when there are segment monitors. Invalid input raises
        :class:`~detectors.errors.InvalidObservationError` before any component
        has seen the event.

        ``later``: the segment monitors' part (which no decision depends on) is
        appended there instead of done now, and the verdict has no segment changes:
        :meth:`observe_segments` of the list does the work of a batch of events at once
        and gives each event's segment changes, the same as without ``later``.
        """
        if type(event_id) is not str and event_id is not None:
            raise InvalidObservationError(f"'event_id' must be a string; got {event_id!r}")
        prediction = check_prediction(prediction)
        if not isinstance(features, Mapping):
            raise InvalidObservationError(f"'features' must be a mapping; got {features!r}")
        drift = self.drift
        if drift is not None:  # its own checks: the model's prediction kind, the values
            drift._checked(features, prediction)
        return self._observe(features, prediction, now, event_id, segment, later)

    def _observe(
        self,
        features: Mapping[str, Any],
        prediction: Prediction,
        now: datetime,
        event_id: str | None,
        segment: Mapping[str, str] | None,
        later: list[SegmentWork] | None,
    ) -> Verdict:
        """:meth:`observe` of an event already checked (a ``str`` or ``None``
        ``event_id``, a valid prediction of this model's kind, a mapping of features:
        what the processor's decoder guarantees), for a caller that validated it at its
        edge; ``now`` is still checked (the caller's clock). Arguments by position: one
        call per event."""
        drift = self.drift
        if type(now) is not datetime or now.tzinfo is not UTC:  # else certainly aware
            check_aware("now", now)
        segs = self.segments
        if segs is not None:
            seg_values = segs.values(segment)
        quality: list[tuple[str, tuple[str, ...]]] | None = None
        if drift is not None:
            if type(prediction) is ClassPrediction:
                changes = drift._update(features, "class", prediction.label, prediction.confidence)
            else:
                changes = drift._update(features, "regression", prediction.value, 0.0)  # type: ignore[union-attr]
            if self.data_reasons:
                q = drift._quality  # drift.last_quality without the call: set, usually
                if q is None:
                    q = drift.last_quality
                if q.out_of_range or q.unseen or q.missing:
                    quality = []
                    if q.out_of_range:
                        quality.append(("out_of_range", q.out_of_range))
                    if q.unseen:
                        quality.append(("unseen_category", q.unseen))
                    if q.missing:
                        quality.append(("missing_features", q.missing))
        else:
            changes = []
        perf = self.performance
        if perf is not None and isinstance(prediction, ClassPrediction):
            held = self._held
            # No alert can come of it (PerformanceEstimator.update's first return): held.
            if held is not None and perf._ref is None and not perf._labels_ready:
                held.append(prediction.confidence)
            else:
                if held:
                    self._settle()
                more = perf.update(prediction.confidence)
                if more:  # a new list: the one drift returned is not ours to extend
                    changes = [*changes, *more]
        drift_active = drift is not None and drift._active > 0  # drift.drift_active, inlined
        outlier = None
        if drift is not None and drift._outlier:  # an outlier (SPEC §4 reason ``outlier``)
            found = drift.last_outlier
            if found is not None:
                outlier = (found.score, found.threshold, found.detail)
        # policy.decide without its checks: the prediction was checked by observe (or the
        # caller's decoder), now above, drift_active is a bool
        decision = self.policy._decide(
            prediction, now, NO_DATA_REASONS if quality is None else quality, drift_active, outlier
        )
        audit = self.audit
        if audit is not None and event_id is not None and not decision.escalate:
            # Suppressed candidates are offered too: the budget let them through
            # unreviewed, so they belong to what the audit must cover.
            # Inputs checked above (event_id, now): the unchecked draw (per event).
            p = audit._draw(self.model_id, event_id, now)
            if p:
                decision = Decision(
                    True,
                    decision.priority,
                    (Reason("audit", p, audit.rate), *decision.reasons),
                    False,
                    p,
                )
        if segs is not None:
            if later is not None:
                later.append((seg_values, features, prediction, decision.escalate))
            else:
                more = segs._update(seg_values, features, prediction, decision.escalate)
                if more:
                    changes = [*changes, *more]
        self._events_seen += 1
        return Verdict(decision, changes)

    def observe_segments(self, later: Sequence[SegmentWork]) -> list[list[SignalChange]]:
        """The segment monitors' part of the events :meth:`observe` put in ``later``, in
        order: each event's segment changes (what its verdict would have carried last),
        computed a batch at a time
        (:meth:`SegmentMonitor.update_many <detectors.segments.SegmentMonitor.update_many>`).
        """
        segs = self.segments
        if segs is None or not later:
            return [[] for _ in later]
        values, features, predictions, escalated = zip(*later, strict=True)
        return segs.update_many(values, features, predictions, escalated)

    def observe_label(
        self,
        prediction: Prediction,
        truth: str | float,
        *,
        was_escalated: bool,
        inclusion_probability: float = 1.0,
        segment: Mapping[str, str] | None = None,
    ) -> list[SignalChange]:
        """Ground truth for one prediction: calibration, accuracy, the conformal
        threshold and the auto-accept error learn from it (classwise calibration too
        when the prediction carries ``scores``), each label weighed by
        ``1 / inclusion_probability``. A regression label (a number) feeds the
        regression quality monitor, or is only counted without one.

        ``was_escalated`` is whether a *rule* sent the item to review; an
        audited item was not (the rule accepted it), nor was one the budget
        suppressed. ``segment`` is the labelled event's segment object: with segment
        monitors, its values' calibration and accuracy learn from the label too.
        """
        prediction = check_prediction(prediction)
        if self.segments is not None:
            self.segments.values(segment)  # checked before anything learns
        self._settle()
        was_escalated = check_bool("was_escalated", was_escalated)
        if not isinstance(prediction, ClassPrediction):
            value = check_finite("truth", truth)
            weight = 1.0 / check_inclusion_probability(
                "inclusion_probability", inclusion_probability
            )
            # The regression monitor checks the rest before it changes anything.
            reg = self.regression
            changes = [] if reg is None else reg.update(prediction, value, weight)
            self._labels_seen += 1
            return changes
        if not isinstance(truth, str):
            raise InvalidObservationError(f"a classification label must be a string; got {truth!r}")
        weight = 1.0 / check_inclusion_probability("inclusion_probability", inclusion_probability)
        if self.classwise is not None and prediction.scores:
            # First: it checks the scores (range, sum) before anything has changed.
            self.classwise.update(prediction.scores, truth, weight)
        self._labels_seen += 1
        correct = prediction.label == truth
        changes = self.calibration.update(prediction.confidence, correct, weight)
        if self.performance is not None:
            self.performance.observe_label(prediction.confidence, correct, weight)
        self.policy.observe_label(prediction, correct, was_escalated, weight)
        if self.autoaccept is not None and not was_escalated:
            more = self.autoaccept.update(correct, weight)
            if more:
                changes = [*changes, *more]
        if self.segments is not None and segment:
            more = self.segments.observe_label(segment, prediction.confidence, correct, weight)
            if more:
                changes = [*changes, *more]
        return changes

    def states(self) -> list[SignalState]:
        """Every signal's current reading (for gauges at scrape time)."""
        out: list[SignalState] = []
        if self.drift is not None:
            out += self.drift.states()
        if self.calibration.count:
            out += self.calibration.states()
        if self.performance is not None and self.performance.count:
            out.append(self.performance.state())
        if self.autoaccept is not None and self.autoaccept.count:
            out.append(self.autoaccept.state())
        if self.regression is not None and self.regression.coverage_count:
            out.append(self.regression.state())
        if self.segments is not None:
            out += self.segments.states()
        return out

    # ------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable state of every component."""
        self._settle()
        return {
            "format": _SNAPSHOT_FORMAT,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "events_seen": self._events_seen,
            "labels_seen": self._labels_seen,
            "data_reasons": self.data_reasons,
            "policy": self.policy.snapshot(),
            "drift": None if self.drift is None else self.drift.snapshot(),
            "calibration": self.calibration.snapshot(),
            "performance": None if self.performance is None else self.performance.snapshot(),
            "audit": None if self.audit is None else self.audit.snapshot(),
            "autoaccept": None if self.autoaccept is None else self.autoaccept.snapshot(),
            "classwise": None if self.classwise is None else self.classwise.snapshot(),
            "regression": None if self.regression is None else self.regression.snapshot(),
            "segments": None if self.segments is None else self.segments.snapshot(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> ModelMonitor:
        # /1 predates the audit sample and the auto-accept monitor, and /2 snapshots written
        # before classwise calibration and regression quality lack those: restored without
        # them (the worker adds them from its settings, see streams.processing.fleet).
        if not isinstance(snapshot, dict) or snapshot.get("format") not in _READABLE_FORMATS:
            raise SnapshotError(f"not a {_SNAPSHOT_FORMAT} snapshot")
        mon = cls(
            snapshot["model_id"],
            EscalationPolicy.restore(snapshot["policy"]),
            None if snapshot["drift"] is None else DriftMonitor.restore(snapshot["drift"]),
            CalibrationMonitor.restore(snapshot["calibration"]),
            None
            if snapshot["performance"] is None
            else PerformanceEstimator.restore(snapshot["performance"]),
            data_reasons=bool(snapshot["data_reasons"]),
            audit=None
            if snapshot.get("audit") is None
            else AuditSampler.restore(snapshot["audit"]),
            autoaccept=None
            if snapshot.get("autoaccept") is None
            else AutoAcceptMonitor.restore(snapshot["autoaccept"]),
            classwise=None
            if snapshot.get("classwise") is None
            else ClasswiseCalibrationMonitor.restore(snapshot["classwise"]),
            regression=None
            if snapshot.get("regression") is None
            else RegressionQualityMonitor.restore(snapshot["regression"]),
            # Snapshots from before segments have no entry: restored without them.
            segments=None
            if snapshot.get("segments") is None
            else SegmentMonitor.restore(snapshot["segments"]),
        )
        mon.model_version = snapshot["model_version"]
        mon._events_seen = int(snapshot["events_seen"])
        mon._labels_seen = int(snapshot["labels_seen"])
        return mon
