"""Incremental rebalances of the batch driver, against a real broker.

The group assigns the inference topic alone, with the cooperative-sticky assignor, and
each member assigns itself partition *p* of the labels topic next to partition *p* of
inference. Three members in this process, polled in turn:

* each member reads exactly the labels partitions of its inference partitions;
* a member that joins takes partitions from the others without the rest being revoked:
  every revocation names a partition that the new member then owns, and the others read
  nothing back from their checkpoints;
* a labels partition that changes owner is read on from where its previous owner
  committed: every label is handled once;
* a model whose events were put on their partition by another partitioner than the
  checkpoints' (here: explicitly) is restored by the new owner of that partition, with
  every event it had seen;
* a worker refuses input topics with different partition counts (both drivers), and
  one already running stops when they become different.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.dev.traffic import SyntheticModel
from streams.errors import VigilError
from streams.events.dead_letters import MessageSource
from streams.ingest.batch import BatchIngest
from streams.ingest.core import IngestCore
from streams.ingest.faust_app import create_app
from streams.kafka.topics import check_copartitioned, create_topics, metadata_admin
from tests.support import WorkerProcess, unique_topics

pytestmark = pytest.mark.kafka

PARTITIONS = 4
WAIT_S = 90.0


class Member:
    """A BatchIngest whose revocations, restores and handled labels are recorded."""

    def __init__(self, settings_of: Callable[[str], Any], name: str) -> None:
        core = IngestCore(settings_of(name), registry=CollectorRegistry())
        self.ingest = BatchIngest(core)
        self.revoked: list[set[int]] = []
        self.restored: list[set[int]] = []
        self.labels: list[tuple[int, int]] = []  # (partition, offset) of each label handled
        on_revoked, read, label = core.on_revoked, core.checkpoints.read, core.processor.label

        def spy_revoked(parts: set[int]) -> None:
            self.revoked.append(set(parts))
            on_revoked(parts)

        def spy_read(partitions: Any, *args: Any, **kwargs: Any) -> Any:
            self.restored.append(set(partitions))
            return read(partitions, *args, **kwargs)

        def spy_label(raw: bytes, source: MessageSource, out: Any) -> None:
            self.labels.append((source.partition, source.offset))
            label(raw, source, out)

        core.on_revoked = spy_revoked  # type: ignore[method-assign]
        core.checkpoints.read = spy_read  # type: ignore[method-assign]
        core.processor.label = spy_label  # type: ignore[method-assign]

    def owned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.ingest.consumer.assignment() if tp.topic == topic}


def _members_settings(
    bootstrap: str, prefix: str, topics: dict[str, str], *, static: bool = False
) -> Callable[[str], Any]:
    """The settings of a group's members by name: one app id, the topics with
    :data:`PARTITIONS` partitions; ``static``: each with its instance id (10 s session)."""
    app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"

    def settings_of(name: str) -> Any:
        conf: dict[str, Any] = {
            "kafka": {"bootstrap": bootstrap},
            "app_id": app_id,
            "topics": {**topics, "partitions": PARTITIONS},
        }
        if static:
            conf["worker"] = {"instance_id": f"{app_id}-{name}", "session_timeout_s": 10}
        return settings_from_dict(conf)

    return settings_of


def _poll_until(members: list[Member], done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the group"
        for m in members:
            m.ingest.run_once(0.05)


def _publish_events(bootstrap: str, topic: str, per_model: int) -> dict[str, int]:
    """Two models per partition, each event sent to its model's partition explicitly;
    returns model id -> partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    placed = {}
    for p in range(PARTITIONS):
        for k in range(2):
            model = SyntheticModel(f"m{p}-{k}", seed=10 * p + k)
            placed[model.model_id] = p
            for i in range(per_model):
                event, _ = model.event(event_id=f"e{i}")
                producer.produce(topic, orjson.dumps(event), key=b"same-key", partition=p)
    assert producer.flush(30) == 0
    return placed


