"""``vigil worker``: run one worker until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

from streams.cli.options import Subparsers, settings_of, with_config

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    from streams.ingest.worker import run_worker

    run_worker(settings_of(args))
    return 0


def register(sub: Subparsers) -> None:
    w = with_config(sub.add_parser("worker", help="run a worker"))
    w.set_defaults(func=run)
