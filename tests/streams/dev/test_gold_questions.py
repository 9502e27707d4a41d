"""The demo's gold questions, without Kafka: the files it writes are gold files the worker
reads, and its review team answers the worker's gold escalations from their content, at
each reviewer's error rate."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.dev.demo import demo_models, write_gold
from streams.dev.gold_questions import GoldAnswers, gold_items, write_gold_file
from streams.dev.ground_truth import GroundTruth, Truth
from streams.dev.label_sources import REVIEWERS, ReviewTeam
from streams.dev.traffic import CLASSES, SyntheticModel
from streams.events.schema import decode_label
from streams.processing.gold import GoldDesk, GoldIds, GoldSet


def trigger(model_id: str, i: int) -> dict[str, Any]:
    """An ordinary escalation, as the worker writes it, that a gold item rides along with."""
    return {
        "escalation_id": f"x-{model_id}-{i}",
        "event_id": f"{model_id}-{i}",
        "model_id": model_id,
        "model_version": "1.0.0",
        "prediction": {"label": "pos", "scores": {"pos": 0.55, "neg": 0.45}},
        "features": {"x0": 0.1},
        "reasons": [{"kind": "low_confidence", "score": 0.55, "threshold": 0.6}],
        "inclusion_probability": 1.0,
        "reviews_wanted": 1,
    }


@pytest.fixture
def gold_file(tmp_path: Path) -> Path:
    model = SyntheticModel("fraud", n_numeric=6, seed=1)
    return write_gold_file(tmp_path / "gold-fraud.jsonl", gold_items(model, 50, seed=1001))


def gold_escalations(path: Path, n: int) -> list[dict[str, Any]]:
    """``n`` gold escalations as the worker's GoldDesk makes them from ``path``."""
    desk = GoldDesk(GoldSet.load(path), GoldIds(b"demo-key"), rate=1.0)
    out = []
    for i in range(n):
        # Through JSON, as the team reads them from the escalations topic.
        gold = desk.escalation("fraud", trigger("fraud", i))
        assert gold is not None
        out.append(orjson.loads(orjson.dumps(gold)))
    return out


def test_gold_items_are_uncertain_events_of_the_model_with_their_truth() -> None:
    model = SyntheticModel("fraud", n_numeric=6, seed=1)
    items = gold_items(model, 50, seed=1001)
    assert len(items) == 50
    assert len({item["event_id"] for item in items}) == 50
    assert {item["label"] for item in items} <= set(CLASSES)
    assert {item["prediction"]["label"] for item in items} <= set(CLASSES)
    # They look like what the demo's threshold policy escalates.
    assert all(max(item["prediction"]["scores"].values()) < 0.6 for item in items)
    assert gold_items(model, 50, seed=1001) == items  # deterministic
    # Not the live traffic's events: the model's own draws are untouched and different.
    live = [model.event()[0]["features"] for _ in range(500)]
    assert not any(item["features"] in live for item in items)
    # Drawn from the model's weights: the twin's predictions are the model's.
    twin = SyntheticModel("fraud", n_numeric=6, seed=1)
    assert twin.weights == model.weights


def test_gold_items_reject_bad_arguments() -> None:
    model = SyntheticModel("fraud", seed=1)
    with pytest.raises(ValueError, match="n must be an integer ≥ 1; got 0"):
        gold_items(model, 0, seed=1)
    with pytest.raises(ValueError, match=r"below must be in \(0.5, 1\]; got 0.4"):
        gold_items(model, 1, seed=1, below=0.4)
    with pytest.raises(ValueError, match=r"rarely below confidence 0\.5"):
        gold_items(model, 1, seed=1, below=0.5000001)


def test_the_demo_writes_a_gold_file_per_model_that_the_worker_loads(tmp_path: Path) -> None:
    models = demo_models(300.0)
    paths = write_gold(models, tmp_path)
    assert set(paths) == {m.model_id for m in models}
    for model_id, path in paths.items():
        gold = GoldSet.load(path)  # the worker's reader: every line an InferenceEvent
        assert len(gold) == 50
        assert {item.event.model_id for item in gold.items} == {model_id}
        assert {item.truth for item in gold.items} <= set(CLASSES)
    assert len(GoldAnswers.read(paths.values())) == 150


