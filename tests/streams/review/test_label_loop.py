"""The bridge's way back in one thread (streams/review/label_loop.py)."""

from __future__ import annotations

import queue
from typing import Any, cast

from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_loop import LabelLoop
from streams.review.reconcile import Reconciler
from streams.review.webhook_endpoint import Handoff
from tests.support import wait_until


class Recorder:
    def __init__(self) -> None:
        self.metrics = BridgeMetrics()
        self.calls: list[tuple[str, Any]] = []
        self.fail_publish = False

    def publish(self, items: list[Handoff], via: str) -> int:
        if self.fail_publish:
            from streams.review.label_sink import LabelSinkError

            raise LabelSinkError("broker down")
        self.calls.append((via, len(items)))
        return len(items)

    def run_once(self) -> int:
        self.calls.append(("reconcile", None))
        return 0


def _loop(rec: Recorder, handoff: queue.Queue[Handoff], **kw: Any) -> LabelLoop:
    return LabelLoop(
        cast(AnnotationPublisher, rec),
        cast(Reconciler, rec),
        handoff=handoff,
        **kw,
    )


def test_webhooks_waiting_are_published_before_a_reconciliation_counts_them_as_missed() -> None:
    rec, handoff = Recorder(), queue.Queue[Handoff]()
    for i in range(3):
        handoff.put(({"id": i}, {"id": i}))
    loop = _loop(rec, handoff, reconcile_every_s=3600).start()
    try:
        assert wait_until(lambda: ("reconcile", None) in rec.calls, timeout=10)
    finally:
        loop.stop()
    assert rec.calls[0] == ("webhook", 3)
    assert rec.calls[1] == ("reconcile", None)


def test_reconciliation_and_the_periodic_job_run_on_schedule_and_failures_are_counted() -> None:
    rec, handoff = Recorder(), queue.Queue[Handoff]()
    periodic: list[int] = []
    rec.fail_publish = True
    loop = _loop(
        rec,
        handoff,
        reconcile_every_s=0.05,
        periodic=lambda: periodic.append(1),
        periodic_every_s=0.05,
    ).start()
    try:
        handoff.put(({"id": 1}, {"id": 1}))
        assert wait_until(
            lambda: rec.calls.count(("reconcile", None)) >= 3 and len(periodic) >= 3, timeout=10
        )
        assert wait_until(
            lambda: (
                rec.metrics.registry.get_sample_value(
                    "vigil_review_bridge_errors_total", {"kind": "publish"}
                )
                == 1
            ),
            timeout=10,
        )
    finally:
        loop.stop()
    assert ("webhook", 1) not in rec.calls  # dropped: the next reconciliation brings it
