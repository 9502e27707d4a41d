"""Offsets with gaps (faust #606): a transactional producer leaves a commit marker after
every transaction, so the offsets a consumer sees are not consecutive. The worker must
still commit up to the last event it processed, and apply each event once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.faults.conftest import MIN_CONFIDENCE, processed
from tests.support import (
    SyntheticStream,
    checkpointed_events_seen,
    read_until_escalated,
    uncommitted,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def test_commits_across_transaction_markers(kafka_bootstrap: str, make_rig, tmp_path: Path) -> None:
    rig = make_rig(kafka_bootstrap, "gaps", partitions=2)
    stream = SyntheticStream(3, min_confidence=MIN_CONFIDENCE, seed=3)
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"vigil-test-{uuid.uuid4().hex[:8]}",
            "partitioner": "murmur2_random",
        }
    )
    producer.init_transactions(30)
    for _ in range(40):  # 40 transactions of 50 events: a marker after each
        producer.begin_transaction()
        for key, value in stream.take(50):
            producer.produce(rig.topics["inference"], value=value, key=key)
        producer.commit_transaction(30)
    escalations = rig.reader("escalations")

    worker = rig.worker("worker").start()
    audit = read_until_escalated(escalations, stream.qualifying)
    assert not audit.missing, audit
    n_valid = sum(stream.valid.values())
    assert wait_until(lambda: processed(worker) >= n_valid, timeout=60), worker.log_tail()
    assert worker.stop() == 0, worker.log_tail()

    # Committed up to the last event: only each partition's final marker is left over.
    left = uncommitted(kafka_bootstrap, rig.config["app_id"], rig.topics["inference"])
    assert all(n <= 1 for n in left.values()), left
    assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid
