"""The ingest core's guarantee, driven by an in-memory driver: no Kafka.

The driver holds every output until the test says the broker answered, and the
checkpoint store holds every record the same way, so each test decides when (and
whether) something is acknowledged and checks what the core lets the driver commit.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.errors import OutputLostError, VigilError
from streams.events.dead_letters import MessageSource
from streams.ingest.core import (
    COMPRESS_NICE,
    SNAPSHOT_BUDGET_S,
    SNAPSHOT_DUTY,
    IngestCore,
    Lag,
    Offsets,
)
from streams.kafka.checkpoints import (
    Checkpoint,
    decode,
    start_from_metadata,
    start_metadata,
)
from streams.processing.fleet import ModelState
from streams.processing.processor import Outgoing
from tests.streams.ingest.fakes import HeldCheckpoints, HeldJobs, InlineExecutor, Record

TOPICS = {"inference": "in", "labels": "lb", "escalations": "esc", "alerts": "al"}


class MemoryDriver:
    """Moves synthetic messages through the core; outputs wait for :meth:`deliver`."""

    def __init__(self, core: IngestCore) -> None:
        self.core = core
        self.held: list[int] = []  # sequence numbers of outputs the broker has not answered
        self.commits: list[tuple[Offsets, bool]] = []
        self.metadata: list[dict[int, str]] = []  # each commit's metadata per partition
        self.group_metadata: dict[int, str] = {}  # the group's, per partition
        self.lag_reading: Lag | Exception = []
        self.closed = False
        self.models = [
            SyntheticModel(f"m{i}", seed=i, start=datetime(2026, 1, 1, tzinfo=UTC))
            for i in range(2)
        ]
        self.sent: list[tuple[int, int, bytes, bytes]] = []  # every message, to resend
        core.attach(self)

    def feed(self, n: int) -> None:
        """One batch of ``n`` events, alternating m0 (partition 0) and m1 (partition 1)."""
        batch = []
        for _ in range(n):
            k = len(self.sent)
            m = self.models[k % 2]
            raw = orjson.dumps(m.event(event_id=f"e{k}")[0])
            self.sent.append((k % 2, k, m.model_id.encode(), raw))
            batch.append(self.sent[-1])
        self.process(batch)

    def process(self, batch: list[tuple[int, int, bytes, bytes]]) -> None:
        out = Outgoing()
        for partition, offset, key, raw in batch:
            self.core.processor.inference(raw, MessageSource("in", partition, offset, key), out)
            self.core.next_offsets[("in", partition)] = offset + 1
        for _ in range(len(out)):
            self.core.produced += 1
            self.held.append(self.core.produced)
        self.core.tick()

    def deliver(self, which: list[int] | None = None, error: str | None = None) -> None:
        """Answer the held outputs at positions ``which`` (all by default)."""
        picked = set(range(len(self.held)) if which is None else which)
        answered = [s for i, s in enumerate(self.held) if i in picked]
        self.held = [s for i, s in enumerate(self.held) if i not in picked]
        for seq in answered:
            self.core.on_delivery(seq, error, Record("esc"))

    # Driver
    def commit(
        self, offsets: Offsets, *, wait: bool, metadata: Mapping[int, str] | None = None
    ) -> None:
        self.commits.append((dict(offsets), wait))
        self.metadata.append(dict(metadata or {}))
        self.group_metadata.update(metadata or {})

    def checkpoint_starts(self, partitions: set[int]) -> dict[int, int]:
        starts = {p: start_from_metadata(m) for p, m in self.group_metadata.items()}
        return {p: s for p, s in starts.items() if p in partitions and s is not None}

    def flush(self, timeout: float) -> None:
        self.deliver()

    def read_lag(self) -> Lag:
        if isinstance(self.lag_reading, Exception):
            raise self.lag_reading
        return self.lag_reading

    def close(self) -> None:
        self.closed = True


class ManualClock:
    """A core's clock that moves only when the test moves it: a round's snapshots then
    take no time, so every model is snapshotted in the first batch of its round."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_core(
    store: HeldCheckpoints | None = None,
    compressor: Executor | None = None,
    clock: ManualClock | None = None,
) -> tuple[IngestCore, MemoryDriver, HeldCheckpoints]:
    """A core on an in-memory store whose checkpoint compression runs inline (unless
    ``compressor`` says otherwise), on a :class:`ManualClock` (``clock``, or one of its
    own)."""
    settings = settings_from_dict(
        {
            "topics": TOPICS,
            # Every event escalates, so every message has an output to wait for.
            "defaults": {"escalation": {"policy": "threshold", "min_confidence": 0.99}},
        }
    )
    store = store if store is not None else HeldCheckpoints()
    core = IngestCore(
        settings,
        store,  # type: ignore[arg-type]
        registry=CollectorRegistry(),
        compressor=compressor if compressor is not None else InlineExecutor(),
        clock=clock if clock is not None else ManualClock(),
    )
    return core, MemoryDriver(core), store


