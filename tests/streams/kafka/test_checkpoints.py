"""CheckpointStore.read against the local broker: the newest record of each model wins.

The checkpoint topic is compacted lazily, so a partition holds older records of a model
too; only the newest is decoded, the one before it stands in when the newest cannot be
decoded, and a tombstone retires the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streams.config import settings_from_dict
from streams.kafka.checkpoints import Checkpoint, CheckpointStore, CheckpointWrite, encode

pytestmark = pytest.mark.kafka


def checkpoint(model_id: str, offset: int) -> Checkpoint:
    return Checkpoint(model_id, 0, {"inference": offset}, {"monitor": {}}, time.time())


def test_read_decodes_the_newest_record_of_each_model(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"})
    settings = settings_from_dict(
        {"kafka": {"bootstrap": kafka_bootstrap}, "topics": {"checkpoints": topic, "partitions": 1}}
    )
    store = CheckpointStore(settings)
    try:
        write = CheckpointWrite()
        for value_of in (
            ("m-a", 0, encode(checkpoint("m-a", 1))),
            ("m-b", 0, encode(checkpoint("m-b", 5))),
            ("m-a", 0, encode(checkpoint("m-a", 2))),
            ("m-c", 0, encode(checkpoint("m-c", 7))),
            ("m-a", 0, encode(checkpoint("m-a", 3))),
            ("m-b", 0, b"VGC1 not zlib"),  # the newest of m-b cannot be decoded
        ):
            store.send(*value_of, write)
        store._producer.produce(topic, key=b"m-c", value=None)  # m-c retired
        assert store.flush(30) == 0 and not write.failed

        found = store.read([0])
    finally:
        store.close()
    assert set(found) == {"m-a", "m-b"}
    assert found["m-a"].offsets == {"inference": 3}
    assert found["m-b"].offsets == {"inference": 5}


def test_a_read_from_the_committed_start_finds_what_a_full_read_finds(
    kafka_bootstrap: str, new_topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """Rounds of records for three models, one of them idle after the second round: the
    start is its newest record, and reading from there decodes the same checkpoints as
    reading everything, in fewer records."""
    topic = new_topic(partitions=1, config={"cleanup.policy": "compact"})
    settings = settings_from_dict(
        {"kafka": {"bootstrap": kafka_bootstrap}, "topics": {"checkpoints": topic, "partitions": 1}}
    )
    writer, full, partial = (CheckpointStore(settings) for _ in range(3))
    try:
        assert writer.read([0]) == {} and writer.read_start(0) is None  # an empty partition
        write = CheckpointWrite()
        for round_ in range(6):
            for model in ("m-a", "m-b", "m-c") if round_ < 2 else ("m-a", "m-b"):
                writer.send(model, 0, encode(checkpoint(model, 10 * round_)), write)
            assert writer.flush(30) == 0 and not write.failed
        # m-c's newest record is the last of round 2 (offset 5): everything before it can go.
        assert writer.newest[0] == {"m-a": 12, "m-b": 13, "m-c": 5}
        start = writer.read_start(0)
        assert start == 5

        everything = full.read([0])
        with caplog.at_level("INFO", logger="streams.kafka.checkpoints"):
            from_start = partial.read([0], start={0: start})
        assert (
            {m: cp.offsets for m, cp in from_start.items()}
            == {m: cp.offsets for m, cp in everything.items()}
            == {"m-a": {"inference": 50}, "m-b": {"inference": 50}, "m-c": {"inference": 10}}
        )
        assert partial.newest == full.newest == writer.newest
        assert "read 9 records" in caplog.text and "5 skipped" in caplog.text

        # A start the partition does not hold (a recreated topic, say): from the beginning.
        assert partial.read([0], start={0: 10_000}).keys() == everything.keys()
    finally:
        for store in (writer, full, partial):
            store.close()


def test_a_models_record_goes_to_the_partition_its_events_arrive_on(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """Whatever partitioner put a model's events on partition *p* (librdkafka's default
    CRC32 and the Java clients' murmur2 disagree), its checkpoint is in partition *p*: the
    worker given *p* finds it there, and no other partition holds it."""
    topic = new_topic(partitions=4, config={"cleanup.policy": "compact"})
    settings = settings_from_dict(
        {"kafka": {"bootstrap": kafka_bootstrap}, "topics": {"checkpoints": topic, "partitions": 4}}
    )
    store = CheckpointStore(settings)
    try:
        # One model id on each partition in turn: a key-hashing producer would put all
        # four records in one partition.
        written = [
            Checkpoint(f"m@{p}", p, {"inference": p}, {"monitor": {}}, time.time())
            for p in range(4)
        ]
        assert store.write(written) == 4
        for p in range(4):
            assert set(store.read([p])) == {f"m@{p}"}, p
    finally:
        store.close()
