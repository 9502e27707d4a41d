"""The worker's pure core, without Kafka: decisions, accounting and redelivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.events.dead_letters import MessageSource
from streams.events.records import VIGIL_NAMESPACE, alert_id, escalation_id
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor


def processor(**raw: object) -> tuple[Processor, CollectorRegistry]:
    reg = CollectorRegistry()
    s = settings_from_dict(raw)
    return Processor(s, VigilMetrics(reg, s.worker.max_models), clock=None), reg


def test_unknown_models_are_dead_lettered_when_not_allowed() -> None:
    proc, reg = processor(worker={"allow_unknown_models": False}, models={"known": {}})
    out = Outgoing()
    known = SyntheticModel("known", seed=1, start=datetime(2026, 1, 1, tzinfo=UTC))
    stranger = SyntheticModel("stranger", seed=2, start=datetime(2026, 1, 1, tzinfo=UTC))
    proc.inference(orjson.dumps(known.event()[0]), MessageSource("t", 0, 0, b"known"), out)
    proc.inference(orjson.dumps(stranger.event()[0]), MessageSource("t", 0, 1, None), out)
    assert proc.processed == 1 and proc.dead_lettered == 1
    dl = orjson.loads(out.dead_letters[0][1])
    assert dl["reason"] == "bad_value" and "'stranger' is not configured" in dl["detail"]
    assert (
        reg.get_sample_value("vigil_events_total", {"model": "stranger", "outcome": "dead_letter"})
        == 1
    )


def test_a_redelivered_message_is_not_applied_twice() -> None:
    proc, _ = processor(defaults={"escalation": {"min_confidence": 0.99}})
    out = Outgoing()
    model = SyntheticModel("m", seed=3, start=datetime(2026, 1, 1, tzinfo=UTC))
    raws = [orjson.dumps(model.event()[0]) for _ in range(10)]
    for i, raw in enumerate(raws):
        proc.inference(raw, MessageSource("t", 2, 100 + i, b"m"), out)
    state = proc.fleet.get("m")
    assert state.monitor.events_seen == 10
    assert state.offsets == {"inference": 109} and state.partition == 2
    escalated = len(out.escalations)
    # The same offsets again (a restart before the commit): counted, not applied.
    for i, raw in enumerate(raws[:5]):
        proc.inference(raw, MessageSource("t", 2, 100 + i, b"m"), out)
    assert state.monitor.events_seen == 10
    assert len(out.escalations) == escalated
    assert proc.redelivered == 5
    # A later offset is new.
    proc.inference(raws[0].replace(b'"m-0"', b'"m-new"'), MessageSource("t", 2, 110, b"m"), out)
    assert state.monitor.events_seen == 11


def test_every_message_ends_processed_or_dead_lettered() -> None:
    proc, reg = processor()
    out = Outgoing()
    model = SyntheticModel("m", seed=4, start=datetime(2026, 1, 1, tzinfo=UTC))
    inputs = [orjson.dumps(model.event()[0]) for _ in range(50)] + [b"{", b"[]", b"{}"]
    for i, raw in enumerate(inputs):
        proc.inference(raw, MessageSource("t", 0, i, None), out)
    assert proc.processed + proc.dead_lettered == len(inputs)
    assert len(out.dead_letters) == 3
    assert (
        reg.get_sample_value("vigil_events_total", {"model": "_unknown", "outcome": "dead_letter"})
        == 3
    )


def test_ids_are_the_rfc4122_uuid5_of_their_key() -> None:
    for model_id, event_id in [("fraud", "e1"), ("m", ""), ("mödel", "événement-😀")]:
        key = f"esc\x1f{model_id}\x1f{event_id}"
        assert escalation_id(model_id, event_id) == str(uuid.uuid5(VIGIL_NAMESPACE, key))
    key = "alert\x1fm\x1f1\x1ffeature:x\x1fdrift\x1f500"
    assert alert_id("m", "1", "feature:x", "drift", 500) == str(uuid.uuid5(VIGIL_NAMESPACE, key))
