"""The whole review loop through a real broker, a real worker and a real Label Studio:
inference events → worker → escalations → bridge → tasks → reviewers annotate through Label
Studio's API → webhooks (or reconciliation) → LabelEvents → the worker joins them."""

from __future__ import annotations

import collections
import http.client
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.client import InferencePublisher
from streams.dev.label_studio import LocalLabelStudio
from streams.dev.scrape import total
from streams.review.label_studio_api import LabelStudioClient
from streams.review.webhook_endpoint import WEBHOOK_SECRET_HEADER
from tests.streams.review.bridge_process import Bridge
from tests.support import TopicReader, publish, start_worker, unique_topics, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.label_studio]

CLASSES = ("pos", "neg")


def _escalations_of(records: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(r["model_id"].encode(), orjson.dumps(r)) for r in records]


def _choice(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "label",
            "to_name": "reasons",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def _annotate(client: LabelStudioClient, task_id: int, label: str, **extra: Any) -> dict[str, Any]:
    return client.annotate(task_id, _choice(label), **extra)


def _project_tasks(client: LabelStudioClient, title: str, n: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def made() -> bool:
        nonlocal found
        project = client.find_project(title)
        found = list(client.tasks(project.id)) if project is not None else []
        return len(found) >= n

    assert wait_until(made, timeout=120, interval=1.0), f"{len(found)} of {n} tasks"
    return found


def test_two_reviewers_annotations_reach_the_worker_as_their_labels(
    kafka_bootstrap: str, label_studio: LocalLabelStudio, tmp_path: Path
) -> None:
    n = 30
    topics, worker = start_worker(
        kafka_bootstrap,
        tmp_path,
        "loop",
        {
            "defaults": {
                "escalation": {"min_confidence": 0.9, "data_reasons": False},
                "review": {"audit_rate": 0.0},
                "drift": {"sensitivity": 1e12},
            }
        },
    )
    # Reconciliation only at start: every label below must come by webhook.
    bridge = Bridge(kafka_bootstrap, topics, label_studio, tmp_path, reconcile_every_s=3600).start()
    labels = TopicReader(kafka_bootstrap, topics["labels"])
    admin = LabelStudioClient(label_studio.url, label_studio.token)
    suffix = uuid.uuid4().hex[:6]
    reviewers = {
        f"ana-{suffix}@example.com": None,
        f"ben-{suffix}@example.com": None,
    }
    tokens = {
        email: label_studio.add_reviewer(email, f"pw-{suffix}-{email[:3]}") for email in reviewers
    }
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        with InferencePublisher(
            kafka_bootstrap, topic=topics["inference"], labels_topic=topics["labels"]
        ) as pub:
            for i in range(n):
                confidence = 0.6  # below min_confidence: every event is escalated
                event = {
                    "event_id": f"ev-{i}",
                    "model_id": "churn",
                    "ts": (t0 + timedelta(seconds=i)).isoformat(),
                    "prediction": {"label": "pos", "scores": {"pos": confidence, "neg": 0.4}},
                    "features": {"x": i / n},
                }
                pub.publish_raw(orjson.dumps(event), key=b"churn")
            pub.flush()
        tasks = _project_tasks(admin, f"{bridge.tag} churn", n)
        assert len(tasks) == n
        # Each reviewer labels half, through their own account.
        want: dict[str, tuple[str, str]] = {}
        annotation_of: dict[int, int] = {}
        emails = list(tokens)
        for k, task in enumerate(sorted(tasks, key=lambda t: t["id"])):
            email = emails[k % 2]
            label = CLASSES[k % 3 == 0]
            client = LabelStudioClient(label_studio.url, tokens[email])
            annotation_of[task["id"]] = _annotate(client, task["id"], label)["id"]
            want[task["data"]["event_id"]] = (email, label)
        got = list(labels.read_until(n, timeout=60))
        assert len(got) == n, "one LabelEvent per annotation"
        by_event = {e["event_id"]: e for e in got}
        assert {k: (e["reviewer"], e["label"]) for k, e in by_event.items()} == want
        for event in got:
            assert event["source"] == "human" and event["model_id"] == "churn"
            assert event["escalation_id"] and event["inclusion_probability"] == 1.0
            assert event["prediction"]["label"] == "pos"
        # The worker joined every one of them.
        assert wait_until(
            lambda: (
                total(worker.scrape(), "vigil_labels_total", model="churn", outcome="joined") >= n
            ),
            timeout=60,
        ), worker.log_tail()
        assert bridge.counter("vigil_review_bridge_annotations_published_total", via="webhook") == n

        # A skip publishes nothing; an update republishes with the new answer.
        first = min(tasks, key=lambda t: t["id"])
        event_id = first["data"]["event_id"]
        author, label = want[event_id]
        other = next(e for e in emails if e != author)
        _annotate(
            LabelStudioClient(label_studio.url, tokens[other]),
            first["id"],
            "neg",
            was_cancelled=True,
        )
        own = LabelStudioClient(label_studio.url, tokens[author])
        relabel = "neg" if label == "pos" else "pos"
        own.update_annotation(annotation_of[first["id"]], _choice(relabel))
        more = labels.read_until(n + 1, timeout=30, settle=5.0)[n:]
        assert [(e["event_id"], e["reviewer"], e["label"]) for e in more] == [
            (event_id, author, relabel)
        ]

        # A webhook without the secret is refused, and counted.
        connection = http.client.HTTPConnection("127.0.0.1", bridge.webhook_port, timeout=5)
        connection.request("POST", "/webhook", body=b"{}", headers={WEBHOOK_SECRET_HEADER: "no"})
        assert connection.getresponse().status == 401
        connection.close()
        assert bridge.counter("vigil_review_bridge_webhook_refusals_total", reason="secret") == 1
    finally:
        labels.close()
        bridge.stop()
        worker.stop()


def test_a_missed_webhook_and_a_label_studio_restart_lose_nothing_and_double_nothing(
    kafka_bootstrap: str, new_topic: Any, label_studio: LocalLabelStudio, tmp_path: Path
) -> None:
    topics = unique_topics("lsr")
    topics["escalations"] = new_topic(partitions=2)
    topics["labels"] = new_topic(partitions=2)
    from tests.streams.review.escalations import escalations

    records = escalations("fraud", 40, seed=11)
    publish(kafka_bootstrap, topics["escalations"], _escalations_of(records[:20]))
    bridge = Bridge(kafka_bootstrap, topics, label_studio, tmp_path).start()
    admin = LabelStudioClient(label_studio.url, label_studio.token)
    labels = TopicReader(kafka_bootstrap, topics["labels"])
    title = f"{bridge.tag} fraud"
    made: dict[str, str] = {}
    try:
        tasks = _project_tasks(admin, title, 20)
        # 1. The bridge is down while reviewers work: every webhook fails (Label Studio
        #    does not retry). Restarted, the bridge reconciles them in.
        bridge.stop()
        for task in tasks[:10]:
            _annotate(admin, task["id"], "reject")
            made[task["data"]["event_id"]] = "reject"
        bridge.start()
        first = list(labels.read_until(10, timeout=60))
        assert {e["event_id"] for e in first} == set(made)
        assert bridge.counter("vigil_review_bridge_reconciliation_catches_total") == 10

        # 2. Label Studio dies mid-stream: escalations keep coming and annotations wait.
        label_studio.kill()
        publish(kafka_bootstrap, topics["escalations"], _escalations_of(records[20:]))
        assert wait_until(
            lambda: bridge.counter("vigil_review_bridge_errors_total", kind="unavailable") >= 1,
            timeout=60,
        ), bridge.log_tail()
        label_studio.start()
        admin = LabelStudioClient(label_studio.url, label_studio.token)
        tasks = _project_tasks(admin, title, 40)
        for task in tasks:
            event_id = task["data"]["event_id"]
            if event_id not in made:
                _annotate(admin, task["id"], "approve")
                made[event_id] = "approve"
        everything = labels.read_until(40, timeout=90)
    finally:
        labels.close()
        bridge.stop()

    assert {e["event_id"]: e["label"] for e in everything} == made
    # Nothing duplicated: one task per escalation, one label per annotation version.
    per_escalation = collections.Counter(t["data"]["escalation_id"] for t in tasks)
    assert len(per_escalation) == 40 and set(per_escalation.values()) == {1}
    versions = collections.Counter((e["event_id"], e["reviewer"], e["ts"]) for e in everything)
    assert set(versions.values()) == {1}, versions.most_common(3)
