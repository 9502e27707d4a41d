"""``vigil review label-studio``: the review bridge to Label Studio (SPEC §13), until
SIGINT/SIGTERM: escalations become tasks, annotations become LabelEvents
(:mod:`streams.review.service`)."""

from __future__ import annotations

import argparse
import contextlib
import logging

from streams.cli.options import Subparsers, settings_of, with_config

__all__ = ["register"]


def run_label_studio(args: argparse.Namespace) -> int:
    from streams.dev.children import stop_signals
    from streams.review.service import LabelStudioService

    settings = settings_of(args)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = LabelStudioService(settings)
    try:
        # SIGINT/SIGTERM raise KeyboardInterrupt: the clean stop asked for. Stopped between
        # an import and its commit, the batch is read again and finds its tasks.
        with stop_signals(), contextlib.suppress(KeyboardInterrupt):
            service.start()
            service.run()
    finally:
        service.close()
    return 0


def register(sub: Subparsers) -> None:
    r = sub.add_parser("review", help="connect escalations to a review tool")
    r_sub = r.add_subparsers(dest="review_command", required=True)
    ls = with_config(
        r_sub.add_parser(
            "label-studio", help="escalations to Label Studio tasks, annotations back to labels"
        )
    )
    ls.set_defaults(func=run_label_studio)
