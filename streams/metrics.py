"""Prometheus metrics of a vigil worker (SPEC §7).

Counters and histograms are updated on the hot path through cached children
(``.labels()`` once per model, then a plain ``.inc()``). Gauges that describe
monitor state (drift, calibration, thresholds, lag) exist only at scrape time:
a custom collector reads the monitors' current readings, so no per-event gauge
updates are paid for.

Label values are bounded: at most ``max_models`` distinct ``model`` values, the
rest reported as ``_other``; ``signal`` values come from the detectors, which
cap features per model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.signals import SignalState
from streams.errors import DEAD_LETTER_REASONS, DeadLetterReason

__all__ = ["OTHER_MODEL", "UNKNOWN_MODEL", "ModelMetrics", "ModelReading", "VigilMetrics"]

OTHER_MODEL = "_other"
UNKNOWN_MODEL = "_unknown"
CONFIDENCE_BUCKETS = tuple(i / 20 for i in range(1, 21))
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
LABEL_DELAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(slots=True)
class ModelReading:
    """What one model's monitors say right now; read at scrape time."""

    model_id: str
    signals: list[SignalState] = field(default_factory=list)
    ece: float | None = None
    brier: float | None = None
    accuracy: float | None = None
    estimated_accuracy: float | None = None
    escalation_threshold: float | None = None
    budget_per_minute: float | None = None
    reliability: list[tuple[int, float, float]] = field(default_factory=list)


class ModelMetrics:
    """Cached metric children of one model label (hot path: no ``.labels()`` calls)."""

    __slots__ = (
        "_alerts",
        "_escalation_reason",
        "_labels",
        "_parent",
        "confidence",
        "dead_letter",
        "event_lag",
        "label",
        "label_delay",
        "processed",
        "suppressed",
    )

    def __init__(self, parent: VigilMetrics, label: str) -> None:
        self._parent = parent
        self.label = label
        self.processed = parent.events_total.labels(label, "processed")
        self.dead_letter = parent.events_total.labels(label, "dead_letter")
        self.confidence = parent.prediction_confidence.labels(label)
        self.event_lag = parent.event_lag_seconds.labels(label)
        self.label_delay = parent.label_delay_seconds.labels(label)
        self.suppressed = parent.escalations_suppressed_total.labels(label)
        self._escalation_reason: dict[str, Counter] = {}
        self._alerts: dict[tuple[str, str], Counter] = {}
        self._labels: dict[str, Counter] = {}

    def escalation(self, reason: str) -> Counter:
        c = self._escalation_reason.get(reason)
        if c is None:
            c = self._parent.escalations_total.labels(self.label, reason)
            self._escalation_reason[reason] = c
        return c

    def alert(self, signal: str, state: str) -> Counter:
        c = self._alerts.get((signal, state))
        if c is None:
            c = self._parent.alerts_total.labels(self.label, signal, state)
            self._alerts[(signal, state)] = c
        return c

    def labels_outcome(self, outcome: str) -> Counter:
        c = self._labels.get(outcome)
        if c is None:
            c = self._parent.labels_total.labels(self.label, outcome)
            self._labels[outcome] = c
        return c