def checkpoint_due(core: IngestCore) -> None:
    core._last_checkpoint = float("-inf")


def full_round(core: IngestCore, driver: MemoryDriver, store: HeldCheckpoints) -> None:
    """A checkpoint round from start to commit, every answer a yes."""
    checkpoint_due(core)
    driver.process([])  # snapshots
    driver.deliver()
    driver.process([])  # the records go out
    store.deliver()
    driver.process([])  # the round completes and commits


def events_seen(core: IngestCore, model_id: str) -> int:
    state = core.fleet.peek(model_id)
    assert state is not None, model_id
    return state.monitor.events_seen


def series(core: IngestCore, model_id: str) -> float | None:
    return core.metrics.registry.get_sample_value(
        "vigil_events_total", {"model": model_id, "outcome": "processed"}
    )


def round_begun(compressor: Executor) -> tuple[IngestCore, MemoryDriver, HeldCheckpoints]:
    """:func:`make_core` with ``compressor``, 10 events processed and acknowledged, and a
    checkpoint round begun: both models snapshotted and pickled, their compression
    handed to ``compressor``."""
    core, driver, store = make_core(compressor=compressor)
    driver.feed(10)
    driver.deliver()
    checkpoint_due(core)
    driver.process([])
    return core, driver, store


def test_a_round_sends_each_record_once_compressed_in_the_order_it_was_staged() -> None:
    jobs = HeldJobs()
    core, driver, store = round_begun(jobs)  # two jobs, nothing sent
    assert len(jobs.jobs) == 2 and not store.held
    assert not any(s.dirty for _, s in core.fleet.items())
    staged = [model_id for _, model_id, _, _ in core._round.staged]  # type: ignore[union-attr]

    jobs.run(1)  # the second finishes first: it waits for the first
    driver.process([])
    assert not store.held and not driver.commits
    jobs.run(0)
    driver.process([])
    assert [m for m, _, _ in store.held] == staged
    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 9, ("in", 1): 10}, False)]
    # What was compressed on the side is the record encode() writes.
    for model_id, value in store.written.items():
        cp = decode(value)
        assert cp.model_id == model_id and cp.offsets == {"inference": 8 + (model_id == "m1")}


def test_a_failed_compression_abandons_the_round_and_its_models_are_written_again() -> None:
    jobs = HeldJobs()
    core, driver, store = round_begun(jobs)
    first, second = (m for _, m, _, _ in core._round.staged)  # type: ignore[union-attr]
    jobs.run(1)
    jobs.fail(0)
    # The round is abandoned, nothing committed: every model it snapshotted is written
    # (the second, compressed) or dirty again (the first).
    driver.process([])
    assert core._round is None and not driver.commits
    assert [m for m, s in core.fleet.items() if s.dirty] == [first]
    assert list(store.written) == [second]

    checkpoint_due(core)
    driver.process([])
    while jobs.jobs:
        jobs.run()
    driver.process([])
    store.deliver()
    driver.process([])
    assert sorted(store.written) == ["m0", "m1"]
    assert driver.commits == [({("in", 0): 9, ("in", 1): 10}, False)]


