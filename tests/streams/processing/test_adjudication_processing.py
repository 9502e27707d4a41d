"""Adjudication in the worker's processing (processor.py + review_desk.py): labels of one
event are kept until it has the reviews it asked for, the model learns from the final
label only, and every adjudicated escalation yields one reviewed record (SPEC §3, §12)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from detectors.audit import reviews_wanted
from streams.config import settings_from_dict
from streams.events.dead_letters import MessageSource
from streams.events.records import reviewed_id
from streams.processing.fleet import Fleet, ModelState
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor
from tests.streams.processing.test_gold_processing import GOLD_TRUTH, _gold_file
from tests.streams.processing.test_processing import T0, inference, sample

OVERLAP = {"overlap_rate": 1.0, "overlap_reviews": 3}


class Clock:
    """An injectable clock the tests move by hand."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime.fromtimestamp(T0 + 1000, UTC)

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def _processor(
    clock: Clock | None = None, gold: Path | None = None, **review: object
) -> tuple[Processor, CollectorRegistry]:
    reg = CollectorRegistry()
    review_cfg: dict[str, object] = {"audit_rate": 0.0, **review}
    if gold is not None:
        review_cfg["gold"] = str(gold)
    settings = settings_from_dict(
        {
            "app_id": "adjudication-test",
            "defaults": {
                "escalation": {"min_confidence": 0.9, "data_reasons": False},
                "review": review_cfg,
            },
        }
    )
    fleet = Fleet(settings)
    metrics = VigilMetrics(reg, readings=fleet.readings, reviewers=fleet.reviewer_readings)
    return Processor(settings, metrics, fleet, clock=clock or Clock()), reg


def _escalate(proc: Processor, n: int, out: Outgoing, confidence: float = 0.6) -> list[dict]:
    """``n`` low-confidence events of model m: each is escalated by rule."""
    for i in range(n):
        proc.inference(
            inference(i, {"label": "a", "confidence": confidence}),
            MessageSource("i", 0, i, b"m"),
            out,
        )
    return [orjson.loads(v) for _, v in out.escalations]


_offset = iter(range(10**9))


def _label(
    proc: Processor,
    out: Outgoing,
    event_id: str,
    truth: str,
    reviewer: str | None,
    source: str = "human",
    **extra: object,
) -> None:
    body: dict[str, object] = {
        "event_id": event_id,
        "model_id": "m",
        "ts": T0 + 2000,
        "label": truth,
        "source": source,
        **extra,
    }
    if reviewer is not None:
        body["reviewer"] = reviewer
    proc.label(orjson.dumps(body), MessageSource("l", 0, next(_offset), b"m"), out)


def _labelled(proc: Processor) -> int:
    return proc.fleet.get("m").monitor.calibration.count


def test_labels_wait_for_the_reviews_wanted_and_the_model_learns_from_the_final_one() -> None:
    proc, reg = _processor(**OVERLAP)
    out = Outgoing()
    esc = _escalate(proc, 1, out)[0]
    assert esc["reviews_wanted"] == 3
    event = esc["event_id"]
    _label(proc, out, event, "b", "ana")
    _label(proc, out, event, "a", "bo")
    # Two of three: nothing learnt, nothing published, the labels are held.
    assert _labelled(proc) == 0 and out.reviewed == []
    assert proc.fleet.get("m").review is not None
    assert proc.fleet.get("m").review.pending == 1
    _label(proc, out, event, "b", "cy")
    assert _labelled(proc) == 1  # one event, one final label
    assert sample(reg, "vigil_labels_total", model="m", outcome="joined") == 3
    assert sample(reg, "vigil_adjudications_total", model="m", method="majority") == 1
    [(key, body)] = out.reviewed
    record = orjson.loads(body)
    assert key == b"m"
    assert record["reviewed_id"] == reviewed_id("m", event)
    assert record["final"] == {"label": "b", "method": "majority", "agreement": 0.666667}
    assert [(x["reviewer"], x["label"]) for x in record["labels"]] == [
        ("ana", "b"),
        ("bo", "a"),
        ("cy", "b"),
    ]
    for field in ("features", "segment", "prediction", "reasons", "policy", "escalation_id"):
        assert record[field] == esc[field], field
    assert record["event_ts"] == esc["event_ts"] and record["inclusion_probability"] == 1.0
    # The final label ("b") is what calibration saw: the prediction "a" was wrong.
    assert proc.fleet.get("m").monitor.calibration.accuracy == 0.0

    # A fourth label, after adjudication: late, and nothing changes.
    _label(proc, out, event, "a", "di")
    assert sample(reg, "vigil_labels_total", model="m", outcome="late") == 1
    assert _labelled(proc) == 1 and len(out.reviewed) == 1


