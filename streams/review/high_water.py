"""Where reconciliation got to, per Label Studio project, kept in Kafka.

A compacted topic (``<group_id>.reconciled``, one partition, made when missing) holds, per
project, the latest ``updated_at`` of a task whose annotations are all on the labels topic.
Written only after those labels are confirmed by the broker, so a bridge that restarts
(anywhere: it needs no disk) starts reconciliation where the last one stopped. The topic
holds one small record per project after compaction.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import orjson

from streams.config import Settings
from streams.errors import VigilError
from streams.kafka.checkpoints import watermarks

__all__ = ["HighWaterMarks", "high_water_topic"]

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 30.0


def high_water_topic(settings: Settings) -> str:
    return f"{settings.review.label_studio.group_id}.reconciled"


class HighWaterMarks:
    """``project id -> datetime`` (aware), loaded from the topic at start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = high_water_topic(settings)
        self._marks: dict[int, datetime] = {}
        self._producer: Any = None

    def load(self) -> dict[int, datetime]:
        """Make the topic if missing and read it to its end."""
        from confluent_kafka import (
            OFFSET_BEGINNING,
            Consumer,
            KafkaError,
            KafkaException,
            TopicPartition,
        )
        from confluent_kafka.admin import AdminClient, NewTopic

        kafka = self.settings.kafka.confluent_config()
        admin = AdminClient(kafka)
        spec = NewTopic(
            self.topic,
            num_partitions=1,
            replication_factor=self.settings.topics.replication_factor,
            config={"cleanup.policy": "compact"},
        )
        try:
            admin.create_topics([spec])[self.topic].result(timeout=_READ_TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise VigilError(f"cannot make topic {self.topic}: {exc}") from None
        consumer = Consumer(
            {
                **kafka,
                "group.id": f"{self.settings.review.label_studio.group_id}.reconciled-reader",
                "enable.auto.commit": False,
                "logger": logging.getLogger("vigil.kafka.consumer"),
            }
        )
        try:
            _, high = watermarks(consumer, TopicPartition(self.topic, 0), _READ_TIMEOUT_S)
            deadline = time.monotonic() + _READ_TIMEOUT_S
            consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            position = 0
            while position < high:
                message = consumer.poll(1.0)
                if time.monotonic() > deadline:
                    raise VigilError(f"reading {self.topic} took over {_READ_TIMEOUT_S} s")
                if message is None or message.error() is not None:
                    continue
                position = int(message.offset() or 0) + 1
                self._apply(message.key(), message.value())
        finally:
            consumer.close()
        log.info("reconciliation marks from %s: %d projects", self.topic, len(self._marks))
        return dict(self._marks)

    def get(self, project_id: int) -> datetime | None:
        return self._marks.get(project_id)

    def set(self, project_id: int, mark: datetime) -> None:
        """Record and persist (confirmed) a new mark; an older one than held is ignored."""
        if mark.tzinfo is None:
            raise ValueError("mark must be timezone-aware")
        held = self._marks.get(project_id)
        if held is not None and mark <= held:
            return
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(
                {
                    **self.settings.kafka.confluent_config(),
                    "acks": "all",
                    "logger": logging.getLogger("vigil.kafka.producer"),
                }
            )
        value = orjson.dumps({"project": project_id, "updated_at": mark.isoformat()})
        self._producer.produce(self.topic, value, key=str(project_id).encode())
        if self._producer.flush(_READ_TIMEOUT_S):
            raise VigilError(f"reconciliation mark of project {project_id} not confirmed")
        self._marks[project_id] = mark

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            record = orjson.loads(value or b"")
            self._marks[int(record["project"])] = datetime.fromisoformat(record["updated_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring an unreadable record in %s (key %r)", self.topic, key)
