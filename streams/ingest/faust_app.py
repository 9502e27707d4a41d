"""The Faust driver: one agent over the input topics, on Faust's aiokafka transport.

The agent is thin: it takes a batch of raw messages from the inference and labels
topics (one stream, so state and offsets move together), hands each to the
:class:`~streams.processing.Processor` of its :class:`~streams.ingest.core.IngestCore`
(which never raises), and sends what it returns. The delivery guarantee (which offsets
may be committed when, the non-blocking checkpoint rounds, restore and drop on
rebalances, lag, shutdown) is the core's; see :mod:`streams.ingest.core`. What is
particular to Faust:

* Faust never commits offsets by itself here. Its periodic commits are pushed out of
  reach, and its consumer's ``commit()`` is disabled (:class:`_FaustApp`): Faust also
  commits acked offsets while draining on revocation and shutdown, and from its agent
  error handler, and ``take_events()`` acks a batch even when its processing raised;
  each of those could commit offsets whose state is not checkpointed. Its ack-based
  offset tracking also miscounts offsets with gaps (faust #606). vigil commits the
  offsets the core gives it, through the consumer's driver-level ``_commit``.
* A batch's outputs are numbered before the first ``await`` (the core's round may
  snapshot a model whenever the agent awaits, and the snapshot contains the whole
  batch), and each send's future reports to the core when the broker answers.
* The agent advances the checkpoint round after each batch, and a timer does when the
  stream is idle. A send that fails, or an output the broker did not take, crashes the
  worker without saving its state, so that a restart reprocesses from the last
  checkpoint.
* Rebalances and shutdown: on revocation (after Faust drained the agent) and before
  shutdown, the core flushes, checkpoints and commits, then drops what was revoked; on
  rebalance completion (before Faust resumes fetching) it restores the new partitions.
  Each of these waits for the broker, so it runs on a worker thread while the event
  loop serves the producer and consumer it waits for, with the round timer paused.
* The consumer lag is read from the consumer captured at the first assignment, never
  through ``app.consumer`` (see :meth:`VigilApp.read_lag`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import faust

from streams.config import Settings
from streams.errors import OutputLostError, VigilError
from streams.events.dead_letters import MessageSource
from streams.ingest.core import IngestCore, Lag, Offsets
from streams.kafka.topics import COPARTITION_CHECK_S, check_copartitioned, metadata_admin
from streams.processing.processor import Outgoing

__all__ = ["VigilApp", "create_app"]

log = logging.getLogger(__name__)

# Faust commits acked offsets on a timer and every N messages; vigil commits only after a
# checkpoint, so both are pushed out of reach.
_NEVER_SECONDS = 10**9
_NEVER_COUNT = 2**62
# A worker that died without leaving the group (kill -9, OOM, lost node) holds its
# partitions until the broker's session timeout (worker.session_timeout_s, 10 s by
# default) expires, and a restarted worker's join waits for that rebalance: with Faust's
# default of 60 s, the kill -9 recovery benchmark measured 61 s from restart to the first
# processed event. With worker.instance_id (static membership, aiokafka's
# group_instance_id) a restarted worker takes its previous place at once. Heartbeats run
# on the consumer's own thread, so a busy event loop does not miss them. aiokafka 0.14
# has no error class for a fence (another member with the same instance id, error 82):
# its heartbeat logs "Unexpected exception in heartbeat task: UnknownError" and raises;
# what the fenced Faust worker does next is aiokafka's (not tested here). The batch
# driver stops with InstanceFencedError.
# How often a timer advances the checkpoint round when no batch does (an idle stream).
_TICK_SECONDS = 0.1
# How long a waiting step on the worker thread waits for the loop to flush or commit
# (the core's own flush timeout, and some).
_WAIT_SECONDS = 90.0


async def _no_faust_commit(*args: Any, **kwargs: Any) -> bool:
    return False


class _FaustApp(faust.App):
    """A Faust app whose consumer commits only when vigil says so (see module docstring).

    The consumer's ``commit()`` (called by Faust from ``wait_empty`` on revocation and
    shutdown, and from ``on_task_error``) is shadowed by a no-op on the instance; vigil
    commits through the driver-level ``_commit`` with the offsets the core gives it.
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
    """A configured Faust app with vigil's agent, driving an :class:`IngestCore`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.core = IngestCore(settings)
        # The started consumer, once the first assignment is known. ``/metrics`` is served
        # from another thread before the Faust worker starts, and ``app.consumer`` is a
        # lazy property: reading it then could build a second Consumer, which the app
        # would keep and never start (Faust's startup then fails with
        # ``ConsumerNotStarted``). So the lag is read from this reference only.
        self._started_consumer: Any = None
        # Set when output was lost: from then on nothing is applied, saved or committed.
        self._failed: BaseException | None = None
        # True while a waiting step of the core runs on a worker thread: no tick meanwhile.
        self._waiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commit_task: asyncio.Future[None] | None = None
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
            broker_session_timeout=settings.worker.session_timeout_s,
            consumer_group_instance_id=settings.worker.instance_id,
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
        self._outputs = (
            (t.escalations, out(t.escalations)),
            (t.alerts, out(t.alerts)),
            (t.deadletter, out(t.deadletter)),
            (t.reviewed, out(t.reviewed)),
        )
        self.app.agent(self.input_topic, name="vigil.input")(self._input_agent)
        self.app.timer(_TICK_SECONDS, name="vigil.tick")(self._tick)
        self.app.timer(COPARTITION_CHECK_S, name="vigil.copartition")(self.check_copartitioned)
        self._admin: Any = None  # for check_copartitioned, made at its first run
        # mode's Signal.connect is typed for plain functions; bound async methods work.
        self.app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        self.core.attach(self)

    def _topic(self, name: str) -> Any:
        return self.app.topic(
            name,
            value_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
            partitions=self.settings.topics.partitions,
        )

    # ------------------------------------------------------------ the agent

    async def _input_agent(self, stream: Any) -> AsyncIterator[None]:
        w = self.settings.worker
        core = self.core
        inference_topic = self.settings.topics.inference
        out = Outgoing()
        inference = core.processor.inference_batch
        label = core.processor.label
        batch_seconds = core.metrics.batch_seconds
        nxt = core.next_offsets
        async for events in stream.take_events(w.batch_size, within=w.batch_within_s):
            if self._failed is not None:
                yield None  # crashing: apply nothing more
                continue
            started = time.perf_counter()
            last: dict[Any, int] = {}
            # Runs of inference messages go through together (as in the batch driver).
            run: list[tuple[bytes, MessageSource]] = []
            for event in events:
                msg = event.message
                source = MessageSource(msg.topic, msg.partition, msg.offset, msg.key)
                value = event.value if event.value is not None else b""
                if msg.topic == inference_topic:
                    run.append((value, source))
                else:
                    if run:
                        inference(run, out)
                        run = []
                    label(value, source, out)
                last[msg.tp] = msg.offset
            if run:
                inference(run, out)
            core.processor.adjudicate_due(out)
            try:
                await self._send(out)
            except Exception as exc:
                await self._fail("handing a batch's output to the producer failed", exc)
                yield None
                continue
            finally:
                out.clear()
            # Faust's TP is a (topic, partition) named tuple: the core's offset keys.
            for tp, offset in last.items():
                if offset >= nxt.get(tp, 0):
                    nxt[tp] = offset + 1
            batch_seconds.observe(time.perf_counter() - started)
            await self._tick()
            yield None

    async def _send(self, out: Outgoing) -> None:
        core = self.core
        seq = core.produced
        # Numbered before the first await: a tick while this awaits may snapshot a model
        # whose state contains the whole batch, and must wait for all of its outputs.
        core.produced += len(out)
        sent = self._sent
        batches: tuple[Sequence[tuple[bytes | None, bytes]], ...] = (
            out.escalations,
            out.alerts,
            out.dead_letters,
            out.reviewed,
        )
        for (name, topic), items in zip(self._outputs, batches, strict=True):
            for key, value in items:
                seq += 1
                fut = await topic.send(key=key, value=value)
                fut.add_done_callback(partial(sent, seq, name))

    def _sent(self, seq: int, topic: str, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.core.lost(f"{topic}: send cancelled")
        elif fut.exception() is not None:
            self.core.lost(f"{topic}: {fut.exception()!r}")
        else:
            self.core.on_delivery(seq, None, None)

    async def _tick(self) -> None:
        """Advance the checkpoint round (after each batch, and on a timer when idle)."""
        if self._waiting or self._failed is not None:
            return
        try:
            self.core.tick()
        except OutputLostError as exc:
            await self._fail("output was not delivered", exc)

    async def check_copartitioned(self) -> None:
        """Check again that the input topics are co-partitioned (a timer, every
        :data:`~streams.kafka.topics.COPARTITION_CHECK_S`; the core checked as the worker
        started): a labels topic created since with another count, or a topic given more
        partitions, crashes the worker with the reason. Faust's assignor gives topics of
        different counts out independently, without a word, so labels would land on the
        wrong workers. A broker that does not answer within 2 s is asked again next time."""
        if self._failed is not None:
            return
        from confluent_kafka import KafkaException

        if self._admin is None:
            self._admin = metadata_admin(self.settings)
        check = partial(check_copartitioned, self._admin, self.settings, timeout=2.0)
        try:
            await asyncio.get_running_loop().run_in_executor(None, check)
        except KafkaException as exc:
            log.warning("checking the input topics' partition counts failed: %s", exc)
        except VigilError as exc:
            await self._fail("the input topics are no longer co-partitioned", exc)

    async def _fail(self, what: str, exc: BaseException) -> None:
        """Stop without saving state or committing: a restarted worker reprocesses the
        uncommitted tail from the last checkpoint, so no output is lost."""
        if self._failed is not None:
            return
        self._failed = exc
        self.core.failed = True
        log.error("%s: %r; stopping without checkpointing or committing", what, exc)
        await self.app.crash(exc)

    # ------------------------------------------------------------ Driver

    def commit(
        self, offsets: Offsets, *, wait: bool, metadata: Mapping[int, str] | None = None
    ) -> None:
        """Without waiting: a task on the loop (a round, from a tick). Waiting: from the
        worker thread of :meth:`_wait_for`, while the loop is free to run it. Commits no
        ``metadata`` (Faust's consumer commits offsets only): the next owner reads the
        checkpoints from the beginning (:meth:`checkpoint_starts`)."""
        if wait:
            self._on_loop(self._commit(offsets, after=self._commit_task))
        else:
            self._commit_task = asyncio.ensure_future(
                self._commit_logged(offsets, after=self._commit_task)
            )

    async def _commit_logged(self, offsets: Offsets, after: asyncio.Future[None] | None) -> None:
        try:
            await self._commit(offsets, after)
        except Exception as exc:
            # Not fatal: the state is checkpointed; messages after the last successful
            # commit are redelivered and skipped by offset.
            log.warning("offset commit failed: %r", exc)

    async def _commit(self, offsets: Offsets, after: asyncio.Future[None] | None) -> None:
        if after is not None:  # commits in the order asked for (it logs its own failure)
            await after
        consumer: Any = self.app.consumer  # the driver-level commit has no public name
        committed = consumer._committed_offset
        assignment = consumer.assignment()
        todo = {}
        for tp, offset in offsets.items():
            before = committed.get(tp)
            if tp in assignment and (before is None or offset > before):
                todo[tp] = offset
        if todo and await consumer._commit(todo):
            committed.update(todo)

    def flush(self, timeout: float) -> None:
        self._on_loop(self._flush(timeout))

    async def _flush(self, timeout: float) -> None:
        await self.app.producer.flush()
        # The delivery callbacks run on the loop after the futures resolve.
        deadline = time.monotonic() + timeout
        core = self.core
        while core.unacknowledged and not core.delivery_errors and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def read_lag(self) -> Lag:
        """(topic, partition, lag) of each assigned partition, from the committed offset."""
        out: Lag = []
        consumer = self._started_consumer  # _committed_offset has no public accessor
        if consumer is None:  # no assignment yet
            return out
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            pos = consumer._committed_offset.get(tp)
            if high is not None and pos is not None:
                out.append((tp.topic, tp.partition, max(0, int(high) - int(pos))))
        return out

    def close(self) -> None:
        """Faust closes its own clients."""

    def checkpoint_starts(self, partitions: set[int]) -> dict[int, int]:
        """None kept on this driver (see :meth:`commit`)."""
        return {}

    def _on_loop(self, coro: Any) -> None:
        """Run ``coro`` on the event loop from the worker thread, and wait for it."""
        if self._loop is None:
            raise VigilError("the Faust driver waited outside of _wait_for")
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(_WAIT_SECONDS)

    async def _wait_for(self, step: Any, *args: Any) -> None:
        """Run a waiting step of the core on a worker thread, ticks paused meanwhile."""
        self._loop = asyncio.get_running_loop()
        self._waiting = True
        try:
            await self._loop.run_in_executor(None, step, *args)
        finally:
            self._waiting = False

    # ------------------------------------------------------------ rebalances

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        # Faust has drained the agent and flushed the producer by now.
        parts = self.core.input_partitions(revoked)
        if parts:
            await self._wait_for(self.core.on_revoked, parts)

    async def _on_rebalance_complete(self, sender: Any = None, **kwargs: Any) -> None:
        # Called by Faust before it resumes fetching the new assignment.
        self._started_consumer = self.app.consumer
        assigned = self.core.input_partitions(self._started_consumer.assignment())
        await self._wait_for(self.core.on_assigned, assigned)

    async def _on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        # The agent is drained and the fetcher stopped; the consumer can still commit.
        await self._wait_for(self.core.shutdown)


def create_app(settings: Settings) -> VigilApp:
    return VigilApp(settings)
