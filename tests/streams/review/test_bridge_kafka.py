"""The review bridge (streams/review/bridge.py) between the real broker and a real Label
Studio: every escalation ends as exactly one task in its model's project, whatever is
redelivered, published twice, killed or down on the way."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.config import settings_from_dict
from streams.dev import children
from streams.dev.label_studio import LocalLabelStudio
from streams.review.bridge import LabelStudioBridge
from streams.review.label_studio_api import LabelStudioClient
from tests.streams.review.escalations import CLASSES, escalations
from tests.support import publish, uncommitted, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.label_studio]


def _messages(records: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(r["model_id"].encode(), orjson.dumps(r)) for r in records]


def _tasks_by_escalation(client: LabelStudioClient, title: str) -> dict[str, list[dict[str, Any]]]:
    """escalation_id → its tasks in the project titled ``title`` (none if no project)."""
    project = client.find_project(title)
    out: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    if project is not None:
        for task in client.tasks(project.id, fields="all"):
            out[task["data"]["escalation_id"]].append(task)
    return out


def _config(
    bootstrap: str, topic: str, ls: LocalLabelStudio, tag: str, **bridge: Any
) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap": bootstrap},
        "topics": {"escalations": topic},
        "review": {
            "label_studio": {
                "url": ls.url,
                "token": ls.token,
                "project_title": f"{tag} {{model_id}}",
                "group_id": f"bridge-{tag}",
                "metrics_host": "127.0.0.1",
                "metrics_port": 0,
                **bridge,
            }
        },
    }


def test_two_models_get_one_task_per_escalation_through_duplicates_and_a_killed_bridge(
    kafka_bootstrap: str,
    new_topic: Any,
    label_studio: LocalLabelStudio,
    tmp_path: Path,
) -> None:
    topic = new_topic(partitions=2)
    tag = f"t{uuid.uuid4().hex[:8]}"
    models = {"fraud": escalations("fraud", 250), "churn": escalations("churn", 250)}
    everything = [r for records in models.values() for r in records]
    # Each model's first 40 escalations are published twice: a worker that replayed them.
    publish(kafka_bootstrap, topic, _messages(everything))
    publish(kafka_bootstrap, topic, _messages([r for rs in models.values() for r in rs[:40]]))

    config = tmp_path / "bridge.yaml"
    config.write_text(
        yaml.safe_dump(_config(kafka_bootstrap, topic, label_studio, tag, batch_size=10))
    )
    client = LabelStudioClient(label_studio.url, label_studio.token)
    titles = {model: f"{tag} {model}" for model in models}

    def made() -> int:
        return sum(len(_tasks_by_escalation(client, t)) for t in titles.values())

    def start() -> subprocess.Popen[bytes]:
        with open(tmp_path / "bridge.log", "ab") as log:
            return children.spawn(
                [sys.executable, "-m", "streams.cli", "review", "label-studio", "-c", config],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
            )

    bridge = start()
    try:
        # Killed mid-stream, between imports and commits, with no chance to clean up.
        assert wait_until(lambda: made() >= 60, timeout=120, interval=1.0), (
            tmp_path / "bridge.log"
        ).read_text()
        children.stop(bridge, grace=0.0)
        assert made() < len(everything), "the bridge finished before it could be killed"
        bridge = start()
        group = f"bridge-{tag}"
        assert wait_until(lambda: not uncommitted(kafka_bootstrap, group, topic), timeout=180), (
            tmp_path / "bridge.log"
        ).read_text()[-4000:]
    finally:
        children.stop(bridge, grace=10.0)

    for model, records in models.items():
        tasks = _tasks_by_escalation(client, titles[model])
        doubled = {e: len(ts) for e, ts in tasks.items() if len(ts) != 1}
        assert not doubled, f"{model}: escalations with several tasks: {doubled}"
        assert set(tasks) == {r["escalation_id"] for r in records}
        for record in records[:5]:
            (task,) = tasks[record["escalation_id"]]
            assert task["data"]["priority"] == record["priority"]
            (prediction,) = task["predictions"]
            assert prediction["result"][0]["value"]["choices"] == [record["prediction"]["label"]]


def test_the_bridge_waits_out_a_label_studio_outage_and_commits_only_after(
    kafka_bootstrap: str,
    new_topic: Any,
    label_studio: LocalLabelStudio,
) -> None:
    topic = new_topic(partitions=1)
    tag = f"t{uuid.uuid4().hex[:8]}"
    records = escalations("eta", 60, seed=3)
    settings = settings_from_dict(
        _config(
            kafka_bootstrap,
            topic,
            label_studio,
            tag,
            batch_size=25,
            retry_initial_s=0.2,
            retry_max_s=1.0,
        )
    )
    bridge = LabelStudioBridge(settings)
    runner = threading.Thread(target=bridge.run, name="bridge", daemon=True)
    label_studio.kill()
    # Not escalations: passed over (counted), or they would block the partition for good.
    junk = [(b"eta", b"not json"), (b"eta", orjson.dumps({"escalation_id": "no model"}))]
    try:
        publish(kafka_bootstrap, topic, _messages(records[:30]) + junk + _messages(records[30:]))
        runner.start()
        outages = {"kind": "unavailable"}
        registry = bridge.metrics.registry
        assert wait_until(
            lambda: (
                (registry.get_sample_value("vigil_review_bridge_errors_total", outages) or 0) >= 2
            ),
            timeout=60,
        )
        # Nothing reached Label Studio, so nothing may be committed.
        assert uncommitted(kafka_bootstrap, f"bridge-{tag}", topic) == {0: 62}
    finally:
        label_studio.start()
    try:
        assert wait_until(
            lambda: not uncommitted(kafka_bootstrap, f"bridge-{tag}", topic), timeout=120
        )
    finally:
        bridge.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()

    assert registry.get_sample_value("vigil_review_bridge_invalid_escalations_total") == 2
    created = {"model": "eta"}
    assert registry.get_sample_value("vigil_review_bridge_tasks_created_total", created) == 60
    client = LabelStudioClient(label_studio.url, label_studio.token)
    tasks = _tasks_by_escalation(client, f"{tag} eta")
    assert {e: len(ts) for e, ts in tasks.items()} == {r["escalation_id"]: 1 for r in records}
    project = client.find_project(f"{tag} eta")
    assert project is not None
    assert all(f'value="{c}"' in project.label_config for c in CLASSES)
