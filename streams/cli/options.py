"""What several commands share: the ``--config`` option and loading the settings it names."""

from __future__ import annotations

import argparse

from streams.config import Settings, load_settings

__all__ = ["settings_of", "with_config"]

Subparsers = argparse._SubParsersAction  # argparse has no public name for it


def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--config", "-c", help="YAML config file (VIGIL_* env vars win)")
    return sp


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))
