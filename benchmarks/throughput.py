"""Throughput, latency and memory of a vigil worker through a real Kafka broker.

Everything runs against the local jar broker (or ``KAFKA_BOOTSTRAP_SERVERS``) on this
machine, and every speed is reported next to a baseline measured in the same run: a
bare confluent-kafka consume + orjson parse loop over the same topic.

Prints ONE JSON object:

* ``events_per_s``: one worker process, all detectors and the conformal policy on,
  10 models, 20 numeric + 3 categorical features per event;
* ``bare_consumer_events_per_s`` and ``ratio_vs_bare``;
* ``p50_latency_ms``, ``p99_latency_ms``: produce → escalation on the broker, at a
  fixed rate (``--rate``, 5k events/s by default); ``latency_rate_achieved``: the rate
  the producer kept over the measured events;
* ``latency_20k_p50_ms``, ``latency_20k_p99_ms``, ``latency_20k_rate_achieved``: the
  same at ``--rate-high`` (20k events/s by default; 0 skips it). On this 2-core machine
  the producer shares the cores with the worker and the broker: when it falls behind,
  it sends the late events at once (``latency_20k_rate_achieved`` then falls short of
  the rate asked). If the worker never works off what queued while it joined,
  ``latency_20k_steady`` is false and the percentiles are null. ``latency_received_share``
  and ``latency_20k_received_share``: the share of the measured events whose escalation
  arrived within 30 s of the last send (the percentiles are of those; null if none). The
  events escalate when their confidence is below 0.99, ~86 % of them: ~0.86 is all of
  them arriving;
* ``conformal_p50_latency_ms``, ``conformal_p99_latency_ms``,
  ``conformal_latency_rate_achieved``, ``conformal_latency_received_share`` (and
  ``latency_20k_conformal_*`` at ``--rate-high``): the same, with the events the worker
  escalates at the throughput runs' settings (the conformal policy, its audit sample and
  its data reasons: ~14 % of them), the configuration issue 18's targets name; the keys
  above are the ``most`` workload's, ~86 % of events escalated by a 0.99 threshold, as on
  record since issue 18's first session. Either way the escalated events sample the
  stream's latency: whether an event escalates follows its values and the monitors'
  state, not the moment it arrives (``--latency-escalation most|conformal|both``,
  default both, picks the workloads run);
* ``latency_worker_events_per_s`` and ``latency_worker_cores`` (``conformal_*`` and
  ``latency_20k_*`` alike): over each run's measured window, the events per second the
  worker got through (the measured events from the first escalated to the last, over
  the time between their escalations: the rate sent by a worker that keeps up, what it
  can do by one that falls behind) and its CPU seconds per second (all its threads: ~1
  is a worker whose processing thread is never idle);
* ``relay_p50_latency_ms``, ``relay_p99_latency_ms``, ``relay_received_share`` (and
  ``latency_20k_relay_p50_ms``, ``latency_20k_relay_p99_ms`` at ``--rate-high``): the
  latency baseline, measured in the same run exactly as the worker is: a bare relay
  (``benchmarks/baselines/bare_relay.py``: the worker's consumer and producer settings
  and batching, ``orjson.loads``, the same threshold, the event's bytes produced as its
  escalation). What the broker, the clients and this machine's two cores cost before
  any of vigil's work; the worker's figures above it are vigil's. The relay's received
  share is ~0.855, the events below the threshold; the worker's ~0.863 has its other
  escalations besides (out-of-range values, ~0.45 % of events; its audit sample, ~0.35 %).
  ``relay_cores``, ``latency_20k_relay_cores`` and ``latency_20k_relay_events_per_s``: as
  the worker's above;
* ``rss_mb_start``, ``rss_mb_end``: worker RSS after warm-up and at the end of the
  long run (``--rss-events``, 5M in full mode). Warm-up ends at the first RSS reading
  after the first 10 % of the run at which every model's bounded state is full
  (:func:`caps_full`: as many events processed as ``labels.max_pending``, pending
  predictions, and as many escalations sent as ``review.max_open``, remembered
  escalations); ``rss_start_events`` is the count processed then. The escalations fill
  last: ~10k per model at ~13 % of events escalated here, 0.8-1.4M events into the run
  (the partitions drain unevenly), so the ratio of RSS to the reading at 10 % measured
  the review desks filling to their cap, not growth with the stream's length;
  ``rss_mb_at_10pct`` is that reading, kept for comparison with the runs on record.
  Without such a reading (``rss_start_rule`` ``"10pct"``) the start is at 10 %;
* ``scale_2_workers``: throughput of 2 workers over 1 on 4 partitions (this machine
  has 2 cores shared with the broker and the producer, so do not expect 2).

``--quick`` runs short versions of each part (its latency part alone ~4 minutes: six
runs); ``--only throughput|latency|memory`` runs one part (the JSON then holds only its
keys).

The measurement must not slow down what it measures: the workers' ``/metrics`` are
scraped once per poll, every ``POLL_S`` (``generate_latest`` holds the worker's GIL for
~20 ms), and throughput comes from the counter readings themselves, not from when
the poll happened to notice the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.baselines import bare_relay
from streams.config import settings_from_dict
from streams.dev.scrape import Samples, total
from streams.dev.traffic import SyntheticModel
from streams.kafka.topics import create_topics
from tests.support import WorkerProcess, unique_topics

N_MODELS = 10
PARTITIONS = 4
#: Seconds between scrapes of the workers' /metrics while measuring throughput. Prometheus
#: scrapes every 15 s (deploy/prometheus); at 0.5 s the benchmark's own scrapes took ~9 %
#: of the worker's time (py-spy, issue 18): 2 s keeps that near 2 % and still gives a
#: reading every ~12k events of a run (the rate comes from the counters, not the poll).
POLL_S = 2.0
#: The latency baseline's script, run as a worker is.
BARE_RELAY = Path(bare_relay.__file__)
#: The bare consumer is timed over at least this many events in all (several passes
#: over the topic, median taken): one pass over 60k events lasted ~0.3 s and varied 3x.
BARE_MIN_EVENTS = 300_000
#: The latency runs' load generator sleeps at least this long between sends: the events
#: that came due meanwhile go out together (at 20k events/s, ~20 a tick). A sleep until
#: each event's own time was a wake-up per event: the generator then took ~0.42 of a core
#: at 20k events/s, ~0.2 in ticks (issue 18, thirty-third session), CPU the worker
#: measured beside it lost on two cores. Each latency still runs from the event's own
#: send, and the producer batches what it sends over 5 ms (``linger.ms``) either way.
TICK_S = 0.001


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


def unique_id(value: bytes, n: int) -> bytes:
    """``value`` with ``n`` put in front of its ``event_id``: a unique id per message,
    one replace of the id prefix the generator wrote (~0.3 µs)."""
    return value.replace(b'"event_id":"', b'"event_id":"%d-' % n, 1)


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
        value = unique_id(value, i)
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
    """Median events/s of passes of :func:`bare_pass` (at least 3, each with a fresh
    consumer group, and at least :data:`BARE_MIN_EVENTS` events in all)."""
    passes = max(3, math.ceil(BARE_MIN_EVENTS / n))
    return statistics.median(bare_pass(bootstrap, topic, n) for _ in range(passes))


def bare_pass(bootstrap: str, topic: str, n: int) -> float:
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


def wait_turn(due: float) -> bool:
    """A paced load generator's wait for an event due at ``due`` (``time.perf_counter``):
    if it is not due yet, sleep towards it (at least :data:`TICK_S`, at most 5 ms) and
    return True (ask again); False once it is due (send it)."""
    ahead = due - time.perf_counter()
    if ahead <= 0:
        return False
    time.sleep(min(max(ahead, TICK_S), 0.005))
    return True


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system, all its threads) process ``pid`` has used so far;
    NaN once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # after the command, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def got_through(arrivals: list[tuple[int, float]]) -> float | None:
    """Events per second a worker got through, from ``(event index, arrival time in
    ms)`` of the escalations of a window's events: the events between the first and the
    last index that escalated, over the time between their escalations' arrivals. A
    worker that keeps up gets through the rate sent; one that falls behind, what it
    can do. None from fewer than two arrivals, or none apart.

    >>> got_through([(0, 1000.0), (2500, 1500.0), (5000, 2000.0)])
    5000.0
    >>> got_through([(0, 1000.0), (20000, 3000.0)])  # 20k sent in 1 s, took 2 s
    10000.0
    >>> got_through([(7, 1000.0)]) is None
    True
    """
    if len(arrivals) < 2:
        return None
    first, last = min(arrivals), max(arrivals)
    span_s = (last[1] - first[1]) / 1000.0
    return (last[0] - first[0]) / span_s if span_s > 0 else None


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


#: The latency runs' workloads (``--latency-escalation``), by which events escalate:
#: ``most``, those below a 0.99 confidence threshold (~86 %: a worker's output path, the
#: escalation record, the review desk and the produce, on nearly every event; the relay
#: baseline's workload); ``conformal``, what the worker's conformal policy, its audit
#: sample and its data reasons escalate at the throughput runs' settings (~14 %), the
#: configuration issue 18's targets name.
LATENCY_ESCALATIONS = ("most", "conformal")


def latency_config(topics: dict[str, str], app_id: str, escalation: str) -> dict[str, Any]:
    """A latency run's worker config: the throughput runs' (:func:`worker_config`) with
    batches cut at 10 ms, and for ``escalation="most"`` the 0.99 threshold policy
    instead of the conformal one (see :data:`LATENCY_ESCALATIONS`).

    >>> most = latency_config({}, "a", "most")["defaults"]["escalation"]
    >>> conformal = latency_config({}, "a", "conformal")["defaults"]["escalation"]
    >>> most["policy"], conformal == worker_config({}, "a")["defaults"]["escalation"]
    ('threshold', True)
    >>> latency_config({}, "a", "all")
    Traceback (most recent call last):
    ...
    ValueError: escalation must be one of ('most', 'conformal'); got 'all'
    """
    if escalation not in LATENCY_ESCALATIONS:
        raise ValueError(f"escalation must be one of {LATENCY_ESCALATIONS}; got {escalation!r}")
    cfg = worker_config(topics, app_id)
    if escalation == "most":
        # An event escalates when its confidence is below 0.99: ~86 % of these events
        # (the rest are confident and escalate never; latency_received_share is that share).
        cfg["defaults"]["escalation"] = {"policy": "threshold", "min_confidence": 0.99}
    cfg["worker"]["batch_within_s"] = 0.01
    return cfg


def poll_workers(workers: list[WorkerProcess], topic: str) -> tuple[float, bool, list[Samples]]:
    """(events processed, caught up, the scrapes) from ONE scrape of each worker.

    Caught up: every partition of ``topic`` reported by its owner with no lag left.
    Counters cannot say this with two workers: a worker drops the series of the models
    it gives up in a rebalance, so a sum over workers undercounts.
    """
    n = 0.0
    lag: dict[str, float] = {}
    scraped: list[Samples] = []
    for w in workers:
        with contextlib.suppress(OSError):
            samples = w.scrape()
            scraped.append(samples)
            n += total(samples, "vigil_events_total", outcome="processed")
            for labels, value in samples.get("vigil_consumer_lag", []):
                if labels.get("topic") == topic:
                    lag[labels["partition"]] = value
    return n, len(lag) == PARTITIONS and not any(lag.values()), scraped


def caps_full(samples: Samples, max_pending: int, max_open: int) -> bool:
    """Whether every model's bounded state has reached its cap, by one worker's counters:
    at least ``max_pending`` events processed (its label join then holds ``max_pending``
    pending predictions: no labels come in this benchmark) and ``max_open`` escalations
    sent for review (its review desk then remembers ``max_open``: the gold questions
    mixed in are not remembered, the suppressed are not sent).

    >>> s = {"vigil_events_total": [({"model": f"model-{i}", "outcome": "processed"}, 50.0)
    ...                             for i in range(N_MODELS)],
    ...      "vigil_escalations_total": [({"model": f"model-{i}", "reason": r}, 5.0)
    ...                                  for i in range(N_MODELS) for r in ("audit", "gold")]}
    >>> caps_full(s, 50, 5), caps_full(s, 50, 6), caps_full(s, 51, 5)
    (True, False, False)
    """
    for i in range(N_MODELS):
        model = f"model-{i}"
        processed = total(samples, "vigil_events_total", model=model, outcome="processed")
        sent = total(samples, "vigil_escalations_total", model=model) - total(
            samples, "vigil_escalations_total", model=model, reason="gold"
        )
        if processed < max_pending or sent < max_open:
            return False
    return True


def rate_of(readings: list[tuple[float, float]], n: int) -> float:
    """events/s from (time, processed) readings taken while a backlog of ``n`` drained.

    The slope between the first reading that saw any progress and the last one before
    the end, so the poll interval does not blur either end. If a counter went down on
    the way (two workers: a rebalance drops series), from the first reading to the
    moment the backlog is estimated to have run out at the last rate seen instead.
    """
    # Readings at the final count came after the end, by up to a poll interval.
    final = max(done for _, done in readings)
    busy = [(t, done) for t, done in readings if 0 < done < final]
    if len(busy) < 2:
        raise RuntimeError(f"too few readings to measure a rate: {readings}")
    (t0, d0), (t1, d1) = busy[0], busy[-1]
    if all(b[1] >= a[1] for a, b in pairwise(busy)):
        return (d1 - d0) / (t1 - t0)
    t_prev, d_prev = busy[-2]
    recent = (d1 - d_prev) / (t1 - t_prev) if d1 > d_prev else (d1 - d0) / (t1 - t0)
    return (n - d0) / (t1 - t0 + max(0.0, n - d1) / recent)


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
    rss: list[tuple[float, float, bool]] = []  # (MB, events processed, caps_full)
    readings: list[tuple[float, float]] = []
    caps = settings_from_dict(worker_config(topics, app_id)).defaults
    try:
        last_rss = 0.0
        deadline = time.monotonic() + max(300.0, n / 2000)
        while time.monotonic() < deadline:
            asked = time.perf_counter()
            done, caught, scraped = poll_workers(workers, topics["inference"])
            # The counters were read somewhere during the scrape: take its middle.
            readings.append(((asked + time.perf_counter()) / 2, done))
            if rss_every and time.monotonic() - last_rss > rss_every:
                last_rss = time.monotonic()
                full = len(scraped) == 1 and caps_full(
                    scraped[0], caps.labels.max_pending, caps.review.max_open
                )
                rss.append((sum(rss_mb(w.proc.pid) for w in workers if w.proc), done, full))
            # Caught up: every partition reported with no lag. A full count also ends
            # the run (with one worker; two drop series in a rebalance).
            if done > 0 and (caught or done >= n):
                break
            time.sleep(POLL_S)
        else:
            raise RuntimeError(f"{tag}: did not catch up; log:\n{workers[0].log_tail()}")
        return {"events_per_s": rate_of(readings, n), "rss": rss}
    finally:
        for w in workers:
            w.stop()


def first_tenth(samples: list[tuple[float, float, bool]]) -> int:
    """Index of the memory run's reading at 10 % (at least the second reading)."""
    return max(1, len(samples) // 10)


def warm_start(samples: list[tuple[float, float, bool]]) -> tuple[int, str]:
    """Where the memory run's warm-up ends among its ``(MB, events, caps full)`` readings,
    and by which rule: the first reading after the first 10 % (which builds the
    reference windows and buffers) with every model's bounded state full
    (:func:`caps_full`), ``"caps_full"``; else the reading at 10 %, ``"10pct"``.

    >>> warm_start([(1.0, 0, False)] * 11 + [(3.0, 10, True)] * 9)
    (11, 'caps_full')
    >>> warm_start([(1.0, 0, True)] + [(2.0, 9, False)] * 19)
    (2, '10pct')
    """
    tenth = first_tenth(samples)
    for i in range(tenth, len(samples)):
        if samples[i][2]:
            return i, "caps_full"
    return tenth, "10pct"


class NoSteadyState(RuntimeError):
    """The worker never worked off the events that queued while it joined."""


class RelayProcess(WorkerProcess):
    """The latency baseline (``benchmarks/baselines/bare_relay.py``) in a worker's place:
    the same config file, the same threshold, started and stopped alike."""

    def command(self) -> list[str]:
        escalation = yaml.safe_load(self.config_path.read_text())["defaults"]["escalation"]
        return [
            sys.executable,
            str(BARE_RELAY),
            "--config",
            str(self.config_path),
            "--min-confidence",
            str(escalation["min_confidence"]),
        ]

    def ready(self) -> bool:
        return bare_relay.READY in self.log_tail()


def latency(
    bootstrap: str,
    tmp: Path,
    rate: float,
    seconds: float,
    process: type[WorkerProcess] = WorkerProcess,
    escalation: str = "most",
) -> dict[str, float]:
    """p50/p99 ms from produce to the escalation being on the broker, at a fixed rate;
    ``process``: what escalates (a worker, or :class:`RelayProcess`); ``escalation``:
    which events escalate (:func:`latency_config`).

    Events are sent at ``rate`` from the start, while the worker joins its group. The
    warm-up lasts until the worker has worked off what queued meanwhile (the escalation
    of an event sent when the first escalation arrived has arrived), plus a second;
    the next ``seconds`` of events are measured. Returns ``p50``, ``p99``,
    ``rate_achieved`` (events/s the producer kept from the first measured send to the
    last), ``received`` (the share of measured events whose escalation arrived),
    ``got_through`` (events/s the worker got through, :func:`got_through` of the
    measured events; NaN without two escalations) and ``cores`` (the worker's CPU
    seconds per second from the first measured send to the last: ~1 is a worker whose
    Python thread is never idle); raises :class:`NoSteadyState` after 120 s without one.
    """
    from confluent_kafka import Consumer, Producer

    topics = unique_topics("lat")
    settings = settings_from_dict(
        {"kafka": {"bootstrap": bootstrap}, "topics": {**topics, "partitions": PARTITIONS}}
    )
    create_topics(settings)
    cfg = latency_config(topics, f"lat-{uuid.uuid4().hex[:6]}", escalation)
    worker = process(bootstrap, cfg, tmp, name="latency").start()
    pid = worker.proc.pid if worker.proc is not None else -1  # started: it has one
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"lat-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics["escalations"]])
    producer = Producer(
        # As an inference service publishes (streams.client.InferencePublisher, and
        # librdkafka's default): 5 ms batches. At 1 ms the producer's ~4k requests/s
        # alone overloaded the broker on this 2-core machine (p50 0.15-2 s, all of it
        # before the worker read the event).
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    # Payloads built beforehand: generating an event costs ~30 µs of Python, CPU the
    # worker measured here would otherwise lose to the load generator on two cores.
    payloads = make_events(20_000, seed=11)
    k = len(payloads)
    sent: dict[int, float] = {}  # event index -> send time
    lat: list[tuple[int, float, float]] = []  # (event index, ms, arrival ms)
    backlog_end: int | None = None  # events before it queued while the worker joined
    measured: range | None = None
    ends: list[float] = []  # send times of the first and the last measured event
    cpu: list[float] = []  # the worker's CPU seconds at those sends
    try:
        started = time.perf_counter()
        i = 0
        interval = 1.0 / rate
        while measured is None or i < measured.stop:
            if measured is None:
                if backlog_end is None and lat:
                    backlog_end = i
                if backlog_end is not None and lat[-1][0] >= backlog_end:
                    first = i + int(rate)
                    measured = range(first, first + int(rate * seconds))
                elif time.perf_counter() - started > 120:
                    raise NoSteadyState(f"latency: no steady state; log:\n{worker.log_tail()}")
            if wait_turn(started + i * interval):
                continue
            key, value = payloads[i % k]
            # The event id starts with the event's index: "<i>-<generated id>".
            value = unique_id(value, i)
            sent[i] = time.time()
            if measured is not None and i in (measured.start, measured.stop - 1):
                ends.append(time.perf_counter())
                cpu.append(cpu_seconds(pid))
            producer.produce(topics["inference"], key=key, value=value)
            producer.poll(0)
            i += 1
            if i % 500 == 0:
                _drain(consumer, sent, lat, 0)
        producer.flush(30)
        deadline = time.monotonic() + 30
        while sent and time.monotonic() < deadline:
            _drain(consumer, sent, lat, 0.5)
    finally:
        consumer.close()
        worker.stop()
    window = [(k, ms, at) for k, ms, at in lat if measured is not None and k in measured]
    steady = sorted(ms for _, ms, _ in window)
    sending = ends[1] - ends[0] if len(ends) == 2 else 0.0
    achieved = (len(measured) - 1) / sending if measured and sending else 0
    received = len(steady) / len(measured) if measured else 0.0
    through = got_through([(k, at) for k, _, at in window])
    figures = {
        "rate_achieved": achieved,
        "received": received,
        "got_through": float("nan") if through is None else through,
        "cores": (cpu[1] - cpu[0]) / sending if len(cpu) == 2 and sending else float("nan"),
    }
    if not steady:
        return {"p50": float("nan"), "p99": float("nan"), **figures}
    return {
        "p50": steady[len(steady) // 2],
        "p99": steady[min(len(steady) - 1, int(len(steady) * 0.99))],
        **figures,
    }


def latency_figures(
    bootstrap: str, tmp: Path, rate: float, rate_high: float, seconds: float, escalation: str
) -> dict[str, Any]:
    """The worker's latency keys of one workload (:data:`LATENCY_ESCALATIONS`): at
    ``rate`` and, unless 0, ``rate_high``; the ``conformal`` workload's keys carry its
    name (``conformal_p99_latency_ms``, ``latency_20k_conformal_p99_ms``, ...), the
    ``most`` workload's are the keys on record since the first session of issue 18."""
    tag = "" if escalation == "most" else f"{escalation}_"
    low = run_figures(latency(bootstrap, tmp, rate, seconds, escalation=escalation))
    # At ``rate`` the keys on record name the percentiles p50_latency_ms and the rest
    # latency_<figure>; at ``rate_high``, latency_20k_<figure> throughout.
    out: dict[str, Any] = {
        f"{tag}{name.removesuffix('_ms')}_latency_ms"
        if name.endswith("_ms")
        else f"{tag}latency_{name}": value
        for name, value in low.items()
    }
    if rate_high:
        high_key = f"latency_20k_{tag}"
        try:
            high = run_figures(latency(bootstrap, tmp, rate_high, seconds, escalation=escalation))
        except NoSteadyState:
            out[f"{high_key}steady"] = False
            out[f"{high_key}p50_ms"] = out[f"{high_key}p99_ms"] = None
        else:
            out[f"{high_key}steady"] = True
            out |= {f"{high_key}{name}": value for name, value in high.items()}
    return out


def run_figures(lat: dict[str, float]) -> dict[str, Any]:
    """One latency run's figures for the JSON (:func:`latency`'s, rounded; null for
    NaN), by the names they take after a rate's prefix.

    >>> run_figures({"p50": 5.004, "p99": float("nan"), "rate_achieved": 4999.7,
    ...              "received": 0.13811, "got_through": 4998.2, "cores": 0.634})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'p50_ms': 5.0, 'p99_ms': None, 'rate_achieved': 5000, 'received_share': 0.1381,
     'worker_events_per_s': 4998, 'worker_cores': 0.63}
    """
    return {
        "p50_ms": ms(lat["p50"]),
        "p99_ms": ms(lat["p99"]),
        "rate_achieved": round(lat["rate_achieved"]),
        "received_share": round(lat["received"], 4),
        "worker_events_per_s": rounded(lat["got_through"]),
        "worker_cores": rounded(lat["cores"], 2),
    }


def rounded(value: float, ndigits: int | None = None) -> float | int | None:
    """``round(value, ndigits)`` for the JSON, or None (null) for NaN or an infinity."""
    return round(value, ndigits) if math.isfinite(value) else None


def ms(value: float) -> float | None:
    """A latency for the JSON: rounded, or None (null) when none was measured (NaN)."""
    return rounded(value, 2)


def _drain(
    consumer: Any,
    sent: dict[int, float],
    lat: list[tuple[int, float, float]],
    timeout: float,
) -> None:
    """Each escalation's ``(event index, latency ms, arrival ms)`` into ``lat``: its
    arrival is its record's timestamp, the time the worker produced it (CreateTime)."""
    for msg in consumer.consume(5000, timeout=timeout):
        if msg.error() is not None:
            continue
        esc = orjson.loads(msg.value())
        i = int(esc["event_id"].split("-", 1)[0])
        t0 = sent.pop(i, None)
        if t0 is not None:
            _, ts_ms = msg.timestamp()
            lat.append((i, ts_ms - t0 * 1000.0, float(ts_ms)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs: a few minutes")
    ap.add_argument("--events", type=int, help="events for the throughput runs")
    ap.add_argument("--rss-events", type=int, help="events for the memory run")
    ap.add_argument("--rate", type=float, default=5000.0, help="latency run: events/s")
    ap.add_argument(
        "--rate-high",
        type=float,
        default=20000.0,
        help="second latency run: events/s (0: none)",
    )
    ap.add_argument(
        "--latency-escalation",
        choices=(*LATENCY_ESCALATIONS, "both"),
        default="both",
        help="latency runs' workload: which events escalate (default both, in turn)",
    )
    ap.add_argument("--only", choices=("throughput", "latency", "memory"), help="run one part only")
    args = ap.parse_args()
    workloads = (
        LATENCY_ESCALATIONS if args.latency_escalation == "both" else (args.latency_escalation,)
    )
    parts = {args.only} if args.only else {"throughput", "latency", "memory"}
    n = args.events or (60_000 if args.quick else 500_000)
    n_rss = args.rss_events or (0 if args.quick and not args.only else 5_000_000)
    lat_seconds = 8.0 if args.quick else 30.0

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        from streams.dev.local_broker import LocalBroker

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
            if "throughput" in parts:
                result["produce_seconds"] = round(
                    produce(bootstrap, topics["inference"], events, n), 2
                )
                bare = bare_consumer(bootstrap, topics["inference"], n)
                one = run_workers(bootstrap, topics, n, 1, tmp, "one")
                two = run_workers(bootstrap, topics, n, 2, tmp, "two")
                result["bare_consumer_events_per_s"] = round(bare)
                result["events_per_s"] = round(one["events_per_s"])
                result["ratio_vs_bare"] = round(one["events_per_s"] / bare, 4)
                result["two_workers_events_per_s"] = round(two["events_per_s"])
                result["scale_2_workers"] = round(two["events_per_s"] / one["events_per_s"], 3)

            if "latency" in parts:
                result["latency_rate_per_s"] = args.rate
                result["latency_seconds"] = lat_seconds
                if args.rate_high:
                    result["latency_20k_rate_per_s"] = args.rate_high
                for escalation in workloads:
                    result.update(
                        latency_figures(
                            bootstrap, tmp, args.rate, args.rate_high, lat_seconds, escalation
                        )
                    )
                base = latency(bootstrap, tmp, args.rate, lat_seconds, RelayProcess)
                result["relay_p50_latency_ms"] = ms(base["p50"])
                result["relay_p99_latency_ms"] = ms(base["p99"])
                result["relay_received_share"] = round(base["received"], 4)
                result["relay_cores"] = rounded(base["cores"], 2)
                if args.rate_high:
                    base = latency(bootstrap, tmp, args.rate_high, lat_seconds, RelayProcess)
                    result["latency_20k_relay_p50_ms"] = ms(base["p50"])
                    result["latency_20k_relay_p99_ms"] = ms(base["p99"])
                    result["latency_20k_relay_events_per_s"] = rounded(base["got_through"])
                    result["latency_20k_relay_cores"] = rounded(base["cores"], 2)

            if n_rss and "memory" in parts:
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
                start_idx, rule = warm_start(samples)
                tenth = first_tenth(samples)
                result["rss_events"] = n_rss
                result["rss_start_rule"] = rule
                result["rss_start_events"] = round(samples[start_idx][1])
                result["rss_mb_start"] = round(samples[start_idx][0], 1)
                result["rss_mb_end"] = round(samples[-1][0], 1)
                result["rss_mb_max"] = round(max(mb for mb, _, _ in samples), 1)
                result["rss_mb_at_10pct"] = round(samples[tenth][0], 1)
                result["rss_events_per_s"] = round(mem["events_per_s"])
    finally:
        if broker is not None:
            broker.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
