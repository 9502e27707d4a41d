"""Prometheus metrics of a vigil worker (SPEC §7).

Per-model counters and histograms are plain numbers on the hot path (no
``.labels()`` lookup, no lock per increment: ~0.1 µs instead of ~0.5–1.5 µs) and
are turned into samples by a collector at scrape time. Gauges that describe
monitor state (drift, calibration, thresholds, lag) exist only at scrape time:
a custom collector reads the monitors' current readings, so no per-event gauge
updates are paid for.

Label values are bounded: at most ``max_models`` distinct ``model`` values, the
rest reported as ``_other``; ``signal`` values come from the detectors, which
cap features per model.

Segments (issue 16) carry a ``segment`` label (``<key>=<value>``) only on the
per-segment series ``vigil_segment_events_total``, ``vigil_segment_escalations_total``,
``vigil_segment_labels_total`` and ``vigil_segment_accuracy``, and appear in the
``signal`` of ``vigil_drift_active`` / ``vigil_drift_statistic`` /
``vigil_alerts_total`` as ``segment:<key>=<value>:<signal>``. Both are bounded by
:class:`~detectors.segments.SegmentMonitor`: per model at most ``len(keys) *
(top_k + 1)`` segment values (8 keys x 51 at the settings' caps), whatever the
number of distinct values in the events.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from detectors.reviewer_reliability import wilson_interval
from detectors.segments import SegmentReading
from detectors.signals import SignalState
from streams.errors import DEAD_LETTER_REASONS, DeadLetterReason

__all__ = [
    "OTHER_MODEL",
    "UNKNOWN_MODEL",
    "Count",
    "Distribution",
    "ModelMetrics",
    "ModelReading",
    "ReviewerReading",
    "VersionReading",
    "VigilMetrics",
]

OTHER_MODEL = "_other"
UNKNOWN_MODEL = "_unknown"
CONFIDENCE_BUCKETS = tuple(i / 20 for i in range(1, 21))
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
LABEL_DELAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
#: Reviewers with a ``reviewer`` label of their own; the others share ``_other``.
MAX_REVIEWERS = 200
#: Labels per reviewer the median time to label is taken over.
TIME_TO_LABEL_WINDOW = 256
_Z95 = 1.959963984540054
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(slots=True)
class VersionReading:
    """One live version of a model (``version`` capped: ``versions.max_live`` of them
    plus ``_other``); read at scrape time. A retired version has no reading, so its
    series are gone from the next scrape."""

    version: str
    events: int
    escalations: int
    confidence: list[int] | None  # histogram counts over CONFIDENCE_BUCKETS, then +Inf
    confidence_sum: float
    accuracy: float | None = None
    estimated_accuracy: float | None = None


@dataclass(slots=True)
class ModelReading:
    """What one model's monitors say right now; read at scrape time."""

    model_id: str
    signals: list[SignalState] = field(default_factory=list)
    ece: float | None = None
    brier: float | None = None
    accuracy: float | None = None
    estimated_accuracy: float | None = None
    autoaccept_error: float | None = None
    autoaccept_error_upper: float | None = None
    classwise_ece: float | None = None
    multiclass_brier: float | None = None
    regression_mae: float | None = None
    regression_rmse: float | None = None
    regression_bias: float | None = None
    interval_coverage: float | None = None
    interval_coverage_nominal: float | None = None
    interval_coverage_floor: float | None = None
    escalation_threshold: float | None = None
    budget_per_minute: float | None = None
    reliability: list[tuple[int, float, float]] = field(default_factory=list)
    agreement: float | None = None
    agreement_low: float | None = None  # 1.0 while low, else 0.0
    adjudication_pending: int | None = None
    segments: list[SegmentReading] = field(default_factory=list)
    versions: list[VersionReading] = field(default_factory=list)
    # (feature signal, importance x statistic / threshold), for vigil_drift_impact
    impacts: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewerReading:
    """One reviewer's counts in one model's review desk; read at scrape time and pooled
    over the models a worker owns."""

    reviewer: str
    gold: int
    gold_right: int
    adjudicated: int
    agreed: float
    flagged: bool
    labels: int = 0
    reliability: float = float("nan")


class Count:
    """A counter child without a lock: the hot path adds to a plain number and the
    collector reads it at scrape time.

    ``+=`` is a read, an add and a store, not atomic: it is safe because one thread
    (the one processing messages) is the only writer. The scrape thread only reads,
    and reading an attribute sees either the old value or the new one.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Distribution:
    """A histogram child without a lock (see :class:`Count`)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), self.counts, strict=True):
            total += n
            out.append((bound, float(total)))
        return out


