"""Checkpoint writes fail for a while (the checkpoint topic rejects the records), then
the worker is killed. Offsets must never be committed past the last checkpoint, however
Faust handles the failure (an agent that raises has its take() batch acked, and Faust
commits acked offsets from its error handler): a restarted worker, with the checkpoint
topic repaired, must apply every event exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from streams.kafka.topics import MAX_CHECKPOINT_BYTES
from tests.faults.conftest import MIN_CONFIDENCE, processed
from tests.support import (
    SyntheticStream,
    checkpointed_events_seen,
    publish,
    read_until_escalated,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def set_max_message_bytes(bootstrap: str, topic: str, value: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry(
        "max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def test_failed_checkpoints_never_commit(kafka_bootstrap: str, make_rig, tmp_path: Path) -> None:
    rig = make_rig(kafka_bootstrap, "cpfail", partitions=2)
    checkpoints = rig.topics["checkpoints"]
    set_max_message_bytes(kafka_bootstrap, checkpoints, 1024)  # every record is larger
    stream = SyntheticStream(3, min_confidence=MIN_CONFIDENCE, seed=7)
    escalations = rig.reader("escalations")

    first = rig.worker("first").start()
    publish(kafka_bootstrap, rig.topics["inference"], stream.take(3_000))
    # Processed everything, and attempted (and failed) checkpoints along the way.
    assert wait_until(
        lambda: processed(first) >= 3_000 and "checkpoint write failed" in first.log_tail(400),
        timeout=120,
    ), first.log_tail()
    publish(kafka_bootstrap, rig.topics["inference"], stream.take(1_000))
    assert wait_until(lambda: processed(first) >= 4_000, timeout=60), first.log_tail()
    first.kill()
    assert topic_size(kafka_bootstrap, checkpoints) == 0

    set_max_message_bytes(kafka_bootstrap, checkpoints, MAX_CHECKPOINT_BYTES + 65536)
    second = rig.worker("second").start()
    publish(kafka_bootstrap, rig.topics["inference"], stream.take(1_000))
    audit = read_until_escalated(escalations, stream.qualifying)
    assert not audit.missing, audit
    assert not audit.conflicting, audit
    assert wait_until(lambda: processed(second) >= 1_000, timeout=60)
    assert second.stop() == 0, second.log_tail()
    assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid
