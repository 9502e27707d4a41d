"""Throughput, latency and memory of a vigil worker through a real Kafka broker.

Everything runs against the local jar broker (or ``KAFKA_BOOTSTRAP_SERVERS``) on this
machine, and every speed is reported next to a baseline measured in the same run: a
bare confluent-kafka consume + orjson parse loop over the same topic.

Prints ONE JSON object:

* ``events_per_s``: one worker process, all detectors and the conformal policy on,
  10 models, 20 numeric + 3 categorical features per event;
* ``bare_consumer_events_per_s`` and ``ratio_vs_bare``;
* ``p50_latency_ms``, ``p99_latency_ms``: produce → escalation on the broker, at a
  fixed rate (5k events/s by default);
* ``rss_mb_start``, ``rss_mb_end``: worker RSS after warm-up and at the end of the
  long run (``--rss-events``, 5M in full mode);
* ``scale_2_workers``: throughput of 2 workers over 1 on 4 partitions (this machine
  has 2 cores shared with the broker and the producer, so do not expect 2).

``--quick`` finishes in about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.config import settings_from_dict
from streams.scrape import total
from streams.topics import create_topics
from streams.traffic import SyntheticModel
from tests.support import WorkerProcess, unique_topics

N_MODELS = 10
PARTITIONS = 4


def make_events(n_distinct: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Distinct event payloads (key, value) to cycle through; ids are rewritten per send."""
    models = [
        SyntheticModel(f"model-{i}", n_numeric=20, n_categorical=3, seed=seed + i)
        for i in range(N_MODELS)
    ]
    rng = random.Random(seed)
    out = []
    for _ in range(n_distinct):
        m = rng.choice(models)
        event, _ = m.event()
        out.append((m.model_id.encode(), orjson.dumps(event)))
    return out


def produce(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]], n: int) -> float:
    """Produce ``n`` events as fast as the client goes; returns seconds taken."""
    from confluent_kafka import Producer

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
        }
    )
    started = time.perf_counter()
    k = len(events)
    for i in range(n):
        key, value = events[i % k]
        # A unique event id per message: one replace of the id prefix the generator wrote.
        value = value.replace(b'"event_id":"', b'"event_id":"%d-' % i, 1)
        while True:
            try:
                p.produce(topic, value=value, key=key)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10000 == 0:
            p.poll(0)
    p.flush(120)
    return time.perf_counter() - started


