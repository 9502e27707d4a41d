"""``vigil``: the parser built from each command module, and the dispatch with its exit codes.

Each command module exports ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.cli import config, demo, publish, reference, replay, topics, worker
from streams.errors import ConfigError, VigilError

__all__ = ["build_parser", "main"]

COMMANDS = (worker, demo, replay, publish, reference, topics, config)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil", description="Streaming monitor for ML models.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"vigil: configuration error: {exc}", file=sys.stderr)
        return 2
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
