"""The ingest core: what a worker guarantees, whichever Kafka client moves its messages.

Both drivers, :mod:`streams.ingest.batch` (confluent-kafka) and
:mod:`streams.ingest.faust_app` (Faust), only move messages: they poll, hand each message
to :attr:`IngestCore.processor`, produce what it returns, and commit the offsets this
core gives them. Everything else is here, once: the wiring (fleet, metrics, processor,
checkpoint store), restore on assignment, drop on revocation, the checkpoint round →
commit protocol, consumer lag, and shutdown. The driver's side is :class:`Driver`.

Offsets, state and delivery (README, "Delivery guarantee"):

* offsets are committed by vigil only, and only after (1) every output of the
  messages before them was acknowledged by the broker and (2) the state of every
  model those messages touched was checkpointed with the offsets it covers;
* a checkpoint record is produced only once every output of the messages its state
  contains was acknowledged: otherwise a crash could leave a restored state that
  skips (by offset) a message whose escalation never reached the broker;
* none of this waits in steady state (see :class:`_Round`): the driver numbers its
  outputs (:attr:`IngestCore.produced`), delivery reports advance a watermark of
  acknowledged ones (:meth:`IngestCore.on_delivery`), and a checkpoint round
  snapshots and pickles its models a few per batch, compresses each record on a thread
  of its own, sends it once the watermark passes it, and has the driver commit without
  waiting once everything is acknowledged;
* an output that was not delivered stops the worker for good: nothing is checkpointed
  or committed after it, so a restarted worker reprocesses from the last checkpoint;
* on assignment the checkpoints of the new partitions are restored before any of
  their messages is processed; messages redelivered from before a checkpoint are
  recognised by offset and not applied twice;
* on revocation and at shutdown the worker flushes, checkpoints and commits, waiting
  for each step, then drops the state and metric series of the models it gave up; on
  a lost assignment it drops them without committing. A driver whose rebalances are
  incremental (the batch driver: cooperative-sticky) is only ever revoked the
  partitions that change owner; one whose rebalances are eager (Faust) is revoked
  everything and restores what comes back from its checkpoints.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, disable_created_metrics

from detectors.sensitivity import preload_root_finder
from streams.config import Settings
from streams.errors import OutputLostError, VigilError
from streams.gc_pause import gc_paused
from streams.ingest.liveness import Liveness
from streams.ingest.worker_http import serve_worker_http
from streams.kafka.checkpoints import (
    Checkpoint,
    CheckpointStore,
    CheckpointWrite,
    compress,
    pickled,
    restore_or_none,
    start_metadata,
)
from streams.kafka.topics import check_copartitioned, metadata_admin
from streams.processing.fleet import Fleet
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Processor
from streams.processing.runtime_metrics import GcPauses, register_runtime_metrics

__all__ = ["Driver", "IngestCore", "Lag", "Offsets"]

log = logging.getLogger(__name__)

#: (topic, partition) -> the next offset to read: every message before it was processed.
Offsets = dict[tuple[str, int], int]
#: (topic, partition, messages behind the log end) of each assigned input partition.
Lag = list[tuple[str, int, int]]

#: Snapshot (and pickle) models of a checkpoint round for at most about this long per
#: batch (always at least one model): a model with 15k pending label joins took
#: ~30 ms on this machine when every entry was pickled again each round (~10 ms with a
#: full review desk too since they are pickled once per chunk, see
#: :mod:`streams.processing.sealed_rows`, ~4 ms since removals are noted as they are
#: made), so a round of 10 such models done at once stalled the stream ~300 ms, every
#: checkpoint interval. 10 ms let 2-4 of today's models into one batch at 5k events/s
#: (10-18 ms stalls, probed); 4 ms keeps a batch to about one (shorter stalls, as many;
#: in two alternated latency pairs the p99 difference was within this machine's noise).
#: Their compression does not count: it runs on the core's compression thread (see
#: :class:`_Round`).
SNAPSHOT_BUDGET_S = 0.004
#: Share of the ingest thread's time a checkpoint round's snapshots may take: after a
#: batch's snapshots took ``d`` seconds, the next batch snapshots nothing until
#: ``d / SNAPSHOT_DUTY`` seconds after they began. Back to back, a round of 10 models
#: whose review desks and label joins are full (~25 ms each when idle, 40-95 ms each
#: under load, before their entries were pickled once per chunk) stopped the stream
#: for ~0.5 s every checkpoint interval; the batches
#: queued meanwhile held the p99 latency at 5k events/s near 280 ms (probed: every
#: cycle over 130 ms was in a round). Spread out, each stall is worked off before the
#: next; a round takes about ``1 / SNAPSHOT_DUTY`` times its snapshots' time (~1-2 s
#: for those 10 models, within the default 5 s interval: a round still due when the
#: interval ends starts the next one as soon as it completes).
SNAPSHOT_DUTY = 0.2
#: An idle model's checkpoint is written again once its partition has had this many
#: records per model since it (about as many rounds in which every model changed).
IDLE_REWRITE_RECORDS = 4
#: How often the lag is read from the consumer (see :meth:`IngestCore.lag`).
LAG_REFRESH_S = 1.0
#: How long revocation and shutdown wait for the outputs to be acknowledged.
FLUSH_TIMEOUT_S = 60.0
#: How long an abandoned round waits for the checkpoint records it sent.
ABANDON_TIMEOUT_S = 30.0


class Driver(Protocol):
    """What the core asks of the client that moves the messages."""

    def commit(
        self, offsets: Offsets, *, wait: bool, metadata: Mapping[int, str] | None = None
    ) -> None:
        """Commit these next offsets; ``wait=False`` returns at once (a round's commit).
        ``metadata``: per partition number, the commit metadata of its offsets (where its
        checkpoints start, :func:`~streams.kafka.checkpoints.start_metadata`); a driver
        that cannot commit metadata ignores it."""

    def flush(self, timeout: float) -> None:
        """Hand every output to the broker and serve the delivery reports, waiting up to
        ``timeout`` seconds (revocation and shutdown)."""

    def read_lag(self) -> Lag:
        """The consumer's lag now; may raise while the consumer rebalances."""

    def close(self) -> None:
        """Close the clients, after the final checkpoint and commit."""

    def checkpoint_starts(self, partitions: set[int]) -> dict[int, int]:
        """Per partition among ``partitions``, the checkpoint read start committed with
        its input offsets (the largest over the input topics: each start, once right,
        stays right); a partition without one is absent (its checkpoints are read from
        the beginning). Called from the rebalance handlers."""


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

    A record is pickled on the ingest thread (the snapshot may share objects with the
    live state) and compressed on the core's compression thread, the job waiting in
    ``staged``: compressing a model whose review desk remembers thousands of escalation
    records took most of its checkpoint's time (tens of ms: a stall of the stream, and
    the p99 latency at moderate rates), and cramjam's zstd releases the GIL. (Sealed
    chunks are compressed once, when sealed, and appended to each record as they are:
    :mod:`streams.processing.frames`.) Records are sent in the order they were staged.
    """

    offsets: Offsets
    barrier: int
    todo: list[str]
    #: (output count, model id, its input partition, the compression job)
    staged: deque[tuple[int, str, int, Future[bytes]]] = field(default_factory=deque)
    write: CheckpointWrite = field(default_factory=CheckpointWrite)
    #: The core's clock reading before which no further model is snapshotted
    #: (:data:`SNAPSHOT_DUTY`).
    next_snapshot: float = float("-inf")


#: The nice value of the checkpoint compression thread (Linux: per thread; 0 is the
#: default). The ingest thread and the broker come first on a busy machine: probed at 5k
#: events/s on two cores, batches processed during a round took up to 4x their usual
#: time per event, with the round's compressions (~20 ms of zstd per model with full
#: review desks) and the broker's writes of its records competing for the cores.
#: A round's records wait for their compression either way; no event does.
COMPRESS_NICE = 10


def yield_cpu() -> None:
    """Lower the calling thread's CPU priority to :data:`COMPRESS_NICE` (a thread pool's
    initializer; a thread already nicer keeps its value). Where threads have no priority
    of their own (not Linux) or it cannot be changed, nothing happens: the thread runs
    as before."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:  # never a lower nice value than the thread has: that needs privileges
        os.setpriority(
            os.PRIO_PROCESS, tid, max(COMPRESS_NICE, os.getpriority(os.PRIO_PROCESS, tid))
        )
    except OSError:
        log.debug("checkpoint compression thread: priority unchanged", exc_info=True)


