"""The latency baseline of ``benchmarks/throughput.py``: a bare relay, consume to produce.

What a stream processor on this broker and client costs before any of vigil's work:
it reads the inference topic with the worker's consumer settings and batching
(:func:`~streams.ingest.batch.consumer_config`,
:func:`~streams.ingest.batch.consume_arrived`), parses each event (``orjson.loads``),
and produces the events whose confidence is below ``--min-confidence`` (as vigil's
``threshold`` policy escalates them) to the escalations topic with the worker's
producer settings (:func:`~streams.ingest.batch.producer_config`), unchanged: the
event's own bytes, about the size of an escalation record. No validation, no state,
no checkpoints, no commits. The latency run measures it exactly as it measures a
worker (``relay_p50_latency_ms``, ``relay_p99_latency_ms``): what is left of the
worker's figures above the relay's is vigil's.

``python benchmarks/baselines/bare_relay.py --config worker.yaml [--min-confidence 0.99]``
(the worker's config file; ``KAFKA_BOOTSTRAP_SERVERS`` as for ``vigil worker``). Stops on
SIGTERM or SIGINT: closes its consumer and flushes its producer. Nothing in
``detectors/`` or ``streams/`` imports it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import orjson

from streams.config import Settings
from streams.config.loading import load_settings
from streams.ingest.batch import consume_arrived, consumer_config, producer_config

#: Printed (and flushed) once the relay has subscribed: the harness waits for it.
READY = "bare relay: subscribed"


def below(value: bytes, min_confidence: float) -> bool:
    """Whether the event ``value`` carries a class prediction whose confidence (its
    label's score when it has ``scores``, else its ``confidence``, as vigil takes it) is
    below ``min_confidence``; anything unreadable is not.

    >>> below(b'{"prediction": {"label": "a", "confidence": 0.5}}', 0.99)
    True
    >>> below(b'{"prediction": {"label": "a", "scores": {"a": 0.995, "b": 0.005}}}', 0.99)
    False
    >>> below(b'{"prediction": {"value": 3.0}}', 0.99), below(b"not json", 0.99)
    (False, False)
    """
    try:
        prediction = orjson.loads(value)["prediction"]
        scores = prediction.get("scores")  # as vigil reads it: the label's score first
        confidence = prediction["confidence"] if scores is None else scores[prediction["label"]]
        return bool(confidence < min_confidence)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return False


def relay(
    settings: Settings,
    min_confidence: float,
    stop: threading.Event,
    *,
    ready: Callable[[], None] | None = None,
) -> int:
    """Relay until ``stop`` is set; returns how many events were produced. ``ready``:
    called once subscribed."""
    from confluent_kafka import Consumer, Producer

    consumer = Consumer(consumer_config(settings))
    producer = Producer(producer_config(settings))
    consumer.subscribe([settings.topics.inference])
    if ready is not None:
        ready()
    out_topic = settings.topics.escalations
    size = settings.worker.batch_size
    within = settings.worker.batch_within_s
    produced = 0
    try:
        while not stop.is_set():
            for msg in consume_arrived(consumer, size, within):
                value = msg.value()
                if msg.error() is None and value is not None and below(value, min_confidence):
                    producer.produce(out_topic, key=msg.key(), value=value)
                    produced += 1
            producer.poll(0)
    finally:
        consumer.close()
        producer.flush(30)
    return produced


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="the worker's config file")
    ap.add_argument("--min-confidence", type=float, default=0.99)
    args = ap.parse_args(argv)
    settings = load_settings(args.config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    n = relay(settings, args.min_confidence, stop, ready=lambda: print(READY, flush=True))
    print(f"bare relay: stopped, {n} events relayed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
