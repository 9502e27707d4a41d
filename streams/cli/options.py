"""What several commands share: the ``--config`` option and loading the settings it names,
and the argument types that check a value where it is parsed."""

from __future__ import annotations

import argparse
import math

from streams.config import Settings, load_settings

__all__ = ["positive_number", "settings_of", "with_config"]

Subparsers = argparse._SubParsersAction  # argparse has no public name for it


def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--config", "-c", help="YAML config file (VIGIL_* env vars win)")
    return sp


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def positive_number(text: str) -> float:
    """argparse ``type=``: a finite number > 0 (a rate, a duration).

    >>> positive_number("2.5")
    2.5
    >>> positive_number("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number > 0; got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value