def test_a_waiting_checkpoint_waits_for_the_rounds_compressions() -> None:
    jobs = HeldJobs()
    core, _, store = round_begun(jobs)
    assert len(jobs.jobs) == 2

    # On revocation or at shutdown the round in progress is abandoned: a staged record
    # whose outputs were acknowledged is sent once compressed, so it waits for its job.
    def compress_both() -> None:
        jobs.run()
        jobs.run()

    later = threading.Timer(0.05, compress_both)
    later.start()
    core.checkpoint()
    later.join()
    assert sorted(store.written) == ["m0", "m1"]
    assert not any(s.dirty for _, s in core.fleet.items())


def test_the_real_compressor_thread_gets_every_record_out() -> None:
    core, driver, store = round_begun(ThreadPoolExecutor(1))
    for _ in range(200):  # the thread compresses while the stream goes on
        driver.process([])
        if len(store.held) == 2:
            break
        time.sleep(0.01)
    assert sorted(m for m, _, _ in store.held) == ["m0", "m1"]
    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 9, ("in", 1): 10}, False)]
    core._compressor.shutdown(wait=True)


def snapshots_taking(
    seconds: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[ManualClock, IngestCore, MemoryDriver, HeldCheckpoints]:
    """:func:`make_core` on a :class:`ManualClock`, 10 events processed and acknowledged,
    and every model's snapshot taking ``seconds`` of that clock."""
    clock = ManualClock()
    core, driver, store = make_core(clock=clock)
    driver.feed(10)
    driver.deliver()
    taken = ModelState.snapshot

    def snapshot(self: ModelState) -> dict[str, Any]:
        clock.now += seconds
        return taken(self)

    monkeypatch.setattr(ModelState, "snapshot", snapshot)
    return clock, core, driver, store


def test_a_rounds_snapshots_are_spread_out_to_their_duty_share_of_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A snapshot that takes ``d`` (here 30 ms, over the per-batch budget) is the only
    one of its batch, and the next model waits until ``d / SNAPSHOT_DUTY`` after it
    began: back to back, a round of large models stopped the stream for all of them."""
    clock, core, driver, store = snapshots_taking(0.03, monkeypatch)

    def snapshotted() -> list[str]:
        return sorted(m for m, state in core.fleet.items() if not state.dirty)

    checkpoint_due(core)
    driver.process([])  # at 0.0: one model, 30 ms; its record goes out
    first = snapshotted()
    assert len(first) == 1 and [m for m, _, _ in store.held] == first
    gap = 0.03 / SNAPSHOT_DUTY
    clock.now = gap - 0.001
    driver.process([])  # too soon for the second
    assert snapshotted() == first and len(store.held) == 1
    clock.now = gap
    driver.process([])  # the second model's turn
    assert snapshotted() == ["m0", "m1"] and len(store.held) == 2
    store.deliver()
    driver.process([])
    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 9, ("in", 1): 10}, False)]


def test_small_snapshots_share_a_batch_up_to_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots of 0.4 of the budget each: both models fit in a batch's budget, then
    the round waits the pace of the two."""
    each = 0.4 * SNAPSHOT_BUDGET_S
    _, core, driver, _ = snapshots_taking(each, monkeypatch)
    checkpoint_due(core)
    driver.process([])
    assert not any(state.dirty for _, state in core.fleet.items())  # both in one batch
    assert core._round is not None
    assert core._round.next_snapshot == pytest.approx(2 * each / SNAPSHOT_DUTY)


def test_offsets_wait_for_outputs_then_for_checkpoints() -> None:
    core, driver, store = make_core()
    driver.feed(10)
    checkpoint_due(core)
    driver.process([])
    driver.process([])
    # Snapshots are taken, but no record may exist before the outputs it covers.
    assert not store.held and not driver.commits
    assert not any(s.dirty for _, s in core.fleet.items())

    driver.deliver(list(range(1, 10)))  # out of order: all but the first
    driver.process([])
    assert not store.held and not driver.commits

    driver.deliver()
    driver.process([])
    assert sorted(m for m, _, _ in store.held) == ["m0", "m1"]
    assert not driver.commits  # the records are not acknowledged yet

    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 9, ("in", 1): 10}, False)]
    offsets = {m: decode(v).offsets for m, v in store.written.items()}
    assert offsets == {"m0": {"inference": 8}, "m1": {"inference": 9}}


