"""Batch ingestion of the input topics with confluent-kafka, run as a Faust service.

Measured on this machine, Faust's per-message path (Event objects, acks, the
aiokafka consumer thread handing messages to the loop) cost several times what
vigil's own validation and monitoring cost per event, and capped a worker at
~4k events/s. :class:`BatchIngest` consumes ``vigil.inference`` and
``vigil.labels`` in one consumer-group member with confluent-kafka, in batches,
hands each message to the same :class:`~streams.processing.Processor` the Faust
agent uses, and publishes with a confluent-kafka producer. Faust still owns the
worker's lifecycle (start, signals, clean stop) through :class:`IngestService`.

Offsets, state and delivery (README, "Delivery guarantee"):

* offsets are committed by vigil only, and only after (1) every output of the
  messages before them was acknowledged by the broker and (2) the state of every
  model those messages touched was checkpointed with the offsets it covers;
* a checkpoint record is produced only once every output of the messages its state
  contains was acknowledged: otherwise a crash could leave a restored state that
  skips (by offset) a message whose escalation never reached the broker;
* none of this waits in steady state (see :class:`_Round`): outputs carry a sequence
  number, delivery reports advance a watermark of acknowledged ones, and a
  checkpoint round snapshots its models a few per batch, sends each record once the
  watermark passes it, and commits asynchronously once everything is acknowledged;
* on assignment (inside confluent-kafka's rebalance callback, before any message
  of the new partitions is returned) the checkpoints of those partitions are
  restored; messages redelivered from before a checkpoint are recognised by offset
  and not applied twice;
* on revocation the worker flushes, checkpoints, commits, then drops the state and
  metric series of the models it gave up; on a lost assignment it drops them
  without committing;
* both inputs are consumed by one member with the range assignor, so partition *p*
  of the labels topic goes to the worker that owns partition *p* of inference.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import mode
from prometheus_client import disable_created_metrics, start_http_server

from streams.config import Settings
from streams.errors import OutputLostError, VigilError
from streams.events.dead_letters import MessageSource
from streams.kafka.checkpoints import (
    Checkpoint,
    CheckpointStore,
    CheckpointWrite,
    encode,
    restore_or_none,
)
from streams.processing.fleet import Fleet
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

__all__ = ["BatchIngest", "BatchWorker", "IngestService"]

log = logging.getLogger(__name__)

#: Snapshot (and encode) models of a checkpoint round for at most about this long per
#: batch (always at least one model): a model with 15k pending label joins takes
#: ~30 ms on this machine, so a round of 10 such models done at once stalled the
#: stream ~300 ms, every checkpoint interval.
SNAPSHOT_BUDGET_S = 0.01


@dataclass(slots=True)
class _Round:
    """One checkpoint in progress, begun at a batch boundary.

    ``offsets`` are the next offsets at the start: every message before them was
    applied to a model in ``todo`` (dirty then) or in an earlier checkpoint, and its
    outputs are among the first ``barrier`` produced. Each model is snapshotted in a
    later batch (so its state covers at least those messages), its record waits in
    ``staged`` with the output count its state depends on, and is sent once those
    outputs are acknowledged. The offsets are committed when nothing is left to
    snapshot or send, every record was acknowledged and so were the first ``barrier``
    outputs.
    """

    offsets: dict[tuple[str, int], int]
    barrier: int
    todo: list[str]
    staged: deque[tuple[int, str, bytes]] = field(default_factory=deque)
    write: CheckpointWrite = field(default_factory=CheckpointWrite)


class BatchIngest:
    """One consumer-group member: consume a batch, process it, publish, checkpoint, commit."""

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        metrics: VigilMetrics,
        processor: Processor,
        checkpoints: CheckpointStore,
        *,
        consumer: Any = None,
        producer: Any = None,
    ) -> None:
        """``consumer`` and ``producer`` replace the confluent-kafka clients (tests)."""
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.fleet = fleet
        self.metrics = metrics
        self.processor = processor
        self.checkpoints = checkpoints
        t = settings.topics
        self.inference_topic = t.inference
        self.inputs = (t.inference, t.labels)
        kafka = settings.kafka.confluent_config()
        if consumer is None:
            consumer = Consumer(
                {
                    **kafka,
                    "group.id": settings.app_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    # Co-partitioning: partition p of both inputs goes to the same member.
                    "partition.assignment.strategy": "range",
                    "session.timeout.ms": 10_000,
                    "heartbeat.interval.ms": 1_000,
                    "max.poll.interval.ms": 300_000,
                    "fetch.max.bytes": 16 * 1024 * 1024,
                    "logger": logging.getLogger("vigil.kafka.consumer"),
                    "error_cb": self._on_client_error,
                    "on_commit": self._on_commit,
                }
            )
        if producer is None:
            producer = Producer(
                {
                    **kafka,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "partitioner": "murmur2_random",
                    "queue.buffering.max.messages": 1_000_000,
                    "logger": logging.getLogger("vigil.kafka.producer"),
                    "error_cb": self._on_client_error,
                }
            )
        self.consumer: Consumer = consumer
        self.producer: Producer = producer
        self._delivery_errors: list[str] = []
        self._produced = 0  # outputs produced; the n-th has sequence number n
        self._acked = 0  # outputs 1.._acked were all acknowledged
        self._acked_ahead: set[int] = set()  # acknowledged out of order, above _acked
        self._round: _Round | None = None
        self._fatal: str | None = None
        self._next: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset
        # Committed offset of an assigned partition not read from yet (for its lag).
        self._start: dict[tuple[str, int], int] = {}
        self._owned: set[int] = set()
        self._last_checkpoint = time.monotonic()
        self._out = Outgoing()
        self._lag: list[tuple[str, int, int]] = []
        self._lag_refreshed = 0.0
        self.closed = False
        self.failed = False  # an output was lost: never checkpoint or commit again

    # ------------------------------------------------------------ the loop

    def start(self) -> None:
        if self.checkpoints.ensure_topic():
            log.info("created checkpoint topic %s", self.checkpoints.topic)
        self.consumer.subscribe(
            list(self.inputs),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _on_client_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        # librdkafka retries everything, wrong credentials included; a worker that cannot
        # authenticate should stop and say so rather than retry silently for ever.
        if err.fatal() or err.code() == KafkaError._AUTHENTICATION:
            self._fatal = f"Kafka authentication or fatal client error: {err.str()}"
        else:
            log.warning("kafka client: %s", err.str())

    def run_once(self, timeout: float = 0.5) -> int:
        """Consume and process one batch; returns the number of messages handled."""
        if self._fatal is not None:
            raise VigilError(self._fatal)
        w = self.settings.worker
        msgs = self.consumer.consume(w.batch_size, timeout)
        started = time.perf_counter()
        out = self._out
        inference = self.processor.inference
        label = self.processor.label
        nxt = self._next
        handled = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise VigilError(f"fatal Kafka consumer error: {err}")
                log.warning("consumer error: %s", err)
                continue
            topic: str = msg.topic()  # type: ignore[assignment]  # set on real messages
            partition: int = msg.partition()  # type: ignore[assignment]
            offset: int = msg.offset()  # type: ignore[assignment]
            source = MessageSource(topic, partition, offset, msg.key())
            value = msg.value() or b""
            if topic == self.inference_topic:
                inference(value, source, out)
            else:
                label(value, source, out)
            nxt[(topic, partition)] = offset + 1
            handled += 1
        if len(out):
            self._publish(out)
            out.clear()
        self.producer.poll(0)
        if self._delivery_errors:
            self._output_lost(0)
        if handled:
            self.metrics.batch_seconds.observe(time.perf_counter() - started)
        now = time.monotonic()
        if now - self._lag_refreshed >= 1.0:
            self._refresh_lag()
        if self._round is None and now - self._last_checkpoint >= w.checkpoint_interval_s:
            self._begin_round()
        if self._round is not None:
            try:
                self._advance_round(self._round)
            except Exception:
                # Kept dirty and uncommitted: retried at the next interval; after a crash
                # the uncommitted tail is reprocessed from the last checkpoint.
                self._abandon_round()
                log.exception("checkpoint failed; retrying at the next interval")
        return handled

    def _publish(self, out: Outgoing) -> None:
        t = self.settings.topics
        produce = self.producer.produce
        on_delivery = self._on_delivery
        for topic, items in (
            (t.escalations, out.escalations),
            (t.alerts, out.alerts),
            (t.deadletter, out.dead_letters),
        ):
            for key, value in items:
                self._produced += 1
                report = partial(on_delivery, self._produced)
                while True:
                    try:
                        produce(topic, value=value, key=key, on_delivery=report)
                        break
                    except BufferError:
                        self.producer.poll(0.05)

    def _on_delivery(self, seq: int, err: Any, msg: Any) -> None:
        if err is not None:
            # The watermark never passes a lost output: nothing after it is checkpointed.
            self._delivery_errors.append(f"{msg.topic()}: {err}")
            return
        if seq != self._acked + 1:
            self._acked_ahead.add(seq)
            return
        self._acked = seq
        ahead = self._acked_ahead
        while ahead and self._acked + 1 in ahead:
            self._acked += 1
            ahead.remove(self._acked)

    def _on_commit(self, err: Any, partitions: list[Any]) -> None:
        if err is not None:
            # Not fatal: the state is checkpointed; messages after the last successful
            # commit are redelivered and skipped by offset.
            log.warning("offset commit failed: %s", err)

    def _output_lost(self, pending: int) -> None:
        self.failed = True
        self._round = None
        raise OutputLostError(
            f"outputs not delivered ({pending} pending; errors: {self._delivery_errors[:5]})"
        )

    # ------------------------------------------------------------ checkpoints

    def _begin_round(self) -> None:
        self._last_checkpoint = time.monotonic()
        dirty = [model_id for model_id, state in self.fleet.items() if state.dirty]
        self._round = _Round(dict(self._next), self._produced, dirty)

    def _advance_round(self, r: _Round) -> None:
        """Snapshot a few models, send the records whose outputs are acknowledged, and
        commit once the round is complete. Called after each batch, never waits."""
        if self.failed:
            return
        deadline = time.perf_counter() + SNAPSHOT_BUDGET_S
        while r.todo:
            model_id = r.todo.pop()
            state = self.fleet.peek(model_id)
            if state is None or not state.dirty:  # dropped, or checkpointed since
                continue
            snapshot = state.snapshot()
            # Encoded now: the snapshot may share objects with the live state.
            value = encode(
                Checkpoint(model_id, state.partition, dict(state.offsets), snapshot, time.time())
            )
            state.dirty = False
            r.staged.append((self._produced, model_id, value))
            if time.perf_counter() >= deadline:
                break
        while r.staged and r.staged[0][0] <= self._acked:
            _, model_id, value = r.staged.popleft()
            self.checkpoints.send(model_id, value, r.write)
        if r.write.sent:
            self.checkpoints.poll()
        if r.todo or r.staged or not r.write.done or self._acked < r.barrier:
            return
        self._round = None
        if r.write.failed:
            self._redirty(r.write)
            model_id, err = next(iter(r.write.failed.items()))
            log.error(
                "checkpoint write failed (%d of %d records, e.g. %r: %s); nothing "
                "committed, retrying at the next interval",
                len(r.write.failed),
                len(r.write.sent),
                model_id,
                err,
            )
            return
        self._commit_offsets(r.offsets, asynchronous=True)

    def _redirty(self, write: CheckpointWrite) -> None:
        """Models whose record failed are written again by the next checkpoint."""
        for model_id in write.failed:
            state = self.fleet.peek(model_id)
            if state is not None:
                state.dirty = True

    def _abandon_round(self) -> None:
        """Drop the round in progress without committing.

        Every model it snapshotted must end up either written or dirty again: staged
        records are sent once their outputs are acknowledged (the caller flushed them,
        or they are re-dirtied), and what was sent is waited for, so that a failure is
        not reported after nobody looks.
        """
        r = self._round
        if r is None:
            return
        self._round = None
        for seq, model_id, value in r.staged:
            if seq <= self._acked and not self.failed:
                self.checkpoints.send(model_id, value, r.write)
            else:
                state = self.fleet.peek(model_id)
                if state is not None:
                    state.dirty = True
        if r.write.sent:
            left = self.checkpoints.flush(30)
            if left:
                # Unknown fate: write them again (a duplicate record is harmless).
                for model_id in r.write.sent:
                    state = self.fleet.peek(model_id)
                    if state is not None:
                        state.dirty = True
        self._redirty(r.write)

    def checkpoint(self, partitions: set[int] | None = None, commit: bool = True) -> int:
        """Flush outputs, write the dirty states (of ``partitions``), commit their offsets,
        waiting for each step: on revocation and at close. Steady state uses rounds.

        Raises :class:`OutputLostError` if any output failed delivery: from then on this
        ingest never checkpoints or commits again, so a restarted worker consumes those
        messages again. A failed checkpoint write raises too, with nothing committed and
        the states still dirty (the caller retries at the next interval).
        """
        if self.failed:
            return 0
        self._last_checkpoint = time.monotonic()
        left = self.producer.flush(60)
        if left or self._delivery_errors:
            self._output_lost(left)
        self._abandon_round()
        dirty = [
            (model_id, state)
            for model_id, state in self.fleet.items()
            if state.dirty and (partitions is None or state.partition in partitions)
        ]
        if dirty:
            now = time.time()
            self.checkpoints.write(
                Checkpoint(model_id, s.partition, dict(s.offsets), s.snapshot(), now)
                for model_id, s in dirty
            )
            for _, state in dirty:
                state.dirty = False
        if commit:
            self._commit(partitions)
        return len(dirty)

    def _commit(self, partitions: set[int] | None) -> None:
        offsets = {
            tp: o for tp, o in self._next.items() if partitions is None or tp[1] in partitions
        }
        self._commit_offsets(offsets, asynchronous=False)

    def _commit_offsets(self, offsets: dict[tuple[str, int], int], asynchronous: bool) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        if not offsets:
            return
        tps = [TopicPartition(topic, p, o) for (topic, p), o in offsets.items()]
        try:
            if asynchronous:  # the outcome is logged by _on_commit
                self.consumer.commit(offsets=tps, asynchronous=True)
            else:
                self.consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # Not fatal: the state is checkpointed; messages after the last successful
            # commit are redelivered and skipped by offset.
            log.warning("offset commit failed: %s", exc)

    # ------------------------------------------------------------ rebalances

    def _partitions(self, tps: Iterable[Any]) -> set[int]:
        return {tp.partition for tp in tps if tp.topic in self.inputs}

    def _on_assign(self, consumer: Any, tps: list[Any]) -> None:
        parts = self._partitions(tps)
        new = parts - self._owned
        if new:
            started = time.perf_counter()
            found = self.checkpoints.read(new)
            for model_id, cp in found.items():
                if model_id not in self.fleet:
                    state = restore_or_none(model_id, cp)
                    if state is not None:
                        self.fleet.put(model_id, state)
            log.info(
                "assigned partitions %s: restored %d model checkpoints in %.3f s",
                sorted(new),
                len(found),
                time.perf_counter() - started,
            )
        self._owned |= parts

    def _on_revoke(self, consumer: Any, tps: list[Any]) -> None:
        parts = self._partitions(tps)
        if not parts or self.failed:
            return
        try:
            n = self.checkpoint(parts)
        except Exception:
            log.exception(
                "checkpoint on revocation failed: the next owner restarts from the "
                "last checkpoint and redelivered messages"
            )
            n = 0
        dropped = self._drop(parts)
        log.info(
            "revoked partitions %s: checkpointed %d models, dropped %d", sorted(parts), n, dropped
        )

    def _on_lost(self, consumer: Any, tps: list[Any]) -> None:
        parts = self._partitions(tps)
        r, self._round = self._round, None
        if r is not None:
            # Commit nothing of it and send nothing more (the partitions may have a new
            # owner already); what it snapshotted or sent is written again if still ours.
            for model_id in [m for _, m, _ in r.staged] + r.write.sent:
                state = self.fleet.peek(model_id)
                if state is not None:
                    state.dirty = True
        dropped = self._drop(parts)
        log.warning("lost partitions %s (no commit): dropped %d models", sorted(parts), dropped)

    def _drop(self, parts: set[int]) -> int:
        n = 0
        for model_id, state in self.fleet.items():
            if state.partition in parts:
                self.fleet.pop(model_id)
                self.metrics.forget_model(model_id)
                n += 1
        for key in [k for k in self._next if k[1] in parts]:
            del self._next[key]
        for key in [k for k in self._start if k[1] in parts]:
            del self._start[key]
        self._owned -= parts
        return n

    def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, messages behind the log end), as of the last refresh.

        Read by the metrics thread: the consumer itself must not be called from there
        (a call blocks while ``consume`` runs on the ingest thread), so the ingest
        thread refreshes this list about once a second.
        """
        return self._lag

    def _refresh_lag(self) -> None:
        """Lag of every assigned partition, including one this worker has read nothing
        from yet (idle, or fully read by its previous owner): from its committed offset,
        asked once per assignment, else the log start (``auto.offset.reset`` is earliest).
        """
        self._lag_refreshed = time.monotonic()
        out = []
        try:
            assignment = self.consumer.assignment()
            unread = [
                tp
                for tp in assignment
                if (tp.topic, tp.partition) not in self._next
                and (tp.topic, tp.partition) not in self._start
            ]
            if unread:
                for tp in self.consumer.committed(unread, timeout=2.0):
                    self._start[(tp.topic, tp.partition)] = tp.offset  # < 0: none committed
            for tp in assignment:
                key = (tp.topic, tp.partition)
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                pos = self._next.get(key)
                if pos is None:
                    pos = self._start.get(key, -1)
                    if pos < 0:
                        pos = low
                if high >= 0 and pos >= 0:
                    out.append((tp.topic, tp.partition, max(0, high - pos)))
        except Exception:  # rebalancing: keep the last reading
            return
        self._lag = out

    def close(self) -> None:
        """Final checkpoint and commit, then leave the group."""
        if self.closed:
            return
        self.closed = True
        try:
            self.checkpoint()
        except Exception:
            log.exception("final checkpoint failed")
        self.consumer.close()  # revokes (nothing left to save) and leaves the group
        self.producer.flush(30)
        self.checkpoints.close()


