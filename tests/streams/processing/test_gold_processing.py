"""Gold questions in the worker's processing (streams/processing/processor.py + gold.py):
gold items ride along with escalations, and a label on one scores its reviewer, never the
model."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.config import settings_from_dict
from streams.errors import ConfigError
from streams.events.dead_letters import MessageSource
from streams.processing.gold import GoldIds
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor
from tests.streams.processing.test_processing import T0, inference, sample

GOLD_TRUTH = ["a", "b", "b"]


def _gold_file(tmp_path: Path) -> Path:
    path = tmp_path / "gold.jsonl"
    lines = [
        orjson.dumps(
            {
                "event_id": f"gold-{i}",
                "model_id": "m",
                "ts": T0,
                "prediction": {"label": "a", "confidence": 0.55},
                "features": {"x": 100.0 + i, "secret": "s"},
                "label": truth,
            }
        )
        for i, truth in enumerate(GOLD_TRUTH)
    ]
    path.write_bytes(b"\n".join(lines))
    return path


def _processor(tmp_path: Path, **review: object) -> tuple[Processor, object]:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry()
    settings = settings_from_dict(
        {
            "app_id": "gold-test",
            "defaults": {
                "escalation": {"min_confidence": 0.9, "data_reasons": False},
                "review": {"audit_rate": 0.0, "gold": str(_gold_file(tmp_path)), **review},
                "redact": ["secret"],
            },
        }
    )
    return Processor(settings, VigilMetrics(reg), clock=None), reg


def _label(event_id: str, truth: str, reviewer: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "model_id": "m",
            "ts": T0 + 10_000,
            "label": truth,
            "source": "human",
            "reviewer": reviewer,
        }
    )


def test_gold_items_ride_along_and_their_labels_score_reviewers_not_the_model(
    tmp_path: Path,
) -> None:
    proc, reg = _processor(tmp_path, gold_rate=0.5)
    out = Outgoing()
    for n in range(200):
        proc.inference(
            inference(n, {"label": "a", "confidence": 0.6}), MessageSource("i", 0, n, b"m"), out
        )
    records = [orjson.loads(v) for _, v in out.escalations]
    ids = GoldIds(b"vigil\x1fgold-test")
    gold = [r for r in records if ids.read("m", r["event_id"]) is not None]
    real = [r for r in records if ids.read("m", r["event_id"]) is None]
    assert len(real) == 200 and 60 < len(gold) < 140  # rate 0.5 of the escalations sent
    assert sample(reg, "vigil_escalations_total", model="m", reason="gold") == len(gold)
    # Nothing in a gold record says so: the same fields, reasons of the escalation it rides
    # with, a UUID-like id, the item's own (redacted) features.
    assert {tuple(sorted(r)) for r in gold} == {tuple(sorted(real[0]))}
    first = gold[0]
    assert first["features"]["secret"] == "[redacted]" and first["features"]["x"] >= 100
    assert first["reasons"][0]["kind"] == "low_confidence"
    assert first["inclusion_probability"] == 1.0 and first["reviews_wanted"] == 1
    # The same escalations again (a replay) bring the same gold items.
    proc2, _ = _processor(tmp_path, gold_rate=0.5)
    out2 = Outgoing()
    for n in range(200):
        proc2.inference(
            inference(n, {"label": "a", "confidence": 0.6}), MessageSource("i", 0, n, b"m"), out2
        )
    assert [v for _, v in out2.escalations] == [v for _, v in out.escalations]

    calibration = proc.fleet.get("m").monitor.calibration
    before = calibration.snapshot()
    for k, record in enumerate(gold[:20]):
        index = ids.read("m", record["event_id"])
        assert index is not None
        truth = GOLD_TRUTH[index]
        answer = truth if k % 4 else ("b" if truth == "a" else "a")  # every 4th wrong
        proc.label(_label(record["event_id"], answer, "ana"), MessageSource("l", 0, k, b"m"), out)
    assert sample(reg, "vigil_labels_total", model="m", outcome="gold") == 20
    assert sample(reg, "vigil_reviewer_gold_answers_total", reviewer="ana", outcome="right") == 15
    assert sample(reg, "vigil_reviewer_gold_answers_total", reviewer="ana", outcome="wrong") == 5
    assert calibration.snapshot() == before, "a gold label touched the model's statistics"
    # A label on a real escalation still joins and counts.
    proc.label(_label(real[0]["event_id"], "a", "ana"), MessageSource("l", 0, 99, b"m"), out)
    assert sample(reg, "vigil_labels_total", model="m", outcome="joined") == 1


def test_without_gold_nothing_rides_along(tmp_path: Path) -> None:
    proc, reg = _processor(tmp_path, gold_rate=0.0)
    out = Outgoing()
    for n in range(50):
        proc.inference(
            inference(n, {"label": "a", "confidence": 0.6}), MessageSource("i", 0, n, b"m"), out
        )
    assert len(out.escalations) == 50
    assert sample(reg, "vigil_escalations_total", model="m", reason="gold") == 0


def test_a_bad_gold_file_stops_the_worker_at_start(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"event_id": "x"}')
    settings = settings_from_dict({"models": {"m": {"review": {"gold": str(bad)}}}})
    with pytest.raises(ConfigError, match="line 1"):
        Processor(settings, VigilMetrics(CollectorRegistry()), clock=None)


def test_the_reviewer_label_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry

    from streams.processing import metrics

    monkeypatch.setattr(metrics, "MAX_REVIEWERS", 2)
    m = VigilMetrics(CollectorRegistry())
    assert [m.reviewer(r) for r in ("a", "b", "c", "a", None)] == [
        "a",
        "b",
        "_other",
        "a",
        "_unknown",
    ]
