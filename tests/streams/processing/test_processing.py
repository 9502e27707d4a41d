"""The worker's pure core, without Kafka: decisions, accounting and redelivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.events.dead_letters import MessageSource
from streams.events.records import VIGIL_NAMESPACE, alert_id, escalation_id
from streams.processing.fleet import ModelState
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


T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
CLASS = {"label": "a", "confidence": 0.9}
VALUE = {"value": 3.5, "interval": [3.0, 4.0]}


def inference(n: int, prediction: dict[str, Any], model_id: str = "m") -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "model_id": model_id,
            "ts": T0 + n,
            "features": {"x": float(n % 7), "c": "abc"[n % 3]},
            "prediction": prediction,
        }
    )


def label(n: int, truth: str | float, model_id: str = "m") -> bytes:
    key = "label" if isinstance(truth, str) else "value"
    return orjson.dumps(
        {"event_id": f"e{n}", "model_id": model_id, "ts": T0 + n + 1, key: truth, "source": "h"}
    )


def sample(reg: CollectorRegistry, name: str, **labels: str) -> float:
    return reg.get_sample_value(name, labels) or 0.0


KINDS = [
    pytest.param(CLASS, VALUE, "classification", "regression", id="regression-for-classifier"),
    pytest.param(VALUE, CLASS, "regression", "classification", id="classification-for-regressor"),
]


@pytest.mark.parametrize(("made", "other", "kind", "other_kind"), KINDS)
def test_a_prediction_of_the_other_kind_is_a_bad_value_and_changes_nothing(
    made: dict[str, Any], other: dict[str, Any], kind: str, other_kind: str
) -> None:
    proc, reg = processor()
    out = Outgoing()
    for n in range(20):
        proc.inference(inference(n, made), MessageSource("t", 0, n, b"m"), out)
    state = proc.fleet.get("m")
    assert state.kind == kind
    before = repr(state.snapshot()), state.partition, dict(state.offsets)
    out.clear()

    proc.inference(inference(20, other), MessageSource("t", 0, 20, b"m"), out)

    assert (proc.processed, proc.dead_lettered) == (20, 1)
    assert not out.escalations and not out.alerts and len(out.dead_letters) == 1
    key, value = out.dead_letters[0]
    dl = orjson.loads(value)
    assert key == b"m" and dl["source"]["offset"] == 20
    assert dl["reason"] == "bad_value"
    assert dl["detail"] == f"prediction: model 'm' is a {kind} model; got a {other_kind} prediction"
    assert (repr(state.snapshot()), state.partition, dict(state.offsets)) == before
    # The counters add up: the event is the model's dead letter, and a bad value.
    assert sample(reg, "vigil_events_total", model="m", outcome="processed") == 20
    assert sample(reg, "vigil_events_total", model="m", outcome="dead_letter") == 1
    assert sample(reg, "vigil_dead_letters_total", reason="bad_value") == 1
    assert sample(reg, "vigil_dead_letters_total", reason="processing_error") == 0
    # The model goes on with its own kind.
    proc.inference(inference(21, made), MessageSource("t", 0, 21, b"m"), out)
    assert proc.processed == 21 and state.monitor.events_seen == 21


def test_a_label_of_the_other_kind_is_a_bad_value_and_leaves_its_prediction_pending() -> None:
    proc, reg = processor()
    out = Outgoing()
    proc.inference(inference(0, CLASS), MessageSource("i", 0, 0, b"m"), out)
    proc.label(label(0, 2.5), MessageSource("l", 0, 0, b"m"), out)
    dl = orjson.loads(out.dead_letters[0][1])
    assert dl["reason"] == "bad_value"
    assert dl["detail"] == "label: model 'm' is a classification model; got a regression label"
    # The prediction still waits for its label: the right one joins.
    proc.label(label(0, "a"), MessageSource("l", 0, 1, b"m"), out)
    assert proc.labels_processed == 1 and proc.dead_lettered == 1
    assert sample(reg, "vigil_labels_total", model="m", outcome="joined") == 1


def test_the_kind_is_checkpointed_and_an_older_checkpoint_restores_without_one() -> None:
    proc, _ = processor()
    out = Outgoing()
    proc.inference(inference(0, VALUE), MessageSource("t", 0, 0, b"m"), out)
    snapshot = proc.fleet.get("m").snapshot()
    assert ModelState.restore(snapshot).kind == "regression"
    older = {k: v for k, v in snapshot.items() if k != "kind"}
    assert ModelState.restore(older).kind is None


def test_an_exception_while_processing_is_a_processing_error_and_the_stream_goes_on() -> None:
    proc, reg = processor()
    out = Outgoing()
    proc.inference(inference(0, CLASS), MessageSource("t", 0, 0, b"m"), out)
    monitor = proc.fleet.get("m").monitor
    observe = monitor._observe  # what the processor calls (observe without its checks)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monitor._observe = broken  # type: ignore[method-assign]
    proc.inference(inference(1, CLASS), MessageSource("t", 0, 1, b"m"), out)
    monitor._observe = observe  # type: ignore[method-assign]
    proc.inference(inference(2, CLASS), MessageSource("t", 0, 2, b"m"), out)
    dl = orjson.loads(out.dead_letters[0][1])
    assert (dl["reason"], dl["detail"]) == ("processing_error", "RuntimeError: boom")
    assert (proc.processed, proc.dead_lettered) == (2, 1)
    assert sample(reg, "vigil_events_total", model="m", outcome="dead_letter") == 1
    assert sample(reg, "vigil_dead_letters_total", reason="processing_error") == 1


def labelled(n: int, truth: str, **extra: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "model_id": "m",
            "ts": T0 + n + 1,
            "label": truth,
            "source": "h",
            **extra,
        }
    )


def test_each_label_weighs_one_over_the_probability_its_item_was_sent_with() -> None:
    from detectors.audit import audit_draw

    proc, reg = processor(
        defaults={
            "escalation": {"min_confidence": 0.8, "data_reasons": False},
            "review": {"audit_rate": 0.25},
            "labels": {"outcome_rate": 0.5},
        }
    )
    out = Outgoing()
    sure = {"label": "a", "confidence": 0.9}
    for n in range(40):
        proc.inference(inference(n, sure), MessageSource("i", 0, n, b"m"), out)
    sent = {orjson.loads(v)["event_id"]: orjson.loads(v) for _, v in out.escalations}
    audited = {f"e{n}" for n in range(40) if audit_draw("m", f"e{n}") < 0.25}
    assert set(sent) == audited and audited  # confident: only the audit escalates them
    assert {e["inclusion_probability"] for e in sent.values()} == {0.25}
    assert all(e["reasons"][0]["kind"] == "audit" for e in sent.values())
    assert sample(reg, "vigil_escalations_total", model="m", reason="audit") == len(sent)
    one_audit = int(sorted(sent)[0][1:])
    not_sent = next(n for n in range(40) if f"e{n}" not in audited)

    # A wrong audit label stands for 4 items, a right outcome label for 2 (outcome_rate 0.5).
    proc.label(labelled(one_audit, "b"), MessageSource("l", 0, 0, b"m"), out)
    proc.label(labelled(not_sent, "a"), MessageSource("l", 0, 1, b"m"), out)
    cal = proc.fleet.get("m").monitor.calibration
    assert cal.accuracy == pytest.approx(2 / 6)
    # The auto-accept error learns from both: neither was escalated by a rule.
    aa = proc.fleet.get("m").monitor.autoaccept
    assert aa is not None and aa.count == 2 and aa.error == pytest.approx(4 / 6)
    # A label whose prediction is not pending counts with its own inclusion probability.
    proc.label(
        labelled(500, "a", prediction=sure, inclusion_probability=0.1),
        MessageSource("l", 0, 2, b"m"),
        out,
    )
    assert cal.accuracy == pytest.approx(12 / 16)
    # An outcome system samples whatever vigil did: its label of an audited event
    # counts with the outcome rate, not the audit's probability.
    other_audit = int(sorted(sent)[1][1:])
    outcome = labelled(other_audit, "a", source="outcome")
    proc.label(outcome, MessageSource("l", 0, 3, b"m"), out)
    assert cal.accuracy == pytest.approx(14 / 18)
    # A bad one is a dead letter that names the field.
    proc.label(labelled(501, "a", inclusion_probability=0), MessageSource("l", 0, 4, b"m"), out)
    dl = orjson.loads(out.dead_letters[-1][1])
    assert dl["reason"] == "bad_value" and "inclusion_probability" in dl["detail"]


def test_a_checkpoint_from_before_the_audit_restores_and_gets_the_audit_as_configured() -> None:
    proc, _ = processor(defaults={"review": {"audit_rate": 0.3}})
    out = Outgoing()
    for n in range(5):
        proc.inference(inference(n, CLASS), MessageSource("t", 0, n, b"m"), out)
    state = proc.fleet.get("m")
    snapshot = state.snapshot()
    # What the previous release wrote: no audit, no auto-accept monitor, 3-item pending
    # (an item tuple per prediction, as before columns).
    monitor = {k: v for k, v in snapshot["monitor"].items() if k not in ("audit", "autoaccept")}
    monitor["format"] = "vigil.model_monitor/1"
    join = dict(snapshot["join"], version=2)
    join["state"] = dict(join["state"])
    join["state"]["pending"] = [(key, item[:3]) for key, item in state.join.pending_items()]
    join["state"]["joined"] = state.join.joined_items()
    old = ModelState.restore({**snapshot, "monitor": monitor, "join": join})
    assert old.monitor.audit is None and old.monitor.events_seen == 5
    proc.fleet.put("m", old)
    assert old.monitor.audit is not None and old.monitor.audit.rate == 0.3
    assert old.monitor.autoaccept is not None
    assert old.join.pending == 5


def test_the_overlap_sample_asks_for_several_reviews_deterministically() -> None:
    from detectors.audit import reviews_wanted

    settings = {
        "escalation": {"min_confidence": 0.99, "data_reasons": False},
        "review": {"audit_rate": 0.0, "overlap_rate": 0.3, "overlap_reviews": 3},
    }
    wanted: dict[str, int] = {}
    for _ in range(2):  # a replay asks for the same reviews
        proc, _reg = processor(defaults=settings)
        out = Outgoing()
        for n in range(200):
            proc.inference(
                inference(n, {"label": "a", "confidence": 0.6}), MessageSource("i", 0, n, b"m"), out
            )
        sent = {
            orjson.loads(v)["event_id"]: orjson.loads(v)["reviews_wanted"]
            for _, v in out.escalations
        }
        assert len(sent) == 200
        assert wanted in ({}, sent)
        wanted = sent
    overlapped = {e for e, k in wanted.items() if k == 3}
    assert set(wanted.values()) == {1, 3}
    assert 0.2 < len(overlapped) / 200 < 0.4
    assert overlapped == {
        f"e{n}"
        for n in range(200)
        if reviews_wanted("m", f"e{n}", overlap_rate=0.3, overlap_reviews=3) == 3
    }


def test_event_lag_is_the_clock_minus_the_event_time_and_never_negative() -> None:
    reg = CollectorRegistry()
    s = settings_from_dict({})
    ticks = iter(
        [datetime(2026, 1, 1, 0, 0, 2, 500_000, tzinfo=UTC)] * 2
        + [datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)]
    )
    proc = Processor(s, VigilMetrics(reg, s.worker.max_models), clock=lambda: next(ticks))
    out = Outgoing()
    model = SyntheticModel("m", seed=5, start=datetime(2026, 1, 1, tzinfo=UTC))
    at = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:02.48Z", "2026-01-01T00:01:30Z"]
    for i, ts in enumerate(at):  # lags 2.5 s, 0.02 s and -30 s (an event from the future)
        event = model.event()[0]
        event["ts"] = ts
        proc.inference(orjson.dumps(event), MessageSource("t", 0, i, None), out)
    assert proc.processed == 3

    def lag(suffix: str, le: str | None = None) -> float | None:
        labels = {"model": "m"} if le is None else {"model": "m", "le": le}
        return reg.get_sample_value(f"vigil_event_lag_seconds_{suffix}", labels)

    assert lag("count") == 3
    assert lag("sum") == pytest.approx(2.52, abs=1e-6)
    assert lag("bucket", "0.005") == 1  # the future one, as 0
    assert lag("bucket", "0.01") == 1 and lag("bucket", "0.025") == 2
    assert lag("bucket", "1.0") == 2 and lag("bucket", "2.5") == 3
