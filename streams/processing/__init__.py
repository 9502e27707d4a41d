"""The pure per-message core: no Kafka here, so it is tested directly and replay shares it."""

from __future__ import annotations

from streams.processing.fleet import Fleet, ModelState, build_monitor
from streams.processing.label_join import JoinOutcome, JoinResult, LabelJoin
from streams.processing.metrics import ModelReading, VigilMetrics
from streams.processing.processor import Outgoing, Processor

__all__ = [
    "Fleet",
    "JoinOutcome",
    "JoinResult",
    "LabelJoin",
    "ModelReading",
    "ModelState",
    "Outgoing",
    "Processor",
    "VigilMetrics",
    "build_monitor",
]
