"""Fixtures for fault-injection tests: a rig of topics, config, workers and readers.

Every fault test runs real ``vigil worker`` processes against a real broker and checks
the delivery guarantee from the outside: the escalations topic (every qualifying event
escalated, no two different escalations for one event), the dead-letter topic, the
alerts topic, ``/metrics`` and, after a clean stop, the checkpoints (each model's
``events_seen`` equals the valid events published for it: nothing applied twice, nothing
lost).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import settings_from_dict
from streams.dev.scrape import total
from streams.kafka.topics import create_topics
from tests.support import TopicReader, WorkerProcess, topic_size, unique_topics

#: Events under this confidence must be escalated (threshold policy, no data reasons, no
#: budget: the decision depends on the event and the drift state only, so a replay of
#: the same event from the same restored state decides the same way).
MIN_CONFIDENCE = 0.65

#: Both ingestion paths (``worker.ingest``) promise the same guarantee, so every fault
#: test runs against each: the default confluent-kafka batch ingest and the Faust agent.
#: ``VIGIL_FAULT_INGEST=batch`` (or ``faust``) narrows a local run to one.
INGESTS = tuple(p for p in ("batch", "faust") if os.environ.get("VIGIL_FAULT_INGEST", p) == p)


class FaultRig:
    """Topics and config for one test, and the workers and readers it started."""

    def __init__(
        self,
        bootstrap: str,
        tmp_path: Path,
        prefix: str,
        partitions: int,
        worker: dict[str, Any] | None = None,
        ingest: str = "batch",
    ) -> None:
        self.bootstrap = bootstrap
        self.tmp_path = tmp_path
        self.partitions = partitions
        self.topics = unique_topics(prefix)
        # A checkpoint topic of its own, whether or not unique_topics() names one.
        tag = self.topics["inference"].removesuffix(".inference")
        self.topics.setdefault("checkpoints", f"{tag}.checkpoints")
        self.config: dict[str, Any] = {
            "app_id": f"vigil-fault-{self.topics['inference']}",
            "topics": {**self.topics, "partitions": partitions},
            # Frequent checkpoints and small batches: faults land between checkpoints.
            "worker": {
                "checkpoint_interval_s": 1.0,
                "batch_size": 200,
                "ingest": ingest,
                **(worker or {}),
            },
            "defaults": {
                "escalation": {"min_confidence": MIN_CONFIDENCE, "data_reasons": False},
                "drift": {"reference_size": 300, "window": 100},
            },
        }
        self.settings = settings_from_dict({**self.config, "kafka": {"bootstrap": bootstrap}})
        self.workers: list[WorkerProcess] = []
        self.readers: list[TopicReader] = []

    def create_topics(self) -> None:
        create_topics(self.settings)

    def worker(self, name: str, instance_id: str | None = None) -> WorkerProcess:
        """A worker process (not started); ``instance_id`` is its ``VIGIL_INSTANCE_ID``
        (static group membership)."""
        env = {} if instance_id is None else {"VIGIL_INSTANCE_ID": instance_id}
        w = WorkerProcess(self.bootstrap, self.config, self.tmp_path, name=name, env=env)
        self.workers.append(w)
        return w

    def reader(self, kind: str) -> TopicReader:
        r = TopicReader(self.bootstrap, self.topics[kind])
        self.readers.append(r)
        return r

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        for r in self.readers:
            r.close()


@pytest.fixture(params=INGESTS)
def make_rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., FaultRig]]:
    """Factory: ``make_rig(bootstrap, prefix, partitions=4, worker=None) -> FaultRig``
    with its topics created; kills the rig's workers and closes its readers afterwards."""
    rigs: list[FaultRig] = []

    def make(
        bootstrap: str, prefix: str, partitions: int = 4, worker: dict[str, Any] | None = None
    ) -> FaultRig:
        rig = FaultRig(bootstrap, tmp_path, prefix, partitions, worker, ingest=request.param)
        rigs.append(rig)
        rig.create_topics()
        return rig

    yield make
    for rig in rigs:
        rig.close()


