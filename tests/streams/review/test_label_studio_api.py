"""The Label Studio client (streams/review/label_studio_api.py) and the tasks and labeling
configs it sends (streams/review/tasks.py), against a real Label Studio server."""

from __future__ import annotations

import uuid

import pytest

from streams.dev.label_studio import LocalLabelStudio
from streams.dev.local_broker import free_port
from streams.errors import LabelStudioError
from streams.review.label_studio_api import LabelStudioClient, LabelStudioUnavailableError
from streams.review.tasks import decode_escalation, label_config, task_payload
from tests.streams.review.escalations import CLASSES, escalations

pytestmark = pytest.mark.label_studio


@pytest.fixture
def client(label_studio: LocalLabelStudio) -> LabelStudioClient:
    return LabelStudioClient(label_studio.url, label_studio.token, timeout=30)


def _title() -> str:
    return f"test {uuid.uuid4().hex[:12]}"


def test_a_classification_task_shows_the_prediction_preselected_and_its_priority(
    client: LabelStudioClient,
) -> None:
    project = client.create_project(_title(), label_config("classification", CLASSES))
    records = escalations("fraud", 3)
    ids = client.import_tasks(project.id, [task_payload(decode_escalation(r)) for r in records])
    assert len(set(ids)) == 3

    tasks = {t["data"]["escalation_id"]: t for t in client.tasks(project.id, fields="all")}
    assert set(tasks) == {r["escalation_id"] for r in records}
    for record in records:
        task = tasks[record["escalation_id"]]
        assert task["data"]["priority"] == record["priority"]
        assert task["data"]["prediction"] == record["prediction"]
        assert "low_confidence" in task["data"]["reasons_text"]
        assert task["data"]["features"]["card"] == "(missing)"
        (prediction,) = task["predictions"]
        assert prediction["result"][0]["value"] == {"choices": [record["prediction"]["label"]]}
        assert prediction["score"] == pytest.approx(
            record["prediction"]["scores"][record["prediction"]["label"]]
        )


def test_a_regression_task_preannotates_the_predicted_value(client: LabelStudioClient) -> None:
    project = client.create_project(_title(), label_config("regression"))
    record = {
        "escalation_id": "r1",
        "model_id": "eta",
        "event_id": "e1",
        "priority": 0.4,
        "prediction": {"value": 12.5, "interval": [3.0, 40.0]},
        "reasons": [{"kind": "wide_interval", "score": 37.0, "threshold": 20.0}],
    }
    client.import_tasks(project.id, [task_payload(decode_escalation(record))])
    (task,) = client.tasks(project.id, fields="all")
    assert task["predictions"][0]["result"][0]["value"] == {"number": 12.5}


def test_find_tasks_matches_exact_values_across_filter_chunks(client: LabelStudioClient) -> None:
    project = client.create_project(_title(), label_config("classification", CLASSES))
    records = escalations("churn", 230)  # more than two filter chunks and two pages
    ids = client.import_tasks(project.id, [task_payload(decode_escalation(r)) for r in records])
    wanted = [r["escalation_id"] for r in records[::2]] + ["no-such-escalation"]
    found = client.find_tasks(project.id, "escalation_id", wanted)
    by_escalation = dict(zip((r["escalation_id"] for r in records), ids, strict=True))
    assert found == {e: by_escalation[e] for e in wanted[:-1]}
    assert len(list(client.tasks(project.id))) == 230


def test_a_project_is_found_by_its_exact_title(client: LabelStudioClient) -> None:
    title = _title()
    made = client.create_project(title, label_config("classification", CLASSES), "mine")
    client.create_project(title + " longer", label_config("classification", CLASSES))
    found = client.find_project(title)
    assert found is not None and (found.id, found.description) == (made.id, "mine")
    assert client.find_project(_title()) is None


def test_a_wrong_token_is_a_refusal_not_an_outage(label_studio: LocalLabelStudio) -> None:
    client = LabelStudioClient(label_studio.url, "0" * 40)
    with pytest.raises(LabelStudioError, match="401") as caught:
        client.whoami()
    assert not isinstance(caught.value, LabelStudioUnavailableError)
    assert "0" * 40 not in str(caught.value)


def test_no_server_is_an_outage_worth_retrying() -> None:
    client = LabelStudioClient(f"http://127.0.0.1:{free_port()}", "abcdef", timeout=2)
    with pytest.raises(LabelStudioUnavailableError, match="cannot be reached"):
        client.whoami()


def test_a_rejected_import_names_the_request(client: LabelStudioClient) -> None:
    project = client.create_project(_title(), label_config("classification", CLASSES))
    with pytest.raises(LabelStudioError, match=f"POST /api/projects/{project.id}/import"):
        client.import_tasks(project.id, [{"data": {"title": "no reasons_text, no features"}}])


def test_an_overlap_escalation_is_served_to_as_many_annotators_as_it_wants(
    client: LabelStudioClient,
) -> None:
    from streams.config.settings import LabelStudioSettings
    from streams.review.bridge import TaskWriter

    settings = LabelStudioSettings.model_validate(
        {"project_title": f"overlap {uuid.uuid4().hex[:8]} {{model_id}}"}
    )
    writer = TaskWriter(client, settings)
    records = escalations("fraud", 2)
    records[0] = {**records[0], "reviews_wanted": 3}
    writer.write([decode_escalation(r) for r in records])
    writer.write([decode_escalation(r) for r in records])  # a redelivery: no second task
    project = writer.projects.project_for("fraud", "classification")
    tasks = {t["data"]["escalation_id"]: t for t in client.tasks(project.id, fields="all")}
    assert len(tasks) == 2
    wanted, single = (tasks[r["escalation_id"]] for r in records)
    assert wanted["overlap"] == 3 and single["overlap"] == 1
    # One annotation labels the single-review task, not the one that wants three.
    for task in (wanted, single):
        client.annotate(
            task["id"],
            [
                {
                    "from_name": "label",
                    "to_name": "reasons",
                    "type": "choices",
                    "value": {"choices": [CLASSES[0]]},
                }
            ],
        )
    after = {t["id"]: t for t in client.tasks(project.id, fields="all")}
    assert after[wanted["id"]]["is_labeled"] is False
    assert after[single["id"]]["is_labeled"] is True
