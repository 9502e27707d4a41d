"""The Faust application: one agent over the input topics, checkpoints, and rebalances.

The agent is thin: it takes a batch of raw messages from the inference and labels
topics (one stream, so state and offsets move together), hands each to the
:class:`~streams.processing.Processor` (which never raises), and sends what it
returns. Consumption uses Faust's default aiokafka transport.

Delivery and state (see README, "Delivery guarantee"):

* Faust's own periodic offset commits are turned off. Every
  ``checkpoint_interval_s`` the agent flushes the producer (escalations, alerts
  and dead letters are then on the broker), writes the checkpoint of every model
  whose state changed (with the last offset applied per input), and only then
  commits the consumed offsets. A commit therefore never runs ahead of the state.
* On assignment, before Faust resumes fetching, the worker restores the
  checkpoints of the partitions it was given. Messages redelivered from before
  the checkpoint are recognised by offset and not applied twice.
* On revocation (after Faust drained the agent and flushed the producer) the
  worker checkpoints, commits, and drops the state and metric series of every
  model it no longer owns.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import faust
from prometheus_client import disable_created_metrics, start_http_server

from streams.checkpoint import Checkpoint, CheckpointStore
from streams.config import Settings
from streams.deadletter import MessageSource
from streams.fleet import Fleet, ModelState
from streams.metrics import VigilMetrics
from streams.processing import Outgoing, Processor

__all__ = ["VigilApp", "create_app"]

log = logging.getLogger(__name__)

# Faust commits acked offsets on a timer and every N messages; vigil commits only after a
# checkpoint, so both are pushed out of reach.
_NEVER_SECONDS = 10**9
_NEVER_COUNT = 2**62


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
    """A configured Faust app with vigil's agent, processor, checkpoints and metrics."""

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
        self.checkpoints = CheckpointStore(settings)
        self._owned: set[int] = set()
        self._last_checkpoint = time.monotonic()
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
            broker_commit_every=_NEVER_COUNT,
            broker_commit_interval=_NEVER_SECONDS,
            stream_buffer_maxsize=max(4096, settings.worker.batch_size * 4),
        )
        self.input_topic = self.app.topic(
            t.inference,
            t.labels,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )
        out = self._topic
        self.escalations_topic = out(t.escalations)
        self.alerts_topic = out(t.alerts)
        self.deadletter_topic = out(t.deadletter)
        self.app.agent(self.input_topic, name="vigil.input")(self._input_agent)
        # mode's Signal.connect is typed for plain functions; bound async methods work.
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]

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

    # ------------------------------------------------------------ the agent

    async def _input_agent(self, stream: Any) -> AsyncIterator[None]:
        w = self.settings.worker
        inference_topic = self.settings.topics.inference
        out = Outgoing()
        inference = self.processor.inference
        label = self.processor.label
        batch_seconds = self.metrics.batch_seconds
        async for events in stream.take_events(w.batch_size, within=w.batch_within_s):
            started = time.perf_counter()
            for event in events:
                msg = event.message
                source = MessageSource(msg.topic, msg.partition, msg.offset, msg.key)
                value = event.value if event.value is not None else b""
                if msg.topic == inference_topic:
                    inference(value, source, out)
                else:
                    label(value, source, out)
            await self._send(out)
            out.clear()
            batch_seconds.observe(time.perf_counter() - started)
            if time.monotonic() - self._last_checkpoint >= w.checkpoint_interval_s:
                await self.checkpoint(commit=True)
            yield None

    async def _send(self, out: Outgoing) -> None:
        for key, value in out.escalations:
            await self.escalations_topic.send(key=key, value=value)
        for key, value in out.alerts:
            await self.alerts_topic.send(key=key, value=value)
        for dl_key, value in out.dead_letters:
            await self.deadletter_topic.send(key=dl_key, value=value)

    # ------------------------------------------------------------ checkpoints

    async def checkpoint(self, *, commit: bool, partitions: set[int] | None = None) -> int:
        """Flush outputs, write dirty model states, then (optionally) commit offsets."""
        self._last_checkpoint = time.monotonic()
        await self.app.producer.flush()
        dirty = [
            (model_id, state)
            for model_id, state in self.fleet.items()
            if state.dirty and (partitions is None or state.partition in partitions)
        ]
        if dirty:
            now = time.time()
            records = [
                Checkpoint(model_id, s.partition, dict(s.offsets), s.snapshot(), now)
                for model_id, s in dirty
            ]
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.checkpoints.write, records)
            for _, state in dirty:
                state.dirty = False
        if commit:
            await self.app.consumer.commit()
        return len(dirty)

    def _restore(self, partitions: set[int]) -> int:
        found = self.checkpoints.read(partitions)
        for model_id, cp in found.items():
            if model_id in self.fleet:
                continue
            self.fleet.put(model_id, ModelState.restore(cp.state, cp.partition, cp.offsets))
        return len(found)

    # ------------------------------------------------------------ rebalances

    def _input_partitions(self, tps: Any) -> set[int]:
        t = self.settings.topics
        return {tp.partition for tp in tps if tp.topic in (t.inference, t.labels)}

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        # Faust has drained the agent and flushed the producer by now.
        parts = self._input_partitions(revoked)
        if not parts:
            return
        try:
            n = await self.checkpoint(commit=True, partitions=parts)
        except Exception:
            log.exception(
                "checkpoint on revocation failed; state will be rebuilt from the "
                "last checkpoint and redelivered messages"
            )
            n = 0
        dropped = self._drop(lambda state: state.partition in parts)
        self._owned -= parts
        log.info(
            "revoked partitions %s: checkpointed %d models, dropped %d", sorted(parts), n, dropped
        )

    async def _on_rebalance_complete(self, sender: Any = None, **kwargs: Any) -> None:
        # Called by Faust before it resumes fetching the new assignment.
        assigned = self._input_partitions(self.app.consumer.assignment())
        self._drop(lambda state: state.partition >= 0 and state.partition not in assigned)
        new = assigned - self._owned
        if new:
            loop = asyncio.get_running_loop()
            restored = await loop.run_in_executor(None, self._restore, new)
            log.info("assigned partitions %s: restored %d model checkpoints", sorted(new), restored)
        self._owned = assigned

    def _drop(self, predicate: Any) -> int:
        n = 0
        for model_id, state in self.fleet.items():
            if predicate(state):
                self.fleet.pop(model_id)
                self.metrics.forget_model(model_id)
                n += 1
        return n

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        # The consumer has stopped (and committed what the agent acked): save everything.
        try:
            await self.checkpoint(commit=False)
        except Exception:
            log.exception("final checkpoint failed")
        self.checkpoints.close()

    def _on_evict(self, model_id: str, state: ModelState) -> None:
        self.metrics.forget_model(model_id)

    def _consumer_lag(self) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        try:
            consumer: Any = self.app.consumer  # _committed_offset has no public accessor
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                pos = consumer._committed_offset.get(tp)
                if high is not None and pos is not None:
                    out.append((tp.topic, tp.partition, max(0, int(high) - int(pos))))
        except Exception:  # the consumer may not exist yet (startup) or be rebalancing
            return out
        return out


def create_app(settings: Settings) -> VigilApp:
    return VigilApp(settings)