class ModelMetrics:
    """The metric children of one model label, updated on the hot path."""

    __slots__ = (
        "adjudications",
        "alerts",
        "confidence",
        "dead_letter",
        "escalations",
        "event_lag",
        "label",
        "label_delay",
        "labels",
        "outlier_escalations",
        "processed",
        "suppressed",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.processed = Count()
        self.dead_letter = Count()
        self.suppressed = Count()
        self.outlier_escalations = Count()
        self.confidence = Distribution(CONFIDENCE_BUCKETS)
        self.event_lag = Distribution(LAG_BUCKETS)
        self.label_delay = Distribution(LABEL_DELAY_BUCKETS)
        self.escalations: dict[str, Count] = {}
        self.alerts: dict[tuple[str, str], Count] = {}
        self.labels: dict[str, Count] = {}
        self.adjudications: dict[str, Count] = {}

    def inference(self, confidence: float | None, lag: float) -> None:
        """One processed inference event: ``processed``, the ``confidence`` of a
        classification (``None`` for a regression) and the event ``lag``. The same as
        ``processed.inc()`` and two ``observe`` calls, in one call per event (the
        observes inlined)."""
        self.processed.value += 1.0
        if confidence is not None:
            d = self.confidence
            d.counts[bisect_left(d.bounds, confidence)] += 1
            d.sum += confidence
        d = self.event_lag
        d.counts[bisect_left(d.bounds, lag)] += 1
        d.sum += lag

    def escalation(self, reason: str) -> Count:
        c = self.escalations.get(reason)
        if c is None:
            c = self.escalations[reason] = Count()
        return c

    def alert(self, signal: str, state: str) -> Count:
        c = self.alerts.get((signal, state))
        if c is None:
            c = self.alerts[(signal, state)] = Count()
        return c

    def forget_signal(self, signal: str) -> None:
        """Drop the alert counters of ``signal`` (a retired version's canary)."""
        for key in [k for k in self.alerts if k[0] == signal]:
            del self.alerts[key]

    def labels_outcome(self, outcome: str) -> Count:
        c = self.labels.get(outcome)
        if c is None:
            c = self.labels[outcome] = Count()
        return c

    def adjudication(self, method: str) -> Count:
        c = self.adjudications.get(method)
        if c is None:
            c = self.adjudications[method] = Count()
        return c


class VigilMetrics:
    """All vigil metrics in one registry, with the ``model`` label capped at ``max_models``."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        max_models: int = 500,
        readings: Callable[[], Iterable[ModelReading]] | None = None,
        consumer_lag: Callable[[], Iterable[tuple[str, int, int]]] | None = None,
        reviewers: Callable[[], Iterable[ReviewerReading]] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_models = max_models
        r = self.registry
        self.dead_letters_total = Counter(
            "vigil_dead_letters_total", "Dead-lettered messages by reason.", ["reason"], registry=r
        )
        self.batch_seconds = Histogram(
            "vigil_batch_seconds",
            "Time to process one consumed batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._dead_letter_reason = {
            reason: self.dead_letters_total.labels(reason) for reason in DEAD_LETTER_REASONS
        }
        self.gold_answers = Counter(
            "vigil_reviewer_gold_answers_total",
            "Labels on gold items by reviewer (capped; _other beyond, _unknown without one) "
            "and outcome (right | wrong).",
            ["reviewer", "outcome"],
            registry=r,
        )
        self._reviewers: set[str] = set()
        # Per reviewer label: labels given, and seconds from escalation to label of the
        # last TIME_TO_LABEL_WINDOW (bounded: at most MAX_REVIEWERS + 2 labels).
        self._reviewer_labels: dict[str, Count] = {}
        self._time_to_label: dict[str, deque[float]] = {}
        # Processor._inference reads it directly for a model with children (model's hit,
        # once per event): model must return those and nothing else for one.
        self._models: dict[str, ModelMetrics] = {}
        self._other = ModelMetrics(OTHER_MODEL)
        self._unknown = ModelMetrics(UNKNOWN_MODEL)
        r.register(_ModelCollector(self))
        if readings is not None or consumer_lag is not None:
            r.register(_StateCollector(self, readings, consumer_lag))
        r.register(_ReviewerCollector(self, reviewers))

    def model(self, model_id: str | None) -> ModelMetrics:
        """The children for ``model_id``: its own below the cap, else ``_other``."""
        if model_id is None:
            return self._unknown
        m = self._models.get(model_id)
        if m is not None:
            return m
        if len(self._models) >= self.max_models:
            return self._other
        m = self._models[model_id] = ModelMetrics(model_id)
        return m

    def model_label(self, model_id: str) -> str | None:
        """The label under which ``model_id``'s gauges appear, or None when over the cap."""
        m = self._models.get(model_id)
        if m is not None:
            return m.label
        if len(self._models) < self.max_models:
            return self.model(model_id).label
        return None

    def reviewer(self, reviewer: str | None) -> str:
        """The ``reviewer`` label value: the first :data:`MAX_REVIEWERS` reviewers seen,
        then ``_other``; ``_unknown`` for a label without a reviewer."""
        if reviewer is None:
            return UNKNOWN_MODEL
        if reviewer in self._reviewers:
            return reviewer
        if len(self._reviewers) < MAX_REVIEWERS:
            self._reviewers.add(reviewer)
            return reviewer
        return OTHER_MODEL

    def gold_answer(self, reviewer: str | None, right: bool) -> None:
        self.gold_answers.labels(self.reviewer(reviewer), "right" if right else "wrong").inc()

    def reviewer_label(self, reviewer: str | None, seconds_to_label: float | None = None) -> None:
        """One label from ``reviewer``, given ``seconds_to_label`` after its escalation
        (``None``: not known)."""
        name = self.reviewer(reviewer)
        c = self._reviewer_labels.get(name)
        if c is None:
            c = self._reviewer_labels[name] = Count()
        c.value += 1.0
        if seconds_to_label is not None:
            times = self._time_to_label.get(name)
            if times is None:
                times = self._time_to_label[name] = deque(maxlen=TIME_TO_LABEL_WINDOW)
            times.append(seconds_to_label)

    def all_models(self) -> list[ModelMetrics]:
        return [*self._models.values(), self._other, self._unknown]

    def dead_letter(self, reason: DeadLetterReason) -> Counter:
        return self._dead_letter_reason[reason]

    def forget_model(self, model_id: str) -> None:
        """Remove every series of ``model_id`` (after a rebalance moved it away)."""
        self._models.pop(model_id, None)

    @property
    def tracked_models(self) -> int:
        return len(self._models)


class _ModelCollector(Collector):
    """Per-model counters and histograms, read from plain numbers at scrape time."""

    def __init__(self, metrics: VigilMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "vigil_events", "Consumed inference events by outcome.", labels=["model", "outcome"]
        )
        escalations = CounterMetricFamily(
            "vigil_escalations",
            "Escalations published, counted once under their primary (first) reason.",
            labels=["model", "reason"],
        )
        suppressed = CounterMetricFamily(
            "vigil_escalations_suppressed",
            "Escalations withheld by the per-model budget.",
            labels=["model"],
        )
        alerts = CounterMetricFamily(
            "vigil_alerts", "Drift alerts published.", labels=["model", "signal", "state"]
        )
        labels = CounterMetricFamily(
            "vigil_labels", "Labels consumed, by join outcome.", labels=["model", "outcome"]
        )
        confidence = HistogramMetricFamily(
            "vigil_prediction_confidence",
            "Confidence of classification predictions.",
            labels=["model"],
        )
        event_lag = HistogramMetricFamily(
            "vigil_event_lag_seconds", "Processing time minus event time.", labels=["model"]
        )
        label_delay = HistogramMetricFamily(
            "vigil_label_delay_seconds", "Label time minus prediction time.", labels=["model"]
        )
        outliers = CounterMetricFamily(
            "vigil_outlier_escalations",
            "Escalations with reason outlier (whatever their primary reason).",
            labels=["model"],
        )
        adjudications = CounterMetricFamily(
            "vigil_adjudications",
            "Events whose final label was decided, by method.",
            labels=["model", "method"],
        )
        for m in self._metrics.all_models():
            lab = m.label
            if lab == UNKNOWN_MODEL:
                events.add_metric([lab, "dead_letter"], m.dead_letter.value)
                continue
            events.add_metric([lab, "processed"], m.processed.value)
            events.add_metric([lab, "dead_letter"], m.dead_letter.value)
            suppressed.add_metric([lab], m.suppressed.value)
            outliers.add_metric([lab], m.outlier_escalations.value)
            for reason, c in list(m.escalations.items()):
                escalations.add_metric([lab, reason], c.value)
            for (signal, state), c in list(m.alerts.items()):
                alerts.add_metric([lab, signal, state], c.value)
            for outcome, c in list(m.labels.items()):
                labels.add_metric([lab, outcome], c.value)
            for method, c in list(m.adjudications.items()):
                adjudications.add_metric([lab, method], c.value)
            for family, dist in (
                (confidence, m.confidence),
                (event_lag, m.event_lag),
                (label_delay, m.label_delay),
            ):
                family.add_metric([lab], dist.cumulative(), dist.sum)
        yield from (events, escalations, suppressed, outliers, alerts, labels, adjudications)
        yield from (confidence, event_lag, label_delay)


class _StateCollector(Collector):
    """Gauges computed at scrape time from the monitors' readings."""

    def __init__(
        self,
        metrics: VigilMetrics,
        readings: Callable[[], Iterable[ModelReading]] | None,
        consumer_lag: Callable[[], Iterable[tuple[str, int, int]]] | None,
    ) -> None:
        self._metrics = metrics
        self._readings = readings
        self._lag = consumer_lag

    def describe(self) -> list[Metric]:
        return []  # dynamic: do not call collect() at registration

    def collect(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "vigil_drift_active", "1 while the signal is in drift.", labels=["model", "signal"]
        )
        stat = GaugeMetricFamily(
            "vigil_drift_statistic",
            "Current drift statistic of the signal.",
            labels=["model", "signal"],
        )
        threshold = GaugeMetricFamily(
            "vigil_drift_threshold",
            "Threshold of the multivariate signal's statistic (the other signals' are "
            "normalised in vigil_drift_impact).",
            labels=["model", "signal"],
        )
        impact = GaugeMetricFamily(
            "vigil_drift_impact",
            "Drift impact of a feature signal: its importance times statistic / threshold "
            "(at least the importance while beyond the threshold).",
            labels=["model", "signal"],
        )
        single = {
            "ece": GaugeMetricFamily(
                "vigil_calibration_ece", "Expected calibration error.", labels=["model"]
            ),
            "brier": GaugeMetricFamily("vigil_brier_score", "Brier score.", labels=["model"]),
            "accuracy": GaugeMetricFamily(
                "vigil_accuracy",
                "Accuracy over the labelled window (labels weighed by 1/inclusion probability).",
                labels=["model"],
            ),
            "estimated_accuracy": GaugeMetricFamily(
                "vigil_estimated_accuracy", "Label-free accuracy estimate.", labels=["model"]
            ),
            "autoaccept_error": GaugeMetricFamily(
                "vigil_autoaccept_error",
                "Estimated error rate among auto-accepted items (from audit and outcome labels).",
                labels=["model"],
            ),
            "autoaccept_error_upper": GaugeMetricFamily(
                "vigil_autoaccept_error_upper",
                "95% upper bound of the error rate among auto-accepted items.",
                labels=["model"],
            ),
            "classwise_ece": GaugeMetricFamily(
                "vigil_classwise_ece",
                "Classwise expected calibration error (mean over classes) over the labelled "
                "predictions that carried scores.",
                labels=["model"],
            ),
            "multiclass_brier": GaugeMetricFamily(
                "vigil_multiclass_brier",
                "Multiclass Brier score (sum over classes of squared error, 0 to 2) over the "
                "labelled predictions that carried scores.",
                labels=["model"],
            ),
            "regression_mae": GaugeMetricFamily(
                "vigil_regression_mae",
                "Mean absolute error of a regression model over its labelled window.",
                labels=["model"],
            ),
            "regression_rmse": GaugeMetricFamily(
                "vigil_regression_rmse",
                "Root mean squared error of a regression model over its labelled window.",
                labels=["model"],
            ),
            "regression_bias": GaugeMetricFamily(
                "vigil_regression_bias",
                "Mean of prediction minus truth over the labelled window (> 0: too high).",
                labels=["model"],
            ),
            "interval_coverage": GaugeMetricFamily(
                "vigil_interval_coverage",
                "Share of labelled truths inside their prediction interval.",
                labels=["model"],
            ),
            "interval_coverage_nominal": GaugeMetricFamily(
                "vigil_interval_coverage_nominal",
                "Nominal coverage of the prediction intervals (regression.interval_level).",
                labels=["model"],
            ),
            "interval_coverage_floor": GaugeMetricFamily(
                "vigil_interval_coverage_floor",
                "Coverage shown below this alerts (interval_level - coverage_tolerance).",
                labels=["model"],
            ),
            "escalation_threshold": GaugeMetricFamily(
                "vigil_escalation_threshold", "Current escalation threshold.", labels=["model"]
            ),
            "budget_per_minute": GaugeMetricFamily(
                "vigil_escalation_budget_per_minute",
                "Configured escalation budget.",
                labels=["model"],
            ),
            "agreement": GaugeMetricFamily(
                "vigil_reviewer_agreement",
                "Krippendorff's alpha (nominal) between reviewers over the model's last "
                "review.agreement_window overlapped items.",
                labels=["model"],
            ),
            "agreement_low": GaugeMetricFamily(
                "vigil_reviewer_agreement_low",
                "1 while the model's reviewer agreement is below review.min_agreement.",
                labels=["model"],
            ),
            "adjudication_pending": GaugeMetricFamily(
                "vigil_adjudication_pending",
                "Events waiting for more reviews before adjudication.",
                labels=["model"],
            ),
        }
        bin_acc = GaugeMetricFamily(
            "vigil_reliability_bin_accuracy",
            "Accuracy per reliability bin.",
            labels=["model", "bin"],
        )
        bin_conf = GaugeMetricFamily(
            "vigil_reliability_bin_confidence",
            "Mean confidence per reliability bin.",
            labels=["model", "bin"],
        )
        seg_events = CounterMetricFamily(
            "vigil_segment_events",
            "Inference events per monitored segment value (<key>=<value>; _other pools the "
            "rest); restarts at 0 when a value gets monitors.",
            labels=["model", "segment"],
        )
        seg_escalations = CounterMetricFamily(
            "vigil_segment_escalations",
            "Escalated events per monitored segment value.",
            labels=["model", "segment"],
        )
        seg_labels = CounterMetricFamily(
            "vigil_segment_labels",
            "Labelled events per monitored segment value.",
            labels=["model", "segment"],
        )
        seg_accuracy = GaugeMetricFamily(
            "vigil_segment_accuracy",
            "Accuracy over the segment value's labelled window (labels weighed by "
            "1/inclusion probability).",
            labels=["model", "segment"],
        )
        readings: list[tuple[str, ModelReading]] = []
        if self._readings is not None:
            for reading in self._readings():
                label = self._metrics.model_label(reading.model_id)
                if label is None:
                    continue
                readings.append((label, reading))
                for sr in reading.segments:
                    seg_events.add_metric([label, sr.segment], sr.events)
                    seg_escalations.add_metric([label, sr.segment], sr.escalations)
                    seg_labels.add_metric([label, sr.segment], sr.labels)
                    if sr.accuracy is not None:
                        seg_accuracy.add_metric([label, sr.segment], sr.accuracy)
                for s in reading.signals:
                    active.add_metric([label, s.signal], 1.0 if s.drifting else 0.0)
                    stat.add_metric([label, s.signal], s.statistic)
                    if s.signal == "multivariate":
                        threshold.add_metric([label, s.signal], s.threshold)
                for signal, value in reading.impacts:
                    impact.add_metric([label, signal], value)
                for attr, family in single.items():
                    value = getattr(reading, attr)
                    if value is not None:
                        family.add_metric([label], value)
                for b, acc, conf in reading.reliability:
                    bin_acc.add_metric([label, str(b)], acc)
                    bin_conf.add_metric([label, str(b)], conf)
        yield active
        yield stat
        yield threshold
        yield impact
        yield from single.values()
        yield bin_acc
        yield bin_conf
        yield seg_events
        yield seg_escalations
        yield seg_labels
        yield seg_accuracy
        yield from _version_families(readings)
        lag = GaugeMetricFamily(
            "vigil_consumer_lag", "Messages behind the log end.", labels=["topic", "partition"]
        )
        if self._lag is not None:
            for topic, partition, value in self._lag():
                lag.add_metric([topic, str(partition)], value)
        yield lag


def _version_families(readings: list[tuple[str, ModelReading]]) -> Iterator[Metric]:
    """The ``vigil_version_*`` series of every live version (scrape time)."""
    labels = ["model", "version"]
    events = CounterMetricFamily(
        "vigil_version_events", "Inference events processed, per model version.", labels=labels
    )
    escalations = CounterMetricFamily(
        "vigil_version_escalations", "Escalations published, per model version.", labels=labels
    )
    accuracy = GaugeMetricFamily(
        "vigil_version_accuracy",
        "Accuracy of the version over its labelled window (weighed by 1/inclusion probability).",
        labels=labels,
    )
    estimated = GaugeMetricFamily(
        "vigil_version_estimated_accuracy",
        "Label-free accuracy estimate of the version (its own calibration map).",
        labels=labels,
    )
    confidence = HistogramMetricFamily(
        "vigil_version_confidence",
        "Confidence of classification predictions, per model version.",
        labels=labels,
    )
    bounds = (*map(floatToGoString, CONFIDENCE_BUCKETS), "+Inf")
    for model, reading in readings:
        for v in reading.versions:
            key = [model, v.version]
            events.add_metric(key, float(v.events))
            escalations.add_metric(key, float(v.escalations))
            if v.accuracy is not None:
                accuracy.add_metric(key, v.accuracy)
            if v.estimated_accuracy is not None:
                estimated.add_metric(key, v.estimated_accuracy)
            if v.confidence is not None:
                total, buckets = 0, []
                for bound, n in zip(bounds, v.confidence, strict=True):
                    total += n
                    buckets.append((bound, float(total)))
                confidence.add_metric(key, buckets, v.confidence_sum)
    yield from (events, escalations, accuracy, estimated, confidence)


class _ReviewerCollector(Collector):
    """Per-reviewer series: labels given, median time to label, and the gold and
    agreement figures of the review desks, pooled over the models the worker owns."""

    def __init__(
        self, metrics: VigilMetrics, readings: Callable[[], Iterable[ReviewerReading]] | None
    ) -> None:
        self._metrics = metrics
        self._readings = readings

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        labels = CounterMetricFamily(
            "vigil_reviewer_labels",
            "Labels given, by reviewer (capped; _other beyond, _unknown without one).",
            labels=["reviewer"],
        )
        for name, c in list(m._reviewer_labels.items()):
            labels.add_metric([name], c.value)
        yield labels
        time_to_label = GaugeMetricFamily(
            "vigil_reviewer_time_to_label_seconds",
            f"Median seconds from escalation to label over the reviewer's last "
            f"{TIME_TO_LABEL_WINDOW} labels.",
            labels=["reviewer"],
        )
        for name, times in list(m._time_to_label.items()):
            if times:
                time_to_label.add_metric([name], statistics.median(list(times)))
        yield time_to_label
        pooled: dict[str, list[float]] = {}
        if self._readings is not None:
            for r in self._readings():
                row = pooled.setdefault(m.reviewer(r.reviewer), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
                row[0] += r.gold
                row[1] += r.gold_right
                row[2] += r.adjudicated
                row[3] += r.agreed
                row[4] = max(row[4], float(r.flagged))
                if r.labels and r.reliability == r.reliability:  # not NaN
                    row[5] += r.labels * r.reliability
                    row[6] += r.labels
        accuracy = GaugeMetricFamily(
            "vigil_reviewer_gold_accuracy",
            "Share of gold items the reviewer answered right.",
            labels=["reviewer"],
        )
        lower = GaugeMetricFamily(
            "vigil_reviewer_gold_accuracy_lower",
            "Lower end of the 95% Wilson interval of the reviewer's gold accuracy.",
            labels=["reviewer"],
        )
        upper = GaugeMetricFamily(
            "vigil_reviewer_gold_accuracy_upper",
            "Upper end of the 95% Wilson interval of the reviewer's gold accuracy.",
            labels=["reviewer"],
        )
        flagged = GaugeMetricFamily(
            "vigil_reviewer_flagged",
            "1 while the reviewer's accuracy is shown below review.min_gold_accuracy "
            "(on the evidence review.flag_on names).",
            labels=["reviewer"],
        )
        agreement = GaugeMetricFamily(
            "vigil_reviewer_adjudicated_agreement",
            "Share of the reviewer's labels on overlapped events equal to the final label.",
            labels=["reviewer"],
        )
        estimated = GaugeMetricFamily(
            "vigil_reviewer_estimated_accuracy",
            "The reviewer's accuracy as the adjudicator weighs it: one-coin reliability from "
            "gold and adjudicated labels (Beta posterior mean; models pooled by labels).",
            labels=["reviewer"],
        )
        for name, (gold, right, adjudicated, agreed, flag, rel, n) in pooled.items():
            flagged.add_metric([name], flag)
            if n:
                estimated.add_metric([name], rel / n)
            if gold:
                lo, hi = wilson_interval(right, gold, _Z95)
                accuracy.add_metric([name], right / gold)
                lower.add_metric([name], lo)
                upper.add_metric([name], hi)
            if adjudicated:
                agreement.add_metric([name], agreed / adjudicated)
        yield from (accuracy, lower, upper, flagged, agreement, estimated)
