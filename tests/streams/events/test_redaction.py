"""Redaction (SPEC §4): configured features never leave vigil in an escalation.

Through a real worker: features named in ``redact`` (defaults and per model) and those
with ``redact: true`` are ``"[redacted]"`` in every escalation, and no byte of any
escalation message, nor ``/metrics``, carries a secret value. Alerts are checked on the
pure Processor: a categorical detector reports shares per category *value*.
"""

from __future__ import annotations

import random
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.client import InferencePublisher
from streams.config import settings_from_dict
from streams.events.dead_letters import MessageSource
from streams.events.records import REDACTED
from streams.kafka.topics import create_topics
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor
from tests.support import WorkerProcess, unique_topics, wait_until

MARKER = b"SeCrEt"  # in every secret value; appears nowhere else
N_EVENTS = 300

CONFIG: dict[str, Any] = {
    "defaults": {
        "redact": ["ssn"],
        "features": {
            "card": {"type": "categorical", "redact": True},
            "amount": {"type": "numeric", "min": 0, "max": 1000},
            "country": {"type": "categorical"},
        },
        # Everything escalates; data reasons on (their detail names features only).
        "escalation": {"min_confidence": 0.99, "data_reasons": True},
    },
    # A model's own list adds to the defaults' list; it does not replace it.
    "models": {"named": {"redact": ["token"]}},
}


def secret_event(i: int, model_id: str) -> dict[str, Any]:
    return {
        "event_id": f"e-{i}",
        "model_id": model_id,
        "ts": 1_767_225_600 + i,
        "features": {
            "ssn": f"{MARKER.decode()}-ssn-{i:04d}",
            "card": f"{MARKER.decode()}-card-{i % 7}",
            # Redacted only for "named"; elsewhere it must pass through unchanged.
            "token": f"{MARKER.decode() if model_id == 'named' else 'visible'}-token-{i}",
            "amount": float(i % 1200),  # some out of range: a data reason
            "country": "DE" if i % 50 else f"new-{i}",  # some unseen: a data reason
        },
        "prediction": {"label": "fraud", "confidence": 0.5 + (i % 40) / 100},
        "metadata": {"request": f"r-{i}"},
    }


def read_raw(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list[bytes]:
    """The raw value bytes of ``count`` messages of ``topic`` (then 2 s more for extras)."""
    import time

    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[bytes] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if len(out) >= count and settle_until is None:
                settle_until = time.monotonic() + 2.0
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is None:
                    out.append(msg.value())
                    assert MARKER not in (msg.key() or b"")
    finally:
        consumer.close()
    return out


@pytest.mark.kafka
def test_redacted_features_never_reach_the_escalations_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = unique_topics("redact")
    config = {
        **CONFIG,
        "app_id": f"vigil-test-{topics['inference']}",
        "topics": {**topics, "partitions": 2},
    }
    create_topics(settings_from_dict({**config, "kafka": {"bootstrap": kafka_bootstrap}}))
    worker = WorkerProcess(kafka_bootstrap, config, tmp_path).start()
    try:
        with InferencePublisher(kafka_bootstrap, topic=topics["inference"]) as pub:
            for i in range(N_EVENTS):
                e = secret_event(i, "named" if i % 2 else "anonymous")
                pub.publish_raw(orjson.dumps(e), key=e["model_id"].encode())
        raw = read_raw(kafka_bootstrap, topics["escalations"], N_EVENTS)
        with urllib.request.urlopen(worker.metrics_url, timeout=5) as resp:
            metrics_text = resp.read()
        assert wait_until(
            lambda: sum(v for _, v in worker.scrape().get("vigil_events_total", [])) >= N_EVENTS,
            timeout=30,
        )
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()

    assert len(raw) == N_EVENTS
    for value in raw:
        assert MARKER not in value, value[:300]
        esc = orjson.loads(value)
        features = esc["features"]
        assert features["ssn"] == REDACTED
        assert features["card"] == REDACTED
        if esc["model_id"] == "named":
            assert features["token"] == REDACTED
        else:  # not in the defaults' list: passes through
            assert features["token"] == f"visible-token-{esc['event_id'][2:]}"
        assert features["country"] == "DE" or features["country"].startswith("new-")
        assert esc["metadata"]["request"].startswith("r-")
    assert MARKER not in metrics_text


def test_named_models_keep_the_defaults_redaction() -> None:
    s = settings_from_dict(CONFIG)
    assert s.for_model("named").redacted == {"ssn", "card", "token"}
    assert s.for_model("anything-else").redacted == {"ssn", "card"}


def _drifting_card_alerts() -> list[bytes]:
    settings = settings_from_dict(
        {"defaults": {**CONFIG["defaults"], "drift": {"sensitivity": 1000}}}
    )
    processor = Processor(settings, VigilMetrics(CollectorRegistry()))
    out = Outgoing()
    rng = random.Random(11)
    for i in range(6000):
        cards = ("A", "B") if i < 3000 else ("C", "D")
        e = secret_event(i, "m")
        e["features"]["card"] = f"{MARKER.decode()}-card-{rng.choice(cards)}"
        processor.inference(orjson.dumps(e), MessageSource("i", 0, i, None), out)
    return [value for _, value in out.alerts]


def test_alerts_of_redacted_features_carry_no_values() -> None:
    alerts = _drifting_card_alerts()
    assert any(orjson.loads(a)["signal"] == "feature:card" for a in alerts)
    for a in alerts:
        assert MARKER not in a, a[:300]
