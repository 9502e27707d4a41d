"""The bridge's way back, in one thread: webhook hand-offs published as they come,
reconciliation every ``reconcile_every_s`` (and once at start), and any other periodic job
(the backlog count) every ``backlog_every_s``.

A failure is logged, counted (``vigil_review_bridge_errors_total{kind}``) and left to the
next round: webhook items that could not be published are dropped *because* the next
reconciliation publishes them (their tasks changed after its mark), so Label Studio or
Kafka being down delays labels and loses none.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaException

from streams.errors import LabelStudioError, VigilError
from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.label_sink import LabelSinkError
from streams.review.label_studio_api import LabelStudioUnavailableError
from streams.review.reconcile import Reconciler
from streams.review.webhook_endpoint import Handoff

__all__ = ["LabelLoop"]

log = logging.getLogger(__name__)

#: Webhook items published per produce.
_MAX_BATCH = 500

_FAILURES = (LabelStudioError, LabelSinkError, KafkaException, VigilError)


class LabelLoop:
    def __init__(
        self,
        publisher: AnnotationPublisher,
        reconciler: Reconciler,
        *,
        handoff: queue.Queue[Handoff] | None = None,
        reconcile_every_s: float = 30.0,
        periodic: Callable[[], object] | None = None,
        periodic_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publisher = publisher
        self.reconciler = reconciler
        self.handoff = handoff
        self.reconcile_every_s = reconcile_every_s
        self.periodic = periodic
        self.periodic_every_s = periodic_every_s
        self.clock = clock
        self.metrics = publisher.metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="label-loop", daemon=True)

    def start(self) -> LabelLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run(self) -> None:
        next_reconcile = next_periodic = self.clock()
        while not self._stop.is_set():
            now = self.clock()
            if now >= next_reconcile:
                # Webhooks already here go first: reconciliation counts only what they missed.
                pending = self._drain(0.0)
                if pending:
                    self._guard("publish", self._publisher_of(pending))
                self._guard("reconcile", self.reconciler.run_once)
                next_reconcile = self.clock() + self.reconcile_every_s
            if self.periodic is not None and now >= next_periodic:
                self._guard("backlog", self.periodic)
                next_periodic = self.clock() + self.periodic_every_s
            wait = max(0.0, min(next_reconcile, next_periodic) - self.clock())
            items = self._drain(min(wait, 0.5))
            if items:
                self._guard("publish", self._publisher_of(items))

    def _publisher_of(self, items: list[Handoff]) -> Callable[[], object]:
        return lambda: self.publisher.publish(items, "webhook")

    def _drain(self, wait: float) -> list[Handoff]:
        if self.handoff is None:
            self._stop.wait(wait)
            return []
        try:
            items = [self.handoff.get(timeout=wait) if wait > 0 else self.handoff.get_nowait()]
        except queue.Empty:
            return []
        while len(items) < _MAX_BATCH:
            try:
                items.append(self.handoff.get_nowait())
            except queue.Empty:
                break
        return items

    def _guard(self, kind: str, job: Callable[[], object]) -> None:
        try:
            job()
        except _FAILURES as exc:
            self.metrics.errors.labels(kind).inc()
            if isinstance(exc, LabelStudioError):
                self.metrics.label_studio_up.set(
                    0 if isinstance(exc, LabelStudioUnavailableError) else 1
                )
            log.error("%s failed (left to the next reconciliation): %s", kind, exc)