class IngestService:
    """Runs :class:`BatchIngest` on a dedicated thread for the life of the Faust app.

    The loop is blocking C calls (consume, produce, flush) plus vigil's processing; a
    thread of its own keeps Faust's event loop free and its rebalance callbacks run
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
            # A batch is whatever arrived within batch_within_s (or batch_size messages):
            # waiting longer for a full batch only adds latency at moderate rates.
            within = self.ingest.settings.worker.batch_within_s
            while not self._stop.is_set():
                self.ingest.run_once(within)
        except BaseException as exc:
            self.error = exc
            log.exception("ingest loop crashed")
        finally:
            self.ingest.close()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def watch(self, app: Any) -> None:
        """Crash the Faust app (so the worker exits non-zero) if the loop dies."""
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
        disable_created_metrics()
        # Evicting a model's state (beyond max_tracked_models) keeps its metric series:
        # counters must keep adding up, and max_models already bounds the series.
        self.fleet = Fleet(settings)
        self.metrics = VigilMetrics(
            max_models=settings.worker.max_models,
            readings=self.fleet.readings,
            consumer_lag=self._lag,
        )
        self.processor = Processor(settings, self.metrics, self.fleet)
        self.ingest: BatchIngest | None = None
        self.runner: IngestService | None = None

    def _lag(self) -> list[tuple[str, int, int]]:
        return self.ingest.lag() if self.ingest is not None else []

    async def on_start(self) -> None:
        w = self.settings.worker
        start_http_server(w.metrics_port, addr=w.metrics_host, registry=self.metrics.registry)
        log.info("metrics at http://%s:%d/metrics", w.metrics_host, w.metrics_port)
        self.ingest = BatchIngest(
            self.settings, self.fleet, self.metrics, self.processor, CheckpointStore(self.settings)
        )
        self.runner = IngestService(self.ingest)
        # The start-up heap (Faust, mode, aiokafka, config, ...) lives as long as the
        # process: out of the cyclic GC's sight, a full collection no longer pauses the
        # ingest thread for it (~100 ms each on this machine).
        gc.collect()
        gc.freeze()
        self.runner.start()
        self.add_future(self.runner.watch(self))

    async def on_stop(self) -> None:
        if self.runner is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.runner.stop)
