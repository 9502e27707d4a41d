"""The confluent-kafka driver: batch ingestion of the input topics, run as a mode service.

Measured on this machine, Faust's per-message path (Event objects, acks, the
aiokafka consumer thread handing messages to the loop) cost several times what
vigil's own validation and monitoring cost per event, and capped a worker at
~4k events/s. :class:`BatchIngest` consumes ``vigil.inference`` and
``vigil.labels`` in one consumer-group member with confluent-kafka, in batches,
hands each message to the :class:`~streams.processing.Processor` of its
:class:`~streams.ingest.core.IngestCore`, and publishes with a confluent-kafka
producer. mode (Faust's service runtime) owns the worker's lifecycle (start, signals,
clean stop) through :class:`BatchWorker` and :class:`IngestService`.

This module only moves messages: the delivery guarantee (which offsets may be
committed when, checkpoints, restore and drop on rebalances, lag, shutdown) is the
core's; see :mod:`streams.ingest.core`. What is particular to this client:

* outputs are numbered as they are produced and each delivery report is bound to its
  number; ``producer.poll`` after each batch serves the reports;
* rebalance callbacks run inside ``consume``, on the ingest thread, so restore (on
  assignment) happens before any message of the new partitions is returned, and
  never interleaves with a batch;
* the group assigns the inference topic alone, cooperative-sticky: a rebalance revokes
  only the partitions that change owner, and the others are processed throughout;
* partition *p* of the labels topic follows partition *p* of inference (the label join
  is in memory per model): the member assigns it to itself, next to the group's
  partition, and commits its offsets with inference's (see :meth:`BatchIngest._on_assign`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import mode

from streams.config import Settings
from streams.errors import InstanceFencedError, VigilError
from streams.events.dead_letters import MessageSource
from streams.gc_pause import gc_paused
from streams.gc_policy import settle_collector
from streams.ingest.core import IngestCore, Lag, Offsets
from streams.kafka.checkpoints import start_from_metadata
from streams.kafka.topics import COPARTITION_CHECK_S, check_copartitioned
from streams.processing.processor import Outgoing

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message

__all__ = [
    "BatchIngest",
    "BatchWorker",
    "IngestService",
    "consume_arrived",
    "consumer_config",
    "producer_config",
    "static_membership",
]

log = logging.getLogger(__name__)


def static_membership(settings: Settings) -> dict[str, str]:
    """librdkafka's ``group.instance.id`` when ``worker.instance_id`` is set, else nothing
    (dynamic membership). A static member that restarts within the session timeout
    rejoins with its previous assignment and the other members are not rebalanced; it
    does not leave the group on close either, so its partitions wait for it (or for the
    session timeout) rather than move at once."""
    instance_id = settings.worker.instance_id
    return {} if instance_id is None else {"group.instance.id": instance_id}


def consumer_config(settings: Settings) -> dict[str, Any]:
    """The worker's confluent-kafka consumer settings, callbacks aside: manual commits
    (the core commits what its checkpoints cover), cooperative-sticky assignment,
    static membership when configured. ``benchmarks/baselines/bare_relay.py`` reads its
    events with these too."""
    return {
        **settings.kafka.confluent_config(),
        "group.id": settings.app_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Incremental rebalances of the inference topic; labels follow (_on_assign).
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": round(settings.worker.session_timeout_s * 1000),
        "heartbeat.interval.ms": 1_000,
        **static_membership(settings),
        "max.poll.interval.ms": 300_000,
        "fetch.max.bytes": 16 * 1024 * 1024,
    }


def producer_config(settings: Settings) -> dict[str, Any]:
    """The worker's confluent-kafka producer settings for its outputs, callbacks aside:
    idempotent, acknowledged by every in-sync replica, 5 ms batches, lz4."""
    return {
        **settings.kafka.confluent_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 1_000_000,
    }


def consume_arrived(consumer: Consumer, size: int, timeout: float) -> list[Message]:
    """The messages that have arrived, up to ``size``, at once; only a consumer with
    nothing to read waits, up to ``timeout``, for the first one (librdkafka's
    ``consume`` waits for a whole batch until its timeout: at moderate rates every
    batch waited the timeout)."""
    msgs = consumer.consume(size, 0)
    if not msgs:
        msgs = consumer.consume(1, timeout)
        if msgs and size > 1:
            msgs += consumer.consume(size - 1, 0)
    return msgs


class BatchIngest:
    """One consumer-group member: consume a batch, process it, publish; the core does the
    rest (it is this driver's :class:`~streams.ingest.core.Driver`)."""

    def __init__(self, core: IngestCore, *, consumer: Any = None, producer: Any = None) -> None:
        """``consumer`` and ``producer`` replace the confluent-kafka clients (tests)."""
        from confluent_kafka import Consumer, Producer

        self.core = core
        settings = core.settings
        self.settings = settings
        t = settings.topics
        self.inference_topic = t.inference
        self.labels_topic = t.labels
        if consumer is None:
            consumer = Consumer(
                {
                    **consumer_config(settings),
                    "logger": logging.getLogger("vigil.kafka.consumer"),
                    "error_cb": self._on_client_error,
                    "on_commit": self._on_commit,
                }
            )
        if producer is None:
            producer = Producer(
                {
                    **producer_config(settings),
                    "logger": logging.getLogger("vigil.kafka.producer"),
                    "error_cb": self._on_client_error,
                }
            )
        self.consumer: Consumer = consumer
        self.producer: Producer = producer
        self._fatal: str | None = None
        # Committed offset of an assigned partition not read from yet (for its lag).
        self._start: dict[tuple[str, int], int] = {}
        self._owned: set[int] = set()  # the inference partitions the group gave us
        # Partitions given up (revoked or lost) during the current batch's consume: a
        # message of theirs consumed before the callback is left to the new owner.
        self._gone: set[int] = set()
        self.copartition_check_s = COPARTITION_CHECK_S
        self._copartition_checked = time.monotonic()
        self._out = Outgoing()
        core.attach(self)

    # ------------------------------------------------------------ the loop

    def start(self) -> None:
        """Join the group for the inference topic alone (labels follow its partitions:
        :meth:`_on_assign`; that the inputs are co-partitioned the core checked as it
        started, and :meth:`run_once` checks again once a minute)."""
        self.consumer.subscribe(
            [self.inference_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _on_client_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        # librdkafka retries everything, wrong credentials included; a worker that cannot
        # authenticate should stop and say so rather than retry silently for ever.
        if err.code() == KafkaError._FENCED:
            # Another worker joined with this worker's instance id: two workers share it.
            self._fatal = str(InstanceFencedError(self.settings.worker.instance_id, err.str()))
        elif err.fatal() or err.code() == KafkaError._AUTHENTICATION:
            self._fatal = f"Kafka authentication or fatal client error: {err.str()}"
        else:
            log.warning("kafka client: %s", err.str())

    def run_once(self, timeout: float = 0.5) -> int:
        """Consume and process one batch, the messages that have arrived (up to
        ``worker.batch_size``; waiting up to ``timeout`` only when none has); returns the
        number of messages handled."""
        if self._fatal is not None:
            raise VigilError(self._fatal)
        if time.monotonic() - self._copartition_checked >= self.copartition_check_s:
            from confluent_kafka import KafkaException

            self._copartition_checked = time.monotonic()
            try:
                check_copartitioned(self.consumer, self.settings, timeout=2.0)
            except KafkaException as exc:  # unanswered: asked again at the next interval
                log.warning("checking the input topics' partition counts failed: %s", exc)
        self._gone = set()
        msgs = consume_arrived(self.consumer, self.settings.worker.batch_size, timeout)
        gone = self._gone
        started = time.perf_counter()
        out = self._out
        core = self.core
        inference = core.processor.inference_batch
        label = core.processor.label
        nxt = core.next_offsets
        handled = 0
        # Runs of inference messages go through together (columnar drift work per
        # model); a label between them is handled in its place, after the events
        # before it, as consumed.
        run: list[tuple[bytes, MessageSource]] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    self._on_client_error(err)
                    raise VigilError(self._fatal or f"fatal Kafka consumer error: {err}")
                log.warning("consumer error: %s", err)
                continue
            topic: str = msg.topic()  # type: ignore[assignment]  # set on real messages
            partition: int = msg.partition()  # type: ignore[assignment]
            if gone and partition in gone:
                # Given up while this batch was consumed (its rebalance callback ran
                # inside a later consume call): not processed here, nor committed, so
                # its new owner reads it from the committed offset.
                continue
            offset: int = msg.offset()  # type: ignore[assignment]
            source = MessageSource(topic, partition, offset, msg.key())
            value = msg.value() or b""
            if topic == self.inference_topic:
                run.append((value, source))
            else:
                if run:
                    inference(run, out)
                    run = []
                label(value, source, out)
            nxt[(topic, partition)] = offset + 1
            handled += 1
        if run:
            inference(run, out)
        core.processor.adjudicate_due(out)
        if len(out):
            self._publish(out)
            out.clear()
        self.producer.poll(0)
        if handled:
            core.metrics.batch_seconds.observe(time.perf_counter() - started)
        core.tick()
        return handled

    def _publish(self, out: Outgoing) -> None:
        t = self.settings.topics
        produce = self.producer.produce
        core = self.core
        on_delivery = core.on_delivery
        seq = core.produced
        for topic, items in (
            (t.escalations, out.escalations),
            (t.alerts, out.alerts),
            (t.deadletter, out.dead_letters),
            (t.reviewed, out.reviewed),
        ):
            for key, value in items:
                # Counted before it is produced: one that fails to be (an exception here
                # stops the loop) is never acknowledged, so nothing after it is committed.
                seq += 1
                core.produced = seq
                report = partial(on_delivery, seq)
                while True:
                    try:
                        produce(topic, value=value, key=key, on_delivery=report)
                        break
                    except BufferError:
                        self.producer.poll(0.05)

    def _on_commit(self, err: Any, partitions: list[Any]) -> None:
        if err is not None:
            # Not fatal: the state is checkpointed; messages after the last successful
            # commit are redelivered and skipped by offset.
            log.warning("offset commit failed: %s", err)

    # ------------------------------------------------------------ Driver

    def commit(
        self, offsets: Offsets, *, wait: bool, metadata: Mapping[int, str] | None = None
    ) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        meta = metadata or {}
        tps = [
            TopicPartition(topic, p, o, meta[p]) if p in meta else TopicPartition(topic, p, o)
            for (topic, p), o in offsets.items()
        ]
        try:
            if wait:
                self.consumer.commit(offsets=tps, asynchronous=False)
            else:  # the outcome is logged by _on_commit
                self.consumer.commit(offsets=tps, asynchronous=True)
        except KafkaException as exc:
            # Not fatal: the state is checkpointed; messages after the last successful
            # commit are redelivered and skipped by offset.
            log.warning("offset commit failed: %s", exc)

    def flush(self, timeout: float) -> None:
        self.producer.flush(timeout)

    def checkpoint_starts(self, partitions: set[int]) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(topic, p) for topic in self.core.inputs for p in sorted(partitions)]
        found: dict[int, int] = {}
        for tp in self.consumer.committed(tps, timeout=10.0):
            start = start_from_metadata(tp.metadata) if tp.error is None else None
            # Every start ever committed stays right (a model's newest record only moves
            # on), so the latest, the largest, is taken.
            if start is not None:
                found[tp.partition] = max(start, found.get(tp.partition, start))
        return found

    def read_lag(self) -> Lag:
        """Lag of every assigned partition, including one this worker has read nothing
        from yet (idle, or fully read by its previous owner): from its committed offset,
        asked once per assignment, else the log start (``auto.offset.reset`` is earliest).
        """
        out = []
        nxt = self.core.next_offsets
        assignment = self.consumer.assignment()
        unread = [
            tp
            for tp in assignment
            if (tp.topic, tp.partition) not in nxt and (tp.topic, tp.partition) not in self._start
        ]
        if unread:
            for tp in self.consumer.committed(unread, timeout=2.0):
                self._start[(tp.topic, tp.partition)] = tp.offset  # < 0: none committed
        for tp in assignment:
            key = (tp.topic, tp.partition)
            low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            pos = nxt.get(key)
            if pos is None:
                pos = self._start.get(key, -1)
                if pos < 0:
                    pos = low
            if high >= 0 and pos >= 0:
                out.append((tp.topic, tp.partition, max(0, high - pos)))
        return out

    def close(self) -> None:
        self.consumer.close()  # revokes (nothing left to save) and leaves the group
        self.producer.flush(30)

    # ------------------------------------------------------------ rebalances

    def _with_labels(self, tps: list[Any]) -> list[Any]:
        """``tps`` (inference partitions) and the labels partitions that follow them."""
        from confluent_kafka import TopicPartition

        return [*tps, *(TopicPartition(self.labels_topic, tp.partition) for tp in tps)]

    def _on_assign(self, consumer: Any, tps: list[Any]) -> None:
        # Incremental (cooperative-sticky): ``tps`` are the inference partitions added to
        # this member, possibly none. Their labels partitions are assigned with them, from
        # the group's committed offsets (which this member commits for both topics); a
        # labels topic not created yet is read once it is. Their checkpoints are restored
        # here, before consume returns any of their messages.
        consumer.incremental_assign(self._with_labels(tps))
        if not tps:
            return
        self._start.clear()  # asked again, once, for the lag of unread partitions
        self._owned |= {tp.partition for tp in tps}
        self.core.on_assigned(set(self._owned))

    def _on_revoke(self, consumer: Any, tps: list[Any]) -> None:
        # Only the partitions that change owner: checkpointed and committed (both topics)
        # before they are given up; the others go on being processed.
        self._give_up(consumer, tps, self.core.on_revoked)

    def _on_lost(self, consumer: Any, tps: list[Any]) -> None:
        self._give_up(consumer, tps, self.core.on_lost)

    def _give_up(self, consumer: Any, tps: list[Any], step: Callable[[set[int]], None]) -> None:
        """Let the core ``step`` (revoked or lost) the inference partitions ``tps``, then
        unassign them and the labels partitions that follow them."""
        parts = {tp.partition for tp in tps}
        self._gone |= parts
        step(parts)
        consumer.incremental_unassign(self._with_labels(tps))
        self._owned -= parts


class IngestService:
    """Runs :class:`BatchIngest` on a dedicated thread for the life of the mode service.

    The loop is blocking C calls (consume, produce, flush) plus vigil's processing; a
    thread of its own keeps mode's event loop free and its rebalance callbacks run
    on the same thread as processing, so they never interleave with a batch.
    """

    def __init__(self, ingest: BatchIngest) -> None:
        self.ingest = ingest
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.ingest.start()
        self._thread = threading.Thread(target=self._run, name="vigil-ingest", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            # A batch is what has arrived (run_once); batch_within_s bounds an idle wait.
            within = self.ingest.settings.worker.batch_within_s
            run_once = self.ingest.run_once
            while not self._stop.is_set():
                # The cyclic collector is off for the whole cycle (consume, process,
                # publish, checkpoint round) and runs after it, once the batch's
                # messages, events and outputs are freed: paused only around the
                # processing, its first collection found them still held here and
                # moved them to older generations (a worker at full load, first 45 s of
                # one probe run each: 23 full collections and 2.9 s in the collector,
                # against 5 and 1.2 s).
                with gc_paused():
                    run_once(within)
        except BaseException as exc:
            self.error = exc
            log.exception("ingest loop crashed")
        finally:
            self.ingest.core.shutdown()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def watch(self, app: Any) -> None:
        """Crash the service (so the worker exits non-zero) if the loop dies."""
        while not self._stop.is_set():
            if not self.alive:
                await app.crash(self.error or VigilError("ingest loop stopped"))
                return
            await asyncio.sleep(0.5)


class BatchWorker(mode.Service):
    """A worker process with batch ingestion, as a mode service (Faust's service runtime):
    ``mode.Worker`` gives it signal handling, a clean stop, and exit code 1 on a crash."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.core = IngestCore(settings)
        self.runner: IngestService | None = None

    async def on_start(self) -> None:
        self.core.start()
        self.runner = IngestService(BatchIngest(self.core))
        settle_collector()  # start-up heap frozen, full collections rare
        self.runner.start()
        self.add_future(self.runner.watch(self))

    async def on_stop(self) -> None:
        if self.runner is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.runner.stop)
