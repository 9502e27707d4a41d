"""Helpers for tests that run real vigil workers against a real broker."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml

from streams.scrape import Samples, scrape


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_topics(prefix: str = "t") -> dict[str, str]:
    tag = f"{prefix}.{uuid.uuid4().hex[:8]}"
    return {
        "inference": f"{tag}.inference",
        "labels": f"{tag}.labels",
        "escalations": f"{tag}.escalations",
        "alerts": f"{tag}.alerts",
        "deadletter": f"{tag}.deadletter",
        "checkpoints": f"{tag}.checkpoints",
    }


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

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--config", str(self.config_path)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                scrape(self.metrics_url, timeout=1.0)
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker metrics never came up:\n{self.log_tail()}")

    def scrape(self) -> Samples:
        return scrape(self.metrics_url)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


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
    """Reads every message of a topic from the beginning, accumulating JSON values."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )
        self.consumer.subscribe([topic])
        self.messages: list[dict[str, Any]] = []
        self.keys: list[bytes | None] = []

    def poll(self, seconds: float = 1.0) -> int:
        got = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
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