def test_a_reviewers_second_label_replaces_the_first() -> None:
    proc, _ = _processor(**OVERLAP)
    out = Outgoing()
    event = _escalate(proc, 1, out)[0]["event_id"]
    _label(proc, out, event, "b", "ana")
    _label(proc, out, event, "a", "ana")  # changed her mind
    _label(proc, out, event, "a", "bo")
    assert out.reviewed == []  # still two reviewers of three
    _label(proc, out, event, "a", "cy")
    record = orjson.loads(out.reviewed[0][1])
    assert [(x["reviewer"], x["label"]) for x in record["labels"]] == [
        ("ana", "a"),
        ("bo", "a"),
        ("cy", "a"),
    ]
    assert record["final"]["agreement"] == 1.0


def test_an_event_short_of_reviews_is_decided_on_timeout() -> None:
    clock = Clock()
    proc, reg = _processor(clock, adjudication_timeout_s=600, **OVERLAP)
    out = Outgoing()
    event = _escalate(proc, 1, out)[0]["event_id"]
    _label(proc, out, event, "b", "ana")
    out.clear()
    clock.advance(599)
    proc.adjudicate_due(out)
    assert out.reviewed == [] and _labelled(proc) == 0
    clock.advance(2)
    proc.adjudicate_due(out)
    record = orjson.loads(out.reviewed[0][1])
    assert record["final"] == {"label": "b", "method": "single", "agreement": 1.0}
    assert _labelled(proc) == 1
    assert proc.fleet.get("m").dirty, "a timeout decision must reach the next checkpoint"
    assert sample(reg, "vigil_adjudications_total", model="m", method="single") == 1


def test_an_outcome_label_overrides_the_reviews() -> None:
    proc, _ = _processor(**OVERLAP)
    out = Outgoing()
    event = _escalate(proc, 1, out)[0]["event_id"]
    _label(proc, out, event, "b", "ana")
    _label(proc, out, event, "b", "bo")
    _label(proc, out, event, "a", None, source="outcome")
    record = orjson.loads(out.reviewed[0][1])
    assert record["final"]["label"] == "a" and record["final"]["method"] == "outcome"
    assert proc.fleet.get("m").monitor.calibration.accuracy == 1.0


def test_a_label_for_an_event_vigil_did_not_escalate_is_learnt_from_without_a_record() -> None:
    proc, reg = _processor(**OVERLAP)
    out = Outgoing()
    # Confident: auto-accepted, not escalated (and no audit).
    assert _escalate(proc, 1, out, confidence=0.97) == []
    _label(proc, out, "e0", "a", None, source="outcome", inclusion_probability=0.5)
    assert _labelled(proc) == 1 and out.reviewed == []
    assert sample(reg, "vigil_labels_total", model="m", outcome="joined") == 1
    # An unknown event is unmatched, as before.
    _label(proc, out, "nope", "a", "ana")
    assert sample(reg, "vigil_labels_total", model="m", outcome="unmatched") == 1


def test_reviews_wanted_is_recomputed_when_the_escalation_is_no_longer_remembered() -> None:
    proc, _ = _processor(max_open=1, **OVERLAP)
    out = Outgoing()
    first, _ = (e["event_id"] for e in _escalate(proc, 2, out))
    assert proc.fleet.get("m").review is not None
    assert proc.fleet.get("m").review.forgotten == 1  # the first was pushed out
    assert reviews_wanted("m", first, overlap_rate=1.0, overlap_reviews=3, seed=0) == 3
    _label(proc, out, first, "b", "ana")
    _label(proc, out, first, "b", "bo")
    assert _labelled(proc) == 0  # still waits for 3
    _label(proc, out, first, "b", "cy")
    assert _labelled(proc) == 1
    assert out.reviewed == []  # its record was forgotten: no reviewed record, learnt from


