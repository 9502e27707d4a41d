"""The per-model state a worker holds: monitors and label joins, bounded in number."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from detectors.audit import AuditSampler
from detectors.autoaccept import AutoAcceptMonitor
from detectors.calibration import CalibrationMonitor
from detectors.classwise_calibration import ClasswiseCalibrationMonitor
from detectors.drift_monitor import DriftMonitor
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.performance import PerformanceEstimator
from detectors.reference import ReferenceProfile
from detectors.regression_quality import RegressionQualityMonitor
from detectors.segments import SegmentMonitor, split_budget
from streams.config import ModelSettings, Settings
from streams.errors import ConfigError
from streams.processing.label_join import LabelJoin
from streams.processing.metrics import ModelReading, ReviewerReading, VersionReading
from streams.processing.review_desk import ReviewDesk
from streams.processing.versions import VERSION_SHARE, VersionBook

__all__ = [
    "Fleet",
    "ModelState",
    "PredictionKind",
    "build_classwise",
    "build_monitor",
    "build_regression",
    "build_segments",
    "build_versions",
    "calibration_settings",
    "events_budget",
]

#: SPEC §2: one model has one kind of prediction, fixed by its first event.
PredictionKind = Literal["classification", "regression"]


@lru_cache(maxsize=64)
def load_reference(path: str) -> dict[str, Any]:
    """A reference profile file as the dict DriftMonitor takes (cached per path)."""
    try:
        return ReferenceProfile.load(path).to_dict()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"reference profile {path!r} cannot be read: {exc}") from None


def build_monitor(model_id: str, ms: ModelSettings, max_features: int) -> ModelMonitor:
    """A fresh monitor for ``model_id`` from its (merged) settings."""
    e = ms.escalation
    policy = EscalationPolicy(
        policy=e.policy,
        min_confidence=e.min_confidence,
        min_margin=e.min_margin,
        max_entropy=e.max_entropy,
        max_interval_width=e.max_interval_width,
        target_error=e.target_error,
        learning_rate=e.learning_rate,
        drift_confidence_boost=e.drift_boost,
        budget_per_minute=None if e.budget_per_minute is None else int(e.budget_per_minute),
    )
    d = ms.drift
    own = events_budget(ms)
    segments = build_segments(ms)
    # With segments, the aggregate signals run on the rest of the events' budget.
    sensitivity = own if segments is None else split_budget(own)[0]
    drift = DriftMonitor(
        features={name: f.as_dict() for name, f in ms.features.items()} or None,
        sensitivity=sensitivity,
        reference=load_reference(ms.reference) if ms.reference else None,
        reference_size=d.reference_size,
        max_features=max_features,
        window=d.window,
        step=d.step,
        top_k=d.top_k,
        multivariate=d.multivariate,
        outlier_quantile=e.outlier_quantile or None,  # 0: off
    )
    calibration = CalibrationMonitor(**calibration_settings(ms))
    return ModelMonitor(
        model_id,
        policy,
        drift=drift,
        calibration=calibration,
        performance=PerformanceEstimator(),
        data_reasons=e.data_reasons,
        audit=build_audit(ms),
        autoaccept=build_autoaccept(ms),
        classwise=build_classwise(ms),
        regression=build_regression(ms),
        segments=segments,
    )


def build_classwise(ms: ModelSettings) -> ClasswiseCalibrationMonitor | None:
    """Classwise calibration of a model's settings (``None`` when ``calibration.classwise``
    is off). Built for every model: it learns only from labelled predictions with scores."""
    c = ms.calibration
    if not c.classwise:
        return None
    return ClasswiseCalibrationMonitor(
        bins=c.bins, window=c.classwise_window, max_classes=c.max_classes
    )


def build_regression(ms: ModelSettings) -> RegressionQualityMonitor:
    """Regression quality of a model's settings. Built for every model: it learns only
    from the labels of regression predictions."""
    r = ms.regression
    return RegressionQualityMonitor(
        window=r.window,
        interval_level=r.interval_level,
        coverage_tolerance=r.coverage_tolerance,
        confidence=r.coverage_confidence,
        min_labelled=r.min_labelled,
    )


def calibration_settings(ms: ModelSettings) -> dict[str, Any]:
    """:class:`~detectors.calibration.CalibrationMonitor` arguments of a model's
    ``calibration`` section: the model's own monitor and its segment values' use them."""
    c = ms.calibration
    return {
        "bins": c.bins,
        "window": c.window,
        "ece_threshold": c.max_ece,
        "accuracy_drop": c.max_accuracy_drop,
    }


def events_budget(ms: ModelSettings) -> float:
    """The sensitivity the model's per-event signals (aggregate and segments) share: the
    model's ``drift.sensitivity`` less the version signals' share
    (:data:`~streams.processing.versions.VERSION_SHARE` of the false-alarm rate, taken
    whenever a version signal can run), so that every signal of the model together stays
    within ``drift.sensitivity``.

    >>> from streams.config import ModelSettings
    >>> round(events_budget(ModelSettings()) / ModelSettings().drift.sensitivity, 4)
    1.1111
    """
    v = ms.versions
    if v.canary or v.output_drift or ms.reference_by_version:
        return ms.drift.sensitivity / (1.0 - VERSION_SHARE)
    return ms.drift.sensitivity


def build_segments(ms: ModelSettings) -> SegmentMonitor | None:
    """The segment monitors of a model's settings (``None`` without ``segments.keys``);
    they take :data:`~detectors.segments.SEGMENT_SHARE` of :func:`events_budget`."""
    sg = ms.segments
    if not sg.keys:
        return None
    d = ms.drift
    return SegmentMonitor(
        list(sg.keys),
        top_k=sg.top_k,
        features=list(sg.features),
        feature_types={n: ms.features[n].as_dict() for n in sg.features if n in ms.features},
        sensitivity=events_budget(ms),
        window=d.window,
        step=d.step,
        reference_size=d.reference_size,
        top_categories=d.top_k,
        calibration=calibration_settings(ms),
    )


def build_audit(ms: ModelSettings) -> AuditSampler | None:
    """The audit sample of a model's settings (``None`` when ``review.audit_rate`` is 0)."""
    r = ms.review
    if r.audit_rate <= 0:
        return None
    return AuditSampler(rate=r.audit_rate, per_minute=r.audit_per_minute, seed=r.audit_seed)


