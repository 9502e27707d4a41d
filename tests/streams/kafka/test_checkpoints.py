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
            ("m-a", encode(checkpoint("m-a", 1))),
            ("m-b", encode(checkpoint("m-b", 5))),
            ("m-a", encode(checkpoint("m-a", 2))),
            ("m-c", encode(checkpoint("m-c", 7))),
            ("m-a", encode(checkpoint("m-a", 3))),
            ("m-b", b"VGC1 not zlib"),  # the newest of m-b cannot be decoded
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