def _publish_labels(bootstrap: str, topic: str, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for p in range(PARTITIONS):
        for _ in range(per_partition):
            producer.produce(topic, value=b'{"not": "a label"}', key=b"m", partition=p)
    assert producer.flush(30) == 0


@pytest.fixture
def group(kafka_bootstrap: str) -> Any:
    topics = unique_topics("coop")
    settings_of = _members_settings(kafka_bootstrap, "coop", topics, static=True)

    create_topics(settings_of("admin"))
    members: list[Member] = []

    def join(name: str) -> Member:
        m = Member(settings_of, name)
        m.ingest.core.checkpoints.ensure_topic()
        m.ingest.start()
        members.append(m)
        return m

    yield join, topics, members
    for m in members:
        m.ingest.core.shutdown()


def test_labels_follow_inference_and_a_joining_member_moves_only_what_changes_owner(
    kafka_bootstrap: str, group: Any
) -> None:
    join, topics, members = group
    inference, labels = topics["inference"], topics["labels"]

    def settled(ms: list[Member], counts: list[int]) -> Callable[[], bool]:
        return lambda: sorted(len(m.owned(inference)) for m in ms) == counts

    a = join("a")
    _poll_until(members, settled([a], [PARTITIONS]))
    b = join("b")
    _poll_until(members, settled([a, b], [2, 2]))
    for m in (a, b):
        assert m.owned(labels) == m.owned(inference)
    before = {"a": a.owned(inference), "b": b.owned(inference)}
    revoked_before = {"a": len(a.revoked), "b": len(b.revoked)}
    restored_before = {"a": len(a.restored), "b": len(b.restored)}
    assert before["a"] | before["b"] == set(range(PARTITIONS))

    _publish_labels(kafka_bootstrap, labels, 5)
    _poll_until(members, lambda: len(a.labels) + len(b.labels) == 5 * PARTITIONS)
    placed = _publish_events(kafka_bootstrap, inference, 30)
    _poll_until(
        members,
        lambda: sum(m.ingest.core.processor.processed for m in members) == 30 * len(placed),
    )

    c = join("c")
    _poll_until(members, settled([a, b, c], [1, 1, 2]))
    _publish_labels(kafka_bootstrap, labels, 3)
    _poll_until(members, lambda: sum(len(m.labels) for m in members) >= 8 * PARTITIONS)
    for _ in range(10):  # any label handled twice would show up by now
        for m in members:
            m.ingest.run_once(0.05)

    gained = c.owned(inference)
    assert gained and c.owned(labels) == gained
    for name, m in (("a", a), ("b", b)):
        moved = set().union(*m.revoked[revoked_before[name] :])
        # Only partitions that went to c were revoked; the rest stayed put, unread.
        assert moved <= gained, (name, moved, gained)
        assert m.owned(inference) == before[name] - moved
        assert m.owned(labels) == m.owned(inference)
        assert m.restored[restored_before[name] :] == []
    assert c.restored == [gained]
    for model_id, p in placed.items():
        owner = next(m for m in members if p in m.owned(inference))
        state = owner.ingest.core.fleet.peek(model_id)
        assert state is not None and state.monitor.events_seen == 30, (model_id, p)
        for other in members:  # held by its partition's owner alone
            assert other is owner or other.ingest.core.fleet.peek(model_id) is None
    handled = [lab for m in members for lab in m.labels]
    assert len(handled) == len(set(handled)) == 8 * PARTITIONS


def test_a_labels_topic_created_after_the_assignment_is_read_once_it_exists(
    kafka_bootstrap: str,
) -> None:
    """Inference services may run before the labels pipeline exists: the labels
    partitions assigned alongside inference's while the topic was missing are read as
    soon as it is created (with the same count), without a rebalance."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topics = unique_topics("late-labels")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def create(name: str) -> None:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)

    create(topics["inference"])
    m = Member(_members_settings(kafka_bootstrap, "late-labels", topics), "a")
    try:
        m.ingest.core.checkpoints.ensure_topic()
        m.ingest.start()
        _poll_until([m], lambda: len(m.owned(topics["inference"])) == PARTITIONS)
        assert m.owned(topics["labels"]) == set(range(PARTITIONS))  # not there yet
        create(topics["labels"])
        _publish_labels(kafka_bootstrap, topics["labels"], 3)
        _poll_until([m], lambda: len(m.labels) == 3 * PARTITIONS)
        assert {p for p, _ in m.labels} == set(range(PARTITIONS))
    finally:
        m.ingest.core.shutdown()


@pytest.mark.parametrize("ingest", ["batch", "faust"])
def test_a_worker_refuses_inputs_with_different_partition_counts(
    kafka_bootstrap: str, tmp_path: Path, ingest: str
) -> None:
    """Both drivers: Faust's assignor would give the two topics out independently (it
    groups topics by partition count), the batch driver would read labels partitions
    that do not hold its models' labels."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topics = unique_topics("copart")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics(
        [NewTopic(topics["inference"], 4, 1), NewTopic(topics["labels"], 2, 1)]
    ).values():
        f.result(30)
    config = {
        "app_id": f"copart-{uuid.uuid4().hex[:8]}",
        "topics": {**topics, "partitions": 4},
        "worker": {"ingest": ingest},
    }
    worker = WorkerProcess(kafka_bootstrap, config, tmp_path)
    with pytest.raises(RuntimeError, match=r"not co-partitioned: .* 4 partitions .* 2"):
        worker.start()  # it exits before serving /metrics, with the reason in its log
    assert worker.proc is not None and worker.proc.wait(30) != 0