def build_autoaccept(ms: ModelSettings) -> AutoAcceptMonitor:
    e = ms.escalation
    max_error = e.target_error if e.max_autoaccept_error is None else e.max_autoaccept_error
    return AutoAcceptMonitor(max_error=max_error)


def build_versions(ms: ModelSettings) -> VersionBook:
    """The version book of a model's settings (``versions``, ``reference_by_version``):
    each version's accuracy monitor as the model's calibration, its estimate as the
    model's, its output drift (every version with ``versions.output_drift``, else the
    versions with a profile) with the model's drift windows, and its canary. The
    version signals that can run at once (output drifts, ``max_live - 1`` canaries)
    share :data:`~streams.processing.versions.VERSION_SHARE` of the model's budget."""
    v, c, d = ms.versions, ms.calibration, ms.drift
    sensitivity = d.sensitivity / VERSION_SHARE
    drifting = v.max_live if v.output_drift else len(ms.reference_by_version)
    n_signals = max(1, min(v.max_live, drifting) + (v.max_live - 1 if v.canary else 0))
    canary = None
    if v.canary:
        canary = {
            "sensitivity": sensitivity,
            "n_signals": n_signals,
            "window": v.canary_window,
            "step": v.canary_step,
            "max_window": v.canary_max_window,
        }
    output_drift = None
    if v.output_drift or ms.reference_by_version:
        output_drift = {
            "sensitivity": sensitivity,
            "n_signals": n_signals,
            "reference_size": d.reference_size,
            "window": d.window,
            "step": d.step,
        }
    references = {}
    for version, path in ms.reference_by_version.items():
        profile = load_reference(path)
        references[version] = {
            "confidence": profile.get("confidence"),
            "prediction": profile.get("prediction"),
        }
    return VersionBook(
        idle_seconds=v.idle_seconds,
        max_live=v.max_live,
        calibration={"bins": c.bins, "window": c.window},
        performance={},
        canary=canary,
        output_drift=output_drift,
        references=references,
        drift_all=v.output_drift,
    )