class VigilMetrics:
    """All vigil metrics in one registry, with the ``model`` label capped at ``max_models``."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        max_models: int = 500,
        readings: Callable[[], Iterable[ModelReading]] | None = None,
        consumer_lag: Callable[[], Iterable[tuple[str, int, int]]] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_models = max_models
        r = self.registry
        self.events_total = Counter(
            "vigil_events_total",
            "Consumed inference events by outcome.",
            ["model", "outcome"],
            registry=r,
        )
        self.dead_letters_total = Counter(
            "vigil_dead_letters_total", "Dead-lettered messages by reason.", ["reason"], registry=r
        )
        self.escalations_total = Counter(
            "vigil_escalations_total",
            "Escalations published, by reason.",
            ["model", "reason"],
            registry=r,
        )
        self.escalations_suppressed_total = Counter(
            "vigil_escalations_suppressed_total",
            "Escalations withheld by the per-model budget.",
            ["model"],
            registry=r,
        )
        self.alerts_total = Counter(
            "vigil_alerts_total",
            "Drift alerts published.",
            ["model", "signal", "state"],
            registry=r,
        )
        self.labels_total = Counter(
            "vigil_labels_total",
            "Labels consumed, by join outcome.",
            ["model", "outcome"],
            registry=r,
        )
        self.prediction_confidence = Histogram(
            "vigil_prediction_confidence",
            "Confidence of classification predictions.",
            ["model"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.event_lag_seconds = Histogram(
            "vigil_event_lag_seconds",
            "Processing time minus event time.",
            ["model"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.label_delay_seconds = Histogram(
            "vigil_label_delay_seconds",
            "Label time minus prediction time.",
            ["model"],
            buckets=LABEL_DELAY_BUCKETS,
            registry=r,
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
        self._models: dict[str, ModelMetrics] = {}
        self._other = ModelMetrics(self, OTHER_MODEL)
        self._unknown = ModelMetrics(self, UNKNOWN_MODEL)
        if readings is not None or consumer_lag is not None:
            r.register(_StateCollector(self, readings, consumer_lag))

    def model(self, model_id: str | None) -> ModelMetrics:
        """The children for ``model_id``: its own below the cap, else ``_other``."""
        if model_id is None:
            return self._unknown
        m = self._models.get(model_id)
        if m is not None:
            return m
        if len(self._models) >= self.max_models:
            return self._other
        m = ModelMetrics(self, model_id)
        self._models[model_id] = m
        return m

    def model_label(self, model_id: str) -> str | None:
        """The label under which ``model_id``'s gauges appear, or None when over the cap."""
        m = self._models.get(model_id)
        if m is not None:
            return m.label
        if len(self._models) < self.max_models:
            return self.model(model_id).label
        return None

    def dead_letter(self, reason: DeadLetterReason) -> Counter:
        return self._dead_letter_reason[reason]

    def forget_model(self, model_id: str) -> None:
        """Remove every series of ``model_id`` (after a rebalance moved it away)."""
        m = self._models.pop(model_id, None)
        if m is None:
            return
        label = m.label
        for metric, extra in (
            (self.events_total, [("processed",), ("dead_letter",)]),
            (self.prediction_confidence, [()]),
            (self.event_lag_seconds, [()]),
            (self.label_delay_seconds, [()]),
            (self.escalations_suppressed_total, [()]),
        ):
            for rest in extra:
                _remove(metric, (label, *rest))
        for reason in list(m._escalation_reason):
            _remove(self.escalations_total, (label, reason))
        for signal, state in list(m._alerts):
            _remove(self.alerts_total, (label, signal, state))
        for outcome in list(m._labels):
            _remove(self.labels_total, (label, outcome))

    @property
    def tracked_models(self) -> int:
        return len(self._models)


def _remove(metric: Counter | Histogram, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


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
        single = {
            "ece": GaugeMetricFamily(
                "vigil_calibration_ece", "Expected calibration error.", labels=["model"]
            ),
            "brier": GaugeMetricFamily("vigil_brier_score", "Brier score.", labels=["model"]),
            "accuracy": GaugeMetricFamily(
                "vigil_accuracy", "Accuracy over the labelled window.", labels=["model"]
            ),
            "estimated_accuracy": GaugeMetricFamily(
                "vigil_estimated_accuracy", "Label-free accuracy estimate.", labels=["model"]
            ),
            "escalation_threshold": GaugeMetricFamily(
                "vigil_escalation_threshold", "Current escalation threshold.", labels=["model"]
            ),
            "budget_per_minute": GaugeMetricFamily(
                "vigil_escalation_budget_per_minute",
                "Configured escalation budget.",
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
        if self._readings is not None:
            for reading in self._readings():
                label = self._metrics.model_label(reading.model_id)
                if label is None:
                    continue
                for s in reading.signals:
                    active.add_metric([label, s.signal], 1.0 if s.drifting else 0.0)
                    stat.add_metric([label, s.signal], s.statistic)
                for attr, family in single.items():
                    value = getattr(reading, attr)
                    if value is not None:
                        family.add_metric([label], value)
                for b, acc, conf in reading.reliability:
                    bin_acc.add_metric([label, str(b)], acc)
                    bin_conf.add_metric([label, str(b)], conf)
        yield active
        yield stat
        yield from single.values()
        yield bin_acc
        yield bin_conf
        lag = GaugeMetricFamily(
            "vigil_consumer_lag", "Messages behind the log end.", labels=["topic", "partition"]
        )
        if self._lag is not None:
            for topic, partition, value in self._lag():
                lag.add_metric([topic, str(partition)], value)
        yield lag