def test_a_round_covers_messages_processed_while_it_runs() -> None:
    core, driver, store = make_core()
    driver.feed(4)
    checkpoint_due(core)
    core._begin_round()  # at next offsets 3 and 4; snapshots come with the next batches
    driver.feed(4)
    # The later messages' outputs are in the snapshots, so they must be acknowledged too.
    driver.deliver(list(range(4)))
    driver.process([])
    assert not store.held
    driver.deliver()
    driver.process([])
    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 3, ("in", 1): 4}, False)]
    assert {m: decode(v).offsets for m, v in store.written.items()} == {
        "m0": {"inference": 6},
        "m1": {"inference": 7},
    }


def test_a_failed_checkpoint_write_commits_nothing_and_is_written_again() -> None:
    core, driver, store = make_core()
    driver.feed(6)
    checkpoint_due(core)
    driver.process([])
    driver.deliver()
    driver.process([])
    store.deliver(error="record too large")
    driver.process([])
    assert not driver.commits
    assert all(s.dirty for _, s in core.fleet.items())
    checkpoint_due(core)
    driver.process([])
    driver.process([])
    store.deliver()
    driver.process([])
    assert driver.commits == [({("in", 0): 5, ("in", 1): 6}, False)]


def test_a_lost_output_stops_checkpoints_and_commits_for_good() -> None:
    core, driver, store = make_core()
    driver.feed(6)
    checkpoint_due(core)
    driver.process([])
    driver.deliver([0], error="broker said no")
    driver.deliver()
    with pytest.raises(OutputLostError, match="esc: broker said no"):
        driver.process([])
    core.shutdown()
    assert not store.held and not store.written and not driver.commits
    assert driver.closed and store.closed  # the clients are closed all the same


def test_revocation_flushes_checkpoints_commits_then_drops_state_and_series_not_given_back() -> (
    None
):
    core, driver, store = make_core()
    core.on_assigned({0, 1})
    driver.feed(6)
    checkpoint_due(core)
    driver.process([])  # a round in progress: its snapshots are staged, not sent
    assert series(core, "m0") == 3.0

    core.on_revoked({0})
    # Waited for: the outputs (flushed), m0's record, then partition 0's offset alone.
    assert not driver.held
    assert driver.commits == [({("in", 0): 5}, True)]
    assert decode(store.written["m0"]).offsets == {"inference": 4}
    # Dropped with its series: the partition goes to another member.
    assert core.fleet.peek("m0") is None and series(core, "m0") is None
    assert ("in", 0) not in core.next_offsets
    # m1 stays, and the abandoned round's snapshot of it was written, not thrown away.
    assert events_seen(core, "m1") == 3 and series(core, "m1") == 3.0
    assert decode(store.written["m1"]).offsets == {"inference": 5}
    assert not core.fleet.peek("m1").dirty  # type: ignore[union-attr]


class CountingReads(HeldCheckpoints):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[set[int]] = []

    def read(self, partitions: Iterable[int], *args: Any, **kwargs: Any) -> dict[str, Checkpoint]:
        self.reads.append(set(partitions))
        return super().read(partitions, *args, **kwargs)


