"""Exceptions raised by :mod:`streams`.

::

    VigilError                       root of everything raised on purpose here
    ├── InvalidEventError (ValueError)   a consumed message breaks the contract (SPEC §2–3);
    │                                    carries the dead-letter ``reason`` and ``detail``
    ├── ConfigError (ValueError)         a configuration file or variable is invalid
    ├── PublishError (RuntimeError)      a publisher could not deliver within its timeout
    ├── OutputLostError (RuntimeError)   a worker's output was not delivered: stop, no commit
    ├── InstanceFencedError (RuntimeError) another worker joined with this one's instance id
    ├── CheckpointError (ValueError)     a checkpoint record cannot be decoded
    ├── LocalBrokerError (RuntimeError)  the local jar broker (:mod:`streams.dev.local_broker`)
    │   ├── ToolMissingError                 java or mvn is not on PATH
    │   ├── JarResolveError                  Maven could not resolve the jars
    │   └── BrokerStartError                 storage format failed, or not ready in time
    ├── LocalPrometheusError (RuntimeError)  the demo's Prometheus (:mod:`streams.dev.demo`)
    ├── LocalLabelStudioError (RuntimeError) a local Label Studio (:mod:`streams.dev.label_studio`)
    │   └── LabelStudioMissingError          not installed (``make label-studio``)
    ├── LabelStudioError (RuntimeError)      a Label Studio API request failed (refused)
    │   └── LabelStudioUnavailableError      unreachable, or a server error: retry later
    ├── InvalidAnnotationError (ValueError)  an annotation that cannot be a LabelEvent
    ├── LabelSinkError (RuntimeError)        labels not confirmed by the broker: send again
    ├── DatasetTableError (RuntimeError)     the Delta table cannot be read or written
    └── SnapshotError (ValueError)           a dataset snapshot name, version or hash is wrong

``CheckpointError``, the local broker's three subclasses, ``LabelStudioMissingError``,
``LabelStudioUnavailableError``, ``InvalidAnnotationError``, ``LabelSinkError``,
``DatasetTableError`` and ``SnapshotError`` are defined next to the code that raises them
(:mod:`streams.kafka.checkpoints`, :mod:`streams.dev.local_broker`, :mod:`streams.dev.label_studio`,
:mod:`streams.review.label_studio_api`, :mod:`streams.review.annotations`,
:mod:`streams.review.label_sink`, :mod:`streams.dataset.table`,
:mod:`streams.dataset.snapshots`).
"""

from __future__ import annotations

from typing import Literal

DeadLetterReason = Literal["too_large", "invalid_json", "schema", "bad_value", "processing_error"]
DEAD_LETTER_REASONS: tuple[DeadLetterReason, ...] = (
    "too_large",
    "invalid_json",
    "schema",
    "bad_value",
    "processing_error",
)


class VigilError(Exception):
    """Root of the exceptions raised on purpose by :mod:`streams`."""


class InvalidEventError(VigilError, ValueError):
    """A message that breaks the event contract; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: DeadLetterReason, detail: str, model_id: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason: DeadLetterReason = reason
        self.detail = detail
        self.model_id = model_id


class ConfigError(VigilError, ValueError):
    """A configuration value breaks its rule; the message names the key and the rule."""


class PublishError(VigilError, RuntimeError):
    """Events could not be delivered to Kafka in time."""


class OutputLostError(VigilError, RuntimeError):
    """A worker's escalation, alert or dead letter could not be delivered to Kafka.

    The worker stops without checkpointing or committing, so that a restarted worker
    processes the same messages again from the last checkpoint.
    """


class InstanceFencedError(VigilError, RuntimeError):
    """The consumer group fenced this worker: another one joined with the same
    ``worker.instance_id`` (``VIGIL_INSTANCE_ID``). Static membership needs an id per
    worker; the fenced worker stops (librdkafka cannot consume after a fence)."""

    def __init__(self, instance_id: str | None, detail: str) -> None:
        super().__init__(
            f"fenced by another worker with the same worker.instance_id {instance_id!r} "
            f"(VIGIL_INSTANCE_ID): give each worker its own id ({detail})"
        )
        self.instance_id = instance_id


class LocalBrokerError(VigilError, RuntimeError):
    """The local jar broker could not be resolved, started or queried (dev tooling)."""


class LocalPrometheusError(VigilError, RuntimeError):
    """The demo's local Prometheus cannot start (binary or deploy files missing, no answer)."""


class LocalLabelStudioError(VigilError, RuntimeError):
    """A local Label Studio server could not be found, started or stopped (dev tooling)."""


class LabelStudioError(VigilError, RuntimeError):
    """A Label Studio API request failed. :class:`LabelStudioUnavailableError` (server down
    or erring) is worth retrying; any other is a refusal that a retry would not change."""
