"""kill -9 a worker while reviews stream in: every adjudicated escalation still gets its
reviewed record, and a replay repeats a record, never changes it (SPEC §12).

The worker escalates, checkpoints, then reviewers label every escalation (half of them
ask for two reviews, so labels are held across the kill); the worker is SIGKILLed after a
checkpoint while labels are still being published, and a second worker carries on.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.events.records import reviewed_id
from tests.faults.conftest import MIN_CONFIDENCE, processed
from tests.support import (
    BackgroundPublisher,
    SyntheticStream,
    publish,
    read_until_escalated,
    topic_size,
    uncommitted,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

N_EVENTS = 3_000
REVIEWERS = ("ana", "bo", "cy")


def _labels(escalations: list[dict[str, Any]], seed: int) -> list[tuple[bytes, bytes]]:
    """``reviews_wanted`` labels per escalation, from different reviewers, interleaved so
    that the reviews of one event are far apart in the labels topic."""
    rng = random.Random(seed)
    firsts, seconds = [], []
    for n, e in enumerate(escalations):
        for k in range(e["reviews_wanted"]):
            pred = e["prediction"]["label"]
            label = {
                "event_id": e["event_id"],
                "model_id": e["model_id"],
                "ts": 1_767_225_600 + n,
                "label": pred if rng.random() < 0.7 else f"not-{pred}",
                "source": "human",
                "reviewer": REVIEWERS[k],
                "escalation_id": e["escalation_id"],
                "inclusion_probability": e["inclusion_probability"],
            }
            (firsts if k == 0 else seconds).append((e["model_id"].encode(), orjson.dumps(label)))
    return firsts + seconds


def test_kill_9_while_reviews_stream_in(kafka_bootstrap: str, make_rig, tmp_path: Path) -> None:
    rig = make_rig(kafka_bootstrap, "revkill", partitions=4)
    rig.config["defaults"]["review"] = {"overlap_rate": 0.5, "overlap_reviews": 2}
    topics = rig.topics
    stream = SyntheticStream(6, min_confidence=MIN_CONFIDENCE, seed=21)
    escalations = rig.reader("escalations")
    reviewed = rig.reader("reviewed")

    first = rig.worker("first").start()
    publish(kafka_bootstrap, topics["inference"], stream.take(N_EVENTS))
    audit = read_until_escalated(escalations, stream.qualifying)
    assert not audit.missing, audit
    sent = list({e["event_id"]: e for e in escalations.messages}.values())
    assert any(e["reviews_wanted"] == 2 for e in sent) and any(
        e["reviews_wanted"] == 1 for e in sent
    )
    # Every event is checkpointed (and committed) before the labels come: a label never
    # races the replay of its own event after the restart.
    group = rig.config["app_id"]
    assert wait_until(lambda: not uncommitted(kafka_bootstrap, group, topics["inference"]), 60)

    labels = _labels(sent, seed=7)
    pub = BackgroundPublisher(kafka_bootstrap, topics["labels"], labels, rate=400).start()
    # Kill once some reviewed records are out and a later checkpoint holds open reviews.
    assert wait_until(lambda: reviewed.poll(0.2) >= 0 and len(reviewed.messages) > 200, 120)
    marks = topic_size(kafka_bootstrap, topics["checkpoints"])
    assert wait_until(lambda: topic_size(kafka_bootstrap, topics["checkpoints"]) > marks, 30)
    first.kill()
    assert pub.sent < len(labels), "the labels were all sent before the kill: too fast"

    second = rig.worker("second").start()
    pub.join()
    wanted = {e["event_id"] for e in sent}

    def all_reviewed() -> bool:
        reviewed.poll(0.5)
        return wanted <= {r["event_id"] for r in reviewed.messages}

    assert wait_until(all_reviewed, timeout=120), second.log_tail()
    reviewed.poll(2.0)  # and any duplicate still coming

    # Nothing missing (above), nothing changed by a replay, ids as promised, no strays.
    by_id: dict[str, set[bytes]] = {}
    for r in reviewed.messages:
        assert r["reviewed_id"] == reviewed_id(r["model_id"], r["event_id"])
        body = {k: v for k, v in r.items() if k != "adjudicated_at"}
        by_id.setdefault(r["reviewed_id"], set()).add(
            orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        )
    conflicting = [k for k, bodies in by_id.items() if len(bodies) > 1]
    assert not conflicting, conflicting[:5]
    assert {r["event_id"] for r in reviewed.messages} == wanted
    two = [r for r in reviewed.messages if r["reviews_wanted"] == 2]
    assert two and all(len(r["labels"]) == 2 for r in two)
    assert processed(second) >= 0
    assert second.stop() == 0, second.log_tail()