def counting_core() -> tuple[IngestCore, MemoryDriver, CountingReads]:
    store = CountingReads()
    core, driver, _ = make_core(store)
    return core, driver, store


def test_assignment_restores_new_partitions_and_skips_redelivered_messages() -> None:
    core, driver, _ = make_core()
    core.on_assigned({0, 1})
    driver.feed(6)
    core.on_revoked({0, 1})
    assert len(core.fleet) == 0

    core.on_assigned({0})
    assert events_seen(core, "m0") == 3 and core.fleet.peek("m1") is None
    driver.process([m for m in driver.sent[:4] if m[0] == 0])  # redelivered, checkpointed
    assert events_seen(core, "m0") == 3
    assert core.processor.redelivered == 2
    core.on_assigned({0, 1})  # m0 is not read again; m1 is new here
    assert events_seen(core, "m0") == 3 and events_seen(core, "m1") == 3


def test_lost_partitions_are_dropped_without_commit_and_the_round_redone() -> None:
    core, driver, store = make_core()
    core.on_assigned({0, 1})
    driver.feed(6)
    checkpoint_due(core)
    driver.process([])
    driver.deliver()
    driver.process([])
    assert sorted(m for m, _, _ in store.held) == ["m0", "m1"]  # sent, unanswered

    core.on_lost({1})
    assert core.fleet.peek("m1") is None and series(core, "m1") is None
    assert core.fleet.peek("m0").dirty  # type: ignore[union-attr]  # written again later
    store.deliver()
    driver.process([])
    assert not driver.commits


def test_the_lag_is_read_on_the_processing_thread_and_kept_while_rebalancing() -> None:
    core, driver, _ = make_core()
    driver.lag_reading = [("in", 0, 7)]
    driver.process([])
    assert core.lag() == [("in", 0, 7)]
    driver.lag_reading = [("in", 0, 2)]
    driver.process([])
    assert core.lag() == [("in", 0, 7)]  # refreshed at most about once a second
    driver.lag_reading = VigilError("rebalancing")
    core._lag_refreshed = float("-inf")
    driver.process([])
    assert core.lag() == [("in", 0, 7)]
    assert "vigil_consumer_lag{" in _exposition(core)


def test_shutdown_checkpoints_commits_and_closes_once() -> None:
    core, driver, store = make_core()
    core.on_assigned({0, 1})
    driver.feed(4)
    core.shutdown()
    assert driver.commits == [({("in", 0): 3, ("in", 1): 4}, True)]
    assert sorted(store.written) == ["m0", "m1"]
    assert driver.closed and store.closed
    driver.closed = False
    core.shutdown()
    assert not driver.closed and len(driver.commits) == 1
    # A tick after the shutdown (a driver's timer outliving it) begins no round.
    driver.feed(2)
    checkpoint_due(core)
    driver.deliver()
    driver.process([])
    assert len(driver.commits) == 1 and not store.held


def test_a_core_without_a_driver_says_so() -> None:
    core = IngestCore(
        settings_from_dict({"topics": TOPICS}),
        HeldCheckpoints(),  # type: ignore[arg-type]
        registry=CollectorRegistry(),
    )
    with pytest.raises(VigilError, match="no driver attached"):
        core.shutdown()


def _exposition(core: IngestCore) -> Any:
    from prometheus_client import generate_latest

    return generate_latest(core.metrics.registry).decode()


def test_restore_runs_with_the_cyclic_gc_paused_and_leaves_it_as_it_was() -> None:
    import gc

    core, driver, store = counting_core()
    core.on_assigned({0, 1})
    driver.feed(6)
    core.on_revoked({0, 1})
    seen: list[bool] = []
    read = store.read

    def spy(partitions: Iterable[int], *args: Any, **kwargs: Any) -> dict[str, Checkpoint]:
        seen.append(gc.isenabled())
        return read(partitions, *args, **kwargs)

    store.read = spy  # type: ignore[method-assign]
    assert gc.isenabled()
    core.on_assigned({0, 1})
    assert seen == [False] and gc.isenabled()
    assert events_seen(core, "m0") == 3
    gc.disable()
    try:
        core.on_revoked({0, 1})
        core.on_assigned({0, 1})
        assert not gc.isenabled()  # not turned on by the restore
    finally:
        gc.enable()


