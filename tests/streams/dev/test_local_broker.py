"""The local jar broker (deploy/local, streams/dev/local_broker.py) against a real JVM.

These tests start their own :class:`LocalBroker` instead of using ``kafka_bootstrap``: they
restart and stop it, which must not disturb the session broker other tests share.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.dev.local_broker import KAFKA_VERSION, LocalBroker, LocalBrokerError
from tests.conftest import kafka_unavailable
from tests.streams.dev.processes import alive

pytestmark = pytest.mark.kafka


def _start(data_dir: Path | None = None, *, sasl_ssl: bool = False) -> LocalBroker:
    if shutil.which("java") is None:
        kafka_unavailable("java is not on PATH, so the local jar broker cannot run")
    broker = LocalBroker(data_dir, sasl_ssl=sasl_ssl)
    try:
        broker.start()
    except LocalBrokerError as exc:
        kafka_unavailable(f"local jar broker did not start: {exc}")
    return broker


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    started = _start()
    yield started
    started.stop()


def _produce(
    bootstrap: str,
    topic: str,
    value: bytes,
    config: dict[str, str | int | float | bool] | None = None,
) -> None:
    settings = {"bootstrap.servers": bootstrap, "enable.idempotence": True, **(config or {})}
    producer = Producer(settings)
    errors: list[object] = []
    producer.produce(topic, value=value, key=b"k", on_delivery=lambda err, _m: errors.append(err))
    assert producer.flush(30) == 0, "message still queued after 30 s"
    assert errors == [None]


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> bytes:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        messages = consumer.consume(num_messages=1, timeout=timeout)
    finally:
        consumer.close()
    assert len(messages) == 1, f"no message from {topic!r} within {timeout} s"
    assert messages[0].error() is None, messages[0].error()
    value = messages[0].value()
    assert isinstance(value, bytes)
    return value


def _create_topic(bootstrap: str, partitions: int) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"test.local-broker.{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
    return topic


def test_broker_answers_metadata(broker: LocalBroker) -> None:
    assert broker.running
    assert broker.bootstrap.startswith("127.0.0.1:")
    meta = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
    assert [b.id for b in meta.brokers.values()] == [broker.node_id]


def test_broker_log_is_written(broker: LocalBroker) -> None:
    # The log4j config from deploy/local reaches the JVM: the log is the start diagnostic.
    log = broker.log_path.read_text(encoding="utf-8")
    assert "Kafka Server started" in log or "KafkaRaftServer" in log
    assert KAFKA_VERSION in log


def test_produce_consume_round_trip(broker: LocalBroker) -> None:
    topic = _create_topic(broker.bootstrap, 1)
    _produce(broker.bootstrap, topic, b"hello vigil")
    assert _consume_one(broker.bootstrap, topic) == b"hello vigil"


def test_topic_with_four_partitions(broker: LocalBroker) -> None:
    topic = _create_topic(broker.bootstrap, 4)
    meta = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic, timeout=10)
    assert sorted(meta.topics[topic].partitions) == [0, 1, 2, 3]


def test_new_topic_fixture(kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=4)
    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic, timeout=10)
    assert len(meta.topics[topic].partitions) == 4


def test_restart_keeps_data_and_address() -> None:
    broker = _start()
    try:
        bootstrap, directory = broker.bootstrap, broker.directory
        topic = _create_topic(bootstrap, 1)
        _produce(bootstrap, topic, b"survives restart")
        old_pid = broker.pid
        broker.restart()
        assert broker.pid != old_pid
        assert (broker.bootstrap, broker.directory) == (bootstrap, directory)
        assert _consume_one(bootstrap, topic) == b"survives restart"
    finally:
        broker.stop()


def test_kill_then_start_recovers() -> None:
    broker = _start()
    try:
        topic = _create_topic(broker.bootstrap, 1)
        _produce(broker.bootstrap, topic, b"acked before kill")
        pid = broker.pid
        assert pid is not None
        broker.kill()
        assert not alive(pid)
        broker.start()
        assert _consume_one(broker.bootstrap, topic) == b"acked before kill"
    finally:
        broker.stop()


def test_stop_leaves_no_process_and_no_temp_dir() -> None:
    broker = _start()
    pid, directory = broker.pid, broker.directory
    assert pid is not None and alive(pid)
    broker.stop()
    assert not alive(pid)
    assert not directory.exists()
    assert not broker.running
    broker.stop()  # a second stop is harmless


def test_given_data_dir_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "kafka"
    broker = _start(data_dir=data)
    broker.stop()
    assert (data / "server.properties").is_file()
    assert (data / "logs" / "server.log").is_file()


def test_sasl_ssl_listener_authenticates_scram_users() -> None:
    broker = _start(sasl_ssl=True)
    try:
        secure = broker.client_config("SASL_SSL")
        assert secure["bootstrap.servers"] != broker.bootstrap
        meta = AdminClient(secure).list_topics(timeout=10)
        assert list(meta.brokers) == [broker.node_id]
        topic = _create_topic(broker.bootstrap, 1)
        _produce(str(secure["bootstrap.servers"]), topic, b"over tls", secure)
        assert _consume_one(broker.bootstrap, topic) == b"over tls"

        wrong = {**secure, "sasl.password": "not-the-password", "log_level": 0}
        with pytest.raises(KafkaException):
            AdminClient(wrong).list_topics(timeout=5)
        # The broker logs its config at start; password-typed settings must be masked.
        assert broker.sasl_password not in broker.log_path.read_text(encoding="utf-8")
        assert broker._keystore_password not in broker.log_path.read_text(encoding="utf-8")
    finally:
        broker.stop()


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="start_timeout"):
        LocalBroker(start_timeout=0)
    with pytest.raises(LocalBrokerError, match="not been started"):
        _ = LocalBroker().bootstrap
    with pytest.raises(ValueError, match="sasl_username"):
        LocalBroker(sasl_username="a,b")
    with pytest.raises(LocalBrokerError, match="sasl_ssl=True"):
        LocalBroker().client_config("SASL_SSL")
