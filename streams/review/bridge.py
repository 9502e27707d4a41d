"""``vigil review label-studio``, the task half: escalations in, one Label Studio task each.

The guarantee: **every escalation ends as exactly one task** in its model's project, across
redeliveries, duplicates on the topic, and restarts or crashes of the bridge or of Label
Studio. Three rules give it:

1. *Look before importing.* For each batch, the tasks that already carry one of its
   ``escalation_id`` values are looked up (a Data Manager filter on ``data.escalation_id``)
   and only the others are imported, so an escalation seen again, whether redelivered
   after a crash or published twice, finds its task and makes no second one. Within a
   batch, the first copy of an escalation wins.
2. *One import per model and batch.* Label Studio's (Community edition) bulk import makes
   all its tasks in one database transaction, so a crash of either side leaves all of them
   or none: nothing half-made to repair. A lost answer to an import that succeeded is
   covered by rule 1 on the retry.
3. *Commit after the tasks exist.* Offsets are committed only once every escalation of the
   batch has its task; until then a restarted bridge reads them again.

While Label Studio is down (or refuses a batch), the batch is retried with exponential
backoff (``retry_initial_s`` doubling up to ``retry_max_s``) for as long as it takes, with
the partitions paused so that the consumer keeps its group membership without reading
further; nothing is skipped. A message that is not an escalation at all (SPEC §4) cannot
become a task: it is logged, counted and passed over.

Assumption behind rule 1: one bridge writes a model's tasks at a time. The escalations
topic is keyed by model, so one member of the bridge's consumer group owns a model; only
during a rebalance could two members import the same escalation, in a window of one batch.

Metrics (its own registry, served at ``/metrics`` by the CLI): ``vigil_review_bridge_*``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streams.config import Settings
from streams.config.settings import LabelStudioSettings
from streams.errors import InvalidEventError, LabelStudioError, VigilError
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_studio_api import (
    LabelStudioClient,
    LabelStudioUnavailableError,
    client_for,
)
from streams.review.projects import ProjectDirectory
from streams.review.tasks import Escalation, decode_escalation, task_payload

__all__ = ["BridgeMetrics", "LabelStudioBridge", "TaskWriter", "WriteResult"]

log = logging.getLogger(__name__)

#: The data field that identifies a task's escalation.
ESCALATION_FIELD = "escalation_id"


@dataclass(frozen=True)
class WriteResult:
    created: int
    existing: int


class TaskWriter:
    """Escalations → tasks in their models' projects, at most one task per escalation."""

    def __init__(
        self,
        client: LabelStudioClient,
        settings: LabelStudioSettings,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.client = client
        self.projects = ProjectDirectory(client, settings)
        self.metrics = metrics if metrics is not None else BridgeMetrics()

    def write(self, escalations: Sequence[Escalation]) -> WriteResult:
        """Make the tasks that do not exist yet. Raises
        :class:`~streams.errors.LabelStudioError` (nothing may then be assumed made: call
        again with the same escalations)."""
        by_model: dict[str, dict[str, Escalation]] = {}
        for escalation in escalations:
            by_model.setdefault(escalation.model_id, {}).setdefault(
                escalation.escalation_id, escalation
            )
        created = existing = 0
        for model_id, unique in by_model.items():
            first = next(iter(unique.values()))
            classes = set().union(*(e.classes for e in unique.values()))
            project = self.projects.project_for(model_id, first.kind, classes)
            found = self.client.find_tasks(project.id, ESCALATION_FIELD, unique.keys())
            # Most urgent first: task ids then follow priority within a batch, which is the
            # order Label Studio Community's "Label All Tasks" hands them out in.
            todo = sorted(
                (e for eid, e in unique.items() if eid not in found), key=lambda e: -e.priority
            )
            made = self.client.import_tasks(project.id, [task_payload(e) for e in todo])
            # An overlap item asks for several reviewers (reviews_wanted): Label Studio then
            # serves its task to that many annotators. Set again for a task found already
            # made, in case the bridge stopped between the import and this.
            ids = {**found, **dict(zip((e.escalation_id for e in todo), made, strict=True))}
            for eid, e in unique.items():
                wanted = e.reviews_wanted
                if wanted > 1:
                    self.client.set_overlap(ids[eid], wanted)
            repeated = sum(1 for e in escalations if e.model_id == model_id) - len(todo)
            label = self.metrics.model(model_id)
            self.metrics.tasks_created.labels(label).inc(len(todo))
            self.metrics.tasks_existing.labels(label).inc(repeated)
            created += len(todo)
            existing += repeated
        return WriteResult(created, existing)


class LabelStudioBridge:
    """One member of the bridge's consumer group on the escalations topic.

    ``client`` and ``consumer`` replace the real ones (tests); ``wait(seconds)`` is how the
    backoff sleeps and returns ``True`` when the bridge should stop instead.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: LabelStudioClient | None = None,
        consumer: Any = None,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.ls = settings.review.label_studio
        if client is None:
            client = client_for(self.ls)
        if metrics is None:
            metrics = BridgeMetrics(max_models=settings.worker.max_models)
        self.metrics = metrics
        self.writer = TaskWriter(client, self.ls, self.metrics)
        if consumer is None:
            from confluent_kafka import Consumer

            consumer = Consumer(
                {
                    **settings.kafka.confluent_config(),
                    "group.id": self.ls.group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": 10_000,
                    "heartbeat.interval.ms": 1_000,
                    "logger": logging.getLogger("vigil.kafka.consumer"),
                }
            )
        self.consumer = consumer
        self._routed = frozenset(self.ls.models) if self.ls.models is not None else None
        self._stop = threading.Event()
        self._subscribed = False
        self._held: list[Any] = []  # partitions paused after a message came during a wait

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Consume and write until :meth:`stop`; then close the consumer."""
        try:
            while not self._stop.is_set():
                self.run_once()
        finally:
            self.consumer.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return (from another thread or a signal handler)."""
        self._stop.set()

    def run_once(self) -> int:
        """Consume one batch, make its tasks, commit it; return the messages consumed.
        Returns without committing if asked to stop while Label Studio is down."""
        if not self._subscribed:
            self.consumer.subscribe([self.settings.topics.escalations])
            self._subscribed = True
        messages = self.consumer.consume(self.ls.batch_size, self.ls.batch_within_s)
        escalations: list[Escalation] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise VigilError(f"fatal Kafka consumer error: {error}")
                log.warning("escalations topic: %s", error)
                continue
            where = (message.topic(), message.partition())
            offsets[where] = max(offsets.get(where, -1), message.offset() + 1)
            try:
                escalation = decode_escalation(orjson.loads(message.value()))
            except (orjson.JSONDecodeError, InvalidEventError) as exc:
                self.metrics.invalid.inc()
                log.error(
                    "passing over %s[%d]@%d: not an escalation: %s",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    exc,
                )
                continue
            if self._routed is not None and escalation.model_id not in self._routed:
                self.metrics.not_routed.inc()
                continue
            escalations.append(escalation)
        if escalations and not self._write(escalations):
            return len(messages)
        if offsets:
            self._commit(offsets)
        return len(messages)

    def _write(self, escalations: list[Escalation]) -> bool:
        """Write until the tasks exist (``True``) or the bridge is stopped (``False``)."""
        delay = self.ls.retry_initial_s
        paused: list[Any] = []
        try:
            while True:
                try:
                    result = self.writer.write(escalations)
                except LabelStudioError as exc:
                    self.metrics.label_studio_up.set(
                        0 if isinstance(exc, LabelStudioUnavailableError) else 1
                    )
                    kind = (
                        "unavailable" if isinstance(exc, LabelStudioUnavailableError) else "refused"
                    )
                    self.metrics.errors.labels(kind).inc()
                    log.error(
                        "%d escalations not written (retry in %.3g s): %s",
                        len(escalations),
                        delay,
                        exc,
                    )
                    if not paused:
                        paused = list(self.consumer.assignment())
                        self.consumer.pause(paused)
                    if self._wait(delay):
                        return False
                    delay = min(delay * 2, self.ls.retry_max_s)
                    continue
                self.metrics.label_studio_up.set(1)
                log.info(
                    "%d tasks created, %d escalations already had one",
                    result.created,
                    result.existing,
                )
                return True
        finally:
            if paused or self._held:
                self.consumer.resume(paused + self._held)
                self._held = []

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` while serving the consumer's group membership; ``True`` if the
        bridge was stopped meanwhile."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # Paused partitions deliver nothing; poll keeps the member alive in its group.
            message = self.consumer.poll(min(left, 1.0))
            if message is not None and message.error() is None:
                # From a partition assigned during the wait (not paused): put it back.
                self._hold(message)
        return True

    def _hold(self, message: Any) -> None:
        from confluent_kafka import TopicPartition

        partition = TopicPartition(message.topic(), message.partition(), message.offset())
        self.consumer.seek(partition)
        self.consumer.pause([partition])
        self._held.append(partition)

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self.consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            # Revoked meanwhile (a rebalance): the new owner reads these again and finds
            # their tasks (rule 1), so nothing is lost or doubled.
            log.warning("offsets not committed (%s); the escalations will be read again", exc)


def serve_metrics(metrics: BridgeMetrics, host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` in a thread; returns the function that stops it."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def shutdown() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return shutdown