def test_commits_carry_where_each_partitions_checkpoints_start_and_restores_read_from_there() -> (
    None
):
    core, driver, store = make_core()
    core.on_assigned({0, 1})
    assert store.starts == [{}]  # nothing committed yet: read from the beginning
    driver.feed(6)
    full_round(core, driver, store)
    assert driver.commits == [({("in", 0): 5, ("in", 1): 6}, False)]
    # The store's read starts, per partition, travel with the offsets.
    assert driver.metadata == [{0: start_metadata(100), 1: start_metadata(101)}]

    core.on_revoked({0, 1})  # a waited commit carries them too
    assert driver.metadata[-1] == {0: start_metadata(100), 1: start_metadata(101)}
    core.on_assigned({0, 1})
    assert store.starts[-1] == {0: 100, 1: 101}
    assert events_seen(core, "m0") == 3 and events_seen(core, "m1") == 3


def test_unknown_starts_are_not_committed_and_a_failed_look_up_reads_everything() -> None:
    core, driver, store = make_core()
    store.read_start = lambda partition: None if partition == 1 else 7  # type: ignore[method-assign]
    core.on_assigned({0, 1})
    driver.feed(4)
    core.on_revoked({0, 1})
    assert driver.metadata[-1] == {0: start_metadata(7)}

    def broken(partitions: set[int]) -> dict[int, int]:
        raise VigilError("coordinator unavailable")

    driver.checkpoint_starts = broken  # type: ignore[method-assign]
    core.on_assigned({0, 1})
    assert store.starts[-1] == {}  # from the beginning: slower, never wrong
    assert events_seen(core, "m0") == 2


def test_an_idle_models_checkpoint_is_written_again_once_it_holds_the_read_start_back() -> None:
    core, driver, store = make_core()
    core.on_assigned({0, 1})
    driver.feed(4)
    full_round(core, driver, store)  # every model clean
    assert driver.commits and not any(s.dirty for _, s in core.fleet.items())

    # Partition 0: m0's record is 20 records behind the newest, 3 models (limit 4 x 3).
    # "gone" lags too but is not held here; partition 1's m1 is within the limit.
    store.newest = {0: {"m0": 0, "gone": 1, "busy": 20}, 1: {"m1": 10, "other": 12}}
    checkpoint_due(core)
    driver.process([])
    m0, m1 = core.fleet.peek("m0"), core.fleet.peek("m1")
    assert m0 is not None and m1 is not None
    assert not m1.dirty
    driver.process([])
    # m0's record goes out again although nothing new reached it; m1's does not.
    assert [m for m, _, _ in store.held] == ["m0"]
    store.deliver()
    driver.process([])
    assert decode(store.written["m0"]).offsets == {"inference": 2}
    assert len(driver.commits) == 2 and core.fleet.peek("gone") is None


@pytest.mark.skipif(
    sys.platform != "linux", reason="threads have a nice value of their own on Linux only"
)
def test_the_compression_thread_yields_the_cpu_to_the_ingest_thread() -> None:
    """The core's own compression thread runs at nice COMPRESS_NICE (the test's thread,
    and so the ingest thread, keeps its own)."""
    settings = settings_from_dict({"topics": TOPICS})
    core = IngestCore(settings, HeldCheckpoints(), registry=CollectorRegistry())  # type: ignore[arg-type]
    try:

        def nice() -> int:
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        mine = nice()
        theirs = core._compressor.submit(nice).result(timeout=10)
        assert theirs == max(COMPRESS_NICE, mine) and nice() == mine
    finally:
        core._compressor.shutdown(wait=True)
