"""The Faust application: topics, agents, and the metrics endpoint.

Agents are thin: they take a batch of raw messages, hand each to the
:class:`~streams.processing.Processor` (which never raises), and send what it
returns. Consumption uses Faust's default aiokafka transport.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import faust
from prometheus_client import disable_created_metrics, start_http_server

from streams.config import Settings
from streams.deadletter import MessageSource
from streams.fleet import Fleet
from streams.metrics import VigilMetrics
from streams.processing import Outgoing, Processor

__all__ = ["VigilApp", "create_app"]

log = logging.getLogger(__name__)


def faust_credentials(settings: Settings) -> Any:
    """Faust/aiokafka credentials from the Kafka settings (None for PLAINTEXT)."""
    k = settings.kafka
    if k.security_protocol == "PLAINTEXT":
        return None
    ctx = None
    if k.security_protocol in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(cafile=k.ssl_cafile)
    if k.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=k.sasl_password.get() if k.sasl_password else None,
            mechanism=k.sasl_mechanism,
            ssl_context=ctx,
        )
    return faust.SSLCredentials(ctx)


class VigilApp:
    """A configured Faust app with vigil's agents, its processor and its metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        disable_created_metrics()
        self.fleet = Fleet(settings, on_evict=self._on_evict)
        self.metrics = VigilMetrics(
            max_models=settings.worker.max_models,
            readings=self.fleet.readings,
            consumer_lag=self._consumer_lag,
        )
        self.processor = Processor(settings, self.metrics, self.fleet)
        t = settings.topics
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.kafka.bootstrap}",
            broker_credentials=faust_credentials(settings),
            value_serializer="raw",
            key_serializer="raw",
            store="memory://",
            web_enabled=False,
            topic_partitions=t.partitions,
            topic_replication_factor=t.replication_factor,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            stream_buffer_maxsize=max(4096, settings.worker.batch_size * 4),
        )
        topic = self._topic
        self.inference_topic = topic(t.inference)
        self.labels_topic = topic(t.labels)
        self.escalations_topic = topic(t.escalations)
        self.alerts_topic = topic(t.alerts)
        self.deadletter_topic = topic(t.deadletter)
        self.app.agent(self.inference_topic, name="vigil.inference")(self._inference_agent)
        self.app.agent(self.labels_topic, name="vigil.labels")(self._labels_agent)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    def _topic(self, name: str) -> Any:
        return self.app.topic(
            name,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=self.settings.topics.partitions,
        )

    def start_metrics_server(self) -> None:
        """Serve ``/metrics`` from a background thread (prometheus_client's server)."""
        w = self.settings.worker
        start_http_server(w.metrics_port, addr=w.metrics_host, registry=self.metrics.registry)
        log.info("metrics at http://%s:%d/metrics", w.metrics_host, w.metrics_port)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        # All state of one model lives on the partition its key hashes to; models whose
        # partition moved away are dropped with their series so two workers never
        # report the same model at once.
        log.info("partitions revoked: %s", sorted(str(tp) for tp in revoked))

    def _on_evict(self, model_id: str, monitor: Any) -> None:
        self.metrics.forget_model(model_id)

    def _consumer_lag(self) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        try:
            consumer = self.app.consumer
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                pos = consumer._committed_offset.get(tp)  # noqa: SLF001 - no public accessor
                if high is not None and pos is not None:
                    out.append((tp.topic, tp.partition, max(0, int(high) - int(pos) - 1)))
        except Exception:  # the consumer may not exist yet (startup) or be rebalancing
            return out
        return out

    async def _inference_agent(self, stream: Any) -> AsyncIterator[None]:
        w = self.settings.worker
        out = Outgoing()
        inference = self.processor.inference
        batch_seconds = self.metrics.batch_seconds
        async for events in stream.take_events(w.batch_size, within=w.batch_within_s):
            started = time.perf_counter()
            for event in events:
                msg = event.message
                source = MessageSource(msg.topic, msg.partition, msg.offset, msg.key)
                inference(event.value if event.value is not None else b"", source, out)
            await self._send(out)
            out.clear()
            batch_seconds.observe(time.perf_counter() - started)
            yield None

    async def _labels_agent(self, stream: Any) -> AsyncIterator[None]:
        w = self.settings.worker
        out = Outgoing()
        label = self.processor.label
        async for events in stream.take_events(w.batch_size, within=w.batch_within_s):
            for event in events:
                msg = event.message
                source = MessageSource(msg.topic, msg.partition, msg.offset, msg.key)
                label(event.value if event.value is not None else b"", source, out)
            await self._send(out)
            out.clear()
            yield None

    async def _send(self, out: Outgoing) -> None:
        for key, value in out.escalations:
            await self.escalations_topic.send(key=key, value=value)
        for key, value in out.alerts:
            await self.alerts_topic.send(key=key, value=value)
        for dl_key, value in out.dead_letters:
            await self.deadletter_topic.send(key=dl_key, value=value)


def create_app(settings: Settings) -> VigilApp:
    return VigilApp(settings)