@dataclass(slots=True)
class ModelState:
    """One model's monitors, the predictions waiting for their labels, which input
    messages (partition, last applied offset per input) that state already contains,
    the review desk (escalations and labels waiting for adjudication), and the kind of
    prediction the model makes (None until its first event), and its live versions
    (:class:`~streams.processing.versions.VersionBook`)."""

    monitor: ModelMonitor
    join: LabelJoin
    # None only for a state restored from a checkpoint older than adjudication, until
    # Fleet.put gives it a fresh desk.
    review: ReviewDesk | None = None
    partition: int = -1
    offsets: dict[str, int] = field(default_factory=dict)
    dirty: bool = False
    kind: PredictionKind | None = None
    # None only for a state restored from a checkpoint older than versions, until
    # Fleet.put gives it a fresh book.
    versions: VersionBook | None = None

    def applied(self, kind: str, partition: int, offset: int) -> bool:
        """Whether the message at ``offset`` of ``partition`` is already in this state."""
        return partition == self.partition and offset <= self.offsets.get(kind, -1)

    def mark(self, kind: str, partition: int, offset: int) -> None:
        if partition != self.partition:
            self.partition = partition
            self.offsets = {}
        self.offsets[kind] = offset
        self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor.snapshot(),
            "join": self.join.snapshot(),
            "review": None if self.review is None else self.review.snapshot(),
            "kind": self.kind,
            "versions": None if self.versions is None else self.versions.snapshot(),
        }

    @classmethod
    def restore(
        cls, snapshot: dict[str, Any], partition: int = -1, offsets: dict[str, int] | None = None
    ) -> ModelState:
        review = snapshot.get("review")
        versions = snapshot.get("versions")
        return cls(
            ModelMonitor.restore(snapshot["monitor"]),
            LabelJoin.restore(snapshot["join"]),
            None if review is None else ReviewDesk.restore(review),
            partition,
            dict(offsets or {}),
            # A checkpoint written before the kind was kept has none: the next event the
            # monitors accept fixes it.
            kind=snapshot.get("kind"),
            versions=None if versions is None else VersionBook.restore(versions),
        )


def version_readings(book: VersionBook) -> list[VersionReading]:
    """The ``vigil_version_*`` readings of a model's live versions."""
    out = []
    for version, st in book.items():
        r = VersionReading(version, st.events, st.escalations, st.confidence, st.confidence_sum)
        cal = st.calibration
        if cal is not None and cal.count:
            r.accuracy = cal.accuracy
        perf = st.performance
        if perf is not None and perf.count:
            r.estimated_accuracy = perf.estimated_accuracy
        out.append(r)
    return out


