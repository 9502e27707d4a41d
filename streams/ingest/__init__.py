"""Getting messages to the processor: one ingest core, the batch and Faust Kafka drivers,
replay, the worker entry.

The core (:mod:`streams.ingest.core`) owns the delivery guarantee; the drivers only move
messages. The Faust driver (:mod:`streams.ingest.faust_app`) is imported only when a worker uses it.
"""

from __future__ import annotations

from streams.ingest.batch import BatchIngest, BatchWorker
from streams.ingest.core import IngestCore
from streams.ingest.replay import ReplaySummary, run_replay
from streams.ingest.worker import run_worker

__all__ = ["BatchIngest", "BatchWorker", "IngestCore", "ReplaySummary", "run_replay", "run_worker"]
