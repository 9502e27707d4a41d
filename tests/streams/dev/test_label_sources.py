"""The demo's label sources and ground truth, without Kafka: who gets a label, when, with
what weight, and that memory stays bounded."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.dev.ground_truth import GroundTruth, ModelTally, Truth
from streams.dev.label_sources import (
    REVIEWERS,
    LabelQueue,
    OutcomeSource,
    Reviewer,
    ReviewTeam,
    by_rule,
)
from streams.events.schema import decode_label


def escalation(
    model_id: str = "fraud", event_id: str = "e1", kind: str = "low_confidence", p: float = 1.0
) -> dict[str, Any]:
    return {
        "escalation_id": f"x-{model_id}-{event_id}",
        "event_id": event_id,
        "model_id": model_id,
        "reasons": [{"kind": kind, "score": 0.55, "threshold": 0.6}],
        "inclusion_probability": p,
    }


# ------------------------------------------------------------------ review team


def test_the_team_labels_escalations_of_its_models_only() -> None:
    team = ReviewTeam({"fraud", "router"})
    truth = Truth("pos", True)
    assert len(team.review(escalation("fraud"), truth, 0.0)) == 1
    assert len(team.review(escalation("router", kind="audit", p=0.05), truth, 0.0)) == 1
    assert team.review(escalation("churn"), truth, 0.0) == []  # the outcome model
    assert team.review(escalation("fraud"), None, 0.0) == []  # truth unknown (forgotten)


def test_a_review_label_is_a_human_label_for_the_escalation() -> None:
    answered = datetime(2026, 1, 1, 12, tzinfo=UTC)
    team = ReviewTeam({"fraud"}, delay_s=(2.0, 8.0), seed=3, clock=lambda: answered)
    [pending] = team.review(escalation(kind="audit", p=0.05), Truth("neg", False), now=100.0)
    assert 102.0 <= pending.due <= 108.0
    assert pending.truth == Truth("neg", False) and not pending.gold
    label = pending.label
    assert {k: label[k] for k in ("event_id", "model_id", "source", "escalation_id")} == {
        "event_id": "e1",
        "model_id": "fraud",
        "source": "human",
        "escalation_id": "x-fraud-e1",
    }
    assert label["label"] in ("neg", "pos")
    assert label["reviewer"] in {r.name for r in REVIEWERS}
    assert label["inclusion_probability"] == 0.05  # copied from the escalation
    # ts: when the reviewer answered, its delay after the escalation was read.
    delay = pending.due - 100.0
    assert datetime.fromisoformat(label["ts"]) == answered + timedelta(seconds=delay)
    # A valid LabelEvent (SPEC §3) as the worker decodes it.
    decoded = decode_label(orjson.dumps(label), 64 * 1024)
    assert decoded.reviewer == label["reviewer"] and decoded.escalation_id == "x-fraud-e1"
    assert decoded.ts.tzinfo is not None


def test_the_inclusion_probability_is_copied_not_invented() -> None:
    team = ReviewTeam({"fraud"})
    [by_rule_label] = team.review(escalation(p=1.0), Truth("pos", True), 0.0)
    assert by_rule_label.label["inclusion_probability"] == 1.0
    older = escalation()
    del older["inclusion_probability"]  # a worker without audit sampling
    [pending] = team.review(older, Truth("pos", True), 0.0)
    assert "inclusion_probability" not in pending.label


def test_delays_spread_over_the_range_and_every_reviewer_takes_turns() -> None:
    team = ReviewTeam({"fraud"}, delay_s=(2.0, 8.0), seed=1)
    pendings = [
        p
        for i in range(600)
        for p in team.review(escalation(event_id=f"e{i}"), Truth("pos", True), 0.0)
    ]
    dues = [p.due for p in pendings]
    assert min(dues) >= 2.0 and max(dues) <= 8.0
    assert min(dues) < 2.5 and max(dues) > 7.5  # uniform over the range, not a constant
    assert {p.label["reviewer"] for p in pendings} == {r.name for r in REVIEWERS}


def test_each_reviewer_errs_at_its_rate_with_another_class() -> None:
    classes = ("cat", "dog", "bird")
    team = ReviewTeam({"pets"}, classes={"pets": classes}, seed=7)
    wrong: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    for i in range(24_000):
        for pending in team.review(escalation("pets", f"e{i}"), Truth("dog", i % 2 == 0), float(i)):
            reviewer, answer = pending.label["reviewer"], pending.label["label"]
            labels[reviewer] += 1
            wrong[reviewer] += answer != "dog"
            answers[answer] += 1
    assert set(answers) == set(classes)  # a wrong answer is one of the model's classes
    assert answers["cat"] == pytest.approx(answers["bird"], rel=0.15)  # drawn at random
    for reviewer in REVIEWERS:
        n = labels[reviewer.name]
        assert n > 3000  # a sixth of 24,000 each, give or take
        # Within 4 standard errors of a binomial share.
        tolerance = 4 * math.sqrt(reviewer.error_rate * (1 - reviewer.error_rate) / n)
        assert wrong[reviewer.name] / n == pytest.approx(reviewer.error_rate, abs=tolerance)
        tally = team.tallies[reviewer.name]
        assert (tally.labels, tally.wrong, tally.gold) == (n, wrong[reviewer.name], 0)


def test_the_careless_reviewer_is_the_one_named_so() -> None:
    worst = max(REVIEWERS, key=lambda r: r.error_rate)
    assert worst.name == "careless-carl" and worst.error_rate == 0.45
    careful = [r.error_rate for r in REVIEWERS if r is not worst]
    assert len(careful) == 5 and min(careful) >= 0.03 and max(careful) <= 0.15
    team = ReviewTeam({"fraud"}, seed=11)
    for i in range(6000):
        team.review(escalation(event_id=f"e{i}"), Truth("pos", True), 0.0)
    errors = {name: tally.error for name, tally in team.tallies.items()}
    assert max(errors, key=lambda name: errors[name] or 0.0) == "careless-carl"
    assert errors["careless-carl"] is not None and errors["careless-carl"] > 0.35
    assert all(e is not None and e < 0.25 for name, e in errors.items() if name != worst.name)


@pytest.mark.parametrize("wanted", [1, 2, 3, 6, 9])
def test_an_escalation_gets_as_many_distinct_reviewers_as_it_wants(wanted: int) -> None:
    team = ReviewTeam({"fraud"}, delay_s=(1.0, 9.0), seed=wanted)
    for i in range(200):
        record = {**escalation(event_id=f"e{i}"), "reviews_wanted": wanted}
        pendings = team.review(record, Truth("pos", True), 50.0)
        reviewers = [p.label["reviewer"] for p in pendings]
        assert len(reviewers) == min(wanted, len(REVIEWERS))  # all of them at most
        assert len(set(reviewers)) == len(reviewers)
        assert {p.label["escalation_id"] for p in pendings} == {record["escalation_id"]}
        assert {p.label["event_id"] for p in pendings} == {f"e{i}"}
    if wanted > 1:  # independent delays
        assert len({p.due for p in pendings}) == len(pendings)


@pytest.mark.parametrize("wanted", [0, -1, "2", 1.5, True, None])
def test_an_escalation_that_wants_no_valid_number_of_reviews_gets_none(wanted: Any) -> None:
    team = ReviewTeam({"fraud"})
    record = {**escalation(), "reviews_wanted": wanted}
    assert team.review(record, Truth("pos", True), 0.0) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reviewers": ()}, "at least one reviewer"),
        ({"reviewers": (Reviewer("a", 0.1), Reviewer("a", 0.2))}, "distinct names"),
        ({"reviewers": (Reviewer("a", 1.5),)}, r"'a': error_rate must be in \[0, 1\]"),
        ({"classes": {"fraud": ("pos", "pos")}}, "'fraud' needs at least two classes"),
        ({"delay_s": (5.0, 1.0)}, "0 ≤ low ≤ high"),
    ],
)
def test_the_team_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReviewTeam({"fraud"}, **kwargs)


def test_by_rule_reads_the_primary_reason() -> None:
    assert by_rule(escalation(kind="low_confidence"))
    assert not by_rule(escalation(kind="audit", p=0.05))


# ------------------------------------------------------------------ outcome source


def test_the_outcome_source_labels_its_share_of_its_model_only() -> None:
    source = OutcomeSource({"churn"}, share=0.3, delay_s=(1.0, 1.0), seed=5)
    truth = Truth("pos", True)
    labelled = [
        source.observe({"event_id": f"e{i}", "model_id": "churn"}, truth, 0.0) for i in range(5000)
    ]
    share = sum(p is not None for p in labelled) / len(labelled)
    assert 0.27 < share < 0.33
    pending = next(p for p in labelled if p is not None)
    assert pending.due == 1.0
    assert pending.label["source"] == "outcome"
    assert pending.label["inclusion_probability"] == 0.3
    assert "reviewer" not in pending.label and "escalation_id" not in pending.label
    other = [source.observe({"event_id": "x", "model_id": "fraud"}, truth, 0.0) for _ in range(50)]
    assert other == [None] * 50


def test_the_outcome_share_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]; got 0"):
        OutcomeSource({"churn"}, share=0)


# ------------------------------------------------------------------ queue


def test_the_queue_hands_labels_back_when_due_in_order() -> None:
    team = ReviewTeam({"fraud"}, delay_s=(0.0, 10.0), seed=2)
    queue = LabelQueue()
    for i in range(50):
        queue.push(team.review(escalation(event_id=f"e{i}"), Truth("pos", True), 0.0))
    queue.push(None)  # nothing to queue
    queue.push([])
    assert len(queue) == 50
    early = queue.due(5.0)
    assert early and all(p.due <= 5.0 for p in early)
    assert [p.due for p in early] == sorted(p.due for p in early)
    late = queue.due(10.0)
    assert len(early) + len(late) == 50 and len(queue) == 0
    assert queue.due(100.0) == []


# ------------------------------------------------------------------ ground truth


def test_ground_truth_forgets_the_oldest_beyond_its_bound() -> None:
    truth = GroundTruth(max_remembered=100)
    for i in range(1000):
        truth.record("fraud", f"e{i}", "pos", "pos" if i % 4 else "neg")
        assert len(truth) <= 100
    assert truth.get("fraud", "e899") is None
    assert truth.get("fraud", "e900") == Truth("neg", False)  # 900 % 4 == 0
    assert truth.get("fraud", "e901") == Truth("pos", True)
    # The counts still cover every event.
    assert truth.tallies["fraud"].events == 1000
    assert truth.tallies["fraud"].accuracy == 0.75


def test_an_escalation_is_counted_once_and_audits_stay_auto_accepted() -> None:
    truth = GroundTruth()
    truth.record("fraud", "ruled", "pos", "neg")  # wrong, escalated by a rule
    truth.record("fraud", "audited", "pos", "neg")  # wrong, auto-accepted then audited
    truth.record("fraud", "accepted", "pos", "pos")  # right, auto-accepted
    assert truth.escalated("fraud", "ruled", by_rule=True) == Truth("neg", False)
    assert truth.escalated("fraud", "ruled", by_rule=True) is None  # redelivered
    assert truth.escalated("fraud", "audited", by_rule=False) == Truth("neg", False)
    tally = truth.tallies["fraud"]
    assert (tally.escalated, tally.escalated_correct) == (1, 0)
    assert tally.autoaccept_error == 0.5  # audited (wrong) and accepted (right)


def test_the_tally_of_labels_is_unweighted_and_counts_each_event_once() -> None:
    truth = GroundTruth(max_remembered=10)
    truth.labelled("fraud", "e1", Truth("pos", False))
    truth.labelled("fraud", "e2", Truth("pos", True))
    truth.labelled("fraud", "e3", Truth("neg", False))
    truth.labelled("fraud", "e2", Truth("pos", True))  # a second source's label
    assert truth.tallies["fraud"].labelled == 3
    assert truth.tallies["fraud"].labelled_accuracy == pytest.approx(1 / 3)
    for i in range(100):  # the memory of labelled events stays bounded
        truth.labelled("fraud", f"x{i}", Truth("pos", True))
    assert len(truth._labelled) == 10


def test_an_empty_tally_has_no_figures() -> None:
    tally = ModelTally()
    assert (tally.accuracy, tally.autoaccept_error, tally.labelled_accuracy) == (None,) * 3


def test_ground_truth_rejects_a_bad_bound() -> None:
    with pytest.raises(ValueError, match="max_remembered must be an integer ≥ 1; got 0"):
        GroundTruth(max_remembered=0)
