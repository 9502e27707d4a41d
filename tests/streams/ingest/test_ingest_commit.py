"""The batch driver numbers its outputs and commits what the core allows, without waiting.

Stand-ins replace the confluent-kafka clients so the test decides when (and whether)
the broker acknowledges each output and checkpoint record: delivery reports are held
until the test releases them, as librdkafka holds them until ``poll``. The protocol
itself is tested on the core alone (``test_core.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.errors import ConfigError, OutputLostError, VigilError
from streams.ingest.batch import BatchIngest, static_membership
from streams.ingest.core import IngestCore
from streams.kafka.checkpoints import decode, start_metadata
from tests.streams.ingest.fakes import HeldCheckpoints, InlineExecutor

TOPICS = {
    "inference": "in",
    "labels": "lb",
    "escalations": "esc",
    "alerts": "al",
    "deadletter": "dl",
}


class Msg:
    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes):
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return self._v


Report = Callable[[Any, Any], None]


class HeldProducer:
    """Keeps every delivery report until :meth:`deliver` releases it."""

    def __init__(self) -> None:
        self.held: list[tuple[str, Report]] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Report) -> None:
        self.held.append((topic, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return len(self.held)

    def __len__(self) -> int:
        return len(self.held)

    def deliver(self, which: list[int] | None = None, error: str | None = None) -> int:
        """Report the held messages at positions ``which`` (all by default)."""
        picked = range(len(self.held)) if which is None else which
        reports = [self.held[i] for i in picked]
        self.held = [h for i, h in enumerate(self.held) if i not in set(picked)]
        for topic, report in reports:
            report(error, Msg(topic, 0, 0, b"", b""))
        return len(reports)


class FakeConsumer:
    def __init__(self) -> None:
        self.queue: list[Msg] = []
        self.commits: list[dict[tuple[str, int], int]] = []
        self.group: dict[tuple[str, int], Any] = {}  # committed TopicPartitions, metadata too

    def consume(self, n: int, timeout: float) -> list[Msg]:
        batch, self.queue = self.queue[:n], self.queue[n:]
        return batch

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.group.update({(tp.topic, tp.partition): tp for tp in offsets})

    def committed(self, partitions: list[Any], timeout: float) -> list[Any]:
        from confluent_kafka import TopicPartition

        return [
            self.group.get((tp.topic, tp.partition), TopicPartition(tp.topic, tp.partition))
            for tp in partitions
        ]

    def assignment(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def make_ingest() -> tuple[BatchIngest, FakeConsumer, HeldProducer, HeldCheckpoints]:
    settings = settings_from_dict(
        {
            "topics": TOPICS,
            # Every event escalates, so every message has an output to wait for.
            "defaults": {"escalation": {"policy": "threshold", "min_confidence": 0.99}},
        }
    )
    consumer, producer, store = FakeConsumer(), HeldProducer(), HeldCheckpoints()
    core = IngestCore(settings, store, registry=CollectorRegistry(), compressor=InlineExecutor())  # type: ignore[arg-type]
    ingest = BatchIngest(core, consumer=consumer, producer=producer)
    return ingest, consumer, producer, store


def feed(consumer: FakeConsumer, n: int, first_offset: int = 0) -> None:
    models = [
        SyntheticModel(f"m{i}", seed=i, start=datetime(2026, 1, 1, tzinfo=UTC)) for i in range(2)
    ]
    for k in range(n):
        m = models[k % 2]
        raw = orjson.dumps(m.event(event_id=f"e{first_offset + k}")[0])
        consumer.queue.append(Msg("in", k % 2, first_offset + k, m.model_id.encode(), raw))


def checkpoint_due(ingest: BatchIngest) -> None:
    ingest.core._last_checkpoint = float("-inf")


def test_offsets_wait_for_outputs_then_for_checkpoints() -> None:
    ingest, consumer, producer, store = make_ingest()
    feed(consumer, 10)
    ingest.run_once(0)
    assert len(producer.held) == 10
    checkpoint_due(ingest)
    for _ in range(3):
        ingest.run_once(0)
    # Snapshots are taken, but no record may exist before the outputs it covers.
    assert not store.held and not consumer.commits
    assert not any(s.dirty for _, s in ingest.core.fleet.items())

    # Out of order: the last nine outputs are acknowledged, the first is not.
    producer.deliver(list(range(1, 10)))
    ingest.run_once(0)
    assert not store.held and not consumer.commits

    producer.deliver()
    ingest.run_once(0)
    assert sorted(m for m, _, _ in store.held) == ["m0", "m1"]
    assert not consumer.commits  # the records are not acknowledged yet

    store.deliver()
    ingest.run_once(0)
    assert consumer.commits == [{("in", 0): 9, ("in", 1): 10}]
    offsets = {m: decode(v).offsets for m, v in store.written.items()}
    assert offsets == {"m0": {"inference": 8}, "m1": {"inference": 9}}


def test_a_lost_output_stops_checkpoints_and_commits_for_good() -> None:
    ingest, consumer, producer, store = make_ingest()
    feed(consumer, 6)
    ingest.run_once(0)
    checkpoint_due(ingest)
    ingest.run_once(0)
    producer.deliver([0], error="broker said no")
    producer.deliver()
    with pytest.raises(OutputLostError, match="broker said no"):
        ingest.run_once(0)
    ingest.core.shutdown()
    assert not store.held and not store.written and not consumer.commits


def test_static_membership_only_with_an_instance_id() -> None:
    dynamic = settings_from_dict({"topics": TOPICS})
    assert static_membership(dynamic) == {}
    static = settings_from_dict({"topics": TOPICS, "worker": {"instance_id": "vigil-worker-0"}})
    assert static_membership(static) == {"group.instance.id": "vigil-worker-0"}


@pytest.mark.parametrize("bad", ["", "two words", "a/b", "x" * 250])
def test_an_instance_id_kafka_would_refuse_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="instance_id"):
        settings_from_dict({"topics": TOPICS, "worker": {"instance_id": bad}})


class ClientError:
    def __init__(self, code: int, fatal: bool) -> None:
        self._code, self._fatal = code, fatal

    def code(self) -> int:
        return self._code

    def fatal(self) -> bool:
        return self._fatal

    def str(self) -> str:
        return "Broker: Static consumer fenced by other consumer with same group.instance.id"


def test_a_fenced_worker_stops_and_says_the_id_is_shared() -> None:
    from confluent_kafka import KafkaError

    ingest, consumer, _, _ = make_ingest()
    ingest._on_client_error(ClientError(KafkaError._FENCED, fatal=True))
    feed(consumer, 2)
    with pytest.raises(VigilError, match=r"same worker\.instance_id") as raised:
        ingest.run_once(0)
    assert "VIGIL_INSTANCE_ID" in str(raised.value)
    assert len(consumer.queue) == 2  # nothing consumed after the fence


def test_commit_metadata_carries_the_checkpoint_starts_and_reads_back_the_largest() -> None:
    ingest, consumer, _, _ = make_ingest()
    offsets = {("in", 0): 5, ("in", 1): 6, ("lb", 0): 3}
    ingest.commit(offsets, wait=True, metadata={0: start_metadata(12)})
    assert {k: tp.metadata for k, tp in consumer.group.items()} == {
        ("in", 0): start_metadata(12),
        ("in", 1): None,  # no start known: plain offsets, as before
        ("lb", 0): start_metadata(12),
    }
    assert ingest.checkpoint_starts({0, 1}) == {0: 12}
    # The labels topic's commit is later: its start is larger, and as right.
    ingest.commit({("lb", 0): 4}, wait=False, metadata={0: start_metadata(20)})
    ingest.commit({("in", 1): 7}, wait=False, metadata={1: "not a start"})
    assert ingest.checkpoint_starts({0, 1}) == {0: 20}
    assert ingest.checkpoint_starts({1}) == {}


class RevokingConsumer(FakeConsumer):
    """Has nothing for the first consume, one message for the second, and runs the
    rebalance callback revoking that message's partition inside the third (as
    librdkafka serves callbacks inside ``consume``), before returning the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.on_third: Callable[[], None] = lambda: None
        self.unassigned: list[Any] = []

    def consume(self, n: int, timeout: float) -> list[Msg]:
        self.calls += 1
        if self.calls == 1:
            return []
        if self.calls == 3:
            self.on_third()
        return super().consume(n, timeout)

    def incremental_assign(self, tps: list[Any]) -> None:
        pass

    def incremental_unassign(self, tps: list[Any]) -> None:
        self.unassigned += tps


def test_a_message_of_a_partition_revoked_during_its_batch_is_left_to_the_new_owner() -> None:
    from confluent_kafka import TopicPartition

    ingest, _, _, _ = make_ingest()
    consumer = RevokingConsumer()
    ingest.consumer = consumer
    feed(consumer, 4)  # partitions 0, 1, 0, 1
    ingest._on_assign(consumer, [TopicPartition("in", 0), TopicPartition("in", 1)])
    consumer.on_third = lambda: ingest._on_revoke(consumer, [TopicPartition("in", 0)])
    handled = ingest.run_once(0)
    # The first message (partition 0) was consumed before the revocation: not processed,
    # not counted towards the offsets to commit; partition 1's messages were.
    assert handled == 2
    assert ("in", 0) not in ingest.core.next_offsets
    assert ingest.core.next_offsets[("in", 1)] == 4
    assert {m for m, s in ingest.core.fleet.items()} == {"m1"}
    assert [tp.partition for tp in consumer.unassigned if tp.topic == "in"] == [0]
