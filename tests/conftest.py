"""Fixtures shared by the whole suite: a real Kafka broker and throwaway topics.

``kafka_bootstrap`` (session) finds a broker, first that works of:

1. ``KAFKA_BOOTSTRAP_SERVERS`` from the environment, used as is;
2. the local jar broker, :class:`streams.dev.local_broker.LocalBroker` (needs ``java``; ``mvn``
   too unless the jars are already cached, see ``make jars``);
3. a testcontainers ``KafkaContainer``, if a Docker engine answers.

If none works, Kafka tests are skipped with the reasons; in CI (env ``CI`` set) they fail
instead, because a green CI run that skipped its Kafka tests proves nothing.

Tests that need Kafka are marked ``@pytest.mark.kafka``.

``label_studio`` (session) is a real Label Studio server
(:class:`streams.dev.label_studio.LocalLabelStudio`, installed by ``make label-studio``),
started once per session because its first start takes a minute. Tests that use it are
marked ``@pytest.mark.label_studio``; without it they skip, in CI they fail.

Fixtures specific to one area belong in that area's test modules, not here.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

if TYPE_CHECKING:
    from streams.dev.label_studio import LocalLabelStudio

#: Seconds to wait for a new topic's partitions to have leaders.
_TOPIC_READY_TIMEOUT = 30.0


def in_ci() -> bool:
    """Whether this run is CI, where a missing broker fails the run instead of skipping."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def kafka_unavailable(reason: str) -> None:
    """Fail (in CI) or skip (elsewhere) the current test because Kafka cannot be had."""
    if in_ci():
        pytest.fail(f"no Kafka broker in CI (CI={os.environ.get('CI')!r}): {reason}")
    pytest.skip(f"no Kafka broker: {reason}")


def _docker_answers() -> str | None:
    """``None`` if a Docker engine answers a ping, else why not."""
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port[,host:port]`` of a real Kafka broker for this test session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return

    reasons: list[str] = []
    from streams.dev.local_broker import LocalBroker, LocalBrokerError

    broker = LocalBroker()
    try:
        broker.start()
    except LocalBrokerError as exc:
        reasons.append(f"local jar broker: {exc}")
    else:
        try:
            yield broker.bootstrap
        finally:
            broker.stop()
        return

    docker_problem = _docker_answers()
    if docker_problem is None:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
        return
    reasons.append(f"testcontainers: no Docker engine ({docker_problem})")

    kafka_unavailable(
        "; ".join(reasons) + ". Set KAFKA_BOOTSTRAP_SERVERS, or install java and maven "
        "(apt-get install -y openjdk-17-jre-headless maven) and run `make jars`."
    )


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LocalLabelStudio]:
    """A running Label Studio for this session (SQLite in a temp dir, webhooks to 127.0.0.1
    allowed); tests make their own projects in it, so they do not see each other's tasks."""
    from streams.dev.label_studio import LabelStudioMissingError, LocalLabelStudio

    server = LocalLabelStudio(allow_local_webhooks=True)
    try:
        server.start()
    except LabelStudioMissingError as exc:
        if in_ci():
            pytest.fail(f"no Label Studio in CI (CI={os.environ.get('CI')!r}): {exc}")
        pytest.skip(f"no Label Studio: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _safe_topic_part(text: str) -> str:
    # Kafka topic names allow [A-Za-z0-9._-], at most 249 characters.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "topic"


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Factory: ``new_topic(partitions=1, config=None, name=None) -> str``.

    Creates a uniquely named topic (named after the test unless ``name`` is given as a
    prefix), waits until every partition has a leader, and deletes it after the test.
    """
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def create(
        partitions: int = 1, config: dict[str, str] | None = None, name: str | None = None
    ) -> str:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1; got {partitions!r}")
        prefix = _safe_topic_part(name or request.node.name)
        topic = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
        futures = admin.create_topics(
            [NewTopic(topic, partitions, 1, config=dict(config or {}))],
            operation_timeout=_TOPIC_READY_TIMEOUT,
        )
        futures[topic].result(timeout=_TOPIC_READY_TIMEOUT)
        created.append(topic)
        _wait_for_leaders(admin, topic, partitions)
        return topic

    yield create

    if created:
        futures = admin.delete_topics(created, operation_timeout=10)
        for future in futures.values():
            # Best effort: a topic left behind only costs disk on a throwaway broker.
            with contextlib.suppress(Exception):
                future.result(timeout=10)


def _wait_for_leaders(admin: AdminClient, topic: str, partitions: int) -> None:
    deadline = time.monotonic() + _TOPIC_READY_TIMEOUT
    while True:
        meta = admin.list_topics(topic=topic, timeout=5)
        info = meta.topics.get(topic)
        if (
            info is not None
            and info.error is None
            and len(info.partitions) == partitions
            and all(p.leader >= 0 for p in info.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"topic {topic!r} has no leader for all {partitions} partitions after "
                f"{_TOPIC_READY_TIMEOUT:g} s; metadata: {info!r}"
            )
        time.sleep(0.1)
