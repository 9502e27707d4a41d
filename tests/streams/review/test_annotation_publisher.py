"""Annotations published once per version (streams/review/annotation_publisher.py)."""

from __future__ import annotations

from typing import Any, cast

import orjson
import pytest

from streams.errors import LabelStudioError
from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_sink import LabelSink, LabelSinkError
from streams.review.label_studio_api import LabelStudioClient
from streams.review.tasks import decode_escalation, task_payload
from tests.streams.review.escalations import escalations
from tests.streams.review.fakes import FakeLabelStudio, FakeSink


def _item(i: int, *, user: int = 1, choice: str = "reject", when: str = "10:00:00") -> Any:
    record = escalations("fraud", i + 1)[i]
    task = {"id": 100 + i, **task_payload(decode_escalation(record))}
    annotation = {
        "id": i,
        "completed_by": user,
        "was_cancelled": False,
        "updated_at": f"2026-12-02T{when}Z",
        "result": [{"from_name": "label", "value": {"choices": [choice]}}],
    }
    return task, annotation


def _publisher(**kw: Any) -> tuple[AnnotationPublisher, FakeLabelStudio, FakeSink, BridgeMetrics]:
    ls, sink, metrics = FakeLabelStudio(), FakeSink(), BridgeMetrics()
    publisher = AnnotationPublisher(
        cast(LabelStudioClient, ls), cast(LabelSink, sink), metrics, **kw
    )
    return publisher, ls, sink, metrics


def _count(metrics: BridgeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_each_version_is_published_once_whichever_way_it_came() -> None:
    publisher, _ls, sink, metrics = _publisher()
    items = [_item(0), _item(1)]
    assert publisher.publish(items, "webhook") == 2
    assert publisher.publish([*items, _item(2)], "reconciliation") == 1
    assert len(sink.sent) == 3
    assert (
        _count(
            metrics, "vigil_review_bridge_annotations_published_total", model="fraud", via="webhook"
        )
        == 2
    )
    assert _count(metrics, "vigil_review_bridge_reconciliation_catches_total", model="fraud") == 1
    # An update is a new version: published again, with the new answer.
    assert publisher.publish([_item(0, choice="approve", when="10:05:00")], "webhook") == 1
    assert orjson.loads(sink.sent[-1])["label"] == "approve"


def test_the_reviewer_is_the_users_email_looked_up_once_or_the_id_without_one() -> None:
    publisher, ls, sink, _metrics = _publisher()
    publisher.publish([_item(0), _item(1), _item(2, user=2)], "webhook")
    reviewers = [orjson.loads(raw)["reviewer"] for raw in sink.sent]
    assert reviewers == ["ana@example.com", "ana@example.com", "2"]
    assert ls.user_lookups == 2


def test_a_failed_send_marks_nothing_published() -> None:
    publisher, _ls, sink, _metrics = _publisher()
    sink.fail = True
    with pytest.raises(LabelSinkError):
        publisher.publish([_item(0)], "webhook")
    sink.fail = False
    assert publisher.publish([_item(0)], "reconciliation") == 1


def test_label_studio_down_during_a_reviewer_lookup_raises_and_marks_nothing() -> None:
    publisher, ls, sink, _metrics = _publisher()
    ls.down = True
    with pytest.raises(LabelStudioError):
        publisher.publish([_item(0)], "webhook")
    ls.down = False
    assert publisher.publish([_item(0)], "webhook") == 1 and len(sink.sent) == 1


def test_cancelled_and_invalid_annotations_publish_nothing_and_invalid_ones_are_counted() -> None:
    publisher, _ls, sink, metrics = _publisher()
    task, annotation = _item(0)
    cancelled = (task, {**annotation, "id": 50, "was_cancelled": True})
    invalid = (
        task,
        {
            **annotation,
            "id": 51,
            "result": [{"from_name": "label", "value": {"choices": ["a", "b"]}}],
        },
    )
    assert publisher.publish([cancelled, invalid, _item(1)], "webhook") == 1
    assert len(sink.sent) == 1
    assert _count(metrics, "vigil_review_bridge_invalid_annotations_total") == 1


def test_memory_of_published_versions_is_bounded() -> None:
    publisher, _ls, sink, _metrics = _publisher(remember=2)
    for i in range(3):
        publisher.publish([_item(i)], "webhook")
    # The oldest was forgotten: seen again, it is sent again (the same bytes: one label).
    assert publisher.publish([_item(0)], "reconciliation") == 1
    assert sink.sent[0] == sink.sent[-1]
