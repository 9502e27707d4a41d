"""vigil's Kafka side: the event contract, the per-event core, ingestion, the CLI.

The public API a service or a notebook needs is re-exported here; each subpackage's
``__init__`` is that subpackage's public API:

* :mod:`streams.events`: the wire contract (decode and validate, records, dead letters);
* :mod:`streams.processing`: the pure per-message core (processor, fleet, label join, metrics);
* :mod:`streams.ingest`: the Kafka loops (batch, Faust), replay, and the worker entry;
* :mod:`streams.kafka`: checkpoint store and topics;
* :mod:`streams.cli`: one module per ``vigil`` command;
* :mod:`streams.dev`: local broker, demo and synthetic traffic.
"""

from __future__ import annotations

from streams.client import InferencePublisher
from streams.config import Settings, load_settings
from streams.errors import (
    ConfigError,
    InvalidEventError,
    OutputLostError,
    PublishError,
    VigilError,
)

__all__ = [
    "ConfigError",
    "InferencePublisher",
    "InvalidEventError",
    "OutputLostError",
    "PublishError",
    "Settings",
    "VigilError",
    "load_settings",
]
