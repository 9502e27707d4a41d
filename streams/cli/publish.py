"""``vigil publish FILE``: produce JSONL lines to a topic, keyed by ``model_id``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from streams.cli.options import Subparsers, settings_of, with_config
from streams.client import InferencePublisher
from streams.config import Settings
from streams.errors import InvalidEventError
from streams.events.schema import decode_inference, decode_label, read_model_id

__all__ = ["publish_file", "register"]


def publish_file(settings: Settings, path: str, *, topic: str, validate: bool = True) -> int:
    """Publish every non-empty line; returns the count. With ``validate``, a bad line
    stops the run before anything after it is sent and names its line number."""
    decode = decode_label if topic == settings.topics.labels else decode_inference
    kafka_conf = {
        k: v for k, v in settings.kafka.confluent_config().items() if k != "bootstrap.servers"
    }
    stream = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    n = 0
    with (
        stream,
        InferencePublisher(
            settings.kafka.bootstrap, topic=topic, timeout=10.0, kafka_config=kafka_conf
        ) as pub,
    ):
        for lineno, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            key = None
            if validate:
                try:
                    decode(line, settings.worker.max_event_bytes)
                except InvalidEventError as exc:
                    raise InvalidEventError(exc.reason, f"line {lineno}: {exc.detail}") from None
            try:
                model_id = read_model_id(orjson.loads(line))
                key = model_id.encode() if model_id else None
            except orjson.JSONDecodeError:
                key = None
            pub.publish_raw(line, key=key, topic=topic)
            n += 1
    return n


def run(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    topic = args.topic or (settings.topics.labels if args.labels else settings.topics.inference)
    n = publish_file(settings, args.file, topic=topic, validate=not args.raw)
    print(f"published {n} messages to {topic}")
    return 0


def register(sub: Subparsers) -> None:
    pb = with_config(sub.add_parser("publish", help="produce JSONL events to Kafka"))
    pb.add_argument("file", help="JSONL file, one event per line ('-' for stdin)")
    pb.add_argument("--labels", action="store_true", help="to the labels topic")
    pb.add_argument("--topic", help="explicit topic")
    pb.add_argument("--raw", action="store_true", help="send lines without validating them")
    pb.set_defaults(func=run)
