"""SASL/SCRAM-SHA-512 over TLS, end to end, against a broker of this module's own.

The worker, the publisher and the CLI (``vigil topics create``, ``vigil publish``) are
configured only through the documented environment aliases; events flow through and are
escalated and dead-lettered. A wrong password is refused with an error a user can act on,
and the password never shows in the worker log, CLI output or on ``/metrics``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import orjson
import pytest
import yaml

from streams.client import InferencePublisher
from streams.config import load_settings, settings_from_dict
from streams.errors import PublishError
from streams.ingest.faust_app import faust_credentials
from streams.kafka.topics import create_topics
from tests.conftest import kafka_unavailable
from tests.support import TopicReader, WorkerProcess, free_port, unique_topics, wait_until

# Distinctive, so that a leak is found by plain substring search.
PASSWORD = "Scram-Pw-7c1f0e9b24d6-never-print-me"
WRONG_PASSWORD = "Wrong-Pw-3a8d5b1e6f90-never-print-me"
MIN_CONFIDENCE = 0.5
CLI_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[Any]:
    """A LocalBroker with a SASL_SSL (SCRAM-SHA-512) listener, for this module only."""
    from streams.dev.local_broker import LocalBroker, LocalBrokerError

    broker = LocalBroker(sasl_ssl=True, sasl_password=PASSWORD)
    try:
        broker.start()
    except LocalBrokerError as exc:
        kafka_unavailable(f"local SASL_SSL broker: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


def secure_env(broker: Any, password: str = PASSWORD) -> dict[str, str]:
    """The documented environment aliases, and nothing else, to reach the SASL_SSL port."""
    return {
        "VIGIL_KAFKA_BOOTSTRAP": broker.sasl_ssl_bootstrap,
        "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VIGIL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "VIGIL_KAFKA_SASL_USERNAME": broker.sasl_username,
        "VIGIL_KAFKA_SASL_PASSWORD": password,
        "VIGIL_KAFKA_SSL_CAFILE": str(broker.ssl_ca_location),
    }


def vigil_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def run_vigil(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        vigil_cmd(*args),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def run_refused_worker(
    config_path: Path, env: dict[str, str], tmp_path: Path, wait_s: float = 60.0
) -> tuple[int | None, str]:
    """Run ``vigil worker`` until it exits or logs an authentication failure, then stop
    it. Returns (its own exit code, or None if it had to be stopped; its output)."""
    log_path = tmp_path / "refused-worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            vigil_cmd("worker", "-c", str(config_path)),
            env={
                **os.environ,
                **env,
                "VIGIL_METRICS_PORT": str(free_port()),
                "VIGIL_WORKER__METRICS_HOST": "127.0.0.1",
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    code: int | None = None
    try:
        wait_until(
            lambda: (
                proc.poll() is not None
                or "Authentication failed" in log_path.read_text(errors="replace")
            ),
            timeout=wait_s,
        )
        code = proc.poll()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return code, log_path.read_text(errors="replace")


def worker_config(topics: dict[str, str]) -> dict[str, Any]:
    return {
        "app_id": f"vigil-sasl-{topics['inference']}",
        "topics": {**topics, "partitions": 2},
        # No audit sample: the escalations expected are the low-confidence events only.
        "defaults": {
            "escalation": {"min_confidence": MIN_CONFIDENCE, "data_reasons": False},
            "review": {"audit_rate": 0},
        },
    }


def event(i: int, confidence: float, prefix: str) -> dict[str, Any]:
    return {
        "event_id": f"{prefix}-{i}",
        "model_id": f"secure-{i % 3}",
        "ts": 1_767_225_600 + i,
        "features": {"amount": float(i)},
        "prediction": {"label": "fraud", "confidence": confidence},
    }


def secure_conf(broker: Any, password: str = PASSWORD) -> dict[str, Any]:
    conf = dict(broker.client_config("SASL_SSL"))
    conf["sasl.password"] = password
    del conf["bootstrap.servers"]
    return conf


# ---------------------------------------------------------------- no broker needed


def test_faust_credentials_for_each_protocol() -> None:
    def creds(**kafka: Any) -> Any:
        return faust_credentials(settings_from_dict({"kafka": kafka}))

    assert creds() is None
    sasl_ssl = creds(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password=PASSWORD,
    )
    assert isinstance(sasl_ssl, faust.SASLCredentials)
    assert sasl_ssl.protocol.value == "SASL_SSL"
    assert sasl_ssl.mechanism.value == "SCRAM-SHA-512"
    assert sasl_ssl.ssl_context is not None
    assert PASSWORD not in repr(sasl_ssl)
    plain = creds(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password=PASSWORD)
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None
    tls = creds(security_protocol="SSL")
    assert isinstance(tls, faust.SSLCredentials)


def test_password_from_the_environment_stays_secret() -> None:
    env = {
        "VIGIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VIGIL_KAFKA_SASL_USERNAME": "u",
        # YAML would read these as a number and a boolean; a password stays a string.
        "VIGIL_KAFKA_SASL_PASSWORD": "0123",
    }
    s = load_settings(None, env)
    assert s.kafka.sasl_password is not None and s.kafka.sasl_password.get_secret_value() == "0123"
    s = load_settings(None, {**env, "VIGIL_KAFKA_SASL_PASSWORD": PASSWORD})
    for text in (repr(s), str(s), repr(s.kafka), f"{s.kafka}"):
        assert PASSWORD not in text


# ---------------------------------------------------------------- against the broker


@pytest.mark.kafka
def test_worker_publisher_and_cli_over_sasl_ssl(secure_broker: Any, tmp_path: Path) -> None:
    broker = secure_broker
    env = secure_env(broker)
    topics = unique_topics("sasl")
    config = worker_config(topics)
    config_path = tmp_path / "vigil.yaml"
    config_path.write_text(yaml.safe_dump(config))

    created = run_vigil("topics", "create", "-c", str(config_path), env=env)
    assert created.returncode == 0, created.stderr
    for name in topics.values():
        assert f"{name}: created" in created.stdout

    cli_events = [event(i, 0.3 if i % 2 else 0.9, "cli") for i in range(20)]
    events_path = tmp_path / "events.jsonl"
    events_path.write_bytes(b"\n".join(orjson.dumps(e) for e in cli_events) + b"\n")
    published = run_vigil("publish", str(events_path), "-c", str(config_path), env=env)
    assert published.returncode == 0, published.stderr
    assert f"published 20 messages to {topics['inference']}" in published.stdout

    worker = WorkerProcess(broker.sasl_ssl_bootstrap, config, tmp_path, env=env).start()
    escalations = TopicReader(broker.bootstrap, topics["escalations"])
    dead = TopicReader(broker.bootstrap, topics["deadletter"])
    try:
        lib_events = [event(i, 0.2 if i % 4 == 0 else 0.95, "lib") for i in range(20)]
        with InferencePublisher(
            broker.sasl_ssl_bootstrap, topic=topics["inference"], kafka_config=secure_conf(broker)
        ) as pub:
            for e in lib_events:
                pub.publish(
                    model_id=e["model_id"],
                    event_id=e["event_id"],
                    ts=e["ts"],
                    features=e["features"],
                    prediction=e["prediction"],
                )
            for i in range(5):
                pub.publish_raw(b'{"event_id": "broken-%d"' % i, key=b"secure-0")
        assert pub.delivered == 25 and pub.failed == 0

        expected = {
            e["event_id"]
            for e in cli_events + lib_events
            if e["prediction"]["confidence"] < MIN_CONFIDENCE
        }
        got = escalations.read_until(len(expected), timeout=60)
        assert {e["event_id"] for e in got} == expected
        got_dead = dead.read_until(5, timeout=30)
        assert len(got_dead) == 5 and {d["reason"] for d in got_dead} == {"invalid_json"}

        def counted() -> bool:
            s = worker.scrape()
            return sum(v for _, v in s.get("vigil_events_total", [])) >= 45

        assert wait_until(counted, timeout=30)
        with urllib.request.urlopen(worker.metrics_url, timeout=5) as resp:
            metrics_text = resp.read().decode()
        assert PASSWORD not in metrics_text
    finally:
        escalations.close()
        dead.close()
        code = worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert code == 0, worker.log_tail()
    for text in (log, created.stdout, created.stderr, published.stdout, published.stderr):
        assert PASSWORD not in text


@pytest.mark.kafka
def test_wrong_password_is_refused_with_a_clear_error(secure_broker: Any, tmp_path: Path) -> None:
    broker = secure_broker
    bad_env = secure_env(broker, WRONG_PASSWORD)
    topics = unique_topics("sasl-bad")
    config = worker_config(topics)
    config_path = tmp_path / "vigil.yaml"
    config_path.write_text(yaml.safe_dump(config))
    create_topics(settings_from_dict({**config, "kafka": {"bootstrap": broker.bootstrap}}))

    # `vigil topics create` waits out its 30 s admin timeout: run it alongside the rest.
    topics_create = subprocess.Popen(
        vigil_cmd("topics", "create", "-c", str(config_path)),
        env={**os.environ, **bad_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The publisher: flush() says "authentication", at once rather than after the
        # 30 s delivery timeout.
        pub = InferencePublisher(
            broker.sasl_ssl_bootstrap,
            topic=topics["inference"],
            kafka_config=secure_conf(broker, WRONG_PASSWORD),
        )
        pub.publish(model_id="secure-0", prediction={"label": "a", "confidence": 0.9})
        with pytest.raises(PublishError, match="authentication failed") as info:
            pub.flush(timeout=25)
        assert "SCRAM-SHA-512" in str(info.value)
        assert WRONG_PASSWORD not in str(info.value)

        # `vigil publish`: exit 1 and one line naming the problem, no traceback.
        events_path = tmp_path / "events.jsonl"
        events_path.write_bytes(orjson.dumps(event(0, 0.9, "bad")) + b"\n")
        published = run_vigil("publish", str(events_path), "-c", str(config_path), env=bad_env)
        assert published.returncode == 1
        assert "vigil: Kafka authentication failed" in published.stderr
        assert "Traceback" not in published.stderr
        assert "published" not in published.stdout

        # The worker: exits non-zero (Faust ingest), or stays up retrying and says why in
        # its log (librdkafka ingest); either way the log names the failed exchange.
        worker_code, worker_output = run_refused_worker(config_path, bad_env, tmp_path)
        assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in worker_output
        if worker_code is not None:
            assert worker_code != 0, worker_output[-3000:]
    finally:
        out, err = topics_create.communicate(timeout=CLI_TIMEOUT_S)

    # `vigil topics create` fails (non-zero) without leaking; its message is a bare
    # TimeoutError traceback today (streams/kafka/topics.py, reported).
    assert topics_create.returncode != 0
    for text in (
        out,
        err,
        published.stdout,
        published.stderr,
        worker_output,
        str(list(pub.errors)),
    ):
        assert WRONG_PASSWORD not in text
        assert PASSWORD not in text
