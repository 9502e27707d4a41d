"""Hostile input through a real worker: malformed floods and a cardinality attack.

Starts its own LocalBroker (or uses ``KAFKA_BOOTSTRAP_SERVERS``) and one ``vigil worker``
process, then:

1. a cardinality attack of well-formed events, first on two models: 10k distinct
   feature names on one, 10k distinct category values on another;
2. ``hostile_messages`` malformed messages (100k in full mode) of every kind the fuzz
   tests know (random bytes, truncated JSON, NaN/Infinity, huge numbers, invalid UTF-8,
   deep nesting, wrong types, bad values, duplicate keys, oversized), 10 % of them on
   the labels topic, mixed with one valid event per nine malformed ones;
3. 10k distinct ``model_id`` values.

The worker runs with small caps (``max_models`` 20, ``max_tracked_models`` 50,
``max_features_per_model`` 16) so that the bounds of SPEC §7 are what is measured.

Prints ONE JSON object: ``hostile_messages``, ``dead_lettered`` (dead letters on the
topic whose payload and reason match what the decoder says of a sent message),
``escaped_exceptions`` (tracebacks in the worker log not accounted for by a
``processing_error`` dead letter, plus a worker exit), ``worker_restarts`` (pid changes,
exits and Faust agent crashes), ``metrics_series_max`` (most samples on ``/metrics`` at
any scrape during the run), ``rss_growth_pct`` (worker RSS at the end against after the
warm-up, the first 30 % of both floods: see ``WARM_TENTHS``), and details.
``--quick`` sends 10k malformed messages and 2k flood models (well under a minute).

:func:`run` is also what ``tests/streams/test_hostile_kafka.py`` drives.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.config import settings_from_dict
from streams.errors import InvalidEventError
from streams.events.schema import DEFAULT_MAX_EVENT_BYTES, decode_inference, decode_label
from streams.kafka.topics import create_topics
from tests.support import WorkerProcess, unique_topics

MAX_MODELS = 20
MAX_TRACKED_MODELS = 50
MAX_FEATURES_PER_MODEL = 16
VALID_MODELS = ("svc-0", "svc-1", "svc-2")
#: One valid event per this many malformed ones.
HOSTILE_PER_VALID = 9
#: Share of malformed messages sent to the labels topic instead of the inference topic.
LABELS_SHARE = 0.1
#: Warm-up, in tenths of the run: by 30 % every cap is reached (fleet, metric labels)
#: and the worker's buffers (librdkafka's prefetch queue, up to 64 MB by default, the
#: producer queue of dead letters, allocator arenas after 200 KB messages) have seen a
#: full-rate burst. ``rss_mb_by_tenth`` in the output shows the curve it is chosen from.
WARM_TENTHS = 3
#: Most /metrics samples a worker may show under these caps (see ``series_bound``).
SERIES_TARGET = 5_000


def series_bound(max_models: int, max_features: int, partitions: int) -> int:
    """Upper bound on /metrics samples implied by the caps of SPEC §7.

    Per model label (``max_models`` plus ``_other`` and ``_unknown``): events 2,
    escalations by reason 9, suppressed 1, labels 3, three histograms of at most 21
    buckets + sum + count (69), six single gauges, reliability bins 2 x 100, and per
    signal (2 per feature + 5 model-level) 2 drift gauges and 2 alert counters. Plus
    dead letters by reason (5), the batch histogram (15) and consumer lag per input
    partition (2 x ``partitions``).
    """
    signals = 2 * max_features + 5
    per_model = 2 + 9 + 1 + 3 + 69 + 6 + 200 + 4 * signals
    return (max_models + 2) * per_model + 5 + 15 + 2 * partitions


# ---------------------------------------------------------------- traffic


def valid_event(i: int, rng: random.Random, model_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": f"v-{i}",
        "model_id": model_id or VALID_MODELS[i % len(VALID_MODELS)],
        "ts": 1_767_225_600 + i,
        "features": {"amount": round(rng.gauss(100, 20), 3), "country": rng.choice("ABC")},
        "prediction": {"label": "ok", "confidence": round(rng.uniform(0.5, 0.99), 4)},
    }


def _base(i: int) -> dict[str, Any]:
    return {
        "event_id": f"h-{i}",
        "model_id": "hostile",
        "ts": 1_767_225_600 + i,
        "features": {"amount": 1.5, "country": "DE"},
        "prediction": {"label": "a", "scores": {"a": 0.7, "b": 0.3}},
    }


def _dump(d: dict[str, Any]) -> bytes:
    return orjson.dumps(d)


def _wrong_type(i: int, rng: random.Random) -> bytes:
    d = _base(i)
    field_, value = rng.choice(
        [
            ("event_id", 17),
            ("model_id", ["m"]),
            ("ts", True),
            ("features", "amount=1"),
            ("prediction", [0.7]),
            ("segment", 3),
            ("metadata", "free"),
            ("trace_id", {"id": 1}),
            ("model_version", 2.0),
        ]
    )
    d[field_] = value
    if rng.random() < 0.3:
        d["features"] = {"amount": {"nested": True}}
    return _dump(d)


def _bad_value(i: int, rng: random.Random) -> bytes:
    d = _base(i)
    choice = rng.randrange(7)
    if choice == 0:
        d["prediction"] = {"label": "a", "confidence": 1.5}
    elif choice == 1:
        d["prediction"] = {"label": "a", "scores": {"a": 0.9, "b": 0.9}}
    elif choice == 2:
        d["model_id"] = f"-bad model {i}"
    elif choice == 3:
        d["ts"] = "2026-01-01T00:00:00"
    elif choice == 4:
        d["ts"] = 1_767_225_600_000 + i  # milliseconds
    elif choice == 5:
        d["features"] = {f"f{k}": k for k in range(600)}
    else:
        d["prediction"] = {"value": 5.0, "interval": [6.0, 7.0]}
    return _dump(d)


def _kinds() -> list[tuple[str, Callable[[int, random.Random], bytes]]]:
    def random_bytes(i: int, rng: random.Random) -> bytes:
        return rng.randbytes(rng.randint(0, 200)) + b"#%d" % i

    def truncated(i: int, rng: random.Random) -> bytes:
        raw = _dump(_base(i))
        return raw[: rng.randrange(len(raw) - 1)]

    def nan(i: int, rng: random.Random) -> bytes:
        lit = rng.choice([b"NaN", b"Infinity", b"-Infinity"])
        return _dump(_base(i)).replace(b"1.5", lit)

    def huge_number(i: int, rng: random.Random) -> bytes:
        return _dump(_base(i)).replace(b"1.5", b"9" * rng.randint(310, 2000))

    def invalid_utf8(i: int, rng: random.Random) -> bytes:
        bad = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"])
        return _dump(_base(i)).replace(b"h-", b"h-" + bad, 1)

    def deep(i: int, rng: random.Random) -> bytes:
        depth = rng.choice([300, 1100, 5000])
        d = _dump(_base(i))
        return d[:-1] + b',"metadata":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"

    def duplicate_keys(i: int, rng: random.Random) -> bytes:
        d = _dump(_base(i))
        return d[:-1] + b',"model_id":"no spaces allowed %d"}' % i

    def not_an_object(i: int, rng: random.Random) -> bytes:
        return rng.choice([b"[%d]" % i, b'"%d"' % i, b"null ", b"%d" % i])

    def oversized_string(i: int, rng: random.Random) -> bytes:
        d = _base(i)
        d["features"]["blob"] = "x" * rng.choice([300, 40_000])
        d["trace_id"] = "t" * rng.choice([10, 129])
        return _dump(d)

    return [
        ("random_bytes", random_bytes),
        ("truncated", truncated),
        ("nan_infinity", nan),
        ("huge_number", huge_number),
        ("invalid_utf8", invalid_utf8),
        ("deep_nesting", deep),
        ("wrong_type", _wrong_type),
        ("bad_value", _bad_value),
        ("duplicate_keys", duplicate_keys),
        ("not_an_object", not_an_object),
        ("oversized_string", oversized_string),
    ]


KINDS = _kinds()


def _rare(i: int) -> bytes | None:
    # Over max_event_bytes: kept rare, as each is 70-200 KB on the broker.
    if i % 997 == 0:
        return b'{"event_id":"h-%d","pad":"' % i + b"x" * 70_000 + b'"}'
    if i % 4999 == 0:
        features = ",".join(f'"feature_{k:05d}":{k}' for k in range(10_000))
        return b'{"event_id":"h-%d","features":{' % i + features.encode() + b"}}"
    return None


def expected_reason(kind: str, raw: bytes) -> str | None:
    """What vigil's decoder makes of ``raw``: its dead-letter reason, or None if valid."""
    decode = decode_label if kind == "labels" else decode_inference
    try:
        decode(raw, DEFAULT_MAX_EVENT_BYTES)
    except InvalidEventError as exc:
        return exc.reason
    return None


