"""``vigil worker``: run one worker process until SIGINT/SIGTERM.

Two ingestion paths, two drivers of the same :class:`~streams.ingest.core.IngestCore`
(processor, state, checkpoints, metrics and delivery guarantee):

* ``worker.ingest: batch`` (default): :class:`~streams.ingest.BatchWorker`, a
  confluent-kafka consumer in batches, run under mode (Faust's service runtime:
  signals, clean shutdown, crash handling);
* ``worker.ingest: faust``: the Faust app of :mod:`streams.ingest.faust_app`, one agent over the
  input topics on Faust's aiokafka transport — several times slower per event.
"""

from __future__ import annotations

import logging

from streams.config import Settings
from streams.gc_policy import settle_collector

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> None:
    """Block running a worker; returns after a clean stop, exits non-zero on a crash."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.worker.ingest == "faust":
        import faust

        from streams.ingest.faust_app import create_app

        vigil = create_app(settings)
        vigil.core.start()
        settle_collector()  # the batch driver does this once its service has started
        faust.Worker(vigil.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
        return
    import mode

    from streams.ingest.batch import BatchWorker

    mode.Worker(
        BatchWorker(settings), loglevel=settings.log_level, quiet=True
    ).execute_from_commandline()
