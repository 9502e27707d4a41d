"""Stand-ins for the Kafka side of ingest tests: the test decides when the broker answers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from typing import Any

from streams.kafka.checkpoints import Checkpoint, CheckpointWrite, decode, encode


class InlineExecutor(Executor):
    """Runs each job as it is submitted: a core's checkpoint compression, done by the
    time :meth:`~streams.ingest.core.IngestCore.tick` looks at it (tests that decide
    the order of everything else)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        job: Future[Any] = Future()
        try:
            job.set_result(fn(*args, **kwargs))
        except Exception as exc:
            job.set_exception(exc)
        return job


class HeldJobs(Executor):
    """Keeps each job until the test runs it (:meth:`run`), or fails it (:meth:`fail`)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Future[Any], Callable[[], Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        job: Future[Any] = Future()
        self.jobs.append((job, lambda: fn(*args, **kwargs)))
        return job

    def run(self, index: int = 0) -> None:
        job, call = self.jobs.pop(index)
        job.set_result(call())

    def fail(self, index: int = 0) -> None:
        job, _ = self.jobs.pop(index)
        job.set_exception(RuntimeError("compression failed"))


class Record:
    """What a delivery report describes: only its key and topic are read."""

    def __init__(self, topic: str, key: bytes = b"") -> None:
        self._topic, self._key = topic, key

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key


class HeldCheckpoints:
    """A checkpoint store whose records are acknowledged (or failed) by the test."""

    topic = "cp"

    def __init__(self) -> None:
        self.held: list[tuple[str, bytes, CheckpointWrite]] = []
        self.written: dict[str, bytes] = {}
        self.closed = False
        self.starts: list[dict[int, int]] = []  # the ``start`` of each read
        self.newest: dict[int, dict[str, int]] = {}  # set by a test: records' offsets

    def send(self, model_id: str, partition: int, value: bytes, write: CheckpointWrite) -> None:
        write.sent.append(model_id)
        self.held.append((model_id, value, write))

    def poll(self) -> None:
        pass

    def flush(self, timeout: float = 0) -> int:
        self.deliver()  # a flush waits for the answers
        return 0

    def deliver(self, error: str | None = None) -> None:
        held, self.held = self.held, []
        for model_id, value, write in held:
            if error is None:
                self.written[model_id] = value
            write._report(error, Record("cp", model_id.encode()))

    def write(self, checkpoints: Iterable[Checkpoint], timeout: float = 30.0) -> int:
        n = 0
        for cp in checkpoints:
            self.written[cp.model_id] = encode(cp)
            n += 1
        return n

    def read_start(self, partition: int) -> int | None:
        """A made-up start per partition (100 + its number): what the core commits."""
        return 100 + partition

    def read(
        self,
        partitions: Iterable[int],
        timeout: float = 60.0,
        start: Mapping[int, int] | None = None,
    ) -> dict[str, Checkpoint]:
        self.starts.append(dict(start or {}))
        wanted = set(partitions)
        found = {m: decode(v) for m, v in self.written.items()}
        return {m: cp for m, cp in found.items() if cp.partition in wanted}

    def close(self) -> None:
        self.closed = True
