"""An annotation on a bridge-made task as a LabelEvent (streams/review/annotations.py)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.events.schema import decode_label
from streams.review.annotations import (
    InvalidAnnotationError,
    annotation_version,
    encode_label,
    label_event,
    reviewer_of,
)
from streams.review.tasks import decode_escalation, task_payload
from tests.streams.review.escalations import escalations


def _task() -> dict[str, Any]:
    record = escalations("fraud", 1)[0]
    record["inclusion_probability"] = 0.25
    return {"id": 11, **task_payload(decode_escalation(record))}


def _annotation(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": 5,
        "completed_by": 2,
        "was_cancelled": False,
        "updated_at": "2026-12-02T10:00:00.123456Z",
        "result": [
            {
                "from_name": "label",
                "to_name": "reasons",
                "type": "choices",
                "value": {"choices": ["reject"]},
            }
        ],
    }
    return {**base, **overrides}


def test_the_label_event_carries_the_escalation_and_the_reviewer_and_passes_the_validator() -> None:
    task = _task()
    event = label_event(task, _annotation(), reviewer="ana@example.com")
    assert event is not None
    label = decode_label(encode_label(event))
    assert (label.event_id, label.model_id, label.label, label.source) == (
        task["data"]["event_id"],
        "fraud",
        "reject",
        "human",
    )
    assert label.reviewer == "ana@example.com"
    assert label.escalation_id == task["data"]["escalation_id"]
    assert label.inclusion_probability == 0.25
    assert label.prediction is not None
    assert label.ts.isoformat() == "2026-12-02T10:00:00.123456+00:00"


def test_one_version_of_an_annotation_is_always_the_same_bytes() -> None:
    task = _task()
    first = encode_label(label_event(task, _annotation(), reviewer="r") or {})
    again = encode_label(label_event(dict(task), dict(_annotation()), reviewer="r") or {})
    assert first == again
    changed = label_event(task, _annotation(updated_at="2026-12-02T10:00:01Z"), reviewer="r")
    assert encode_label(changed or {}) != first


def test_a_regression_answer_is_a_value() -> None:
    task = _task()
    task["data"]["prediction"] = {"value": 3.5}
    result = [{"from_name": "label", "type": "number", "value": {"number": 4.25}}]
    event = label_event(task, _annotation(result=result), reviewer="r")
    assert event is not None and event["value"] == 4.25 and "label" not in event


@pytest.mark.parametrize(
    "annotation",
    [
        _annotation(was_cancelled=True),
        _annotation(result=[]),
        _annotation(result=[{"from_name": "other", "value": {"choices": ["x"]}}]),
        _annotation(result=None),
    ],
    ids=["cancelled", "empty", "another-control", "no-result"],
)
def test_a_skipped_or_empty_annotation_publishes_nothing(annotation: dict[str, Any]) -> None:
    assert label_event(_task(), annotation, reviewer="r") is None


@pytest.mark.parametrize(
    ("task", "annotation", "why"),
    [
        (
            _task(),
            _annotation(result=[{"from_name": "label", "value": {"choices": ["a", "b"]}}]),
            "one chosen class",
        ),
        (
            _task(),
            _annotation(result=[{"from_name": "label", "value": {"number": float("nan")}}]),
            "finite number",
        ),
        (
            _task(),
            _annotation(result=[{"from_name": "label", "value": {"number": True}}]),
            "finite number",
        ),
        ({"id": 1, "data": {"text": "not ours"}}, _annotation(), "not a task made by"),
        (_task(), _annotation(updated_at="yesterday"), "ISO 8601"),
        (_task(), _annotation(updated_at=None), "without updated_at"),
    ],
    ids=["two-classes", "nan", "bool", "foreign-task", "bad-time", "no-time"],
)
def test_what_cannot_be_a_label_is_refused_with_a_reason(
    task: dict[str, Any], annotation: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidAnnotationError, match=why):
        label_event(task, annotation, reviewer="r")


def test_a_label_the_worker_would_dead_letter_is_refused_here() -> None:
    task = _task()
    task["data"]["inclusion_probability"] = 0  # outside (0, 1]
    with pytest.raises(InvalidAnnotationError, match="invalid LabelEvent"):
        label_event(task, _annotation(), reviewer="r")


def test_a_naive_timestamp_is_read_as_utc() -> None:
    event = label_event(_task(), _annotation(updated_at="2026-12-02T10:00:00"), reviewer="r")
    assert event is not None and event["ts"] == "2026-12-02T10:00:00+00:00"


def test_reviewer_and_version() -> None:
    assert reviewer_of({"completed_by": 4}) == 4
    assert reviewer_of({"completed_by": {"id": 4, "email": "bo@example.com"}}) == "bo@example.com"
    assert reviewer_of({"completed_by": {"id": 4}}) == 4
    with pytest.raises(InvalidAnnotationError):
        reviewer_of({"completed_by": None})
    with pytest.raises(InvalidAnnotationError):
        reviewer_of({"completed_by": True})
    assert annotation_version({"id": "9", "updated_at": "t"}) == (9, "t")
    with pytest.raises(InvalidAnnotationError):
        annotation_version({"updated_at": "t"})
