"""``benchmarks/baselines/bare_relay.py``, the latency baseline of ``throughput.py``, on a
real broker: it relays exactly the events below the threshold, as they were, with the
worker's client settings, and stops cleanly on SIGTERM."""

from __future__ import annotations

import doctest
import random
from pathlib import Path

import orjson
import pytest

from benchmarks.baselines import bare_relay
from benchmarks.throughput import RelayProcess, worker_config
from streams.config import settings_from_dict
from streams.ingest.batch import consumer_config, producer_config
from streams.kafka.topics import create_topics
from tests.support import TopicReader, publish, unique_topics


@pytest.mark.kafka
def test_relays_the_events_below_the_threshold(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = unique_topics("relay")
    settings = settings_from_dict(
        {"kafka": {"bootstrap": kafka_bootstrap}, "topics": {**topics, "partitions": 2}}
    )
    create_topics(settings)
    cfg = worker_config(topics, "relay-test")
    cfg["topics"]["partitions"] = 2
    cfg["defaults"]["escalation"] = {"policy": "threshold", "min_confidence": 0.9}
    rng = random.Random(5)
    events = []
    for i in range(400):
        if i % 3 == 0:  # the label's score as its confidence
            c = rng.random()
            prediction = {"label": "a", "scores": {"a": c, "b": 1.0 - c}}
        else:
            prediction = {"label": "a", "confidence": rng.random()}
        events.append({"event_id": f"e{i}", "model_id": "m", "prediction": prediction})
    messages = [(b"m", orjson.dumps(e)) for e in events]
    messages.append((b"m", b"not json"))  # unreadable: not relayed, not a crash
    wanted = {
        orjson.dumps(e)
        for e in events
        if e["prediction"].get("confidence", e["prediction"].get("scores", {}).get("a", 1.0)) < 0.9
    }
    assert 0 < len(wanted) < len(events)

    relay = RelayProcess(kafka_bootstrap, cfg, tmp_path, name="relay").start()
    reader = TopicReader(kafka_bootstrap, topics["escalations"])
    try:
        publish(kafka_bootstrap, topics["inference"], messages)
        got = reader.read_until(len(wanted), timeout=60)
    finally:
        reader.close()
        code = relay.stop()
    assert sorted(orjson.dumps(m) for m in got) == sorted(wanted)
    assert code == 0, relay.log_tail()
    assert f"{len(wanted)} events relayed" in relay.log_tail()


def test_the_module_doctests_pass() -> None:
    assert doctest.testmod(bare_relay).failed == 0


def test_reads_and_writes_with_the_workers_client_settings() -> None:
    settings = settings_from_dict(
        {"app_id": "a", "kafka": {"bootstrap": "b:9092"}, "worker": {"instance_id": "w1"}}
    )
    consumer, producer = consumer_config(settings), producer_config(settings)
    assert consumer["group.id"] == "a" and consumer["group.instance.id"] == "w1"
    assert consumer["bootstrap.servers"] == producer["bootstrap.servers"] == "b:9092"
    assert consumer["partition.assignment.strategy"] == "cooperative-sticky"
    assert consumer["enable.auto.commit"] is False
    assert producer["acks"] == "all" and producer["enable.idempotence"] is True