class Fleet:
    """Per-model state, least recently used evicted beyond ``max_tracked_models``.

    Eviction keeps memory bounded under a flood of new ``model_id`` values; an
    evicted model starts afresh if it comes back (``on_evict`` lets the caller
    drop its metric series first).
    """

    def __init__(
        self,
        settings: Settings,
        on_evict: Callable[[str, ModelState], None] | None = None,
    ) -> None:
        self.settings = settings
        self.max_tracked = settings.worker.max_tracked_models
        # Processor._inference reads it directly for a held model (get's hit: move_to_end
        # and return, once per event): get must do nothing else for one.
        self._models: OrderedDict[str, ModelState] = OrderedDict()
        self._on_evict = on_evict
        self.evicted = 0
        #: The configured model ids, or None when unknown models are allowed (any is known):
        #: ``model_id in fleet.known`` is :meth:`is_known` without a call, per event.
        self.known: frozenset[str] | None = (
            None if settings.worker.allow_unknown_models else frozenset(settings.models)
        )

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def is_known(self, model_id: str) -> bool:
        """Configured in ``models`` (or any model when unknown models are allowed)."""
        return self.known is None or model_id in self.known

    def get(self, model_id: str) -> ModelState:
        state = self._models.get(model_id)
        if state is not None:
            self._models.move_to_end(model_id)
            return state
        ms = self.settings.for_model(model_id)
        state = ModelState(
            build_monitor(model_id, ms, self.settings.worker.max_features_per_model),
            LabelJoin(horizon=ms.labels.horizon_seconds, max_pending=ms.labels.max_pending),
            ReviewDesk.for_model(ms),
            versions=build_versions(ms),
        )
        self._models[model_id] = state
        if len(self._models) > self.max_tracked:
            old_id, old = self._models.popitem(last=False)
            self.evicted += 1
            if self._on_evict is not None:
                self._on_evict(old_id, old)
        return state

    def peek(self, model_id: str) -> ModelState | None:
        return self._models.get(model_id)

    def put(self, model_id: str, state: ModelState) -> None:
        """Hold a restored state. A checkpoint written before the audit sample, the
        auto-accept monitor, the review desk, classwise calibration, regression quality,
        segments or the version book existed restores without them: they start now, as
        configured."""
        mon = state.monitor
        if state.review is None:
            state.review = ReviewDesk.for_model(self.settings.for_model(model_id))
        if state.versions is None:
            state.versions = build_versions(self.settings.for_model(model_id))
        if (
            mon.audit is None
            or mon.autoaccept is None
            or mon.regression is None
            or mon.segments is None
        ):
            ms = self.settings.for_model(model_id)
            if mon.audit is None:
                mon.audit = build_audit(ms)
            if mon.autoaccept is None:
                mon.autoaccept = build_autoaccept(ms)
            if mon.regression is None:
                # Also a sign of a checkpoint from before classwise calibration (both came
                # together); a model whose settings turn classwise off stays without it.
                mon.regression = build_regression(ms)
                if mon.classwise is None:
                    mon.classwise = build_classwise(ms)
            if mon.segments is None:
                # A checkpoint from before segments: they start now (the aggregate keeps
                # its restored, whole budget until the model's state is rebuilt).
                mon.segments = build_segments(ms)
        self._models[model_id] = state

    def pop(self, model_id: str) -> ModelState | None:
        return self._models.pop(model_id, None)

    def items(self) -> Iterator[tuple[str, ModelState]]:
        return iter(list(self._models.items()))

    def readings(self) -> list[ModelReading]:
        """Current gauges of every tracked model (called at scrape time)."""
        out = []
        for model_id, state in list(self._models.items()):
            mon = state.monitor
            reading = ModelReading(model_id, signals=mon.states())
            book = state.versions
            if book is not None:
                reading.signals += book.states()
                reading.versions = version_readings(book)
            if mon.drift is not None:
                reading.impacts = mon.drift.impacts()
            cal = mon.calibration
            if cal.count:
                reading.ece = cal.ece
                reading.brier = cal.brier
                reading.accuracy = cal.accuracy
                reading.reliability = [
                    (b, acc, conf) for b, conf, acc, n in cal.bins_table if n > 0
                ]
            if mon.performance is not None and mon.performance.count:
                reading.estimated_accuracy = mon.performance.estimated_accuracy
            if mon.autoaccept is not None and mon.autoaccept.count:
                reading.autoaccept_error = mon.autoaccept.error
                reading.autoaccept_error_upper = mon.autoaccept.upper
            cw = mon.classwise
            if cw is not None and cw.count:
                reading.classwise_ece = cw.ece
                reading.multiclass_brier = cw.brier
            reg = mon.regression
            if reg is not None and reg.count:
                reading.regression_mae = reg.mae
                reading.regression_rmse = reg.rmse
                reading.regression_bias = reg.bias
                if reg.coverage_count:
                    reading.interval_coverage = reg.coverage
                    reading.interval_coverage_nominal = reg.interval_level
                    reading.interval_coverage_floor = reg.floor
            if mon.segments is not None:
                reading.segments = mon.segments.readings()
            reading.escalation_threshold = mon.policy.threshold
            budget = mon.policy.budget_per_minute
            reading.budget_per_minute = None if budget is None else float(budget)
            desk = state.review
            if desk is not None:
                reading.adjudication_pending = desk.pending
                if desk.agreement.count:
                    alpha = desk.agreement.alpha
                    if alpha == alpha:  # NaN while every label is one class
                        reading.agreement = alpha
                    reading.agreement_low = float(desk.agreement.state().drifting)
            out.append(reading)
        return out

    def reviewer_readings(self) -> list[ReviewerReading]:
        """Every reviewer of every tracked model's review desk (called at scrape time)."""
        out = []
        for _, state in list(self._models.items()):
            desk = state.review
            if desk is None:
                continue
            rel = desk.reliability
            for name in rel.reviewers:
                st = rel.stats(name)
                agreed = st.agreement * st.adjudicated if st.adjudicated else 0.0
                out.append(
                    ReviewerReading(
                        name,
                        st.gold,
                        st.gold_correct,
                        st.adjudicated,
                        agreed,
                        st.flagged,
                        st.labels,
                        st.reliability,
                    )
                )
        return out