def test_the_team_answers_a_gold_escalation_from_its_content(gold_file: Path) -> None:
    items = {
        orjson.dumps(item["features"], option=orjson.OPT_SORT_KEYS): item["label"]
        for item in map(orjson.loads, gold_file.read_bytes().splitlines())
    }
    escalations = gold_escalations(gold_file, 40)
    truth = GroundTruth()  # knows the live events only: a gold id is news to it
    team = ReviewTeam(
        {"fraud"}, gold=GoldAnswers.read([gold_file]), seed=5, reviewers=REVIEWERS[:1]
    )
    for record in escalations:
        assert truth.escalated("fraud", record["event_id"], by_rule=True) is None
        [pending] = team.review(record, None, now=0.0)
        expected = items[orjson.dumps(record["features"], option=orjson.OPT_SORT_KEYS)]
        assert pending.gold
        assert pending.truth == Truth(expected, record["prediction"]["label"] == expected)
        label = decode_label(orjson.dumps(pending.label))
        assert (label.event_id, label.escalation_id) == (
            record["event_id"],
            record["escalation_id"],
        )
        assert label.inclusion_probability == 1.0 and label.reviewer == REVIEWERS[0].name
    assert team.tallies[REVIEWERS[0].name].gold == 40


def test_a_gold_escalation_is_answered_once_and_unknown_items_not_at_all(
    gold_file: Path,
) -> None:
    [record] = gold_escalations(gold_file, 1)
    team = ReviewTeam({"fraud"}, gold=GoldAnswers.read([gold_file]))
    assert len(team.review(record, None, 0.0)) == 1
    assert team.review(record, None, 1.0) == []  # redelivered
    stranger = {**record, "escalation_id": "x-2", "features": {**record["features"], "x0": 9.0}}
    assert team.review(stranger, None, 0.0) == []  # not a gold item: its truth is unknown
    assert ReviewTeam({"fraud"}).review({**record, "escalation_id": "x-3"}, None, 0.0) == []


def test_the_memory_of_answered_gold_escalations_is_bounded(gold_file: Path) -> None:
    team = ReviewTeam({"fraud"}, gold=GoldAnswers.read([gold_file]))
    [record] = gold_escalations(gold_file, 1)
    from streams.dev import label_sources

    for i in range(label_sources.MAX_GOLD_ANSWERED + 100):
        team.review({**record, "escalation_id": f"x-{i}"}, None, 0.0)
    assert len(team._gold_answered) == label_sources.MAX_GOLD_ANSWERED


def test_reviewers_answer_gold_at_their_error_rates(gold_file: Path) -> None:
    answers = GoldAnswers.read([gold_file])
    team = ReviewTeam({"fraud"}, gold=answers, seed=9)
    wrong: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for i, record in enumerate(gold_escalations(gold_file, 12_000)):
        record["escalation_id"] = f"g-{i}"  # the desk repeats ids per trigger: make each new
        for pending in team.review(record, None, 0.0):
            labels[pending.label["reviewer"]] += 1
            wrong[pending.label["reviewer"]] += pending.label["label"] != answers.answer(record)
    for reviewer in REVIEWERS:
        n = labels[reviewer.name]
        tolerance = 4 * math.sqrt(reviewer.error_rate * (1 - reviewer.error_rate) / n)
        assert wrong[reviewer.name] / n == pytest.approx(reviewer.error_rate, abs=tolerance)


def test_gold_answers_check_their_input(tmp_path: Path) -> None:
    answers = GoldAnswers(max_items=2)
    item = {"model_id": "m", "features": {"x0": 1.0}, "prediction": {"label": "pos"}}
    answers.add(item, "pos")
    answers.add(item, "neg")  # the same item again: replaced, not another
    answers.add({**item, "features": {"x0": 2.0}}, "pos")
    assert len(answers) == 2 and answers.answer(item) == "neg"
    with pytest.raises(ValueError, match="more than 2 gold items"):
        answers.add({**item, "features": {"x0": 3.0}}, "pos")
    with pytest.raises(ValueError, match=r"needs model_id, features and prediction\.label"):
        answers.add({"model_id": "m"}, "pos")
    with pytest.raises(ValueError, match="must be a label"):
        answers.add(item, 1.5)  # type: ignore[arg-type]
    assert answers.answer({"model_id": "m", "prediction": "pos"}) is None
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({**item, "label": "pos"}) + b"\n\n" + orjson.dumps(item) + b"\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not a gold item with a label"):
        GoldAnswers.read([bad])
    with pytest.raises(ValueError, match="max_items must be an integer ≥ 1"):
        GoldAnswers(max_items=0)
