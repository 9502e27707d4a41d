"""Scaling from 2 to 3 workers under steady load: what the partitions that stay see; prints
ONE JSON.

A local broker (its own, unless ``KAFKA_BOOTSTRAP_SERVERS`` is set) and real ``vigil
worker`` processes (batch driver, static membership). 12 models on 6 partitions (two per
partition, keyed by model id with murmur2 as vigil's publisher does; 20 numeric + 3
categorical features), every event escalated, so each event's latency from its send to
its escalation on the broker is a sample. Workers ``a`` and ``b``
process a steady ``--rate``; once they keep up, a ``before`` window of events is
measured, then worker ``c`` is started and the events sent from that moment for
``--after`` seconds are measured, split by whether their partition changed owner.

* ``partitions_moved``: the partitions ``c`` was assigned; ``models_restored``: the
  model checkpoints ``c`` restored for them (two per partition); ``revoked_elsewhere``:
  partitions ``a`` or ``b`` gave up that did not go to ``c`` (none when only what
  changes owner moves).
* ``before_*_ms``: p50 / p99 / max latency before the join (the baseline, this run);
  ``stayed_*_ms`` and ``moved_*_ms``: the same for the events sent during the join's
  window on partitions that stayed and on those that moved; ``stayed_max_over_before_p99``:
  the worst stayed event against the baseline's p99 (an eager rebalance, which stops
  every partition for the join, shows there).
* ``received_share``: measured events whose escalation arrived within 30 s of the end.

``python benchmarks/scaling.py [--quick] [--rate 2000] [--after 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput import unique_id, wait_turn

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.kafka.topics import create_topics
from tests.support import WorkerProcess, unique_topics

PARTITIONS = 6
MODELS_PER_PARTITION = 2
BEFORE_S = 10.0
#: After the first steady state, before the ``before`` window: each model's first
#: references are learned in its first 1,000 events (~6 s at 2,000 events/s), stalls
#: the join has nothing to do with.
WARM_S = 20.0
#: Waiting for the first steady state (the workers join and learn their references).
STEADY_TIMEOUT_S = 180.0


def place_models(bootstrap: str, topic: str) -> list[tuple[int, str]]:
    """(partition, model id) for :data:`MODELS_PER_PARTITION` models per partition, keyed
    as vigil's publisher keys them (murmur2 of the model id): one probe message per
    candidate id, sent to ``topic`` (a scratch topic with the inference topic's count),
    tells where its key goes."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    where: dict[str, int] = {}
    for n in range(40 * PARTITIONS):
        model_id = f"model-{n}"
        producer.produce(
            topic,
            key=model_id.encode(),
            value=b"",
            on_delivery=lambda err, msg, m=model_id: where.__setitem__(m, msg.partition()),
        )
    assert producer.flush(30) == 0
    placed: list[tuple[int, str]] = []
    for p in range(PARTITIONS):
        ids = sorted((m for m, q in where.items() if q == p), key=lambda m: int(m[6:]))
        placed += [(p, m) for m in ids[:MODELS_PER_PARTITION]]
    return placed


def payloads(placed: list[tuple[int, str]], per_model: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) per event, the models taking turns. Only events the
    threshold escalates (confidence under 0.99), so every event sent is a sample."""
    models = [
        (p, SyntheticModel(model_id, n_numeric=20, n_categorical=3, seed=70 + i))
        for i, (p, model_id) in enumerate(placed)
    ]
    out = []
    for _ in range(per_model):
        for p, m in models:
            event, _ = m.event()
            while event["prediction"]["scores"][event["prediction"]["label"]] >= 0.99:
                event, _ = m.event()
            out.append((p, m.model_id.encode(), orjson.dumps(event)))
    return out


def parts_of(pattern: str, text: str) -> list[set[int]]:
    return [{int(p) for p in f.split(",") if p.strip()} for f in re.findall(pattern, text)]


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    v = sorted(values)
    return {
        "p50": round(v[len(v) // 2], 2),
        "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 2),
        "max": round(v[-1], 2),
    }


def run(bootstrap: str, tmp: Path, rate: float, after_s: float) -> dict[str, Any]:
    from confluent_kafka import Consumer, Producer

    topics = unique_topics("scale")
    scratch = unique_topics("scale-probe")
    for t in (topics, scratch):
        create_topics(
            settings_from_dict(
                {"kafka": {"bootstrap": bootstrap}, "topics": {**t, "partitions": PARTITIONS}}
            )
        )
    app_id = f"scale-{uuid.uuid4().hex[:6]}"

    def worker(name: str) -> WorkerProcess:
        cfg = {
            "app_id": app_id,
            "topics": {**topics, "partitions": PARTITIONS},
            "worker": {
                "instance_id": f"{app_id}-{name}",
                "batch_within_s": 0.01,
                "checkpoint_interval_s": 5.0,
            },
            "defaults": {"escalation": {"policy": "threshold", "min_confidence": 0.99}},
        }
        return WorkerProcess(bootstrap, cfg, tmp, name=name)

    a, b, c = worker("a").start(), worker("b").start(), worker("c")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{app_id}-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics["escalations"]])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    placed = place_models(bootstrap, scratch["inference"])
    events = payloads(placed, 2_000)
    sent: dict[int, tuple[float, int]] = {}  # index -> (send time, partition)
    lat: dict[int, tuple[float, int, float]] = {}  # index -> (ms, partition, send time)
    joiner = threading.Thread(target=c.start, name="start-c")

    def drain(timeout: float) -> None:
        for msg in consumer.consume(5000, timeout=timeout):
            if msg.error() is not None:
                continue
            i = int(orjson.loads(msg.value())["event_id"].split("-", 1)[0])
            if i in sent:
                t0, p = sent.pop(i)
                lat[i] = (msg.timestamp()[1] - t0 * 1000.0, p, t0)
                newest[0] = max(newest[0], i)

    newest = [-1]  # the largest index escalated so far
    marks: list[int] = []  # a's and b's log sizes when c was started
    join_time = 0.0
    during: list[str] = []
    backlog_end: int | None = None
    before: range | None = None
    join_at: int | None = None  # index of the first event sent once c was started
    stop_at: int | None = None
    try:
        started = time.perf_counter()
        interval = 1.0 / rate
        i = 0
        while stop_at is None or i < stop_at:
            if before is None:
                if backlog_end is None and lat:
                    backlog_end = i
                if backlog_end is not None and newest[0] >= backlog_end:
                    first = i + int(rate * WARM_S)
                    before = range(first, first + int(rate * BEFORE_S))
                elif time.perf_counter() - started > STEADY_TIMEOUT_S:
                    raise RuntimeError("no steady state:\n" + a.log_tail() + b.log_tail())
            elif join_at is None and i >= before.stop:
                join_time = time.time()
                marks = [w.log_path.stat().st_size for w in (a, b)]
                joiner.start()
                join_at = i
                stop_at = i + int(rate * after_s)
            if wait_turn(started + i * interval):
                continue
            p, key, value = events[i % len(events)]
            value = unique_id(value, i)
            sent[i] = (time.time(), p)
            producer.produce(topics["inference"], key=key, value=value)
            producer.poll(0)
            i += 1
            if i % 200 == 0:
                drain(0)
        producer.flush(30)
        deadline = time.monotonic() + 30
        while sent and time.monotonic() < deadline:
            drain(0.5)
        joiner.join(60)
        # What a and b logged from c's start to now (before their own stop revokes).
        during = [
            w.log_path.read_bytes()[mark:].decode(errors="replace")
            for w, mark in zip((a, b), marks, strict=True)
        ]
    finally:
        consumer.close()
        codes = [w.stop() for w in (a, b, c)]
    assert before is not None and join_at is not None and stop_at is not None
    c_log = c.log_path.read_text(errors="replace")
    moved = set().union(*parts_of(r"assignment: partitions \[([0-9, ]*)\]", c_log))
    restored = sum(int(n) for n in re.findall(r"restored (\d+) model checkpoints", c_log))
    revoked = {
        p
        for text in during
        for parts in parts_of(r"revoked partitions \[([0-9, ]*)\]: checkpointed", text)
        for p in parts
    }
    window = range(join_at, stop_at)
    stayed = [ms for k, (ms, p, _) in lat.items() if k in window and p not in moved]
    moved_lat = [ms for k, (ms, p, _) in lat.items() if k in window and p in moved]
    base = [ms for k, (ms, _, _) in lat.items() if k in before]

    def worst_at(wanted: bool) -> float | None:
        """When the worst event of the window was sent, in seconds after c's start."""
        found = [
            (ms, t0) for k, (ms, p, t0) in lat.items() if k in window and (p in moved) is wanted
        ]
        return round(max(found)[1] - join_time, 2) if found else None

    b_stats, s_stats, m_stats = stats(base), stats(stayed), stats(moved_lat)
    measured = len(before) + len(window)
    return {
        "rate": rate,
        "partitions": PARTITIONS,
        "partitions_moved": sorted(moved),
        "models_restored": restored,
        "revoked_elsewhere": sorted(revoked - moved),
        "before_events": len(base),
        "before_p50_ms": b_stats["p50"],
        "before_p99_ms": b_stats["p99"],
        "before_max_ms": b_stats["max"],
        "stayed_events": len(stayed),
        "stayed_p50_ms": s_stats["p50"],
        "stayed_p99_ms": s_stats["p99"],
        "stayed_max_ms": s_stats["max"],
        "moved_events": len(moved_lat),
        "moved_p50_ms": m_stats["p50"],
        "moved_p99_ms": m_stats["p99"],
        "moved_max_ms": m_stats["max"],
        "stayed_max_at_s": worst_at(False),
        "moved_max_at_s": worst_at(True),
        "stayed_max_over_before_p99": (
            round(s_stats["max"] / b_stats["p99"], 2)
            if s_stats["max"] is not None and b_stats["p99"]
            else None
        ),
        "received_share": round((len(base) + len(stayed) + len(moved_lat)) / measured, 4),
        "worker_exit_codes": codes,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 10 s window after the join")
    ap.add_argument("--rate", type=float, default=2000.0, help="events/s")
    ap.add_argument("--after", type=float, help="seconds measured from the join (default 20)")
    args = ap.parse_args()
    after_s = args.after or (10.0 if args.quick else 20.0)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    with tempfile.TemporaryDirectory() as tmp:
        if bootstrap:
            result = run(bootstrap, Path(tmp), args.rate, after_s)
        else:
            from streams.dev.local_broker import LocalBroker

            with LocalBroker() as broker:
                result = run(broker.bootstrap, Path(tmp), args.rate, after_s)
    print(json.dumps({"mode": "quick" if args.quick else "full", **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
