"""The ``vigil`` command line (SPEC §9)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.config import Settings, load_settings
from streams.errors import ConfigError, VigilError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def cmd_worker(args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    run_worker(_settings(args))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(
        _settings(args),
        duration=args.duration,
        rate=args.rate,
        traffic_only=args.traffic_only,
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.replay import run_replay

    summary = run_replay(
        _settings(args), args.file, labels=args.labels, out_dir=args.out, progress=not args.quiet
    )
    print(summary.render())
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from streams.publish import publish_file

    settings = _settings(args)
    topic = args.topic or (settings.topics.labels if args.labels else settings.topics.inference)
    n = publish_file(settings, args.file, topic=topic, validate=not args.raw)
    print(f"published {n} messages to {topic}")
    return 0


def cmd_reference_build(args: argparse.Namespace) -> int:
    from streams.reference_cli import build_reference_file

    path = build_reference_file(
        _settings(args), args.file, model_id=args.model, version=args.version, out=args.out
    )
    print(f"wrote reference profile {path}")
    return 0


def cmd_topics_create(args: argparse.Namespace) -> int:
    from streams.topics import create_topics

    for name, status in create_topics(_settings(args)).items():
        print(f"{name}: {status}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from streams.config_check import check_config_file

    ok, lines = check_config_file(args.file)
    for line in lines:
        print(line)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil", description="Streaming monitor for ML models.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", help="YAML config file (VIGIL_* env vars win)")
        return sp

    w = with_config(sub.add_parser("worker", help="run a worker"))
    w.set_defaults(func=cmd_worker)

    d = with_config(sub.add_parser("demo", help="the whole system on this machine"))
    d.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    d.add_argument("--rate", type=float, default=300.0, help="events per second (all models)")
    d.add_argument(
        "--traffic-only", action="store_true", help="only generate traffic (no broker/worker)"
    )
    d.set_defaults(func=cmd_demo)

    r = with_config(sub.add_parser("replay", help="run the detectors over JSONL files"))
    r.add_argument("file", help="JSONL of InferenceEvents")
    r.add_argument("--labels", help="JSONL of LabelEvents")
    r.add_argument("--out", default="replay-out", help="directory for escalations/alerts JSONL")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_replay)

    pb = with_config(sub.add_parser("publish", help="produce JSONL events to Kafka"))
    pb.add_argument("file", help="JSONL file, one event per line ('-' for stdin)")
    pb.add_argument("--labels", action="store_true", help="to the labels topic")
    pb.add_argument("--topic", help="explicit topic")
    pb.add_argument("--raw", action="store_true", help="send lines without validating them")
    pb.set_defaults(func=cmd_publish)

    ref = sub.add_parser("reference", help="reference profiles")
    ref_sub = ref.add_subparsers(dest="reference_command", required=True)
    rb = with_config(ref_sub.add_parser("build", help="build a profile from historical events"))
    rb.add_argument("file")
    rb.add_argument("--model", required=True)
    rb.add_argument("--version", required=True)
    rb.add_argument("--out", help="output path (default reference-<model>-<version>.json)")
    rb.set_defaults(func=cmd_reference_build)

    t = sub.add_parser("topics", help="topic administration")
    t_sub = t.add_subparsers(dest="topics_command", required=True)
    tc = with_config(t_sub.add_parser("create", help="create the configured topics"))
    tc.set_defaults(func=cmd_topics_create)

    c = sub.add_parser("config", help="configuration")
    c_sub = c.add_subparsers(dest="config_command", required=True)
    cc = c_sub.add_parser("check", help="validate a config file and explain each error")
    cc.add_argument("file")
    cc.set_defaults(func=cmd_config_check)
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


if __name__ == "__main__":
    sys.exit(main())
