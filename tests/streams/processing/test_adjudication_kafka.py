"""Reviewer quality control end to end (issue 15): synthetic reviewers with known error
rates, one careless, label a worker's escalations through the real broker.

Every escalation asks for three reviews (overlap 100 %), half as many gold items ride
along, and every reviewer answers every gold item. The worker must flag the careless
reviewer (metric and alert), decide each event by the reliability-weighted vote, which
must beat a plain majority vote against the truth, and publish exactly one reviewed
record per real escalation: none for a gold item, whose labels never reach the model.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.dev.scrape import total
from streams.events.records import reviewed_id
from streams.processing.gold import GoldIds
from tests.support import TopicReader, publish, start_worker, wait_until

pytestmark = pytest.mark.kafka

CLASSES = "abcd"
#: Reviewer -> probability of a wrong answer (a wrong answer is another class, at random).
REVIEWERS = {"good-1": 0.03, "good-2": 0.08, "fair": 0.15, "careless": 0.45}
N_EVENTS = 360
N_GOLD = 40
T0 = 1_767_225_600  # 2026-01-01


def _answer(rng: random.Random, truth: str, reviewer: str) -> str:
    if rng.random() >= REVIEWERS[reviewer]:
        return truth
    return rng.choice([c for c in CLASSES if c != truth])


def _majority(labels: list[str]) -> str:
    """Plurality, ties to the label given first (what the adjudicator's majority does)."""
    counts = Counter(labels)
    top = max(counts.values())
    return next(x for x in labels if counts[x] == top)


def test_synthetic_reviewers_through_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(15)
    gold_truth = [rng.choice(CLASSES) for _ in range(N_GOLD)]
    gold_path = tmp_path / "gold.jsonl"
    gold_path.write_bytes(
        b"\n".join(
            orjson.dumps(
                {
                    "event_id": f"gold-{i}",
                    "model_id": "m",
                    "ts": T0,
                    "prediction": {"label": "a", "confidence": 0.5},
                    "features": {"x": 100.0 + i},
                    "label": truth,
                }
            )
            for i, truth in enumerate(gold_truth)
        )
    )
    config = {
        "defaults": {
            "escalation": {"min_confidence": 0.9, "data_reasons": False},
            "review": {
                "audit_rate": 0.0,
                "gold": str(gold_path),
                "gold_rate": 0.5,
                "gold_key": "test-key",
                "overlap_rate": 1.0,
                "overlap_reviews": 3,
            },
        }
    }
    topics, worker = start_worker(kafka_bootstrap, tmp_path, "adjudicate", config)
    escalations = TopicReader(kafka_bootstrap, topics["escalations"])
    reviewed = TopicReader(kafka_bootstrap, topics["reviewed"])
    alerts = TopicReader(kafka_bootstrap, topics["alerts"])
    try:
        truth: dict[str, str] = {}
        events = []
        for i in range(N_EVENTS):
            event_id = f"e-{i}"
            truth[event_id] = rng.choice(CLASSES)
            event = {
                "event_id": event_id,
                "model_id": "m",
                "ts": T0 + i,
                "prediction": {"label": rng.choice(CLASSES), "confidence": 0.5},
                "features": {"x": rng.random()},
            }
            events.append((b"m", orjson.dumps(event)))
        publish(kafka_bootstrap, topics["inference"], events)
        escalations.read_until(N_EVENTS + 100, timeout=90)  # every event, and gold
        sent = escalations.messages
        ids = GoldIds(b"test-key")
        gold = [e for e in sent if ids.read("m", e["event_id"]) is not None]
        real = [e for e in sent if ids.read("m", e["event_id"]) is None]
        assert len(real) == N_EVENTS and {e["event_id"] for e in real} == set(truth)
        assert 100 < len(gold) < 260  # gold_rate 0.5 of the escalations
        assert all(e["reviews_wanted"] == 3 for e in real)

        # The reviewers work through the queue in order: every one answers a gold item,
        # three at random answer a real one (as many as it asks for).
        labels = []
        for e in sent:
            index = ids.read("m", e["event_id"])
            if index is not None:
                who, right = list(REVIEWERS), gold_truth[index]
            else:
                who, right = rng.sample(list(REVIEWERS), 3), truth[e["event_id"]]
            for reviewer in who:
                label = {
                    "event_id": e["event_id"],
                    "model_id": "m",
                    "ts": T0 + N_EVENTS + len(labels),
                    "label": _answer(rng, right, reviewer),
                    "source": "human",
                    "reviewer": reviewer,
                    "escalation_id": e["escalation_id"],
                    "inclusion_probability": e["inclusion_probability"],
                }
                labels.append((b"m", orjson.dumps(label)))
        publish(kafka_bootstrap, topics["labels"], labels)

        records = reviewed.read_until(N_EVENTS, timeout=90)
        # One reviewed record per real escalation, keyed by model, with its id; no gold.
        assert len(records) == N_EVENTS, worker.log_tail()
        assert {r["event_id"] for r in records} == set(truth)
        assert all(r["reviewed_id"] == reviewed_id("m", r["event_id"]) for r in records)
        assert set(reviewed.keys) == {b"m"}
        assert all(len(r["labels"]) == 3 for r in records)

        # Weighted adjudication beats a plain majority against the truth.
        weighted = sum(r["final"]["label"] == truth[r["event_id"]] for r in records)
        majority = sum(
            _majority([x["label"] for x in r["labels"]]) == truth[r["event_id"]] for r in records
        )
        methods = Counter(r["final"]["method"] for r in records)
        assert weighted > majority, (weighted, majority, methods)
        assert methods["weighted"] > N_EVENTS // 2

        # The careless reviewer is flagged (gauge and alert), the careful ones are not.
        def flagged() -> bool:
            return worker.gauge("vigil_reviewer_flagged", reviewer="careless") == 1.0

        assert wait_until(flagged, timeout=30), worker.log_tail()
        assert worker.gauge("vigil_reviewer_flagged", reviewer="good-1") == 0.0
        assert worker.gauge("vigil_reviewer_flagged", reviewer="good-2") == 0.0
        careless = worker.gauge("vigil_reviewer_gold_accuracy", reviewer="careless")
        assert careless is not None and 0.4 < careless < 0.7
        alerts.read_until(1, timeout=30)
        edges = {(a["signal"], a["state"]) for a in alerts.messages}
        # Flagged on gold and adjudicated labels together (review.flag_on's default).
        assert ("reviewer:careless:accuracy", "drift") in edges

        # Gold answers scored reviewers only: the model learnt from the real events' final
        # labels, one each (adjudications), and nothing else.
        samples = worker.scrape()
        gold_labels = len(gold) * len(REVIEWERS)
        assert total(samples, "vigil_labels_total", model="m", outcome="gold") == gold_labels
        assert total(samples, "vigil_adjudications_total", model="m") == N_EVENTS
        assert total(samples, "vigil_labels_total", model="m", outcome="joined") == 3 * N_EVENTS
        agreement = worker.gauge("vigil_reviewer_agreement", model="m")
        assert agreement is not None and 0.3 < agreement < 0.95
    finally:
        for reader in (escalations, reviewed, alerts):
            reader.close()
        worker.stop()