def hostile_messages(n: int, seed: int = 8) -> Iterator[tuple[str, bytes, str]]:
    """``n`` malformed messages: (``"inference"`` | ``"labels"``, bytes, expected reason).

    Seeded; each carries its index, so no two are equal and each dead letter can be
    matched to the message it came from.
    """
    rng = random.Random(seed)
    made = 0
    i = 0
    while made < n:
        i += 1
        raw = _rare(i)
        if raw is None:
            _name, make = KINDS[i % len(KINDS)]
            raw = make(i, rng)
        topic = "labels" if rng.random() < LABELS_SHARE else "inference"
        reason = expected_reason(topic, raw)
        if reason is None:  # a mutation that happens to be valid is not hostile
            continue
        made += 1
        yield topic, raw, reason


# ---------------------------------------------------------------- observing the worker


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metrics_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode("utf-8"))


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


@dataclass
class Observed:
    """What the run saw of the worker, sample by sample."""

    pid: int
    pids: set[int] = field(default_factory=set)
    rss: list[int] = field(default_factory=list)
    series_max: int = 0
    exited: bool = False


class HostileRun:
    """One worker, its topics, a producer, and the bookkeeping of what was sent."""

    def __init__(self, bootstrap: str, workdir: Path, partitions: int = 2) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.topics = unique_topics("hostile")
        self.partitions = partitions
        self.config: dict[str, Any] = {
            "app_id": f"vigil-hostile-{self.topics['inference']}",
            "topics": {**self.topics, "partitions": partitions},
            "worker": {
                "max_models": MAX_MODELS,
                "max_tracked_models": MAX_TRACKED_MODELS,
                "max_features_per_model": MAX_FEATURES_PER_MODEL,
            },
            # Every valid event escalates (confidences are below 1): the escalations topic
            # is the proof that each was processed. /metrics cannot be: the series of a
            # model evicted from the fleet are removed, and its counts with them.
            "defaults": {"escalation": {"min_confidence": 1.0, "data_reasons": False}},
        }
        settings = settings_from_dict({**self.config, "kafka": {"bootstrap": bootstrap}})
        create_topics(settings)
        self.worker = WorkerProcess(bootstrap, self.config, workdir, name="hostile-worker")
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 20,
                "compression.type": "lz4",
                "partitioner": "murmur2_random",
                "queue.buffering.max.messages": 500_000,
                "message.max.bytes": 1_000_000,
            }
        )
        self.delivery_errors: Counter[str] = Counter()
        self.expected: Counter[tuple[bytes, str]] = Counter()
        self.sent_valid = 0
        self.sent_hostile = 0
        self.obs: Observed | None = None
        self.rng = random.Random(3)
        self.escalated: Counter[str] = Counter()  # model_id/event_id -> escalations seen
        self._escalations = _reader(bootstrap, self.topics["escalations"])

    # -- sending

    def _send(self, topic: str, raw: bytes, key: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topics[topic], value=raw, key=key, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.delivery_errors[str(err)] += 1

    def send_valid(self, event: dict[str, Any]) -> None:
        self._send("inference", orjson.dumps(event), event["model_id"].encode())
        self.sent_valid += 1

    def send_hostile(self, messages: Iterator[tuple[str, bytes, str]], n: int) -> None:
        for k, (topic, raw, reason) in zip(range(n), messages, strict=False):
            key = None if k % 5 == 0 else b"hostile"
            self._send(topic, raw, key)
            self.expected[(raw, reason)] += 1
            self.sent_hostile += 1
            if self.sent_hostile % HOSTILE_PER_VALID == 0:
                self.send_valid(valid_event(self.sent_valid, self.rng))

    def flush(self) -> None:
        left = self.producer.flush(120)
        if left or self.delivery_errors:
            raise RuntimeError(
                f"{left} messages not delivered to the broker; errors: {self.delivery_errors}"
            )

    # -- observing

    def start(self) -> None:
        self.worker.start()
        assert self.worker.proc is not None
        pid = self.worker.proc.pid
        self.obs = Observed(pid, {pid})

    def sample(self) -> list[tuple[str, dict[str, str], float]]:
        """One observation: pid alive, RSS, /metrics series count. Returns the samples."""
        assert self.obs is not None and self.worker.proc is not None
        if self.worker.proc.poll() is not None:
            self.obs.exited = True
            raise RuntimeError(f"worker exited:\n{self.worker.log_tail()}")
        self.obs.pids.add(self.worker.proc.pid)
        self.obs.rss.append(rss_kib(self.worker.proc.pid))
        samples = parse_samples(metrics_text(self.worker.metrics_url))
        self.obs.series_max = max(self.obs.series_max, len(samples))
        return samples

    def wait_accounted(self, timeout: float) -> list[tuple[str, dict[str, str], float]]:
        """Until every valid event is escalated and every malformed one counted as a dead
        letter; the last /metrics samples."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.sample()
            dead = sum(v for name, _, v in samples if name == "vigil_dead_letters_total")
            for msg in self._escalations.consume(10_000, timeout=0.5):
                if msg.error() is None:
                    esc = orjson.loads(msg.value() or b"null")
                    self.escalated[f"{esc['model_id']}/{esc['event_id']}"] += 1
            if dead >= self.sent_hostile and len(self.escalated) >= self.sent_valid:
                return samples
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{dead} of {self.sent_hostile} dead letters, {len(self.escalated)} of "
                    f"{self.sent_valid} escalations"
                )

    def dead_letters(self, timeout: float = 120.0) -> Counter[tuple[bytes, str]]:
        """(payload, reason) of every dead letter on the topic."""
        consumer = _reader(self.bootstrap, self.topics["deadletter"])
        got: Counter[tuple[bytes, str]] = Counter()
        want = sum(self.expected.values())
        deadline = time.monotonic() + timeout
        idle_until: float | None = None
        try:
            while time.monotonic() < deadline:
                batch = consumer.consume(5000, timeout=0.5)
                for msg in batch:
                    if msg.error() is None:
                        dl = orjson.loads(msg.value() or b"null")
                        got[(base64.b64decode(dl["payload_b64"]), dl["reason"])] += 1
                if sum(got.values()) >= want:
                    # A little longer, to see duplicates too.
                    idle_until = idle_until or time.monotonic() + 2.0
                    if time.monotonic() > idle_until:
                        break
        finally:
            consumer.close()
        return got

    def stop(self) -> int | None:
        with contextlib.suppress(Exception):
            self.producer.flush(10)
        self._escalations.close()
        return self.worker.stop()


def _reader(bootstrap: str, topic: str) -> Any:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"hostile-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    return consumer


@dataclass
class Report:
    hostile_messages: int
    dead_lettered: int
    dead_letters_on_topic: int
    unmatched_dead_letters: int
    missing_dead_letters: int
    escaped_exceptions: int
    worker_restarts: int
    worker_exit_code: int | None
    metrics_series_max: int
    metrics_series_bound: int
    model_labels_max: int
    wide_feature_signals: int
    catty_feature_signals: int
    processed_valid: int
    sent_valid: int
    duplicate_escalations: int
    rss_mb_by_tenth: list[float]
    rss_mb_warm: float
    rss_mb_end: float
    rss_mb_max: float
    rss_growth_pct: float
    reasons: dict[str, int]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "hostile_messages": self.hostile_messages,
            "dead_lettered": self.dead_lettered,
            "escaped_exceptions": self.escaped_exceptions,
            "worker_restarts": self.worker_restarts,
            "metrics_series_max": self.metrics_series_max,
            "rss_growth_pct": self.rss_growth_pct,
            "details": {
                k: v
                for k, v in self.__dict__.items()
                if k
                not in (
                    "hostile_messages",
                    "dead_lettered",
                    "escaped_exceptions",
                    "worker_restarts",
                    "metrics_series_max",
                    "rss_growth_pct",
                )
            },
        }


def _feature_signals(samples: list[tuple[str, dict[str, str], float]], model: str) -> int:
    return len(
        {
            labels["signal"].split(":", 1)[1]
            for name, labels, _ in samples
            if name == "vigil_drift_active"
            and labels.get("model") == model
            and labels["signal"].startswith(("feature:", "data_quality:"))
        }
    )


def run(bootstrap: str, workdir: Path, n_hostile: int, n_flood_models: int) -> Report:
    """The whole scenario against ``bootstrap``; see the module docstring."""
    started = time.monotonic()
    r = HostileRun(bootstrap, workdir)
    r.start()
    rng = random.Random(5)
    code: int | None = None
    try:
        # 1. Cardinality on two models: 10k feature names, 10k category values.
        for i in range(200):
            event = valid_event(i, rng, "wide")
            event["event_id"] = f"wide-{i}"
            event["features"] = {f"f{50 * i + j}": rng.random() for j in range(50)}
            r.send_valid(event)
        for i in range(10_000):
            event = valid_event(i, rng, "catty")
            event["event_id"] = f"catty-{i}"
            event["features"] = {"category": f"value-{i}"}
            r.send_valid(event)
        r.flush()
        samples = r.wait_accounted(timeout=300)
        wide = _feature_signals(samples, "wide")
        catty = _feature_signals(samples, "catty")

        # 2. The malformed flood and the model flood, in tenths; RSS after each.
        messages = hostile_messages(n_hostile)
        rss_by_tenth: list[int] = []
        models_sent = 0
        for tenth in range(1, 11):
            r.send_hostile(messages, n_hostile * tenth // 10 - r.sent_hostile)
            for i in range(models_sent, n_flood_models * tenth // 10):
                r.send_valid(valid_event(i, rng, f"flood-{i}"))
            models_sent = n_flood_models * tenth // 10
            r.flush()
            samples = r.wait_accounted(timeout=600)
            assert r.obs is not None
            rss_by_tenth.append(r.obs.rss[-1])
        warm_rss = rss_by_tenth[WARM_TENTHS - 1]
        end_rss = rss_by_tenth[-1]
        model_labels = len(
            {labels["model"] for name, labels, _ in samples if name == "vigil_events_total"}
        )
        processed_valid = len(r.escalated)
        duplicate_escalations = sum(n - 1 for n in r.escalated.values())
        got = r.dead_letters()
        reasons = Counter(reason for (_, reason), n in got.items() for _ in range(n))
        matched = sum((got & r.expected).values())
    finally:
        code = r.stop()
    log = r.worker.log_path.read_text(errors="replace")
    tracebacks = log.count("Traceback (most recent call last)")
    processing_errors = reasons.get("processing_error", 0)
    escaped = max(0, tracebacks - processing_errors) + (1 if r.obs.exited else 0)
    restarts = (len(r.obs.pids) - 1) + (1 if r.obs.exited else 0) + log.count("Crashed reason")
    return Report(
        hostile_messages=r.sent_hostile,
        dead_lettered=matched,
        dead_letters_on_topic=sum(got.values()),
        unmatched_dead_letters=sum((got - r.expected).values()),
        missing_dead_letters=sum((r.expected - got).values()),
        escaped_exceptions=escaped,
        worker_restarts=restarts,
        worker_exit_code=code,
        metrics_series_max=r.obs.series_max,
        metrics_series_bound=series_bound(MAX_MODELS, MAX_FEATURES_PER_MODEL, r.partitions),
        model_labels_max=model_labels,
        wide_feature_signals=wide,
        catty_feature_signals=catty,
        processed_valid=processed_valid,
        sent_valid=r.sent_valid,
        duplicate_escalations=duplicate_escalations,
        rss_mb_by_tenth=[round(x / 1024, 1) for x in rss_by_tenth],
        rss_mb_warm=round(warm_rss / 1024, 1),
        rss_mb_end=round(end_rss / 1024, 1),
        rss_mb_max=round(max(r.obs.rss) / 1024, 1),
        rss_growth_pct=round(100.0 * (end_rss - warm_rss) / warm_rss, 2),
        reasons=dict(sorted(reasons.items())),
        seconds=round(time.monotonic() - started, 1),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10k malformed, 2k models")
    ap.add_argument("--hostile", type=int, default=None, help="malformed messages")
    ap.add_argument("--models", type=int, default=None, help="distinct flood model_ids")
    args = ap.parse_args()
    n_hostile = args.hostile or (10_000 if args.quick else 100_000)
    n_models = args.models or (2_000 if args.quick else 10_000)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    with contextlib.ExitStack() as stack:
        if not bootstrap:
            from streams.dev.local_broker import LocalBroker

            broker = stack.enter_context(LocalBroker())
            bootstrap = broker.bootstrap
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vigil-hostile-")))
        report = run(bootstrap, workdir, n_hostile, n_models)
    print(json.dumps(report.summary()))
    ok = (
        report.dead_lettered == report.hostile_messages
        and report.escaped_exceptions == 0
        and report.worker_restarts == 0
        and report.metrics_series_max <= SERIES_TARGET
        and report.rss_growth_pct <= 10
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