def test_a_labels_topic_created_later_with_another_count_stops_the_worker(
    kafka_bootstrap: str,
) -> None:
    """The labels topic does not exist when the worker starts; created afterwards with
    fewer partitions (as a broker's auto-creation would), the next periodic check stops
    the worker with the reason instead of letting labels land on the wrong workers."""
    _, settings, create_labels = _labels_created_later(kafka_bootstrap)
    core = IngestCore(settings, registry=CollectorRegistry())
    core.checkpoints.ensure_topic()
    ingest = BatchIngest(core)
    try:
        ingest.start()  # nothing to compare yet
        ingest.copartition_check_s = 0.0
        ingest.run_once(0.05)
        create_labels()
        deadline = time.monotonic() + WAIT_S
        with pytest.raises(VigilError, match=r"not co-partitioned: .* 4 partitions .* 1"):
            while time.monotonic() < deadline:
                ingest.run_once(0.05)
    finally:
        core.shutdown()


def test_the_faust_drivers_periodic_check_crashes_it_on_a_labels_topic_created_later(
    kafka_bootstrap: str,
) -> None:
    """The Faust driver's timer (:meth:`VigilApp.check_copartitioned`) does what the
    batch driver's loop does: nothing while the counts agree or a topic is missing, and
    crashes the worker with the reason once they differ."""
    _, settings, create_labels = _labels_created_later(kafka_bootstrap)
    vigil = create_app(settings)

    async def check() -> BaseException | None:
        await vigil.check_copartitioned()
        return vigil._failed

    assert asyncio.run(check()) is None  # no labels topic yet: nothing to compare
    create_labels()  # raises if the check had created it
    failed = asyncio.run(check())
    assert isinstance(failed, VigilError)
    assert "not co-partitioned" in str(failed) and "4 partitions" in str(failed)
    assert vigil.core.failed  # nothing saved or committed from now on


def test_checking_a_missing_input_topic_does_not_create_it(kafka_bootstrap: str) -> None:
    """An admin client's metadata request would make the broker create the topic it
    asks about, with the broker's default count (1 here), as the start-up check did once
    for a labels topic not created yet."""
    topics, settings, _ = _labels_created_later(kafka_bootstrap)
    admin = metadata_admin(settings)
    check_copartitioned(admin, settings, timeout=10.0)
    time.sleep(1.0)  # an auto-creation would show in the metadata by now
    assert topics["labels"] not in admin.list_topics(timeout=10).topics
    assert topics["inference"] in admin.list_topics(timeout=10).topics


def _labels_created_later(
    kafka_bootstrap: str,
) -> tuple[dict[str, str], Any, Callable[[], None]]:
    """Topics whose inference topic exists with 4 partitions, the settings of a worker
    of them, and a function that creates their labels topic with 1 partition."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topics = unique_topics("copart-late")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topics["inference"], 4, 1)])[topics["inference"]].result(30)
    settings = settings_from_dict(
        {
            "kafka": {"bootstrap": kafka_bootstrap},
            "app_id": f"copart-late-{uuid.uuid4().hex[:8]}",
            "topics": {**topics, "partitions": 4},
        }
    )

    def create_labels() -> None:
        admin.create_topics([NewTopic(topics["labels"], 1, 1)])[topics["labels"]].result(30)
        deadline = time.monotonic() + WAIT_S  # until the metadata tells the new topic
        while time.monotonic() < deadline:
            meta = admin.list_topics(topics["labels"], timeout=5).topics.get(topics["labels"])
            if meta is not None and meta.error is None:
                return
            time.sleep(0.1)

    return topics, settings, create_labels
