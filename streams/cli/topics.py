"""``vigil topics create``: the configured topics with partitions, retention and compaction."""

from __future__ import annotations

import argparse

from streams.cli.options import Subparsers, settings_of, with_config

__all__ = ["register"]


def run_create(args: argparse.Namespace) -> int:
    from streams.kafka.topics import create_topics

    for name, status in create_topics(settings_of(args)).items():
        print(f"{name}: {status}")
    return 0


def register(sub: Subparsers) -> None:
    t = sub.add_parser("topics", help="topic administration")
    t_sub = t.add_subparsers(dest="topics_command", required=True)
    tc = with_config(t_sub.add_parser("create", help="create the configured topics"))
    tc.set_defaults(func=run_create)
