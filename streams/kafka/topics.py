"""``vigil topics create``: the topics vigil reads and writes, with their settings; the
check that the two input topics are co-partitioned."""

from __future__ import annotations

import logging
from typing import Any

from streams.config import Settings
from streams.errors import VigilError

__all__ = [
    "COPARTITION_CHECK_S",
    "MAX_CHECKPOINT_BYTES",
    "check_copartitioned",
    "create_topics",
    "metadata_admin",
    "topic_specs",
]

#: The checkpoint topic's record size: checkpoints of models with large label joins can
#: exceed Kafka's 1 MB default. The checkpoint store's clients are sized from it too.
MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024


def topic_specs(settings: Settings) -> dict[str, dict[str, Any]]:
    """Name → {partitions, config} for each vigil topic."""
    t = settings.topics
    retention = {"retention.ms": str(t.retention_ms), "cleanup.policy": "delete"}
    # Inputs are keyed by model_id: partitions decide how many workers can share load.
    return {
        t.inference: {"partitions": t.partitions, "config": retention},
        t.labels: {"partitions": t.partitions, "config": retention},
        t.escalations: {"partitions": t.partitions, "config": retention},
        t.alerts: {"partitions": t.partitions, "config": retention},
        t.deadletter: {"partitions": t.partitions, "config": retention},
        t.reviewed: {"partitions": t.partitions, "config": retention},
        # Same partition count as the inputs: a model's checkpoint lives in the partition
        # number its events live in. Compacted: only the latest state per model matters.
        settings.checkpoint_topic: {
            "partitions": t.partitions,
            "config": {
                "cleanup.policy": "compact",
                "max.message.bytes": str(MAX_CHECKPOINT_BYTES + 65536),
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": str(3600 * 1000),
            },
        },
    }


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create missing topics; returns name → "created" | "exists". Raises on other errors."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    problems: list[str] = []

    def on_error(err: Any) -> None:
        problems.append(err.str())

    conf: dict[str, Any] = {
        **settings.kafka.confluent_config(),
        "error_cb": on_error,
        # librdkafka's own lines (e.g. "Purging 1 unserved events" at close) go to logging,
        # not straight to stderr, where they broke into the demo's screen.
        "logger": logging.getLogger("vigil.kafka.admin"),
    }
    admin = AdminClient(conf)
    specs = topic_specs(settings)
    new = [
        NewTopic(
            name,
            num_partitions=spec["partitions"],
            replication_factor=settings.topics.replication_factor,
            config=spec["config"],
        )
        for name, spec in specs.items()
    ]
    result: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
            result[name] = "created"
        except TimeoutError:
            why = f": {problems[-1]}" if problems else ""
            raise VigilError(
                f"could not create topic {name!r} on {settings.kafka.bootstrap} within "
                f"{timeout:.0f}s{why}"
            ) from None
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                result[name] = "exists"
            else:
                raise
    return result


#: How often a running worker checks again that the input topics are co-partitioned (both
#: drivers): a labels topic created after the worker started (auto-created with the
#: broker's default count, say) or a topic given more partitions must stop it with the
#: reason, not mis-join labels for ever.
COPARTITION_CHECK_S = 60.0


def metadata_admin(settings: Settings) -> Any:
    """An admin client whose metadata requests never create a topic.

    librdkafka's admin and producer clients ask the broker to auto-create a topic they
    request metadata for (``allow.auto.create.topics`` is true for them, false for a
    consumer), and a broker with ``auto.create.topics.enable`` (Kafka's default) then
    creates it with its default partition count: asking whether a labels topic exists
    would make it, with 1 partition.
    """
    from confluent_kafka.admin import AdminClient

    return AdminClient({**settings.kafka.confluent_config(), "allow.auto.create.topics": False})


def check_copartitioned(client: Any, settings: Settings, timeout: float = 10.0) -> None:
    """Raise :class:`VigilError` if the inference and labels topics both exist with
    different partition counts: partition *p* of labels would not hold the labels of
    partition *p*'s models (``vigil topics`` creates them alike). A topic that does not
    exist yet is not checked, nor created. ``client``: a confluent-kafka consumer or
    :func:`metadata_admin` (any client with ``list_topics`` that does not auto-create
    topics); a broker that does not answer within ``timeout`` raises ``KafkaException``."""
    t = settings.topics
    counts = {}
    for name in (t.inference, t.labels):
        # One topic's metadata each (a cluster's whole list can be large).
        meta = client.list_topics(name, timeout=timeout).topics.get(name)
        if meta is not None and meta.error is None:
            counts[name] = len(meta.partitions)
    if len(counts) == 2 and counts[t.inference] != counts[t.labels]:
        raise VigilError(
            f"the input topics are not co-partitioned: {t.inference} has "
            f"{counts[t.inference]} partitions and {t.labels} {counts[t.labels]}; a model's "
            "labels must be in the partition of its events (create both with the same "
            "topics.partitions: vigil topics)"
        )
