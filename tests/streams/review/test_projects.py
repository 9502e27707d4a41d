"""Each model's project (streams/review/projects.py), against a real Label Studio: made on
first use, found again after a restart, growing its choices with the model's classes, and
a configured project or labeling config used as it is."""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from typing import Any

import pytest

from streams.config.settings import LabelStudioSettings
from streams.dev.label_studio import LocalLabelStudio
from streams.errors import LabelStudioError
from streams.review.label_studio_api import LabelStudioClient
from streams.review.projects import BUILT_BY_BRIDGE, QUEUE_VIEW, ProjectDirectory
from streams.review.tasks import (
    PRE_ANNOTATION_VERSION,
    decode_escalation,
    label_config,
    task_payload,
)
from tests.streams.review.escalations import CLASSES, escalations

pytestmark = pytest.mark.label_studio


@pytest.fixture
def client(label_studio: LocalLabelStudio) -> LabelStudioClient:
    return LabelStudioClient(label_studio.url, label_studio.token)


def _settings(**kw: object) -> LabelStudioSettings:
    return LabelStudioSettings.model_validate(
        {"project_title": f"p{uuid.uuid4().hex[:8]} {{model_id}}", **kw}
    )


def test_a_model_gets_a_project_once_and_it_is_found_again_after_a_restart(
    client: LabelStudioClient,
) -> None:
    settings = _settings()
    first = ProjectDirectory(client, settings).project_for("fraud", "classification", {"ok"})
    made = client.project(first.id)
    assert made.title == settings.project_title.format(model_id="fraud")
    assert made.description == BUILT_BY_BRIDGE

    # A new bridge process: same project, and it knows the classes already offered.
    again = ProjectDirectory(client, settings).project_for("fraud", "classification", {"ok"})
    assert (again.id, again.maintained, again.classes) == (first.id, True, {"ok"})


def test_a_class_not_seen_before_is_added_to_the_choices(client: LabelStudioClient) -> None:
    directory = ProjectDirectory(client, _settings())
    project = directory.project_for("fraud", "classification", {"ok", "fraud"})
    directory.project_for("fraud", "classification", {"ok", 'say "hold"'})
    config = client.project(project.id).label_config
    assert config == label_config("classification", {"ok", "fraud", 'say "hold"'})
    # Found by a new process with the quoted class read back from the config.
    reread = ProjectDirectory(client, directory.settings)
    assert reread.project_for("fraud", "classification").classes == {"ok", "fraud", 'say "hold"'}


def test_a_configured_project_and_labeling_config_are_used_as_they_are(
    client: LabelStudioClient,
) -> None:
    own = label_config("classification", {"yes", "no"})
    theirs = client.create_project(f"theirs {uuid.uuid4().hex[:8]}", own)
    settings = _settings(projects={"churn": theirs.id}, label_config=own)
    directory = ProjectDirectory(client, settings)
    churn = directory.project_for("churn", "classification", {"maybe"})
    assert (churn.id, churn.maintained) == (theirs.id, False)
    assert client.project(theirs.id).label_config == own  # "maybe" not added

    fraud = directory.project_for("fraud", "classification", {"maybe"})
    assert client.project(fraud.id).label_config == own
    assert not fraud.maintained


def test_a_configured_project_that_does_not_exist_fails_at_once(
    client: LabelStudioClient,
) -> None:
    directory = ProjectDirectory(client, _settings(projects={"churn": 987654}))
    with pytest.raises(LabelStudioError, match="404"):
        directory.project_for("churn", "classification", {"x"})


def test_reviewers_get_one_saved_queue_of_highest_priority_first(
    client: LabelStudioClient,
) -> None:
    settings = _settings()
    project = ProjectDirectory(client, settings).project_for("fraud", "classification", {"x"})
    ProjectDirectory(client, settings).project_for("fraud", "classification", {"x"})  # restart
    (view,) = [v for v in client.views(project.id) if v["data"].get("title") == QUEUE_VIEW]
    records = escalations("fraud", 30)
    client.import_tasks(project.id, [task_payload(decode_escalation(r)) for r in records])
    shown = [task["data"]["priority"] for task in client.tasks(project.id, view=view["id"])]
    assert shown == sorted((r["priority"] for r in records), reverse=True)


def _first_handed_out(
    label_studio: LocalLabelStudio, project_id: int, ordering: list[str]
) -> dict[str, Any]:
    """The task Label Studio hands a reviewer first who works through the tasks in this
    order ("Label Tasks As Displayed": the Data Manager's ``next_task`` action), with the
    predictions it pre-labels the task with."""
    request = urllib.request.Request(
        f"{label_studio.url}/api/dm/actions?id=next_task&project={project_id}",
        data=json.dumps({"ordering": ordering}).encode(),
        headers={
            "Authorization": f"Token {label_studio.token}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        task: dict[str, Any] = json.loads(response.read())
    return task


def test_the_queue_hands_out_tasks_pre_labelled_across_model_versions(
    client: LabelStudioClient, label_studio: LocalLabelStudio
) -> None:
    project = ProjectDirectory(client, _settings()).project_for("fraud", "classification", CLASSES)
    made = client.project(project.id)
    assert (made.model_version, made.show_collab_predictions) == (PRE_ANNOTATION_VERSION, True)
    (view,) = [v for v in client.views(project.id) if v["data"].get("title") == QUEUE_VIEW]

    # A model release between two imports; the newer escalation is the more urgent.
    older, newer = sorted(escalations("fraud", 2), key=lambda r: r["priority"])
    newer = {**newer, "model_version": "8"}
    for record in (older, newer):
        client.import_tasks(project.id, [task_payload(decode_escalation(record))])
    first = _first_handed_out(label_studio, project.id, view["data"]["ordering"])
    assert first["data"]["escalation_id"] == newer["escalation_id"]
    assert first["data"]["model_version"] == "8"
    choices = [p["result"][0]["value"] for p in first["predictions"]]
    assert choices == [{"choices": [newer["prediction"]["label"]]}]
    assert client.project(project.id).model_version == PRE_ANNOTATION_VERSION


def test_a_project_whose_settings_hide_the_pre_annotations_is_reported(
    client: LabelStudioClient, caplog: pytest.LogCaptureFixture
) -> None:
    config = label_config("classification", CLASSES)
    theirs = client.create_project(f"theirs {uuid.uuid4().hex[:8]}", config, model_version="v1")
    with caplog.at_level(logging.WARNING, logger="streams.review.projects"):
        ProjectDirectory(client, _settings(projects={"churn": theirs.id})).project_for(
            "churn", "classification"
        )
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(
        f"project {theirs.id} of model churn pre-labels tasks with predictions of model "
        "version 'v1' only"
    )
