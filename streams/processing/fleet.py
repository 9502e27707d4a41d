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
from detectors.drift_monitor import DriftMonitor
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.performance import PerformanceEstimator
from detectors.reference import ReferenceProfile
from streams.config import ModelSettings, Settings
from streams.errors import ConfigError
from streams.processing.label_join import LabelJoin
from streams.processing.metrics import ModelReading, ReviewerReading
from streams.processing.review_desk import ReviewDesk

__all__ = ["Fleet", "ModelState", "PredictionKind", "build_monitor"]

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
    drift = DriftMonitor(
        features={name: f.as_dict() for name, f in ms.features.items()} or None,
        sensitivity=d.sensitivity,
        reference=load_reference(ms.reference) if ms.reference else None,
        reference_size=d.reference_size,
        max_features=max_features,
        window=d.window,
        step=d.step,
        top_k=d.top_k,
        multivariate=d.multivariate,
        outlier_quantile=e.outlier_quantile or None,  # 0: off
    )
    c = ms.calibration
    calibration = CalibrationMonitor(
        bins=c.bins, window=c.window, ece_threshold=c.max_ece, accuracy_drop=c.max_accuracy_drop
    )
    return ModelMonitor(
        model_id,
        policy,
        drift=drift,
        calibration=calibration,
        performance=PerformanceEstimator(),
        data_reasons=e.data_reasons,
        audit=build_audit(ms),
        autoaccept=build_autoaccept(ms),
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


@dataclass(slots=True)
class ModelState:
    """One model's monitors, the predictions waiting for their labels, which input
    messages (partition, last applied offset per input) that state already contains,
    the review desk (escalations and labels waiting for adjudication), and the kind of
    prediction the model makes (None until its first event)."""

    monitor: ModelMonitor
    join: LabelJoin
    # None only for a state restored from a checkpoint older than adjudication, until
    # Fleet.put gives it a fresh desk.
    review: ReviewDesk | None = None
    partition: int = -1
    offsets: dict[str, int] = field(default_factory=dict)
    dirty: bool = False
    kind: PredictionKind | None = None

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
        }

    @classmethod
    def restore(
        cls, snapshot: dict[str, Any], partition: int = -1, offsets: dict[str, int] | None = None
    ) -> ModelState:
        review = snapshot.get("review")
        return cls(
            ModelMonitor.restore(snapshot["monitor"]),
            LabelJoin.restore(snapshot["join"]),
            None if review is None else ReviewDesk.restore(review),
            partition,
            dict(offsets or {}),
            # A checkpoint written before the kind was kept has none: the next event the
            # monitors accept fixes it.
            kind=snapshot.get("kind"),
        )


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
        self._models: OrderedDict[str, ModelState] = OrderedDict()
        self._on_evict = on_evict
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def is_known(self, model_id: str) -> bool:
        """Configured in ``models`` (or any model when unknown models are allowed)."""
        return self.settings.worker.allow_unknown_models or model_id in self.settings.models

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
        auto-accept monitor or the review desk existed restores without them: they start
        now, as configured."""
        mon = state.monitor
        if state.review is None:
            state.review = ReviewDesk.for_model(self.settings.for_model(model_id))
        if mon.audit is None or mon.autoaccept is None:
            ms = self.settings.for_model(model_id)
            if mon.audit is None:
                mon.audit = build_audit(ms)
            if mon.autoaccept is None:
                mon.autoaccept = build_autoaccept(ms)
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
