"""Helpers for tests that run real vigil workers against a real broker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import orjson
import yaml

from streams.dev import children
from streams.dev.local_broker import free_port
from streams.dev.scrape import Samples, scrape


def unique_topics(prefix: str = "t") -> dict[str, str]:
    tag = f"{prefix}.{uuid.uuid4().hex[:8]}"
    return {
        "inference": f"{tag}.inference",
        "labels": f"{tag}.labels",
        "escalations": f"{tag}.escalations",
        "alerts": f"{tag}.alerts",
        "deadletter": f"{tag}.deadletter",
        "reviewed": f"{tag}.reviewed",
    }


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET, an error status's included."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


class WorkerProcess:
    """``vigil worker`` as a child process with its own config file and metrics port."""

    def __init__(
        self,
        bootstrap: str,
        config: Mapping[str, Any],
        tmp_path: Path,
        name: str = "worker",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(dict(config)))
        self.log_path = tmp_path / f"{name}.log"
        self.env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            VIGIL_METRICS_PORT=str(self.port),
            VIGIL_WORKER__METRICS_HOST="127.0.0.1",
            **(env or {}),
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def command(self) -> list[str]:
        """What runs: ``vigil worker`` with this config file."""
        return [sys.executable, "-m", "streams.cli", "worker", "--config", str(self.config_path)]

    def ready(self) -> bool:
        """Whether the started process is up: its metrics answer."""
        try:
            scrape(self.metrics_url, timeout=1.0)
        except OSError:
            return False
        return True

    def start(self) -> Self:
        # Spawned to die with the test process, even when pytest itself is killed.
        with self.log_path.open("ab") as log:
            self.proc = children.spawn(
                self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} never came up:\n{self.log_tail()}")

    def scrape(self) -> Samples:
        return scrape(self.metrics_url)

    def healthz(self) -> tuple[int, str]:
        """(status, body) of the worker's ``/healthz``."""
        return http_get(f"http://127.0.0.1:{self.port}/healthz")

    def gauge(self, name: str, **labels: str) -> float | None:
        """The first sample of ``name`` whose labels include ``labels``; None if none."""
        for lab, value in self.scrape().get(name, []):
            if all(lab.get(k) == v for k, v in labels.items()):
                return value
        return None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` s; the exit code, None if it had to be
        killed (or never started)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        code = children.stop(self.proc, grace)
        return None if code == -signal.SIGKILL else code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            children.stop(self.proc, grace=0.0)


def start_worker(
    bootstrap: str, tmp_path: Path, prefix: str, config: Mapping[str, Any]
) -> tuple[dict[str, str], WorkerProcess]:
    """Fresh topics (2 partitions) and a worker consuming them with ``config`` on top."""
    from streams.config import settings_from_dict
    from streams.kafka.topics import create_topics

    topics = unique_topics(prefix)
    full = {"app_id": f"{prefix}-{topics['inference']}", "topics": {**topics, "partitions": 2}}
    full.update(config)
    create_topics(settings_from_dict({**full, "kafka": {"bootstrap": bootstrap}}))
    return topics, WorkerProcess(bootstrap, full, tmp_path).start()


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.25
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class TopicReader:
    """Reads every message of a topic from the beginning, accumulating JSON values.

    Partitions are assigned directly, not through a consumer group: a reader has nothing
    to share, and a group join that races a broker restart (tests/faults) could leave a
    subscribed reader without an assignment, reading nothing while the topic fills.
    """

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self._assigned = False
        self.messages: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []

    def _assign(self) -> bool:
        """Every partition of the topic from its beginning, once the topic exists."""
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        try:
            meta = self.consumer.list_topics(self.topic, timeout=2)
        except KafkaException:
            return False
        info = meta.topics.get(self.topic)
        if info is None or info.error is not None or not info.partitions:
            return False
        self.consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(info.partitions)]
        )
        self._assigned = True
        return True

    def poll(self, seconds: float = 1.0) -> int:
        got = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._assigned and not self._assign():
                time.sleep(0.2)
                continue
            batch = self.consumer.consume(1000, timeout=0.2)
            for msg in batch:
                if msg.error():
                    continue
                self.messages.append(orjson.loads(msg.value()))
                self.keys.append(msg.key())
                got += 1
        return got

    def read_until(self, count: int, timeout: float = 60.0, settle: float = 2.0) -> list[Any]:
        """Poll until ``count`` messages arrived (or timeout), then ``settle`` seconds more
        so that any extra (duplicate) messages are seen too."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            self.poll(0.5)
        self.poll(settle)
        return self.messages

    def close(self) -> None:
        self.consumer.close()


# ---------------------------------------------------------------- fault tests and benchmarks


class SyntheticStream:
    """Seeded inference traffic over several models that remembers what vigil must make of
    it: valid events per model, the events under the confidence threshold (which must be
    escalated) and the malformed messages (which must be dead-lettered)."""

    def __init__(
        self,
        n_models: int,
        *,
        min_confidence: float,
        n_numeric: int = 3,
        invalid_every: int = 0,
        seed: int = 0,
        prefix: str = "model",
    ) -> None:
        import random

        from streams.dev.traffic import SyntheticModel

        self.models = [
            SyntheticModel(f"{prefix}-{i}", n_numeric=n_numeric, n_categorical=0, seed=seed + i)
            for i in range(n_models)
        ]
        self.min_confidence = min_confidence
        self.invalid_every = invalid_every
        self._rng = random.Random(seed)
        self.n = 0
        self.valid: dict[str, int] = {m.model_id: 0 for m in self.models}
        self.qualifying: dict[str, str] = {}  # event_id -> model_id
        self.invalid: list[bytes] = []

    def next(self, model: int | None = None) -> tuple[bytes, bytes]:
        """(key, value) of the next message, of a random model unless ``model`` is given."""
        from streams.dev.traffic import INVALID_KINDS, invalid_event

        m = self.models[self._rng.randrange(len(self.models)) if model is None else model]
        self.n += 1
        key = m.model_id.encode()
        if self.invalid_every and self.n % self.invalid_every == 0:
            kind = INVALID_KINDS[(self.n // self.invalid_every) % len(INVALID_KINDS)]
            if kind == "bad_model_id":  # would be keyed by a model no stream owns
                kind = "bad_json"
            raw, _reason = invalid_event(kind, m.model_id, self.n)
            self.invalid.append(raw)
            return key, raw
        event, _truth = m.event()
        pred = event["prediction"]
        if pred["scores"][pred["label"]] < self.min_confidence:
            self.qualifying[event["event_id"]] = m.model_id
        self.valid[m.model_id] += 1
        return key, orjson.dumps(event)

    def take(self, n: int, model: int | None = None) -> list[tuple[bytes, bytes]]:
        return [self.next(model) for _ in range(n)]

    @property
    def published(self) -> int:
        return self.n


def publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce (key, value) pairs with vigil's publisher (murmur2, idempotent) and flush."""
    from streams.client import InferencePublisher

    with InferencePublisher(bootstrap, topic=topic, validate=False) as pub:
        for key, value in messages:
            pub.publish_raw(value, key=key)


class _DequeLogger(logging.Logger):
    """A logger for librdkafka's ``logger`` setting that keeps lines in a bounded deque."""

    def __init__(self, lines: deque[str]) -> None:
        super().__init__("vigil.test-publisher", logging.DEBUG)
        self.lines = lines

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        text = str(msg) % args if args else str(msg)
        self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")


class BackgroundPublisher:
    """Publishes messages from a thread at about ``rate`` per second, so that a fault can
    be injected while the stream is still flowing."""

    def __init__(
        self, bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], rate: float
    ) -> None:
        import threading

        self.bootstrap = bootstrap
        self.topic = topic
        self.messages = messages
        self.rate = rate
        self.sent = 0
        self.error: BaseException | None = None
        # librdkafka's own account of the producer (broker states, metadata, idempotence),
        # kept in memory and quoted when publishing fails: a stalled producer after a
        # broker restart is otherwise just "message timed out".
        self.client_log: deque[str] = deque(maxlen=150)
        self._thread = threading.Thread(target=self._run, name="bg-publisher", daemon=True)

    def start(self) -> BackgroundPublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        from streams.client import InferencePublisher

        try:
            # A long message timeout: the broker may be down for a while in fault tests.
            conf = {
                "message.timeout.ms": 300_000,
                "debug": "broker,topic,metadata,eos",
                "logger": _DequeLogger(self.client_log),
            }
            with InferencePublisher(
                self.bootstrap, topic=self.topic, validate=False, kafka_config=conf
            ) as pub:
                started = time.monotonic()
                chunk = max(1, int(self.rate / 20))
                for i in range(0, len(self.messages), chunk):
                    for key, value in self.messages[i : i + chunk]:
                        pub.publish_raw(value, key=key)
                    self.sent = min(len(self.messages), i + chunk)
                    ahead = self.sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                pub.flush(300)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"publisher still running after {timeout:g} s")
        if self.error is not None:
            tail = "\n".join(self.client_log)
            raise RuntimeError(f"background publisher failed; librdkafka said:\n{tail}") from (
                self.error
            )


def topic_size(bootstrap: str, topic: str) -> int:
    """Messages in a topic (sum of high watermarks minus low watermarks)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-watermarks"})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = meta.topics[topic].partitions if topic in meta.topics else {}
        n = 0
        for p in parts:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            n += max(0, hi - lo)
        return n
    finally:
        consumer.close()


def checkpointed_events_seen(
    bootstrap: str, topics: Mapping[str, str], partitions: int
) -> dict[str, int]:
    """model_id → ``events_seen`` of the monitor in its latest checkpoint."""
    from streams.config import settings_from_dict
    from streams.kafka.checkpoints import CheckpointStore

    settings = settings_from_dict(
        {"kafka": {"bootstrap": bootstrap}, "topics": {**topics, "partitions": partitions}}
    )
    store = CheckpointStore(settings)
    try:
        found = store.read(range(partitions))
    finally:
        store.close()
    return {m: int(cp.state["monitor"]["events_seen"]) for m, cp in found.items()}


class EscalationAudit:
    """What a set of escalation records says about at-least-once delivery.

    * ``missing``: qualifying events without any escalation;
    * ``conflicting``: events with two escalations that differ in anything but
      ``escalated_at`` (id, reasons, priority, prediction, ...);
    * ``duplicates``: identical extra copies (replays after a crash: allowed, and
      removable by ``escalation_id``);
    * ``bad_ids``: escalations whose id is not uuid5(model_id, event_id).
    """

    def __init__(self, escalations: list[dict[str, Any]], qualifying: Mapping[str, str]) -> None:
        from streams.events.records import escalation_id

        by_event: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for e in escalations:
            by_event.setdefault((e["model_id"], e["event_id"]), []).append(e)
        self.escalated = {event_id for _model, event_id in by_event}
        self.missing = sorted(set(qualifying) - self.escalated)
        self.conflicting: list[str] = []
        self.duplicates = 0
        for (_model, event_id), records in by_event.items():
            signatures = {
                orjson.dumps(
                    {k: v for k, v in r.items() if k != "escalated_at"}, option=orjson.OPT_SORT_KEYS
                )
                for r in records
            }
            if len(signatures) > 1:
                self.conflicting.append(event_id)
            self.duplicates += len(records) - 1
        self.bad_ids = [
            e["event_id"]
            for e in escalations
            if e["escalation_id"] != escalation_id(e["model_id"], e["event_id"])
        ]

    def __repr__(self) -> str:
        return (
            f"EscalationAudit(missing={len(self.missing)} {self.missing[:5]}, "
            f"conflicting={len(self.conflicting)} {self.conflicting[:5]}, "
            f"duplicates={self.duplicates}, bad_ids={self.bad_ids[:5]})"
        )


def read_until_escalated(
    reader: TopicReader, qualifying: Mapping[str, str], timeout: float = 120.0, settle: float = 2.0
) -> EscalationAudit:
    """Poll the escalations topic until every qualifying event has an escalation (or the
    timeout), then ``settle`` seconds more to catch duplicates; audit what was read."""
    deadline = time.monotonic() + timeout
    wanted = set(qualifying)
    seen: set[str] = set()
    read = 0
    while time.monotonic() < deadline:
        reader.poll(0.5)
        seen.update(m["event_id"] for m in reader.messages[read:])
        read = len(reader.messages)
        if wanted <= seen:
            break
    reader.poll(settle)
    return EscalationAudit(reader.messages, qualifying)


def uncommitted(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition → high watermark minus the group's committed offset (the whole partition
    when nothing is committed), for partitions where that is not zero."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        tps = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        out: dict[int, int] = {}
        for tp in consumer.committed(tps, timeout=10):
            _lo, hi = consumer.get_watermark_offsets(tp, timeout=10)
            left = hi - (tp.offset if tp.offset >= 0 else 0)
            if left:
                out[tp.partition] = left
        return out
    finally:
        consumer.close()
