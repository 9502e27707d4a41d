"""The review backlog (streams/review/backlog.py): open tasks per model as
``vigil_review_backlog{model}``; with a fake client, and once against a real Label Studio."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterable
from typing import Any, cast

import pytest

from streams.config.settings import LabelStudioSettings
from streams.dev.label_studio import LocalLabelStudio
from streams.errors import LabelStudioError
from streams.review import label_studio_api
from streams.review.backlog import BacklogCounter
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_studio_api import (
    LabelStudioClient,
    LabelStudioUnavailableError,
    ProjectCounts,
)
from streams.review.projects import title_pattern
from streams.review.tasks import decode_escalation, label_config, task_payload
from tests.streams.review.escalations import CLASSES, escalations


class FakeClient:
    """Answers :meth:`LabelStudioClient.project_counts` from a list, like Label Studio
    (title filter ignoring case, ordered by id) and counts the calls."""

    def __init__(self, *projects: ProjectCounts) -> None:
        self.projects = list(projects)
        self.calls: list[dict[str, Any]] = []
        self.fail: LabelStudioError | None = None

    def project_counts(
        self, *, title_contains: str = "", ids: Iterable[int] | None = None
    ) -> list[ProjectCounts]:
        wanted = None if ids is None else set(ids)
        self.calls.append({"title_contains": title_contains, "ids": wanted})
        if self.fail is not None:
            raise self.fail
        return sorted(
            (
                p
                for p in self.projects
                if (wanted is None or p.id in wanted)
                and (wanted is not None or title_contains.lower() in p.title.lower())
            ),
            key=lambda p: p.id,
        )


def counter(client: FakeClient, metrics: BridgeMetrics | None = None, **kw: Any) -> BacklogCounter:
    return BacklogCounter(
        cast(LabelStudioClient, client),
        LabelStudioSettings(**kw),
        metrics if metrics is not None else BridgeMetrics(),
    )


def gauge(c: BacklogCounter) -> dict[str, float]:
    """``model label -> value`` of every vigil_review_backlog series."""
    return {
        s.labels["model"]: s.value
        for m in c.metrics.registry.collect()
        if m.name == "vigil_review_backlog"
        for s in m.samples
    }


def test_open_tasks_are_tasks_without_a_completed_annotation_per_model() -> None:
    client = FakeClient(
        ProjectCounts(1, "vigil fraud", tasks=10, annotated_tasks=4),
        ProjectCounts(2, "vigil churn", tasks=3, annotated_tasks=3),
        ProjectCounts(3, "someone else's project", tasks=50, annotated_tasks=0),
    )
    c = counter(client)
    assert c.update() == {"fraud": 6, "churn": 0}
    assert gauge(c) == {"fraud": 6.0, "churn": 0.0}
    # One request, searching by the title's literal part.
    assert client.calls == [{"title_contains": "vigil ", "ids": None}]


def test_a_configured_project_counts_for_its_model_and_costs_one_more_request() -> None:
    client = FakeClient(
        ProjectCounts(1, "vigil fraud", tasks=10, annotated_tasks=0),
        ProjectCounts(5, "the fraud team's queue", tasks=7, annotated_tasks=2),
        ProjectCounts(6, "vigil churn", tasks=2, annotated_tasks=1),
    )
    c = counter(client, projects={"fraud": 5, "gone": 99})
    # fraud reads its configured project only; gone's project does not exist: no series.
    assert c.update() == {"fraud": 5, "churn": 1}
    assert client.calls == [
        {"title_contains": "", "ids": {5, 99}},
        {"title_contains": "vigil ", "ids": None},
    ]


def test_titles_that_do_not_make_a_model_id_are_ignored_and_the_lowest_id_wins() -> None:
    client = FakeClient(
        ProjectCounts(3, "vigil fraud", tasks=9, annotated_tasks=0),
        ProjectCounts(2, "vigil fraud", tasks=4, annotated_tasks=1),  # the bridge's
        ProjectCounts(4, "vigil two words", tasks=1, annotated_tasks=0),
        ProjectCounts(5, "vigil FRAUD", tasks=1, annotated_tasks=0),  # another model
        ProjectCounts(7, "Vigil fraud", tasks=1, annotated_tasks=0),  # another title
        ProjectCounts(6, "my vigil fraud", tasks=1, annotated_tasks=0),
    )
    assert counter(client).update() == {"fraud": 3, "FRAUD": 1}


def test_a_custom_title_template_is_read_back() -> None:
    client = FakeClient(
        ProjectCounts(1, "review: fraud.v2 (fraud.v2)", tasks=2, annotated_tasks=0),
        ProjectCounts(2, "review: a (b)", tasks=2, annotated_tasks=0),
    )
    c = counter(client, project_title="review: {model_id} ({model_id})")
    assert c.update() == {"fraud.v2": 2}
    assert client.calls[0]["title_contains"] == "review: "


def test_models_beyond_the_cap_are_summed_under_other() -> None:
    client = FakeClient(
        *(ProjectCounts(i, f"vigil m{i}", tasks=10 * i, annotated_tasks=i) for i in (1, 2, 3))
    )
    c = counter(client, BridgeMetrics(max_models=1))
    assert c.update() == {"m1": 9, "m2": 18, "m3": 27}
    assert gauge(c) == {"m1": 9.0, "_other": 45.0}


def test_a_model_whose_project_disappeared_drops_its_series() -> None:
    client = FakeClient(
        ProjectCounts(1, "vigil fraud", tasks=2, annotated_tasks=0),
        ProjectCounts(2, "vigil churn", tasks=3, annotated_tasks=0),
    )
    c = counter(client)
    c.update()
    client.projects.pop(0)
    assert c.update() == {"churn": 3}
    assert gauge(c) == {"churn": 3.0}


def test_errors_propagate_and_the_gauge_keeps_the_last_counts() -> None:
    client = FakeClient(ProjectCounts(1, "vigil fraud", tasks=2, annotated_tasks=0))
    c = counter(client)
    c.update()
    client.fail = LabelStudioUnavailableError("down")
    with pytest.raises(LabelStudioUnavailableError):
        c.update()
    assert gauge(c) == {"fraud": 2.0}


def test_open_tasks_are_never_negative() -> None:
    assert ProjectCounts(1, "t", tasks=0, annotated_tasks=1).open_tasks == 0


@pytest.mark.parametrize("title", ["vigil", "vigil {model}", "{0} {model_id}"])
def test_a_title_template_without_model_id_alone_is_refused(title: str) -> None:
    with pytest.raises(ValueError, match="project_title"):
        title_pattern(title)


# ------------------------------------------------------------ real Label Studio


#: A submitted choice (the labeling config's ``label`` choices over ``reasons``).
RESULT = [
    {
        "from_name": "label",
        "to_name": "reasons",
        "type": "choices",
        "value": {"choices": [CLASSES[0]]},
    }
]


def delete_project(ls: LocalLabelStudio, project_id: int) -> None:
    request = urllib.request.Request(
        f"{ls.url}/api/projects/{project_id}/",
        headers={"Authorization": f"Token {ls.token}"},
        method="DELETE",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


@pytest.mark.label_studio
def test_the_backlog_of_real_projects_counts_skipped_tasks_as_open(
    label_studio: LocalLabelStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = LabelStudioClient(label_studio.url, label_studio.token)
    # Two projects a page: the three titled ones below take two pages.
    monkeypatch.setattr(label_studio_api, "_PAGE_SIZE", 2)
    prefix = f"backlog {uuid.uuid4().hex[:8]}"
    config = label_config("classification", CLASSES)

    def project(title: str, model: str, n: int) -> tuple[int, list[int]]:
        made = client.create_project(title, config)
        tasks = [task_payload(decode_escalation(r)) for r in escalations(model, n)]
        return made.id, client.import_tasks(made.id, tasks)

    _, fraud = project(f"{prefix} fraud", "fraud", 6)
    churn_project, _ = project(f"{prefix} churn", "churn", 2)
    queue, configured = project(f"{prefix} the team's queue", "eta", 3)
    client.annotate(fraud[0], RESULT)
    client.annotate(fraud[1], RESULT)
    client.annotate(fraud[1], [], was_cancelled=True)  # skipped as well: still done
    client.annotate(fraud[2], [], was_cancelled=True)  # skipped only: still open
    client.annotate(configured[0], RESULT)

    settings = LabelStudioSettings(project_title=f"{prefix} {{model_id}}", projects={"eta": queue})
    c = BacklogCounter(client, settings, BridgeMetrics())
    assert c.update() == {"fraud": 4, "churn": 2, "eta": 2}
    # A restarted bridge finds the same projects.
    assert BacklogCounter(client, settings, BridgeMetrics()).update() == c.update()

    client.annotate(fraud[2], RESULT)  # reviewed after all
    delete_project(label_studio, churn_project)
    assert c.update() == {"fraud": 3, "eta": 2}
    assert gauge(c) == {"fraud": 3.0, "eta": 2.0}
