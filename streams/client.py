"""The publisher inference services embed (SPEC §10).

:class:`InferencePublisher` wraps an idempotent confluent-kafka producer. The
event is validated against the contract before it leaves the process, so a
service learns about a bad event at once instead of from the dead-letter topic.
``publish`` never blocks the caller for longer than ``timeout`` seconds: when
the local queue stays full that long it raises :class:`PublishError`. Delivery
failures reported by the broker are counted (``failed``) and kept (``errors``);
``flush`` raises if anything is left undelivered, and at once when the broker refused
the credentials (librdkafka would retry until ``message.timeout.ms`` and then report
only a timeout).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from streams.errors import PublishError
from streams.events.schema import DEFAULT_MAX_EVENT_BYTES, decode_inference, decode_label

__all__ = ["InferencePublisher"]

log = logging.getLogger(__name__)

# flush() waits in steps this long so that it can stop early on an authentication error.
_FLUSH_STEP_S = 0.25


class InferencePublisher:
    """Publish InferenceEvents (and labels) to Kafka.

    Parameters
    ----------
    bootstrap
        Kafka bootstrap servers, ``host:port[,host:port]``.
    topic, labels_topic
        Destination topics.
    timeout
        Longest time ``publish`` may block when the local queue is full (seconds).
    kafka_config
        Extra librdkafka settings (security, SASL credentials, ...).
    validate
        Check each event against the contract before sending (default on).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "vigil.inference",
        labels_topic: str = "vigil.labels",
        *,
        timeout: float = 1.0,
        kafka_config: Mapping[str, Any] | None = None,
        validate: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.labels_topic = labels_topic
        self.timeout = timeout
        self.validate = validate
        self.max_event_bytes = max_event_bytes
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            # murmur2 is what Java clients and aiokafka use: labels and inference events of
            # one model land in the same partition number whoever produced them.
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 200_000,
            "message.timeout.ms": 30_000,
        }
        conf.update(kafka_config or {})
        conf["error_cb"] = self._on_error
        conf.setdefault("logger", logging.getLogger("vigil.kafka"))
        self._producer = Producer(conf)
        self._lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.errors: deque[str] = deque(maxlen=100)
        # Set by the error callback when the broker rejects the SASL credentials.
        self.auth_error: str | None = None

    # ------------------------------------------------------------ publishing

    def publish(
        self,
        *,
        model_id: str,
        prediction: Mapping[str, Any],
        features: Mapping[str, Any] | None = None,
        event_id: str | None = None,
        ts: datetime | float | None = None,
        model_version: str | None = None,
        segment: Mapping[str, str] | None = None,
        trace_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Send one InferenceEvent; returns its ``event_id`` (generated when not given)."""
        event_id = event_id or uuid.uuid4().hex
        if ts is None:
            ts = datetime.now(UTC)
        event: dict[str, Any] = {
            "event_id": event_id,
            "model_id": model_id,
            "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
            "prediction": dict(prediction),
        }
        if isinstance(ts, datetime) and ts.tzinfo is None:
            raise ValueError("ts must be timezone-aware")
        for name, value in (
            ("features", features),
            ("model_version", model_version),
            ("segment", segment),
            ("trace_id", trace_id),
            ("metadata", metadata),
        ):
            if value is not None:
                event[name] = value
        raw = orjson.dumps(event)
        if self.validate:
            decode_inference(raw, self.max_event_bytes)  # raises InvalidEventError
        self.publish_raw(raw, key=model_id.encode(), topic=self.topic)
        return event_id

    def publish_label(self, label_event: Mapping[str, Any]) -> None:
        """Send one LabelEvent (SPEC §3), validated first."""
        raw = orjson.dumps(dict(label_event))
        if self.validate:
            decode_label(raw, self.max_event_bytes)
        self.publish_raw(raw, key=str(label_event["model_id"]).encode(), topic=self.labels_topic)

    def publish_raw(
        self, value: bytes, *, key: bytes | None = None, topic: str | None = None
    ) -> None:
        """Send bytes as they are (no validation): for tools and tests."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self._producer.produce(
                    topic or self.topic, value=value, key=key, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    with self._lock:
                        self.failed += 1
                    raise PublishError(
                        f"local producer queue full for {self.timeout}s; event not sent"
                    ) from None
                self._producer.poll(min(0.05, remaining))
        with self._lock:
            self.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for delivery; raise :class:`PublishError` if anything failed or is left.

        Raises as soon as the broker has refused the credentials: no amount of waiting
        delivers then, and the user should read "authentication", not "timeout".
        """
        deadline = time.monotonic() + timeout
        while True:
            left = self._producer.flush(max(0.0, min(_FLUSH_STEP_S, deadline - time.monotonic())))
            if not left:
                break
            if self.auth_error is not None:
                raise PublishError(
                    f"Kafka authentication failed ({self.auth_error}); {left} events not delivered"
                )
            if time.monotonic() >= deadline:
                raise PublishError(f"{left} events still undelivered after {timeout}s")
        if self.failed:
            last = self.errors[-1] if self.errors else "?"
            raise PublishError(f"{self.failed} events failed delivery; last error: {last}")

    @property
    def pending(self) -> int:
        return len(self._producer)

    # ------------------------------------------------------------ callbacks

    def _on_delivery(self, err: Any, msg: Any) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
            else:
                self.failed += 1
                self.errors.append(str(err))
        if err is not None:
            log.warning("delivery to %s failed: %s", msg.topic(), err)

    def _on_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        self.errors.append(str(err))
        if err.code() == KafkaError._AUTHENTICATION:
            self.auth_error = err.str()
        log.warning("kafka client error: %s", err)

    def __enter__(self) -> InferencePublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        else:
            self._producer.flush(self.timeout)
