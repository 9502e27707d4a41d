"""Reviewed records (SPEC §12) made here, since no worker publishes them in these tests; and
a fake consumer that serves them as Kafka would."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import TopicPartition

MODELS = ("fraud", "churn", "price")


def reviewed_record(
    i: int, *, model: str | None = None, extra_feature: bool = False
) -> dict[str, Any]:
    """Record ``i``: deterministic, a regression for model ``price``, classification else."""
    rng = random.Random(i)
    model = model or MODELS[i % len(MODELS)]
    event_id = f"e{i}"
    features: dict[str, Any] = {"amount": round(rng.uniform(0, 500), 2), "country": "DE"}
    if extra_feature:
        features["device"] = rng.choice(["ios", "android"])
    regression = model == "price"
    if regression:
        prediction: dict[str, Any] = {"value": 10.0 + i % 7, "interval": [5.0, 20.0]}
        labels = [{"value": 11.0, "reviewer": "ann", "source": "human", "ts": 1_790_000_100}]
        final: dict[str, Any] = {"value": 11.0, "method": "single", "agreement": 1.0}
    else:
        prediction = {"label": "ok", "confidence": 0.55}
        first = rng.choice(["ok", "bad"])
        labels = [
            {"label": first, "reviewer": "ann", "source": "human", "ts": 1_790_000_100},
            {"label": "bad", "reviewer": "bob", "source": "human", "ts": "2026-09-22T10:00:00Z"},
        ]
        final = {
            "label": "bad",
            "method": "weighted",
            "agreement": 1.0 if first == "bad" else 0.5,
        }
    return {
        "reviewed_id": hashlib.sha256(f"{model}\x00{event_id}".encode()).hexdigest()[:32],
        "event_id": event_id,
        "model_id": model,
        "model_version": "v3",
        "event_ts": "2026-09-22T09:00:00+00:00",
        "features": features,
        "segment": {"region": "eu"},
        "prediction": prediction,
        "escalation_id": f"esc-{model}-{event_id}",
        "reasons": [{"kind": "low_confidence", "score": 0.55, "threshold": 0.6}],
        "inclusion_probability": 1.0 if i % 10 else 0.02,
        "labels": labels,
        "final": final,
        "adjudicated_at": 1_790_000_200 + i,
        "policy": {"name": "vigil-default", "version": "1"},
    }


def encoded(record: dict[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) as the worker publishes it: keyed by model."""
    return record["model_id"].encode(), orjson.dumps(record)


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value


class FakeLog:
    """A topic's partitions and the group's committed Kafka offsets, shared by the fake
    consumers of successive sink "processes"."""

    def __init__(self, topic: str, partitions: int) -> None:
        self.topic = topic
        self.partitions: list[list[bytes | None]] = [[] for _ in range(partitions)]
        self.committed: dict[int, int] = {}

    def append(self, value: bytes | None, partition: int | None = None) -> None:
        p = (
            partition
            if partition is not None
            else sum(map(len, self.partitions)) % len(self.partitions)
        )
        self.partitions[p].append(value)


class FakeConsumer:
    """Enough of confluent-kafka's Consumer for the sink: one member owning every
    partition, positioned as ``on_assign`` says, else at the committed Kafka offset."""

    def __init__(self, log: FakeLog) -> None:
        self.log = log
        self.position: dict[int, int] | None = None
        self.on_assign: Callable[[Any, list[TopicPartition]], None] | None = None
        self.closed = False

    def subscribe(self, topics: list[str], on_assign: Any = None) -> None:
        assert topics == [self.log.topic]
        self.on_assign = on_assign

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.position = {
            tp.partition: tp.offset if tp.offset >= 0 else self.log.committed.get(tp.partition, 0)
            for tp in partitions
        }

    def consume(self, n: int, timeout: float) -> list[FakeMessage]:
        if self.position is None:
            tps = [TopicPartition(self.log.topic, p) for p in range(len(self.log.partitions))]
            assert self.on_assign is not None
            self.on_assign(self, tps)
            assert self.position is not None
        out: list[FakeMessage] = []
        for p, values in enumerate(self.log.partitions):
            while self.position[p] < len(values) and len(out) < n:
                o = self.position[p]
                out.append(FakeMessage(self.log.topic, p, o, values[o]))
                self.position[p] = o + 1
        return out

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.log.committed[tp.partition] = tp.offset

    def close(self) -> None:
        self.closed = True
