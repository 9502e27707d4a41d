"""The walking skeleton end to end: a real broker, a real worker process, real topics.

2,000 events across 3 models, 10 % malformed in every way the traffic module knows:
every event is accounted for, each dead letter has the right reason, and exactly
the events under the confidence threshold are escalated, once, with the right reasons.
"""

from __future__ import annotations

import base64
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from detectors.audit import audit_draw
from streams.client import InferencePublisher
from streams.config import settings_from_dict
from streams.dev.scrape import total
from streams.dev.traffic import INVALID_KINDS, SyntheticModel, invalid_event
from streams.events.records import escalation_id
from streams.kafka.topics import create_topics
from tests.support import TopicReader, WorkerProcess, unique_topics, wait_until

pytestmark = pytest.mark.kafka

MIN_CONFIDENCE = 0.75
AUDIT_RATE = 0.02  # review.audit_rate's default
N_EVENTS = 2000


def test_every_event_is_accounted_for(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = unique_topics("skeleton")
    config = {
        "app_id": f"vigil-test-{topics['inference']}",
        "topics": {**topics, "partitions": 3},
        "defaults": {
            "escalation": {"min_confidence": MIN_CONFIDENCE, "data_reasons": False},
            "features": {"x0": {"type": "numeric"}, "ssn": {"type": "categorical", "redact": True}},
        },
    }
    settings = settings_from_dict({**config, "kafka": {"bootstrap": kafka_bootstrap}})
    create_topics(settings)
    worker = WorkerProcess(kafka_bootstrap, config, tmp_path).start()
    escalations = TopicReader(kafka_bootstrap, topics["escalations"])
    dead = TopicReader(kafka_bootstrap, topics["deadletter"])
    try:
        rng = random.Random(2026)
        models = [SyntheticModel(f"model-{i}", n_numeric=3, seed=i) for i in range(3)]
        expected_dead: Counter[tuple[bytes, str]] = Counter()
        expected_escalated: dict[str, float] = {}
        expected_audits: set[str] = set()  # the default audit sample of accepted events
        valid_per_model: Counter[str] = Counter()
        with InferencePublisher(kafka_bootstrap, topic=topics["inference"]) as pub:
            for i in range(N_EVENTS):
                model = rng.choice(models)
                if i % 10 == 0:
                    kind = INVALID_KINDS[(i // 10) % len(INVALID_KINDS)]
                    raw, reason = invalid_event(kind, model.model_id, i)
                    expected_dead[(raw, reason)] += 1
                    pub.publish_raw(raw, key=model.model_id.encode())
                    continue
                event, _truth = model.event()
                event["features"]["ssn"] = "123-45-6789"
                confidence = event["prediction"]["scores"][event["prediction"]["label"]]
                if confidence < MIN_CONFIDENCE:
                    expected_escalated[event["event_id"]] = confidence
                elif audit_draw(model.model_id, event["event_id"]) < AUDIT_RATE:
                    expected_audits.add(event["event_id"])
                valid_per_model[model.model_id] += 1
                pub.publish_raw(orjson.dumps(event), key=model.model_id.encode())
        n_invalid = sum(expected_dead.values())
        assert n_invalid == N_EVENTS // 10

        got_dead = dead.read_until(n_invalid)
        got_esc = escalations.read_until(len(expected_escalated) + len(expected_audits))

        # Dead letters: one per malformed message, with the reason its kind calls for.
        assert len(got_dead) == n_invalid
        seen: Counter[tuple[bytes, str]] = Counter()
        for dl in got_dead:
            seen[(base64.b64decode(dl["payload_b64"]), dl["reason"])] += 1
            assert dl["detail"], dl
            assert dl["source"]["topic"] == topics["inference"]
        assert seen == expected_dead

        # Escalations: exactly the low-confidence events and the audit draw of the others,
        # once each, with deterministic ids.
        by_event = Counter(e["event_id"] for e in got_esc)
        assert expected_audits
        assert set(by_event) == set(expected_escalated) | expected_audits
        assert max(by_event.values()) == 1
        for e in got_esc:
            assert e["escalation_id"] == escalation_id(e["model_id"], e["event_id"])
            assert e["features"]["ssn"] == "[redacted]"
            assert 0.0 <= e["priority"] <= 1.0
            kinds = [r["kind"] for r in e["reasons"]]
            if e["event_id"] in expected_audits:
                assert kinds == ["audit"] and e["inclusion_probability"] == AUDIT_RATE
            else:
                assert kinds == ["low_confidence"] and e["inclusion_probability"] == 1.0
                score = e["reasons"][0]["score"]
                assert score == pytest.approx(expected_escalated[e["event_id"]])
                assert e["reasons"][0]["threshold"] == MIN_CONFIDENCE

        # /metrics adds up: processed + dead-lettered = published.
        def metrics_complete() -> bool:
            s = worker.scrape()
            return total(s, "vigil_events_total") >= N_EVENTS

        assert wait_until(metrics_complete, timeout=30)
        # The ingest loop goes round, idle now: the liveness probe's answer is yes.
        status, body = worker.healthz()
        assert status == 200 and body.startswith("ok: the ingest loop went round"), body
        s = worker.scrape()
        for model_id, n in valid_per_model.items():
            assert total(s, "vigil_events_total", model=model_id, outcome="processed") == n
        assert total(s, "vigil_events_total", outcome="processed") == N_EVENTS - n_invalid
        assert total(s, "vigil_events_total", outcome="dead_letter") == n_invalid
        by_reason: Counter[str] = Counter()
        for (_raw, reason), n in expected_dead.items():
            by_reason[reason] += n
        for reason, n in by_reason.items():
            assert total(s, "vigil_dead_letters_total", reason=reason) == n
        assert total(s, "vigil_escalations_total", reason="low_confidence") == len(
            expected_escalated
        )
        assert total(s, "vigil_escalations_total", reason="audit") == len(expected_audits)
        assert total(s, "vigil_prediction_confidence_count") == N_EVENTS - n_invalid
        assert total(s, "vigil_event_lag_seconds_count") == N_EVENTS - n_invalid
        assert total(s, "vigil_batch_seconds_count") > 0
        # The process's own health: its memory, and the collector's pauses (at least the
        # full collection the batch driver runs before it freezes its start-up heap).
        assert total(s, "process_resident_memory_bytes") > 20 * 2**20
        assert total(s, "python_gc_collections_total") > 0
        assert total(s, "vigil_gc_pause_seconds_count", generation="2") >= 1

        # Lag of every input partition, the labels topic's too although nothing was ever
        # read from it (an idle partition is 0 behind, not missing).
        def lag_reported() -> bool:
            lag = {
                (labels["topic"], labels["partition"]): value
                for labels, value in worker.scrape().get("vigil_consumer_lag", [])
            }
            return len(lag) == 6 and not any(lag.values())

        assert wait_until(lag_reported, timeout=30), worker.scrape().get("vigil_consumer_lag")
    finally:
        escalations.close()
        dead.close()
        code = worker.stop()
        log = worker.log_tail()
    assert code == 0, log
