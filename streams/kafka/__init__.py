"""Kafka-side state and administration: the checkpoint store and the topics."""

from __future__ import annotations

from streams.kafka.checkpoints import Checkpoint, CheckpointError, CheckpointStore
from streams.kafka.topics import (
    MAX_CHECKPOINT_BYTES,
    check_copartitioned,
    create_topics,
    topic_specs,
)

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "check_copartitioned",
    "create_topics",
    "topic_specs",
]