class IngestCore:
    """A worker's state, metrics and delivery guarantee, behind a :class:`Driver`.

    The driver calls, all from the one thread (or event loop) that processes messages
    unless said otherwise:

    * per message, :attr:`processor`, then ``next_offsets[(topic, partition)] = offset + 1``;
    * per output, ``produced += 1`` (the output's sequence number is the new value) and
      :meth:`on_delivery` (or :meth:`lost`) when the broker answers. Whenever the core
      can run (at a tick, or whenever a driver on an event loop awaits), every message
      applied to a model must have its outputs numbered, and every offset in
      ``next_offsets`` must be of such a message;
    * after each batch, and now and then when idle, :meth:`tick`;
    * :meth:`on_assigned`, :meth:`on_revoked`, :meth:`on_lost` and :meth:`shutdown` from
      its rebalance and stop handlers, which may wait (a driver whose client needs its
      event loop meanwhile calls them from another thread, with the loop's processing
      paused).
    """

    def __init__(
        self,
        settings: Settings,
        checkpoints: CheckpointStore | None = None,
        *,
        registry: CollectorRegistry | None = None,
        compressor: Executor | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``checkpoints`` and ``registry`` replace the real ones (tests);
        ``compressor`` runs the checkpoint rounds' compression (default: a thread of its
        own, shut down with the core); ``clock`` (seconds, monotonic) times a round's
        snapshots (their budget per batch and their pace, :data:`SNAPSHOT_DUTY`) and the
        loop's beats (:attr:`liveness`)."""
        self.settings = settings
        self._clock = clock
        disable_created_metrics()
        # Evicting a model's state (beyond max_tracked_models) keeps its metric series:
        # counters must keep adding up, and max_models already bounds the series.
        self.fleet = Fleet(settings)
        self.metrics = VigilMetrics(
            registry,
            max_models=settings.worker.max_models,
            readings=self.fleet.readings,
            consumer_lag=self.lag,
            reviewers=self.fleet.reviewer_readings,
        )
        # The worker's own registry: the process's memory, CPU and GC pauses on it too
        # (a test's registry goes without: the GC hook is process-wide).
        self._gc_pauses: GcPauses | None = (
            register_runtime_metrics(self.metrics.registry) if registry is None else None
        )
        self.processor = Processor(settings, self.metrics, self.fleet)
        self.checkpoints = checkpoints if checkpoints is not None else CheckpointStore(settings)
        self._compressor = compressor or ThreadPoolExecutor(
            1, "vigil-checkpoint-compress", initializer=yield_cpu
        )
        t = settings.topics
        self.inputs = (t.inference, t.labels)
        self._driver: Driver | None = None
        self.next_offsets: Offsets = {}
        self.produced = 0  # outputs numbered; the n-th has sequence number n
        self._acked = 0  # outputs 1.._acked were all acknowledged
        self._acked_ahead: set[int] = set()  # acknowledged out of order, above _acked
        self.delivery_errors: list[str] = []
        self._round: _Round | None = None
        self._last_checkpoint = time.monotonic()
        self._owned: set[int] = set()
        self._lag: Lag = []
        self._lag_refreshed = 0.0
        self.failed = False  # an output was lost: never checkpoint or commit again
        self.closed = False
        # Beaten by tick(): /healthz says whether the loop still goes round.
        self.liveness = Liveness(settings.worker.liveness_timeout_s, clock=clock)

    def attach(self, driver: Driver) -> None:
        self._driver = driver

    @property
    def driver(self) -> Driver:
        if self._driver is None:
            raise VigilError("the ingest core has no driver attached (call attach first)")
        return self._driver

    def start(self) -> None:
        """Create the checkpoint topic if missing, refuse input topics that are not
        co-partitioned (:func:`~streams.kafka.topics.check_copartitioned`), serve
        ``/metrics`` and ``/healthz`` (:mod:`streams.ingest.worker_http`, threads of their
        own) and import the root finder of the CUSUM thresholds
        on a thread of its own (see :func:`~detectors.sensitivity.preload_root_finder`)."""
        threading.Thread(target=preload_root_finder, name="vigil-preload", daemon=True).start()
        if self.checkpoints.ensure_topic():  # waits up to 30 s for the broker
            log.info("created checkpoint topic %s", self.checkpoints.topic)
        check_copartitioned(metadata_admin(self.settings), self.settings, timeout=30.0)
        w = self.settings.worker
        self.liveness.begin()  # the loop starts next: alive for the timeout until it beats
        serve_worker_http(w.metrics_host, w.metrics_port, self.metrics.registry, self.liveness)
        log.info(
            "metrics at http://%s:%d/metrics, liveness at /healthz", w.metrics_host, w.metrics_port
        )

    # ------------------------------------------------------------ outputs

    def on_delivery(self, seq: int, err: Any, msg: Any) -> None:
        """The broker's answer for output ``seq``, in confluent-kafka's shape (bind
        ``seq`` with :func:`functools.partial`): ``err`` is None once acknowledged,
        else ``msg.topic()`` names where it was going."""
        if err is not None:
            self.lost(f"{msg.topic()}: {err}")
            return
        if seq != self._acked + 1:
            self._acked_ahead.add(seq)
            return
        self._acked = seq
        ahead = self._acked_ahead
        while ahead and self._acked + 1 in ahead:
            self._acked += 1
            ahead.remove(self._acked)

    def lost(self, what: str) -> None:
        """An output was not delivered: the watermark never passes it, so nothing after
        it is checkpointed, and the next :meth:`tick` raises."""
        self.delivery_errors.append(what)

    @property
    def unacknowledged(self) -> int:
        """Outputs numbered but not (yet) acknowledged, or lost."""
        return self.produced - self._acked

    def _output_lost(self) -> None:
        self.failed = True
        self._round = None
        raise OutputLostError(
            f"outputs not delivered ({self.unacknowledged} pending; "
            f"errors: {self.delivery_errors[:5]})"
        )

    # ------------------------------------------------------------ steady state

    def tick(self) -> None:
        """After each batch: beat :attr:`liveness`, refresh the lag now and then, begin a
        checkpoint round when one is due and advance the round in progress. Never waits.

        Raises :class:`OutputLostError` once an output was not delivered.
        """
        if self.closed:  # a driver's timer may outlive the shutdown
            return
        now = time.monotonic()
        self.liveness.beat()
        if self.delivery_errors:
            self._output_lost()
        if now - self._lag_refreshed >= LAG_REFRESH_S:
            self._refresh_lag(now)
        if (
            self._round is None
            and now - self._last_checkpoint >= self.settings.worker.checkpoint_interval_s
        ):
            self._begin_round()
        if self._round is not None:
            try:
                self._advance_round(self._round)
            except Exception:
                # Kept dirty and uncommitted: retried at the next interval; after a crash
                # the uncommitted tail is reprocessed from the last checkpoint.
                self._abandon_round()
                log.exception("checkpoint failed; retrying at the next interval")

    def _begin_round(self) -> None:
        self._last_checkpoint = time.monotonic()
        self._rewrite_idle()
        dirty = [model_id for model_id, state in self.fleet.items() if state.dirty]
        self._round = _Round(dict(self.next_offsets), self.produced, dirty)

    def _rewrite_idle(self) -> None:
        """Mark dirty the models whose newest checkpoint record lies more than
        :data:`IDLE_REWRITE_RECORDS` per model behind their partition's newest: an idle
        model's old record would hold the partition's read start (see
        :mod:`streams.kafka.checkpoints`) back, and a restore would read every record
        after it. Rewritten, it lets the start move on; a restore reads at most about
        that many records per model. (A model this worker no longer holds cannot be
        rewritten: its record keeps the start where it is.)"""
        for p in self._owned:
            newest = self.checkpoints.newest.get(p)
            if not newest:
                continue
            behind = max(newest.values()) - IDLE_REWRITE_RECORDS * len(newest)
            for model_id, offset in newest.items():
                if offset < behind:
                    state = self.fleet.peek(model_id)
                    if state is not None and state.partition == p:
                        state.dirty = True

    def _advance_round(self, r: _Round) -> None:
        """Snapshot a few models, send the records whose outputs are acknowledged, and
        commit once the round is complete."""
        if self.failed:
            return
        clock = self._clock
        began = clock()
        if r.todo and began >= r.next_snapshot:
            deadline = began + SNAPSHOT_BUDGET_S
            while r.todo:
                model_id = r.todo.pop()
                state = self.fleet.peek(model_id)
                if state is None or not state.dirty:  # dropped, or checkpointed since
                    continue
                snapshot = state.snapshot()
                # Pickled now: the snapshot may share objects with the live state.
                data = pickled(
                    Checkpoint(
                        model_id, state.partition, dict(state.offsets), snapshot, time.time()
                    )
                )
                state.dirty = False
                job = self._compressor.submit(compress, data)
                r.staged.append((self.produced, model_id, state.partition, job))
                if clock() >= deadline:
                    break
            r.next_snapshot = began + (clock() - began) / SNAPSHOT_DUTY
        while r.staged and r.staged[0][0] <= self._acked and r.staged[0][3].done():
            _, model_id, partition, job = r.staged[0]
            value = job.result()  # a failure leaves it staged: the round is abandoned
            r.staged.popleft()
            self.checkpoints.send(model_id, partition, value, r.write)
        if r.write.sent:
            self.checkpoints.poll()
        if r.todo or r.staged or not r.write.done or self._acked < r.barrier:
            return
        self._round = None
        if r.write.failed:
            self._redirty(r.write.failed)
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
        if r.offsets:
            self.driver.commit(r.offsets, wait=False, metadata=self._starts(r.offsets))

    def _redirty(self, model_ids: Iterable[str]) -> None:
        """These models are written again by the next checkpoint (if still here)."""
        for model_id in model_ids:
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
        for seq, model_id, partition, job in r.staged:
            if seq <= self._acked and not self.failed:
                try:
                    value = job.result()  # waits for its compression
                except Exception:
                    log.exception("model %r: checkpoint compression failed", model_id)
                    self._redirty((model_id,))
                    continue
                self.checkpoints.send(model_id, partition, value, r.write)
            else:
                self._redirty((model_id,))
        if r.write.sent and self.checkpoints.flush(ABANDON_TIMEOUT_S):
            # Unknown fate: write them again (a duplicate record is harmless).
            self._redirty(r.write.sent)
        self._redirty(r.write.failed)

    # ------------------------------------------------------------ waiting checkpoints

    def checkpoint(self, partitions: set[int] | None = None) -> int:
        """Flush outputs, write the dirty states (of ``partitions``), commit their offsets,
        waiting for each step: on revocation and at shutdown. Steady state uses rounds.

        Raises :class:`OutputLostError` if any output failed delivery: from then on this
        core never checkpoints or commits again, so a restarted worker consumes those
        messages again. A failed checkpoint write raises too, with nothing committed and
        the states still dirty.
        """
        if self.failed:
            return 0
        self._last_checkpoint = time.monotonic()
        # What the states written below cover: the driver processes nothing meanwhile.
        offsets = {
            tp: o
            for tp, o in self.next_offsets.items()
            if partitions is None or tp[1] in partitions
        }
        self.driver.flush(FLUSH_TIMEOUT_S)
        if self.unacknowledged or self.delivery_errors:
            self._output_lost()
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
        if offsets:
            self.driver.commit(offsets, wait=True, metadata=self._starts(offsets))
        return len(dirty)

    def _starts(self, offsets: Offsets) -> dict[int, str]:
        """Commit metadata of ``offsets``' partitions: where their checkpoints start (see
        :mod:`streams.kafka.checkpoints`); a partition whose start is unknown has none."""
        out = {}
        for p in {tp[1] for tp in offsets}:
            meta = start_metadata(self.checkpoints.read_start(p))
            if meta is not None:
                out[p] = meta
        return out

    # ------------------------------------------------------------ rebalances

    def input_partitions(self, tps: Iterable[Any]) -> set[int]:
        """The partition numbers among ``tps`` (anything with ``.topic`` and
        ``.partition``) that belong to the input topics."""
        return {tp.partition for tp in tps if tp.topic in self.inputs}

    def on_assigned(self, parts: set[int]) -> None:
        """The input partitions are now ``parts``: restore the checkpoints of the new ones
        before any of their messages is processed (and drop any state outside them)."""
        log.info("assignment: partitions %s", sorted(parts))
        self._drop(lambda partition: partition >= 0 and partition not in parts, set())
        new = parts - self._owned
        if new:
            started = time.perf_counter()
            # Unpickling and rebuilding states allocates many objects: without the cyclic
            # GC passes they trigger the restore takes ~30 % less time on this machine.
            try:
                starts = self.driver.checkpoint_starts(new)
            except Exception:
                log.warning("reading committed checkpoint starts failed", exc_info=True)
                starts = {}
            restored = 0
            with gc_paused():
                found = self.checkpoints.read(new, start=starts)
                for model_id, cp in found.items():
                    # A record in another partition than its model's events (written by
                    # an older vigil, which placed it by murmur2 of the key) is not ours.
                    if cp.partition in new and model_id not in self.fleet:
                        state = restore_or_none(model_id, cp)
                        if state is not None:
                            self.fleet.put(model_id, state)
                            restored += 1
            log.info(
                "assigned partitions %s: restored %d model checkpoints in %.3f s",
                sorted(new),
                restored,
                time.perf_counter() - started,
            )
        self._owned = set(parts)

    def on_revoked(self, parts: set[int]) -> None:
        """Flush, checkpoint and commit ``parts``, then drop their state and series."""
        if not parts or self.failed:
            return
        try:
            n = self.checkpoint(parts)
        except Exception:
            log.exception(
                "checkpoint on revocation failed: the next owner restarts from the "
                "last checkpoint and redelivered messages"
            )
        else:
            log.info("revoked partitions %s: checkpointed %d models", sorted(parts), n)
        dropped = self._drop(lambda partition: partition in parts, parts)
        if dropped:
            log.info("revoked partitions %s: dropped %d models", sorted(parts), dropped)

    def on_lost(self, parts: set[int]) -> None:
        """The partitions may have a new owner already: drop them without committing."""
        r, self._round = self._round, None
        if r is not None:
            # Commit nothing of it and send nothing more; what it snapshotted or sent is
            # written again if still ours.
            self._redirty([m for _, m, _, _ in r.staged] + r.write.sent)
        dropped = self._drop(lambda partition: partition in parts, parts)
        log.warning("lost partitions %s (no commit): dropped %d models", sorted(parts), dropped)

    def _drop(self, gone: Callable[[int], bool], parts: set[int]) -> int:
        """Drop the state and metric series of every model whose partition is ``gone``,
        and forget the offsets of ``parts``."""
        n = 0
        for model_id, state in self.fleet.items():
            if gone(state.partition):
                self.fleet.pop(model_id)
                self.metrics.forget_model(model_id)
                n += 1
        for key in [k for k in self.next_offsets if k[1] in parts]:
            del self.next_offsets[key]
        self._owned -= parts
        return n

    # ------------------------------------------------------------ lag and shutdown

    def lag(self) -> Lag:
        """The consumer lag as of the last refresh (``vigil_consumer_lag``).

        Read by the metrics thread, which must not call the consumer itself (a call
        blocks while ``consume`` runs on the ingest thread; a Faust consumer read from
        there before the worker started was built twice), so :meth:`tick` refreshes
        this list about once a second on the processing thread.
        """
        return self._lag

    def _refresh_lag(self, now: float) -> None:
        self._lag_refreshed = now
        try:
            self._lag = self.driver.read_lag()
        except Exception:  # rebalancing: keep the last reading
            return

    def shutdown(self) -> None:
        """Final checkpoint and commit, then close the clients and the checkpoint store."""
        if self.closed:
            return
        self.closed = True
        try:
            self.checkpoint()
        except Exception:
            log.exception("final checkpoint failed")
        self.driver.close()
        self.checkpoints.close()
        self._compressor.shutdown(wait=True)
        if self._gc_pauses is not None:
            self._gc_pauses.uninstall()
