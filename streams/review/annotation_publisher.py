"""Annotations → LabelEvents on the labels topic, each version of an annotation once per run.

Both ways annotations come back (a webhook, or reconciliation reading Label Studio) end
here. :meth:`AnnotationPublisher.publish` turns each ``(task, annotation)`` into its
LabelEvent (:mod:`streams.review.annotations`), skips versions it already published (the
last ``remember`` of them: a webhook and the reconciliation after it see the same
version), and sends the rest, confirmed, in one go (:class:`~streams.review.label_sink.LabelSink`).
If sending fails, nothing is marked published and the caller may try again; a version
published twice (after a restart, or a failure after the broker had it) is the same bytes
twice: one label, by its identity (SPEC §3).

Reviewer: the annotating user's email, looked up once per user id (the last
``remember_users`` ids), or the id when the user has no email.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from streams.review.annotations import (
    InvalidAnnotationError,
    annotation_version,
    encode_label,
    label_event,
    reviewer_of,
)
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_sink import LabelSink
from streams.review.label_studio_api import LabelStudioClient

__all__ = ["AnnotationPublisher", "Via"]

log = logging.getLogger(__name__)

Via = Literal["webhook", "reconciliation"]


class AnnotationPublisher:
    """Thread-safe: the webhook hand-off and reconciliation may call it from one thread or
    several (calls are serialised)."""

    def __init__(
        self,
        client: LabelStudioClient,
        sink: LabelSink,
        metrics: BridgeMetrics,
        *,
        remember: int = 100_000,
        remember_users: int = 10_000,
    ) -> None:
        if remember < 1 or remember_users < 1:
            raise ValueError("remember and remember_users must be >= 1")
        self.client = client
        self.sink = sink
        self.metrics = metrics
        self.remember = remember
        self.remember_users = remember_users
        self._published: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._emails: OrderedDict[int, str] = OrderedDict()
        self._lock = threading.Lock()

    def published(self, version: tuple[int, str]) -> bool:
        return version in self._published

    def publish(
        self, items: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], via: Via
    ) -> int:
        """Publish the LabelEvents of ``items`` not published yet; their count. Raises
        :class:`~streams.errors.LabelStudioError` (a reviewer could not be looked up) or
        :class:`~streams.review.label_sink.LabelSinkError` (not confirmed): nothing of
        this call is then marked published."""
        with self._lock:
            todo: dict[tuple[int, str], tuple[dict[str, Any], bytes]] = {}
            handled: list[tuple[int, str]] = []
            for task, annotation in items:
                try:
                    version = annotation_version(annotation)
                    if version in self._published or version in todo:
                        continue
                    event = label_event(task, annotation, reviewer=self._reviewer(annotation))
                except InvalidAnnotationError as exc:
                    self.metrics.annotations_invalid.inc()
                    log.error("annotation not published: %s", exc)
                    continue
                if event is None:  # cancelled (skipped), or no answer
                    handled.append(version)
                    continue
                todo[version] = (event, encode_label(event))
            if todo:
                self.sink.send(list(todo.values()))
            for version in handled:
                self._remember(version)
            for version, (event, _raw) in todo.items():
                self._remember(version)
                model = self.metrics.model(str(event["model_id"]))
                self.metrics.annotations_published.labels(model, via).inc()
                if via == "reconciliation":
                    self.metrics.reconciliation_catches.labels(model).inc()
            if todo and via == "reconciliation":
                log.warning("reconciliation published %d annotations webhooks missed", len(todo))
            return len(todo)

    def _remember(self, version: tuple[int, str]) -> None:
        self._published[version] = None
        self._published.move_to_end(version)
        while len(self._published) > self.remember:
            self._published.popitem(last=False)

    def _reviewer(self, annotation: Mapping[str, Any]) -> str:
        who = reviewer_of(annotation)
        if isinstance(who, str):
            return who
        email = self._emails.get(who)
        if email is None:
            email = str(self.client.user(who).get("email") or who)
            self._emails[who] = email
            while len(self._emails) > self.remember_users:
                self._emails.popitem(last=False)
        return email
