"""The monitors of every model a worker currently owns, bounded in number."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from detectors.escalation import ThresholdEscalation
from detectors.model_monitor import ModelMonitor
from streams.config import ModelSettings, Settings
from streams.metrics import ModelReading

__all__ = ["Fleet"]


def build_monitor(model_id: str, ms: ModelSettings, max_features: int) -> ModelMonitor:
    """A fresh monitor for ``model_id`` from its (merged) settings."""
    e = ms.escalation
    policy = ThresholdEscalation(
        min_confidence=e.min_confidence,
        min_margin=e.min_margin,
        max_entropy=e.max_entropy,
        max_interval_width=e.max_interval_width,
    )
    return ModelMonitor(model_id, policy)


class Fleet:
    """Per-model monitors, least recently used evicted beyond ``max_tracked_models``.

    Eviction keeps memory bounded under a flood of new ``model_id`` values; an
    evicted model starts afresh if it comes back (``on_evict`` lets the caller
    checkpoint it or drop its metric series first).
    """

    def __init__(
        self,
        settings: Settings,
        on_evict: Callable[[str, ModelMonitor], None] | None = None,
    ) -> None:
        self.settings = settings
        self.max_tracked = settings.worker.max_tracked_models
        self._monitors: OrderedDict[str, ModelMonitor] = OrderedDict()
        self._on_evict = on_evict
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._monitors)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._monitors

    def is_known(self, model_id: str) -> bool:
        """Configured in ``models`` (or any model when unknown models are allowed)."""
        return self.settings.worker.allow_unknown_models or model_id in self.settings.models

    def get(self, model_id: str) -> ModelMonitor:
        mon = self._monitors.get(model_id)
        if mon is not None:
            self._monitors.move_to_end(model_id)
            return mon
        mon = build_monitor(
            model_id,
            self.settings.for_model(model_id),
            self.settings.worker.max_features_per_model,
        )
        self._monitors[model_id] = mon
        if len(self._monitors) > self.max_tracked:
            old_id, old = self._monitors.popitem(last=False)
            self.evicted += 1
            if self._on_evict is not None:
                self._on_evict(old_id, old)
        return mon

    def put(self, model_id: str, monitor: ModelMonitor) -> None:
        self._monitors[model_id] = monitor

    def pop(self, model_id: str) -> ModelMonitor | None:
        return self._monitors.pop(model_id, None)

    def items(self) -> Iterator[tuple[str, ModelMonitor]]:
        return iter(list(self._monitors.items()))

    def readings(self) -> list[ModelReading]:
        """Current gauges of every tracked model (called at scrape time)."""
        out = []
        for model_id, mon in list(self._monitors.items()):
            reading = ModelReading(model_id)
            e = self.settings.for_model(model_id).escalation
            reading.escalation_threshold = e.min_confidence
            reading.budget_per_minute = e.budget_per_minute
            del mon
            out.append(reading)
        return out
