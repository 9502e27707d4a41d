"""``vigil worker``: run one worker process until SIGINT/SIGTERM."""

from __future__ import annotations

import logging

from streams.app import create_app
from streams.config import Settings

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> None:
    """Block running a Faust worker with vigil's agents; returns after a clean stop."""
    import faust

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    vigil = create_app(settings)
    vigil.start_metrics_server()
    worker = faust.Worker(vigil.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
