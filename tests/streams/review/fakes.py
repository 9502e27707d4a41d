"""Stand-ins for the review bridge's neighbours in unit tests: a Label Studio that holds
tasks and annotations in memory, a label sink that records (or fails), marks in memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from streams.errors import LabelStudioError
from streams.review.label_sink import LabelSinkError


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.fail = False

    def send(self, labels: Sequence[tuple[Mapping[str, Any], bytes]]) -> None:
        if self.fail:
            raise LabelSinkError("broker down")
        self.sent += [raw for _event, raw in labels]

    def close(self) -> None:
        pass


class FakeMarks:
    def __init__(self) -> None:
        self.marks: dict[int, datetime] = {}

    def get(self, project_id: int) -> datetime | None:
        return self.marks.get(project_id)

    def set(self, project_id: int, mark: datetime) -> None:
        self.marks[project_id] = mark


class FakeLabelStudio:
    """Users, and per project a list of tasks (each with ``updated_at`` and annotations)."""

    def __init__(self) -> None:
        self.users = {1: {"id": 1, "email": "ana@example.com"}, 2: {"id": 2, "email": ""}}
        self.user_lookups = 0
        self.tasks: dict[int, list[dict[str, Any]]] = {}
        self.queries: list[tuple[int, datetime]] = []
        self.down = False

    def user(self, user_id: int) -> dict[str, Any]:
        self._check()
        self.user_lookups += 1
        return self.users[user_id]

    def annotated_tasks_changed_since(
        self, project_id: int, since: datetime
    ) -> Iterator[dict[str, Any]]:
        self._check()
        self.queries.append((project_id, since))
        for task in sorted(self.tasks.get(project_id, []), key=lambda t: t["id"]):
            changed = datetime.fromisoformat(task["updated_at"])
            if changed > since and task["annotations"]:
                yield task

    def _check(self) -> None:
        if self.down:
            raise LabelStudioError("GET /api/...: Label Studio cannot be reached")
