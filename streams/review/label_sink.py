"""LabelEvents onto the labels topic, confirmed: :meth:`LabelSink.send` returns only when
the broker has every message of the call (``acks=all``, idempotent producer), or raises.

Keyed by ``model_id`` with the murmur2 partitioner, as every vigil producer does, so a
model's labels land in the partition number its inference events use (SPEC §1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streams.config import Settings
from streams.errors import VigilError

__all__ = ["LabelSink", "LabelSinkError"]

log = logging.getLogger(__name__)


class LabelSinkError(VigilError, RuntimeError):
    """Some labels of a :meth:`LabelSink.send` were not confirmed; send them again."""


class LabelSink:
    """The bridge's producer to ``topics.labels``. ``producer`` replaces the real one (tests)."""

    def __init__(self, settings: Settings, *, producer: Any = None, timeout: float = 30.0) -> None:
        if producer is None:
            from confluent_kafka import Producer

            producer = Producer(
                {
                    **settings.kafka.confluent_config(),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                    "partitioner": "murmur2_random",
                    "message.timeout.ms": int(timeout * 1000),
                    "logger": logging.getLogger("vigil.kafka.producer"),
                }
            )
        self.topic = settings.topics.labels
        self.timeout = timeout
        self._producer = producer

    def send(self, labels: Sequence[tuple[Mapping[str, Any], bytes]]) -> None:
        """Produce ``(label event, its bytes)`` pairs and wait for all of them."""
        failures: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for event, raw in labels:
            self._producer.produce(
                self.topic, raw, key=str(event["model_id"]).encode(), on_delivery=delivered
            )
            self._producer.poll(0)
        left = self._producer.flush(self.timeout)
        if left or failures:
            raise LabelSinkError(
                f"{left + len(failures)} of {len(labels)} labels not confirmed by the broker"
                + (f": {failures[0]}" if failures else f" within {self.timeout} s")
            )

    def close(self) -> None:
        self._producer.flush(self.timeout)
