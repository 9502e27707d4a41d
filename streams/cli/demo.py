"""``vigil demo``: the whole system on this machine (broker, worker, Prometheus, traffic;
with ``--review`` Label Studio and the review bridge too)."""

from __future__ import annotations

import argparse

from streams.cli.options import Subparsers, positive_number, settings_of, with_config

__all__ = ["register"]


def run(args: argparse.Namespace) -> int:
    from streams.dev.demo import run_demo

    return run_demo(
        settings_of(args),
        duration=args.duration,
        rate=args.rate,
        traffic_only=args.traffic_only,
        review=args.review,
    )


def register(sub: Subparsers) -> None:
    d = with_config(sub.add_parser("demo", help="the whole system on this machine"))
    d.add_argument("--duration", type=positive_number, default=None, help="stop after N seconds")
    d.add_argument(
        "--rate", type=positive_number, default=300.0, help="events per second (all models)"
    )
    d.add_argument(
        "--traffic-only", action="store_true", help="only generate traffic (no broker/worker)"
    )
    d.add_argument(
        "--review",
        action="store_true",
        help="also Label Studio and the review bridge: label one model's escalations in a "
        "browser (needs `make label-studio`)",
    )
    d.set_defaults(func=run)
