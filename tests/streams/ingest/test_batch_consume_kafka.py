"""The batch driver takes what has arrived: it never waits to fill a batch.

librdkafka's ``consume(n, timeout)`` returns when ``n`` messages are there *or* the
timeout has passed, so a batch of a worker under moderate load used to wait the whole
``worker.batch_within_s`` each cycle (latency every event paid). Against a real broker:
a cycle with fewer messages than a batch returns them without waiting its timeout, and an
idle cycle does wait for the first message (up to its timeout) and takes the ones that
came with it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.ingest.batch import BatchIngest
from streams.ingest.core import IngestCore
from streams.kafka.topics import create_topics
from tests.support import unique_topics

pytestmark = pytest.mark.kafka

#: A timeout far longer than the test may take: a cycle that waited it is caught.
LONG_S = 30.0


def _produce(bootstrap: str, topic: str, n: int, first: int = 0) -> None:
    model = SyntheticModel("m", seed=3)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(first, first + n):
        event, _ = model.event(event_id=f"e{i}")
        producer.produce(topic, value=orjson.dumps(event), key=b"m")
    assert producer.flush(30) == 0


def _ingest(bootstrap: str) -> tuple[BatchIngest, dict[str, Any]]:
    topics = unique_topics("natural")
    settings = settings_from_dict(
        {
            "kafka": {"bootstrap": bootstrap},
            "app_id": f"natural-{topics['inference'].split('.')[1]}",
            "topics": {**topics, "partitions": 1},
            "worker": {"batch_size": 500},
        }
    )
    create_topics(settings)
    core = IngestCore(settings, registry=CollectorRegistry())
    core.checkpoints.ensure_topic()
    ingest = BatchIngest(core)
    return ingest, topics


def test_a_cycle_takes_what_has_arrived_without_waiting_to_fill_a_batch(
    kafka_bootstrap: str,
) -> None:
    ingest, topics = _ingest(kafka_bootstrap)
    try:
        _produce(kafka_bootstrap, topics["inference"], 3)
        ingest.start()
        # Joining the group, then the first fetch: the idle wait returns with the first
        # message and the ones fetched with it, not after LONG_S.
        started = time.monotonic()
        handled = 0
        cycles = 0
        while handled < 3 and time.monotonic() - started < LONG_S:
            handled += ingest.run_once(LONG_S)
            cycles += 1
        first_three = time.monotonic() - started
        assert handled == 3
        assert first_three < LONG_S / 2, f"the cycles waited: {first_three:.1f} s"

        # Messages already here: the cycle returns them (fewer than a batch) at once.
        _produce(kafka_bootstrap, topics["inference"], 5, first=3)
        deadline = time.monotonic() + LONG_S
        more = 0
        while more < 5 and time.monotonic() < deadline:
            began = time.monotonic()
            more += ingest.run_once(LONG_S)
            assert time.monotonic() - began < LONG_S / 2
        assert more == 5
        assert ingest.core.processor.processed == 8
    finally:
        ingest.core.shutdown()


def test_an_idle_cycle_waits_up_to_its_timeout_for_a_message(kafka_bootstrap: str) -> None:
    ingest, topics = _ingest(kafka_bootstrap)
    try:
        _produce(kafka_bootstrap, topics["inference"], 1)
        ingest.start()
        deadline = time.monotonic() + LONG_S
        while ingest.core.processor.processed < 1 and time.monotonic() < deadline:
            ingest.run_once(1.0)
        assert ingest.core.processor.processed == 1
        # Nothing more to read: the cycle blocks for its timeout and handles nothing.
        began = time.monotonic()
        assert ingest.run_once(0.5) == 0
        assert time.monotonic() - began >= 0.45
    finally:
        ingest.core.shutdown()