def processed(worker: WorkerProcess) -> float:
    """Inference events the worker counted as processed (0 if it does not answer)."""
    try:
        return total(worker.scrape(), "vigil_events_total", outcome="processed")
    except OSError:
        return 0.0


class CounterWatch:
    """A worker's counter summed over its series and across their resets, from a thread
    that scrapes every ``interval`` seconds while the watch is open (``with`` block).

    A worker that loses its partitions (say, a broker outage longer than the session
    timeout) drops those models' state and series; when it gets them back the series start
    again from 0 and count the redelivered events once more. A series that vanished or
    went down has its last value carried over, so the total never goes down; it counts a
    redelivered event again, as the plain counter does.
    """

    def __init__(
        self, worker: WorkerProcess, name: str, interval: float = 0.25, **match: str
    ) -> None:
        self.worker = worker
        self.name = name
        self.match = match
        self.interval = interval
        # (carried over, current value per series): replaced whole by each scrape, so a
        # reader on another thread never sees half of an update.
        self._state: tuple[float, dict[tuple[tuple[str, str], ...], float]] = (0.0, {})
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counter-watch", daemon=True)

    def __enter__(self) -> CounterWatch:
        self.poll()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        try:
            samples = self.worker.scrape().get(self.name, [])
        except OSError:
            return
        now = {
            tuple(sorted(labels.items())): value
            for labels, value in samples
            if all(labels.get(k) == v for k, v in self.match.items())
        }
        carried, before = self._state
        for key, last in before.items():
            if now.get(key, 0.0) < last:
                carried += last
        self._state = (carried, now)

    @property
    def value(self) -> float:
        """The carried-over values plus the current ones, as of the last scrape."""
        carried, current = self._state
        return carried + sum(current.values())


#: librdkafka's lines that tell a worker's group or output story; its other lines (each
#: refused connection during an outage, a line per attempt) are left out of the report.
_CLIENT_STORY = ("SESSTMOUT", "GETPID", "FATAL", "Fatal", "fatal")


def _story(line: str) -> bool:
    if "Connection refused" in line:  # librdkafka's, or its error callback's copy
        return False
    return "[rdkafka#" not in line or any(word in line for word in _CLIENT_STORY)


def missing_report(
    worker: WorkerProcess,
    bootstrap: str,
    topic: str,
    reader: TopicReader,
    *,
    processed: tuple[float, int],
    escalated: tuple[float, int],
) -> str:
    """Why escalations may be missing, in one short line (pytest cuts an assertion's
    message at 640 characters): whether the worker runs, how many events it processed
    and escalated against how many it should have (``processed`` and ``escalated``:
    counted, expected; :class:`CounterWatch` values), what the escalations ``topic``
    holds and the ``reader`` read, and the worker's last log lines of its own (and
    librdkafka's on its group and outputs). A part that cannot be had says so."""
    code = None if worker.proc is None else worker.proc.poll()
    state = "running" if worker.proc is not None and code is None else f"exited {code}"
    try:
        held = str(topic_size(bootstrap, topic))
    except Exception as exc:  # the broker's own trouble is part of the story
        held = f"? ({type(exc).__name__})"
    try:
        lines = worker.log_path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    story = [ln for ln in lines if _story(ln)][-4:]
    # "[2026-12-07 17:37:34,547] [19133] [INFO] msg": the time of day and the message.
    told = " | ".join(f"{ln[12:24]} {ln.split('] ', 3)[-1][:90]}" for ln in story)
    return (
        f"worker {state}; processed {processed[0]:.0f} of {processed[1]} events, escalated "
        f"{escalated[0]:.0f} of {escalated[1]}; the topic holds {held}, the reader read "
        f"{len(reader.messages)}; last of {len(lines)} log lines: {told or '(none)'}"
    )


def model_series(worker: WorkerProcess) -> set[str]:
    """The models with series in ``vigil_events_total`` on the worker's /metrics (not the
    ``_other`` and ``_unknown`` catch-alls every worker has)."""
    samples = worker.scrape().get("vigil_events_total", [])
    return {labels["model"] for labels, _ in samples} - {"_other", "_unknown"}