def bare_consumer(bootstrap: str, topic: str, n: int) -> float:
    """events/s of a bare confluent-kafka consume + orjson.loads loop over ``n`` events."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bare-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    got = 0
    first = None
    loads = orjson.loads
    while got < n:
        batch = c.consume(1000, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()
        for msg in batch:
            if msg.error() is None:
                loads(msg.value())
                got += 1
    elapsed = time.perf_counter() - (first or time.perf_counter())
    c.close()
    return n / elapsed


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_config(topics: dict[str, str], app_id: str) -> dict[str, Any]:
    return {
        "app_id": app_id,
        "topics": {**topics, "partitions": PARTITIONS},
        "worker": {"batch_size": 1000, "checkpoint_interval_s": 5.0},
        "defaults": {
            "escalation": {"policy": "conformal", "target_error": 0.05},
            "drift": {"sensitivity": 1_000_000},
        },
    }


def processed(workers: list[WorkerProcess]) -> float:
    n = 0.0
    for w in workers:
        with contextlib.suppress(OSError):
            n += total(w.scrape(), "vigil_events_total", outcome="processed")
    return n


def caught_up(workers: list[WorkerProcess], topic: str) -> bool:
    """Every partition of ``topic`` reported by its owner with no lag left.

    Counters cannot say this with two workers: a worker drops the series of the models
    it gives up in a rebalance, so a sum over workers undercounts.
    """
    lag: dict[str, float] = {}
    for w in workers:
        with contextlib.suppress(OSError):
            for labels, value in w.scrape().get("vigil_consumer_lag", []):
                if labels.get("topic") == topic:
                    lag[labels["partition"]] = value
    return len(lag) == PARTITIONS and not any(lag.values())


def run_workers(
    bootstrap: str,
    topics: dict[str, str],
    n: int,
    n_workers: int,
    tmp: Path,
    tag: str,
    rss_every: float = 0.0,
) -> dict[str, Any]:
    """Start workers on an already filled topic; events/s from first to last processed."""
    app_id = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    workers = [
        WorkerProcess(bootstrap, worker_config(topics, app_id), tmp, name=f"{tag}-{i}").start()
        for i in range(n_workers)
    ]
    rss: list[float] = []
    try:
        first_t = None
        first_n = 0.0
        last_rss = 0.0
        deadline = time.monotonic() + max(300.0, n / 2000)
        while time.monotonic() < deadline:
            done = processed(workers)
            now = time.perf_counter()
            if first_t is None and done > 0:
                first_t, first_n = now, done
            if rss_every and time.monotonic() - last_rss > rss_every:
                last_rss = time.monotonic()
                rss.append(sum(rss_mb(w.proc.pid) for w in workers if w.proc))
            if first_t is not None and caught_up(workers, topics["inference"]):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{tag}: did not catch up; log:\n{workers[0].log_tail()}")
        end_t = time.perf_counter()
        rate = (n - first_n) / (end_t - first_t) if first_t else 0.0
        return {"events_per_s": rate, "rss": rss}
    finally:
        for w in workers:
            w.stop()


def latency(bootstrap: str, tmp: Path, rate: float, seconds: float) -> tuple[float, float]:
    """p50/p99 ms from produce to the escalation being on the broker, at a fixed rate."""
    from confluent_kafka import Consumer, Producer

    topics = unique_topics("lat")
    settings = settings_from_dict(
        {"kafka": {"bootstrap": bootstrap}, "topics": {**topics, "partitions": PARTITIONS}}
    )
    create_topics(settings)
    cfg = worker_config(topics, f"lat-{uuid.uuid4().hex[:6]}")
    # Every event escalates (confidence below the threshold), so every event is a sample.
    cfg["defaults"]["escalation"] = {"policy": "threshold", "min_confidence": 0.99}
    cfg["worker"]["batch_within_s"] = 0.01
    worker = WorkerProcess(bootstrap, cfg, tmp, name="latency").start()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics["escalations"]])
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 1, "partitioner": "murmur2_random"}
    )
    models = [
        SyntheticModel(f"lat-{i}", n_numeric=20, n_categorical=3, seed=i) for i in range(N_MODELS)
    ]
    sent: dict[str, float] = {}
    lat: list[float] = []
    try:
        # Warm up: the worker joins the group and the first batches pay for imports.
        started = time.perf_counter()
        i = 0
        interval = 1.0 / rate
        n_total = int(rate * seconds)
        while i < n_total:
            target = started + i * interval
            now = time.perf_counter()
            if now < target:
                time.sleep(min(target - now, 0.005))
                continue
            m = models[i % N_MODELS]
            event, _ = m.event(event_id=f"lat-{i}")
            sent[event["event_id"]] = time.time()
            producer.produce(
                topics["inference"], key=m.model_id.encode(), value=orjson.dumps(event)
            )
            producer.poll(0)
            i += 1
            if i % 500 == 0:
                _drain(consumer, sent, lat, 0)
        producer.flush(30)
        deadline = time.monotonic() + 30
        while len(lat) < n_total and time.monotonic() < deadline:
            _drain(consumer, sent, lat, 0.5)
    finally:
        consumer.close()
        worker.stop()
    # Discard the first second of samples (group join, warm-up).
    steady = lat[int(rate) :] if len(lat) > 2 * rate else lat
    steady.sort()
    if not steady:
        return float("nan"), float("nan")
    return steady[len(steady) // 2], steady[min(len(steady) - 1, int(len(steady) * 0.99))]


def _drain(consumer: Any, sent: dict[str, float], lat: list[float], timeout: float) -> None:
    for msg in consumer.consume(5000, timeout=timeout):
        if msg.error() is not None:
            continue
        esc = orjson.loads(msg.value())
        t0 = sent.pop(esc["event_id"], None)
        if t0 is not None:
            _, ts_ms = msg.timestamp()
            lat.append(ts_ms - t0 * 1000.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about a minute")
    ap.add_argument("--events", type=int, help="events for the throughput runs")
    ap.add_argument("--rss-events", type=int, help="events for the memory run")
    ap.add_argument("--rate", type=float, default=5000.0, help="latency run: events/s")
    args = ap.parse_args()
    n = args.events or (60_000 if args.quick else 500_000)
    n_rss = args.rss_events or (0 if args.quick else 5_000_000)
    lat_seconds = 8.0 if args.quick else 30.0

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        from streams.local_broker import LocalBroker

        broker = LocalBroker().start()
        bootstrap = broker.bootstrap
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "events": n}
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            topics = unique_topics("tp")
            settings = settings_from_dict(
                {"kafka": {"bootstrap": bootstrap}, "topics": {**topics, "partitions": PARTITIONS}}
            )
            create_topics(settings)
            events = make_events(20_000)
            result["event_bytes_mean"] = round(sum(len(v) for _, v in events) / len(events), 1)
            result["produce_seconds"] = round(produce(bootstrap, topics["inference"], events, n), 2)

            bare = bare_consumer(bootstrap, topics["inference"], n)
            one = run_workers(bootstrap, topics, n, 1, tmp, "one")
            two = run_workers(bootstrap, topics, n, 2, tmp, "two")
            result["bare_consumer_events_per_s"] = round(bare)
            result["events_per_s"] = round(one["events_per_s"])
            result["ratio_vs_bare"] = round(one["events_per_s"] / bare, 4)
            result["two_workers_events_per_s"] = round(two["events_per_s"])
            result["scale_2_workers"] = round(two["events_per_s"] / one["events_per_s"], 3)

            p50, p99 = latency(bootstrap, tmp, args.rate, lat_seconds)
            result["latency_rate_per_s"] = args.rate
            result["p50_latency_ms"] = round(p50, 2)
            result["p99_latency_ms"] = round(p99, 2)

            if n_rss:
                topics_rss = unique_topics("rss")
                create_topics(
                    settings_from_dict(
                        {
                            "kafka": {"bootstrap": bootstrap},
                            "topics": {**topics_rss, "partitions": PARTITIONS},
                        }
                    )
                )
                produce(bootstrap, topics_rss["inference"], events, n_rss)
                mem = run_workers(bootstrap, topics_rss, n_rss, 1, tmp, "rss", rss_every=2.0)
                samples = mem["rss"]
                # "start" is after warm-up: the first 10 % of the run builds the reference
                # windows, buffers and label joins that then stay the same size.
                start_idx = max(1, len(samples) // 10)
                result["rss_events"] = n_rss
                result["rss_mb_start"] = round(samples[start_idx], 1)
                result["rss_mb_end"] = round(samples[-1], 1)
                result["rss_mb_max"] = round(max(samples), 1)
                result["rss_events_per_s"] = round(mem["events_per_s"])
    finally:
        if broker is not None:
            broker.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
