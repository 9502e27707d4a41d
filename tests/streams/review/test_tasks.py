"""Escalation records checked at the bridge's edge, and the task made of one
(streams/review/tasks.py); no server needed."""

from __future__ import annotations

from typing import Any

import pytest

from streams.cli.main import main
from streams.errors import InvalidEventError
from streams.review.tasks import (
    PRE_ANNOTATION_VERSION,
    decode_escalation,
    label_config,
    task_payload,
)
from tests.streams.review.escalations import escalations

GOOD = escalations("fraud", 1)[0]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"escalation_id": ""}, "escalation_id"),
        ({"model_id": 7}, "model_id"),
        ({"priority": True}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": "0.5"}, "priority"),
        ({"prediction": {"scores": {"a": 1.0}}}, "prediction"),
        ({"prediction": {"value": float("nan")}}, "prediction"),
    ],
)
def test_a_record_that_is_not_an_escalation_names_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidEventError, match=f"'{field}'") as caught:
        decode_escalation({**GOOD, **change})
    assert caught.value.reason == "schema"


def test_a_task_keeps_what_the_way_back_needs_unchanged() -> None:
    data = task_payload(decode_escalation(GOOD))["data"]
    for key in ("escalation_id", "event_id", "model_id", "prediction", "priority", "segment"):
        assert data[key] == GOOD[key]
    assert data["inclusion_probability"] == GOOD["inclusion_probability"]


@pytest.mark.parametrize("version", ["7", "8", None])
def test_the_pre_annotation_has_one_label_studio_version_whatever_the_model_version(
    version: str | None,
) -> None:
    # Label Studio serves only the predictions of its project's model version: one per
    # model release would hide the pre-annotations of tasks made after the next release.
    record = {**GOOD, "model_version": version}
    if version is None:
        del record["model_version"]
    task = task_payload(decode_escalation(record))
    (pre_annotation,) = task["predictions"]
    assert pre_annotation["model_version"] == PRE_ANNOTATION_VERSION
    assert pre_annotation["result"][0]["value"] == {"choices": [GOOD["prediction"]["label"]]}
    assert task["data"]["model_version"] == (version or "unknown")


def test_class_names_are_escaped_in_the_labeling_config() -> None:
    config = label_config("classification", ['a"b', "<c>", "d&e"])
    assert "<Choice value='a\"b'/>" in config
    assert '<Choice value="&lt;c&gt;"/>' in config
    assert '<Choice value="d&amp;e"/>' in config


def test_the_cli_without_a_token_says_which_variable_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VIGIL_LABEL_STUDIO_TOKEN", raising=False)
    assert main(["review", "label-studio"]) == 1
    assert "VIGIL_LABEL_STUDIO_TOKEN" in capsys.readouterr().err
