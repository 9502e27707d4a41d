"""``vigil replay FILE [--labels FILE]``: the detectors over JSONL files (events from
standard input with ``FILE`` ``-``), no Kafka."""

from __future__ import annotations

import argparse

from streams.cli.options import Subparsers, settings_of, with_config

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    from streams.ingest.replay import run_replay

    summary = run_replay(
        settings_of(args), args.file, labels=args.labels, out_dir=args.out, progress=not args.quiet
    )
    print(summary.render())
    return 0


def _a_file(text: str) -> str:
    """argparse ``type=`` of ``--labels``: labels are read whole and sorted before the
    events stream, so they cannot share standard input with them."""
    if text == "-":
        raise argparse.ArgumentTypeError("must be a file; standard input is for the events")
    return text


def register(sub: Subparsers) -> None:
    r = with_config(sub.add_parser("replay", help="run the detectors over JSONL files"))
    r.add_argument("file", help="JSONL of InferenceEvents ('-' for stdin)")
    r.add_argument("--labels", type=_a_file, help="JSONL of LabelEvents (a file)")
    r.add_argument("--out", default="replay-out", help="directory for escalations/alerts JSONL")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=run)