def test_gold_labels_score_reviewers_never_the_model_nor_the_reviewed_topic(
    tmp_path: Path,
) -> None:
    from streams.processing.gold import GoldIds

    proc, reg = _processor(
        gold=_gold_file(tmp_path), gold_rate=1.0, flag_min_items=3, flag_on="gold"
    )
    out = Outgoing()
    records = _escalate(proc, 40, out)
    ids = GoldIds(b"vigil\x1fadjudication-test")
    gold = [r for r in records if ids.read("m", r["event_id"]) is not None]
    real = [r for r in records if ids.read("m", r["event_id"]) is None]
    assert len(gold) >= 10
    for record in gold:
        index = ids.read("m", record["event_id"])
        assert index is not None
        truth = GOLD_TRUTH[index]
        _label(proc, out, record["event_id"], truth, "good")
        _label(proc, out, record["event_id"], "b" if truth == "a" else "a", "careless")
    for record in real[:5]:
        _label(proc, out, record["event_id"], "a", "good")
    assert _labelled(proc) == 5 and len(out.reviewed) == 5
    gold_ids = {r["event_id"] for r in gold}
    assert not gold_ids & {orjson.loads(v)["event_id"] for _, v in out.reviewed}
    assert sample(reg, "vigil_reviewer_gold_accuracy", reviewer="good") == 1.0
    assert sample(reg, "vigil_reviewer_gold_accuracy", reviewer="careless") == 0.0
    assert sample(reg, "vigil_reviewer_gold_accuracy_upper", reviewer="careless") < 0.3
    assert sample(reg, "vigil_reviewer_flagged", reviewer="careless") == 1.0
    assert sample(reg, "vigil_reviewer_flagged", reviewer="good") == 0.0
    assert sample(reg, "vigil_reviewer_labels_total", reviewer="good") == len(gold) + 5
    # The flag is an edge-triggered alert too (SPEC §5: reviewer:<id>:<signal>); flagged on
    # gold alone here (review.flag_on: gold), so the signal says so.
    signals = {orjson.loads(v)["signal"] for _, v in out.alerts}
    assert "reviewer:careless:gold_accuracy" in signals


def test_agreement_and_reviewer_gauges_from_overlapped_items() -> None:
    proc, reg = _processor(**OVERLAP)
    out = Outgoing()
    events = [e["event_id"] for e in _escalate(proc, 60, out)]
    for i, event in enumerate(events):
        truth = "a" if i % 2 else "b"
        _label(proc, out, event, truth, "ana")
        _label(proc, out, event, truth, "bo")
        _label(proc, out, event, "a" if i % 3 else "b", "cy")  # agrees now and then
    assert len(out.reviewed) == 60
    alpha = sample(reg, "vigil_reviewer_agreement", model="m")
    assert 0.0 < alpha < 0.9
    assert sample(reg, "vigil_adjudication_pending", model="m") == 0
    assert sample(reg, "vigil_reviewer_adjudicated_agreement", reviewer="ana") == 1.0
    assert sample(reg, "vigil_reviewer_adjudicated_agreement", reviewer="cy") < 0.9
    # The adjudicator's estimate of each reviewer: ana and bo always agree, cy often not.
    ana = sample(reg, "vigil_reviewer_estimated_accuracy", reviewer="ana")
    cy = sample(reg, "vigil_reviewer_estimated_accuracy", reviewer="cy")
    assert 0.9 < ana <= 1.0 and cy < ana - 0.2
    # Seconds from escalation to label, from the label's own ts (1000 s in these tests).
    assert sample(reg, "vigil_reviewer_time_to_label_seconds", reviewer="ana") == 1000.0


def test_open_reviews_survive_a_checkpoint_and_old_checkpoints_restore() -> None:
    proc, _ = _processor(**OVERLAP)
    out = Outgoing()
    event = _escalate(proc, 1, out)[0]["event_id"]
    _label(proc, out, event, "b", "ana")
    _label(proc, out, event, "b", "bo")
    state = proc.fleet.get("m")
    snapshot = state.snapshot()
    restored, _ = _processor(**OVERLAP)
    restored.fleet.put("m", ModelState.restore(snapshot))
    out2 = Outgoing()
    _label(restored, out2, event, "b", "cy")
    record = orjson.loads(out2.reviewed[0][1])
    assert [x["reviewer"] for x in record["labels"]] == ["ana", "bo", "cy"]
    # A checkpoint from before adjudication existed has no review desk: one starts fresh.
    older = {k: v for k, v in snapshot.items() if k != "review"}
    fresh, _ = _processor(**OVERLAP)
    fresh.fleet.put("m", ModelState.restore(older))
    assert fresh.fleet.get("m").review is not None
    assert fresh.fleet.get("m").review.pending == 0


def test_the_dataset_sink_reads_the_workers_reviewed_records() -> None:
    from streams.dataset.rows import decode_reviewed, rows_to_table

    proc, _ = _processor(**OVERLAP)
    out = Outgoing()
    events = [e["event_id"] for e in _escalate(proc, 3, out)]
    for event in events:
        for reviewer, answer in (("ana", "a"), ("bo", "b"), ("cy", "b")):
            _label(proc, out, event, answer, reviewer)
    rows = [
        decode_reviewed(orjson.loads(body), topic="vigil.reviewed", partition=0, offset=n)
        for n, (_, body) in enumerate(out.reviewed)
    ]
    assert [r["event_id"] for r in rows] == events
    # The first by plain majority; then the reviewers' estimates differ: weighted.
    assert [(r["final_label"], r["final_method"], r["n_labels"]) for r in rows] == [
        ("b", "majority", 3),
        ("b", "weighted", 3),
        ("b", "weighted", 3),
    ]
    assert rows_to_table(rows).num_rows == 3
