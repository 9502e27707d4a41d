"""The ``vigil`` command line (SPEC §9): one module per command, :func:`main` dispatches."""

from __future__ import annotations

from streams.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
