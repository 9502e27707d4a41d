"""Reconciliation marks and passes (streams/review/reconcile.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from streams.errors import LabelStudioError
from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.high_water import HighWaterMarks
from streams.review.label_sink import LabelSink
from streams.review.label_studio_api import LabelStudioClient
from streams.review.reconcile import Reconciler
from streams.review.tasks import decode_escalation, task_payload
from tests.streams.review.escalations import escalations
from tests.streams.review.fakes import FakeLabelStudio, FakeMarks, FakeSink

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _task(i: int, changed: datetime, *, annotated: bool = True) -> dict[str, Any]:
    record = escalations("fraud", i + 1)[i]
    annotations = []
    if annotated:
        annotations = [
            {
                "id": i,
                "completed_by": 1,
                "was_cancelled": False,
                "updated_at": changed.isoformat(),
                "result": [{"from_name": "label", "value": {"choices": ["reject"]}}],
            }
        ]
    return {
        "id": i,
        "updated_at": changed.isoformat(),
        "annotations": annotations,
        **task_payload(decode_escalation(record)),
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 2.0  # every reading: a pass "takes" 2 s
        return self.now


def _reconciler() -> tuple[Reconciler, FakeLabelStudio, FakeMarks, FakeSink]:
    ls, marks, sink = FakeLabelStudio(), FakeMarks(), FakeSink()
    publisher = AnnotationPublisher(
        cast(LabelStudioClient, ls), cast(LabelSink, sink), BridgeMetrics()
    )
    reconciler = Reconciler(
        cast(LabelStudioClient, ls),
        lambda: {"fraud": 7},
        cast(HighWaterMarks, marks),
        publisher,
        margin=timedelta(seconds=10),
        clock=Clock(),
    )
    return reconciler, ls, marks, sink


def test_a_pass_publishes_every_annotation_and_moves_the_mark_behind_the_newest_change() -> None:
    reconciler, ls, marks, sink = _reconciler()
    ls.tasks[7] = [_task(i, T0 + timedelta(seconds=i)) for i in range(5)]
    assert reconciler.run_once() == 5
    assert len(sink.sent) == 5
    # newest change (T0+4 s) less the pass's 2 s less the 10 s margin
    assert marks.marks[7] == T0 + timedelta(seconds=4 - 2 - 10)


def test_the_next_pass_reads_from_the_mark_and_publishes_only_what_is_new() -> None:
    reconciler, ls, marks, sink = _reconciler()
    ls.tasks[7] = [_task(i, T0 + timedelta(seconds=i)) for i in range(3)]
    reconciler.run_once()
    first_mark = marks.marks[7]
    ls.tasks[7].append(_task(3, T0 + timedelta(minutes=5)))
    assert reconciler.run_once() == 1
    assert ls.queries[-1] == (7, first_mark)
    assert len(sink.sent) == 4
    assert marks.marks[7] > first_mark


def test_a_failing_pass_keeps_the_mark() -> None:
    reconciler, ls, marks, sink = _reconciler()
    ls.tasks[7] = [_task(0, T0)]
    sink.fail = True
    with pytest.raises(Exception, match="broker down"):
        reconciler.run_once()
    assert 7 not in marks.marks
    ls.down = True
    with pytest.raises(LabelStudioError):
        reconciler.run_once()
    ls.down, sink.fail = False, False
    assert reconciler.run_once() == 1


def test_the_mark_never_moves_back() -> None:
    reconciler, ls, marks, _sink = _reconciler()
    marks.marks[7] = T0 + timedelta(hours=1)
    ls.tasks[7] = [_task(0, T0 + timedelta(hours=1, seconds=1))]
    reconciler.run_once()  # newest - 12 s is before the held mark
    assert marks.marks[7] == T0 + timedelta(hours=1)
