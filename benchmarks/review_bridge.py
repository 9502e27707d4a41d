"""The review bridge against a real Label Studio and a real broker; prints ONE JSON.

A local broker and a local Label Studio (both its own, started here; the Label Studio start
is reported separately), and the bridge in this process (:class:`LabelStudioService`, with
its webhook endpoint). Each run, in fresh topics and projects:

1. **Tasks.** ``n`` escalations over 2 models are on the escalations topic before the
   bridge starts; ``tasks_per_second`` is ``n`` over the time from the bridge's start to
   its ``tasks_created`` counter reaching ``n`` (project creation, saved views, webhooks,
   look-ups and bulk imports included).
2. **Annotations → LabelEvents.** One reviewer (a user signed up through the invite link)
   annotates every task, one request after another, as a labeling screen does; a consumer
   reads the labels topic meanwhile. The latency of one annotation is from just before its
   ``POST /api/tasks/{id}/annotations/`` to its LabelEvent read from Kafka: Label Studio
   saving it, sending the webhook (synchronously, within the request), the bridge's
   hand-off, its confirmed produce, and the consumer's fetch. ``latency_ms`` gives p50, p99
   and max; ``via`` how the labels came (webhook, or reconciliation every 30 s).

Each figure is the median over ``--runs`` runs (each run's figures are listed too).

``python benchmarks/review_bridge.py [--quick] [--runs K] [--n N]`` (quick: 100 escalations,
1 run; full: 500 escalations, 3 runs).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from streams.config import settings_from_dict
from streams.dev.label_studio import LocalLabelStudio
from streams.dev.local_broker import LocalBroker, free_port
from streams.kafka.topics import create_topics
from streams.review.label_studio_api import LabelStudioClient
from streams.review.service import LabelStudioService
from streams.review.tasks import label_config
from tests.streams.review.escalations import escalations
from tests.support import publish, unique_topics, wait_until

MODELS = ("fraud", "churn")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _labels_consumer(bootstrap: str, topic: str) -> Any:
    """Assigned to every partition from the start; ``poll`` returns on the first message."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    deadline = time.monotonic() + 60
    while True:
        info = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if info is not None and info.error is None and info.partitions:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {topic} has no partitions after 60 s")
        time.sleep(0.2)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in info.partitions])
    return consumer


def _baseline_annotate_ms(
    ls: LocalLabelStudio, reviewer_token: str, tag: str, n: int = 50
) -> float:
    """Median time of Label Studio's own annotation request, in a project without webhooks
    (same server, same run): the part of the latency that is not the bridge's."""
    admin = LabelStudioClient(ls.url, ls.token)
    # Titled off the bridge's pattern ("{tag} {model_id}"): not a model's project.
    project = admin.create_project(f"baseline {tag}", label_config("classification", ["a", "b"]))
    tasks = [
        {"data": {"title": "t", "reasons_text": "r", "features": {}, "escalation_id": f"b{i}"}}
        for i in range(n)
    ]
    reviewer = LabelStudioClient(ls.url, reviewer_token)
    result = [
        {"from_name": "label", "to_name": "reasons", "type": "choices", "value": {"choices": ["a"]}}
    ]
    took = []
    for task_id in admin.import_tasks(project.id, tasks):
        started = time.monotonic()
        reviewer.annotate(task_id, result)
        took.append(1000 * (time.monotonic() - started))
    return round(statistics.median(took), 1)


