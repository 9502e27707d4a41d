"""``vigil demo``: broker, worker and synthetic traffic on this machine, in one command.

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts the local jar broker;
runs one worker process and synthetic traffic for three models (one drifts
after a while, some events are malformed, a share of predictions gets labels
back after a delay); prints the metrics URL and a live summary. Ctrl-C (or
``--duration``) stops everything, leaving no process behind.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from streams.client import InferencePublisher
from streams.config import Settings
from streams.scrape import scrape, total
from streams.traffic import INVALID_KINDS, DriftSchedule, SyntheticModel, invalid_event

__all__ = ["run_demo"]

INVALID_SHARE = 0.03
LABEL_SHARE = 0.3
LABEL_DELAY_S = (2.0, 8.0)


def demo_models(rate: float) -> list[SyntheticModel]:
    """Three models; ``churn`` drifts on x1 after ~60 s of traffic and recovers ~60 s later."""
    per_model = max(1, int(rate / 3))
    now = datetime.now(UTC)
    return [
        SyntheticModel("fraud-detector", n_numeric=6, n_categorical=1, seed=1, start=now),
        SyntheticModel(
            "churn",
            n_numeric=4,
            n_categorical=1,
            seed=2,
            start=now,
            drift=[DriftSchedule("x1", start=60 * per_model, end=120 * per_model, shift=2.0)],
        ),
        SyntheticModel("support-router", n_numeric=3, n_categorical=2, seed=3, start=now),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_demo(
    settings: Settings,
    *,
    duration: float | None = None,
    rate: float = 300.0,
    traffic_only: bool = False,
) -> int:
    broker = None
    worker: subprocess.Popen[bytes] | None = None
    bootstrap = settings.kafka.bootstrap
    try:
        if not traffic_only and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            from streams.local_broker import LocalBroker

            print("starting the local Kafka broker (first run resolves jars with Maven) ...")
            broker = LocalBroker().start()
            bootstrap = broker.bootstrap
        settings = replace(settings, kafka=replace(settings.kafka, bootstrap=bootstrap))
        from streams.topics import create_topics

        create_topics(settings)
        metrics_url = None
        if not traffic_only:
            port = _free_port()
            env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, VIGIL_METRICS_PORT=str(port))
            env.setdefault("VIGIL_WORKER__METRICS_HOST", "127.0.0.1")
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env,
                start_new_session=True,
            )
            metrics_url = f"http://127.0.0.1:{port}/metrics"
            print(f"kafka:   {bootstrap}")
            print(f"metrics: {metrics_url}")
            print("Ctrl-C stops everything.\n")
        _traffic(settings, bootstrap, rate, duration, metrics_url, worker)
        return 0
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        if worker is not None:
            _stop_process(worker)
        if broker is not None:
            broker.stop()
        print("stopped cleanly.")


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _traffic(
    settings: Settings,
    bootstrap: str,
    rate: float,
    duration: float | None,
    metrics_url: str | None,
    worker: subprocess.Popen[bytes] | None,
) -> None:
    rng = random.Random(42)
    models = demo_models(rate)
    kafka_conf = {
        k: v for k, v in settings.kafka.confluent_config().items() if k != "bootstrap.servers"
    }
    pending_labels: deque[tuple[float, dict[str, Any]]] = deque()
    started = time.monotonic()
    next_report = started + 2.0
    sent = invalid = labels = 0
    with InferencePublisher(
        bootstrap,
        topic=settings.topics.inference,
        labels_topic=settings.topics.labels,
        kafka_config=kafka_conf,
    ) as pub:
        while duration is None or time.monotonic() - started < duration:
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode}")
            tick = time.monotonic()
            for _ in range(max(1, int(rate / 10))):
                model = rng.choice(models)
                if rng.random() < INVALID_SHARE:
                    kind = rng.choice(INVALID_KINDS)
                    raw, _reason = invalid_event(kind, model.model_id, sent)
                    pub.publish_raw(raw, key=model.model_id.encode())
                    invalid += 1
                else:
                    event, truth = model.event()
                    pub.publish_raw(_dumps(event), key=model.model_id.encode())
                    if rng.random() < LABEL_SHARE:
                        due = tick + rng.uniform(*LABEL_DELAY_S)
                        pending_labels.append((due, _label_for(event, truth)))
                sent += 1
            while pending_labels and pending_labels[0][0] <= tick:
                pub.publish_label(pending_labels.popleft()[1])
                labels += 1
            if tick >= next_report:
                next_report = tick + 2.0
                print(_summary(metrics_url, sent, invalid, labels, tick - started), flush=True)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def _dumps(event: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(event)


def _label_for(event: dict[str, Any], truth: str) -> dict[str, Any]:
    return {
        "event_id": event["event_id"],
        "model_id": event["model_id"],
        "ts": datetime.now(UTC).isoformat(),
        "label": truth,
        "source": "outcome",
    }


def _summary(url: str | None, sent: int, invalid: int, labels: int, elapsed: float) -> str:
    head = f"[{elapsed:6.0f}s] sent {sent} (invalid {invalid}, labels {labels})"
    if url is None:
        return head
    try:
        s = scrape(url, timeout=1.0)
    except OSError:
        return head + " | worker starting ..."
    processed = total(s, "vigil_events_total", outcome="processed")
    dead = total(s, "vigil_dead_letters_total")
    esc = total(s, "vigil_escalations_total")
    supp = total(s, "vigil_escalations_suppressed_total")
    alerts = total(s, "vigil_alerts_total", state="drift")
    drifting = sorted(
        f"{lab['model']}:{lab['signal']}" for lab, v in s.get("vigil_drift_active", []) if v > 0
    )
    line = (
        f"{head} | processed {processed:.0f}  escalations {esc:.0f}  suppressed {supp:.0f}"
        f"  dead letters {dead:.0f}  drift alerts {alerts:.0f}"
    )
    if drifting:
        line += f"  IN DRIFT: {', '.join(drifting[:4])}"
    return line
