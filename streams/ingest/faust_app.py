"""The Faust application: one agent over the input topics, checkpoints, and rebalances.

The agent is thin: it takes a batch of raw messages from the inference and labels
topics (one stream, so state and offsets move together), hands each to the
:class:`~streams.processing.Processor` (which never raises), and sends what it
returns. Consumption uses Faust's default aiokafka transport.

Delivery and state (see README, "Delivery guarantee"):

* Faust never commits offsets by itself here. Its periodic commits are pushed out of
  reach, and its consumer's ``commit()`` is disabled (:class:`_FaustApp`): Faust also
  commits acked offsets while draining on revocation and shutdown, and from its agent
  error handler, and ``take_events()`` acks a batch even when its processing raised;
  each of those could commit offsets whose state is not checkpointed. Its ack-based
  offset tracking also miscounts offsets with gaps (faust #606).
* Instead the agent records, per partition, the last offset of each batch it fully
  processed and whose outputs it handed to the producer. Every ``checkpoint_interval_s``
  it flushes the producer (escalations, alerts and dead letters are then on the broker,
  and a failed delivery is noticed), writes the checkpoint of every model whose state
  changed (with the last offset applied per input), and only then commits the recorded
  offsets. A commit therefore never runs ahead of the state. A failed checkpoint write
  is retried at the next interval (nothing is committed meanwhile); output that could
  not be delivered crashes the worker without saving its state, so that a restart
  reprocesses from the last checkpoint.
* On assignment, before Faust resumes fetching, the worker restores the
  checkpoints of the partitions it was given. Messages redelivered from before
  the checkpoint are recognised by offset and not applied twice.
* On revocation (after Faust drained the agent and flushed the producer) the
  worker checkpoints, commits, and drops the state and metric series of every
  model it no longer owns. On shutdown it checkpoints and commits.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
from prometheus_client import disable_created_metrics, start_http_server

from streams.config import Settings
from streams.errors import OutputLostError
from streams.events.dead_letters import MessageSource
from streams.kafka.checkpoints import Checkpoint, CheckpointStore, restore_or_none
from streams.processing.fleet import Fleet
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

__all__ = ["VigilApp", "create_app"]

log = logging.getLogger(__name__)

# Faust commits acked offsets on a timer and every N messages; vigil commits only after a
# checkpoint, so both are pushed out of reach.
_NEVER_SECONDS = 10**9
_NEVER_COUNT = 2**62
# A worker that died without leaving the group (kill -9, OOM, lost node) holds its
# partitions until the broker's session timeout expires, and a restarted worker's join
# waits for that rebalance: with Faust's default of 60 s, the kill -9 recovery
# benchmark measured 61 s from restart to the first processed event. Heartbeats run on
# the consumer's own thread, so a busy event loop does not miss them.
_SESSION_TIMEOUT_SECONDS = 10.0


async def _no_faust_commit(*args: Any, **kwargs: Any) -> bool:
    return False


class _FaustApp(faust.App):
    """A Faust app whose consumer commits only when vigil says so (see module docstring).

    The consumer's ``commit()`` (called by Faust from ``wait_empty`` on revocation and
    shutdown, and from ``on_task_error``) is shadowed by a no-op on the instance; vigil
    commits through the driver's ``_commit`` with offsets it tracked itself.
    """

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        consumer.commit = _no_faust_commit  # type: ignore[method-assign]
        return consumer


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
            password=k.sasl_password.get_secret_value() if k.sasl_password else None,
            mechanism=k.sasl_mechanism,
            ssl_context=ctx,
        )
    return faust.SSLCredentials(ctx)


class VigilApp:
    """A configured Faust app with vigil's agent, processor, checkpoints and metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        disable_created_metrics()
        self.fleet = Fleet(settings)
        self.metrics = VigilMetrics(
            max_models=settings.worker.max_models,
            readings=self.fleet.readings,
            consumer_lag=self._consumer_lag,
        )
        self.processor = Processor(settings, self.metrics, self.fleet)
        self.checkpoints = CheckpointStore(settings)
        self._owned: set[int] = set()
        # The started consumer, once the first assignment is known. ``/metrics`` is served
        # from another thread before the Faust worker starts, and ``app.consumer`` is a
        # lazy property: reading it from a scrape could build a second Consumer, which
        # the app would then keep and never start (Faust's startup then fails with
        # ``ConsumerNotStarted``). So a scrape reads this reference, never the property.
        self._started_consumer: Any = None
        self._last_checkpoint = time.monotonic()
        # Per input TP: the last offset of a batch fully processed and handed to the
        # producer; committed (+1) after the checkpoint that covers it.
        self._done: dict[Any, int] = {}
        # Deliveries handed to the producer since the last checkpoint, checked after flush.
        self._pending: list[Any] = []
        # Set when output was lost: from then on no state is saved and nothing committed.
        self._failed: BaseException | None = None
        t = settings.topics
        # vigil keeps no Faust tables on disk; keep Faust's data directory out of the
        # working directory the worker was started in.
        faust_data = Path(tempfile.gettempdir()) / "vigil-faust"
        faust_data.mkdir(parents=True, exist_ok=True)
        self.app = _FaustApp(
            settings.app_id,
            broker=f"kafka://{settings.kafka.bootstrap}",
            broker_credentials=faust_credentials(settings),
            value_serializer="raw",
            key_serializer="raw",
            store="memory://",
            datadir=str(faust_data / "{conf.name}-data"),
            web_enabled=False,
            topic_partitions=t.partitions,
            topic_replication_factor=t.replication_factor,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            broker_commit_every=_NEVER_COUNT,
            broker_commit_interval=_NEVER_SECONDS,
            broker_session_timeout=_SESSION_TIMEOUT_SECONDS,
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
        done = self._done
        async for events in stream.take_events(w.batch_size, within=w.batch_within_s):
            if self._failed is not None:
                yield None  # crashing: apply nothing more
                continue
            started = time.perf_counter()
            last: dict[Any, int] = {}
            for event in events:
                msg = event.message
                source = MessageSource(msg.topic, msg.partition, msg.offset, msg.key)
                value = event.value if event.value is not None else b""
                if msg.topic == inference_topic:
                    inference(value, source, out)
                else:
                    label(value, source, out)
                last[msg.tp] = msg.offset
            try:
                await self._send(out)
            except Exception as exc:
                await self._fail("handing a batch's output to the producer failed", exc)
                yield None
                continue
            finally:
                out.clear()
            for tp, offset in last.items():
                if offset > done.get(tp, -1):
                    done[tp] = offset
            batch_seconds.observe(time.perf_counter() - started)
            if time.monotonic() - self._last_checkpoint >= w.checkpoint_interval_s:
                try:
                    await self.checkpoint(commit=True)
                except OutputLostError as exc:
                    await self._fail("output was not delivered", exc)
                except Exception:
                    # Kept dirty and uncommitted: retried at the next interval, and after a
                    # crash the uncommitted tail is reprocessed from the last checkpoint.
                    log.exception("checkpoint failed; retrying at the next interval")
            yield None

    async def _send(self, out: Outgoing) -> None:
        pending = self._pending
        for key, value in out.escalations:
            pending.append(await self.escalations_topic.send(key=key, value=value))
        for key, value in out.alerts:
            pending.append(await self.alerts_topic.send(key=key, value=value))
        for dl_key, value in out.dead_letters:
            pending.append(await self.deadletter_topic.send(key=dl_key, value=value))

    def _check_delivered(self) -> None:
        """Raise :class:`OutputLostError` if any send since the last check failed."""
        pending, self._pending = self._pending, []
        for fut in pending:
            if not fut.done():  # flushed but unresolved: check again next time
                self._pending.append(fut)
            elif fut.cancelled() or fut.exception() is not None:
                exc = None if fut.cancelled() else fut.exception()
                raise OutputLostError(f"delivery failed: {exc!r}")

    async def _fail(self, what: str, exc: BaseException) -> None:
        """Stop without saving state or committing: a restarted worker reprocesses the
        uncommitted tail from the last checkpoint, so no output is lost."""
        if self._failed is not None:
            return
        self._failed = exc
        log.error("%s: %r; stopping without checkpointing or committing", what, exc)
        await self.app.crash(exc)

    # ------------------------------------------------------------ checkpoints

    async def checkpoint(self, *, commit: bool, partitions: set[int] | None = None) -> int:
        """Flush outputs, write dirty model states, then (optionally) commit offsets.

        Raises :class:`OutputLostError` if an output was not delivered, and
        :class:`~streams.errors.VigilError` if a checkpoint was not written; either
        way nothing is committed.
        """
        if self._failed is not None:
            return 0
        self._last_checkpoint = time.monotonic()
        # What the states written below cover: captured before any await, while no batch
        # is in flight (the agent awaits this; revocation and shutdown drained it).
        covered = {
            tp: offset
            for tp, offset in self._done.items()
            if partitions is None or tp.partition in partitions
        }
        await self.app.producer.flush()
        self._check_delivered()
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
            await self._commit(covered)
        return len(dirty)

    async def _commit(self, offsets: dict[Any, int]) -> None:
        consumer: Any = self.app.consumer  # the driver-level commit has no public name
        committed = consumer._committed_offset
        assignment = consumer.assignment()
        todo = {}
        for tp, offset in offsets.items():
            before = committed.get(tp)
            if tp in assignment and (before is None or offset + 1 > before):
                todo[tp] = offset + 1
        if todo and await consumer._commit(todo):
            committed.update(todo)

    def _restore(self, partitions: set[int]) -> int:
        found = self.checkpoints.read(partitions)
        for model_id, cp in found.items():
            if model_id in self.fleet:
                continue
            state = restore_or_none(model_id, cp)
            if state is not None:
                self.fleet.put(model_id, state)
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
        for tp in [tp for tp in self._done if tp.partition in parts]:
            del self._done[tp]
        self._owned -= parts
        log.info(
            "revoked partitions %s: checkpointed %d models, dropped %d", sorted(parts), n, dropped
        )

    async def _on_rebalance_complete(self, sender: Any = None, **kwargs: Any) -> None:
        # Called by Faust before it resumes fetching the new assignment.
        self._started_consumer = self.app.consumer
        assigned = self._input_partitions(self._started_consumer.assignment())
        self._drop(lambda state: state.partition >= 0 and state.partition not in assigned)
        new = assigned - self._owned
        if new:
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            restored = await loop.run_in_executor(None, self._restore, new)
            log.info(
                "assigned partitions %s: restored %d model checkpoints in %.3f s",
                sorted(new),
                restored,
                time.perf_counter() - started,
            )
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
        # The agent is drained and the fetcher stopped; the consumer can still commit.
        try:
            await self.checkpoint(commit=True)
        except Exception:
            log.exception("final checkpoint failed")
        self.checkpoints.close()

    def _consumer_lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, lag) of each assigned partition; called by a scrape, from the
        metrics server's thread."""
        out: list[tuple[str, int, int]] = []
        consumer = self._started_consumer  # _committed_offset has no public accessor
        if consumer is None:  # no assignment yet
            return out
        try:
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                pos = consumer._committed_offset.get(tp)
                if high is not None and pos is not None:
                    out.append((tp.topic, tp.partition, max(0, int(high) - int(pos))))
        except Exception:  # read from another thread while the consumer rebalances
            return out
        return out


def create_app(settings: Settings) -> VigilApp:
    return VigilApp(settings)
