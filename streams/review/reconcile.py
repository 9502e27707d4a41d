"""Reconciliation: read back from Label Studio what the webhooks may have missed.

Per project, a mark (:mod:`streams.review.high_water`) says: *every task that changed at or
before this time has had its annotations published*. A pass lists the tasks with
annotations that changed after the mark (saving an annotation updates its task's
``updated_at``), in id order, and publishes every annotation version not yet published
(:class:`~streams.review.annotation_publisher.AnnotationPublisher` skips the ones a
webhook brought). Only once they are confirmed does the mark move, to the newest change
seen less the pass's duration and a margin:

* tasks are listed page by page while reviewers keep working; a task that changes during
  the pass may be missed by it, but its change is then newer than the pass's start, which
  the next pass reads again (the mark stays at or before the start, by the server's clock:
  newest change seen minus the pass's duration, measured here, minus ``margin``);
* the margin also covers a change saved just before the pass but committed after it.

Costs: one listing per project per pass, proportional to the annotated tasks changed since
the mark; the first pass over a project made before this bridge kept marks reads all its
annotated tasks once. Assumed: tasks are not deleted during a pass (a deleted task shifts
the pages after it, which could hide one task from that pass for good).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.annotations import InvalidAnnotationError, parse_stamp
from streams.review.high_water import HighWaterMarks
from streams.review.label_studio_api import LabelStudioClient

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Annotations per publish (one confirmed produce each).
_CHUNK = 500


class Reconciler:
    """One pass over every project at a time (:meth:`run_once`)."""

    def __init__(
        self,
        client: LabelStudioClient,
        projects: Callable[[], Mapping[str, int]],
        marks: HighWaterMarks,
        publisher: AnnotationPublisher,
        *,
        margin: timedelta = timedelta(seconds=10),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.projects = projects
        self.marks = marks
        self.publisher = publisher
        self.margin = margin
        self.clock = clock

    def run_once(self) -> int:
        """Publish what was missed in every project; the number published. Raises what the
        client, publisher or marks raise (the marks then stay where they were)."""
        caught = 0
        for model_id, project_id in sorted(self.projects().items()):
            caught += self._project(model_id, project_id)
        self.publisher.metrics.reconciliations.inc()
        return caught

    def _project(self, model_id: str, project_id: int) -> int:
        mark = self.marks.get(project_id)
        started = self.clock()
        newest = mark
        batch: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
        caught = 0
        for task in self.client.annotated_tasks_changed_since(project_id, mark or _EPOCH):
            try:
                changed = parse_stamp(task.get("updated_at"))
            except InvalidAnnotationError:
                changed = None
            if changed is not None and (newest is None or changed > newest):
                newest = changed
            batch += [(task, a) for a in task.get("annotations") or () if isinstance(a, dict)]
            if len(batch) >= _CHUNK:
                caught += self.publisher.publish(batch, "reconciliation")
                batch = []
        caught += self.publisher.publish(batch, "reconciliation")
        if newest is not None:
            took = timedelta(seconds=self.clock() - started)
            safe = newest - took - self.margin
            if mark is None or safe > mark:
                self.marks.set(project_id, safe)
        if caught:
            log.info("reconciliation: %d annotations of model %s published", caught, model_id)
        return caught