def one_run(
    broker: LocalBroker, ls: LocalLabelStudio, reviewer_token: str, n: int
) -> dict[str, Any]:
    tag = f"bench{uuid.uuid4().hex[:6]}"
    topics = unique_topics(tag)
    per_model = n // len(MODELS)
    records = [r for m in MODELS for r in escalations(m, per_model, seed=5)]
    webhook_port = free_port()
    settings = settings_from_dict(
        {
            "kafka": {"bootstrap": broker.bootstrap},
            "topics": topics,
            "review": {
                "label_studio": {
                    "url": ls.url,
                    "token": ls.token,
                    "project_title": f"{tag} {{model_id}}",
                    "group_id": f"{tag}-bridge",
                    "batch_within_s": 0.2,
                    "metrics_host": "127.0.0.1",
                    "metrics_port": 0,
                    "webhook_host": "127.0.0.1",
                    "webhook_port": webhook_port,
                    "webhook_url": f"http://127.0.0.1:{webhook_port}/webhook",
                    "webhook_secret": uuid.uuid4().hex,
                }
            },
        }
    )
    create_topics(settings)  # the labels topic exists before anything reads it
    publish(
        broker.bootstrap,
        topics["escalations"],
        [(r["model_id"].encode(), orjson.dumps(r)) for r in records],
    )
    service = LabelStudioService(settings)
    registry = service.metrics.registry

    def counted(name: str, **labels: str) -> float:
        return sum(
            s.value
            for metric in registry.collect()
            for s in metric.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    baseline_ms = _baseline_annotate_ms(ls, reviewer_token, tag)
    started = time.monotonic()
    service.start()
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        if not wait_until(
            lambda: counted("vigil_review_bridge_tasks_created_total") >= len(records),
            timeout=600,
            interval=0.05,
        ):
            raise RuntimeError("the bridge did not make every task within 600 s")
        tasks_seconds = time.monotonic() - started

        admin = LabelStudioClient(ls.url, ls.token)
        reviewer = LabelStudioClient(ls.url, reviewer_token)
        task_ids = []
        for model in MODELS:
            project = admin.find_project(f"{tag} {model}")
            assert project is not None
            task_ids += [(t["id"], t["data"]["event_id"]) for t in admin.tasks(project.id)]
        sent_at: dict[str, float] = {}
        arrived_at: dict[str, float] = {}
        stop = threading.Event()
        consumer = _labels_consumer(broker.bootstrap, topics["labels"])
        on_topic = 0

        def consume() -> None:
            nonlocal on_topic
            while not stop.is_set():
                message = consumer.poll(0.05)
                if message is None or message.error() is not None:
                    continue
                on_topic += 1
                arrived_at.setdefault(orjson.loads(message.value())["event_id"], time.monotonic())

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        result = [
            {
                "from_name": "label",
                "to_name": "reasons",
                "type": "choices",
                "value": {"choices": ["approve"]},
            }
        ]
        post_ms = []
        annotate_started = time.monotonic()
        for task_id, event_id in task_ids:
            sent_at[event_id] = time.monotonic()
            reviewer.annotate(task_id, result)
            post_ms.append(1000 * (time.monotonic() - sent_at[event_id]))
        annotate_seconds = time.monotonic() - annotate_started
        wait_until(lambda: len(arrived_at) >= len(task_ids), timeout=120, interval=0.1)
        time.sleep(2.0)  # any duplicate would arrive meanwhile
        stop.set()
        reader.join(5)
        consumer.close()
        latencies = [1000 * (arrived_at[e] - sent_at[e]) for e in sent_at if e in arrived_at]
        return {
            "escalations": len(records),
            "tasks_seconds": round(tasks_seconds, 2),
            "tasks_per_second": round(len(records) / tasks_seconds, 1),
            "annotations": len(task_ids),
            "annotations_per_second": round(len(task_ids) / annotate_seconds, 1),
            "labels_received": len(arrived_at),
            "labels_on_topic": on_topic,
            "annotate_request_ms_p50": round(statistics.median(post_ms), 1),
            "baseline_annotate_request_ms_p50": baseline_ms,
            "latency_ms": {
                "p50": round(_percentile(latencies, 0.5), 1),
                "p99": round(_percentile(latencies, 0.99), 1),
                "max": round(max(latencies), 1),
            },
            "via": {
                "webhook": counted(
                    "vigil_review_bridge_annotations_published_total", via="webhook"
                ),
                "reconciliation": counted(
                    "vigil_review_bridge_annotations_published_total", via="reconciliation"
                ),
            },
        }
    finally:
        service.stop()
        runner.join(30)
        service.close()


def main() -> None:
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` shows where a run is stuck
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--n", type=int, default=None, help="escalations per run")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 500)
    runs = args.runs or (1 if args.quick else 3)
    with LocalBroker() as broker:
        ls_started = time.monotonic()
        with LocalLabelStudio(allow_local_webhooks=True) as ls:
            ls_start_seconds = time.monotonic() - ls_started
            token = ls.add_reviewer(f"reviewer-{uuid.uuid4().hex[:6]}@example.com", "bench-pw-1234")
            results = [one_run(broker, ls, token, n) for _ in range(runs)]

    def median(get: Any) -> float:
        return round(statistics.median(get(r) for r in results), 1)

    print(
        json.dumps(
            {
                "benchmark": "review_bridge",
                "quick": args.quick,
                "runs": runs,
                "escalations_per_run": n,
                "label_studio_start_seconds": round(ls_start_seconds, 1),
                "tasks_per_second": median(lambda r: r["tasks_per_second"]),
                "annotation_to_label_ms": {
                    "p50": median(lambda r: r["latency_ms"]["p50"]),
                    "p99": median(lambda r: r["latency_ms"]["p99"]),
                    "max": median(lambda r: r["latency_ms"]["max"]),
                },
                "annotate_request_ms_p50": median(lambda r: r["annotate_request_ms_p50"]),
                "baseline_annotate_request_ms_p50": median(
                    lambda r: r["baseline_annotate_request_ms_p50"]
                ),
                "annotations_per_second": median(lambda r: r["annotations_per_second"]),
                "lost": sum(r["annotations"] - r["labels_received"] for r in results),
                "duplicated": sum(r["labels_on_topic"] - r["labels_received"] for r in results),
                "per_run": results,
            }
        )
    )


if __name__ == "__main__":
    main()
