"""Getting messages to the processor: the batch and Faust Kafka loops, replay, the worker entry.

The Faust driver (:mod:`streams.ingest.faust_app`) is imported only when a worker uses it.
"""

from __future__ import annotations

from streams.ingest.batch import BatchIngest, BatchWorker
from streams.ingest.replay import ReplaySummary, run_replay
from streams.ingest.worker import run_worker

__all__ = ["BatchIngest", "BatchWorker", "ReplaySummary", "run_replay", "run_worker"]
