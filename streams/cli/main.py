"""``vigil``: the parser built from each command module, and the dispatch with its exit codes.

Each command module exports ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it and returns the exit code.

Exit codes: 0 done; 1 a runtime failure (:class:`~streams.errors.VigilError`, e.g. the
broker cannot be reached); 2 bad input from the user: a bad argument, a file that
cannot be read, an invalid configuration (bad YAML included); 130 interrupted. Errors
are one line on stderr, ``vigil: <what>: <why>``, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from streams.cli import (
    config,
    dataset,
    demo,
    publish,
    reference,
    replay,
    review,
    topics,
    worker,
)
from streams.errors import ConfigError, VigilError

__all__ = ["build_parser", "main"]

COMMANDS = (worker, demo, replay, publish, reference, topics, config, review, dataset)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the usage block would bury the one line that says
    what is wrong (``--help`` still prints it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vigil", description="Streaming monitor for ML models.")
    sub = p.add_subparsers(dest="command", required=True)  # subparsers are _Parsers too
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except ConfigError as exc:  # bad YAML included: the config loader says where, on one line
        return _fail(2, f"configuration error: {exc}")
    except OSError as exc:
        if exc.filename is None:  # not a file the user named: a socket, a timeout
            raise
        return _fail(2, f"{exc.filename}: {exc.strerror}")
    except VigilError as exc:
        return _fail(1, str(exc))
    except KeyboardInterrupt:
        return 130


def _fail(code: int, message: str) -> int:
    print(f"vigil: {message}", file=sys.stderr)
    return code
