"""Static group membership (``worker.instance_id``) and partitions that stay put.

* A worker killed with SIGKILL and restarted with the same instance id gets its partitions
  back while the other worker keeps its own: the other one is never revoked (its log has
  no revocation after the first assignment), on both ingest drivers.
* Scaling from 2 to 3 workers (batch driver, cooperative-sticky assignment): only the
  partitions the new worker takes are revoked; the others stay where they are, are never
  read back from the checkpoint topic, and are processed throughout.

Both check the delivery guarantee as the other fault tests do: every qualifying event
escalated, no conflicting escalations, and each model's checkpointed ``events_seen`` equal
to the valid events published for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.faults.conftest import MIN_CONFIDENCE, FaultRig, model_series, processed
from tests.support import (
    BackgroundPublisher,
    SyntheticStream,
    WorkerProcess,
    checkpointed_events_seen,
    publish,
    read_until_escalated,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

N_MODELS = 12  # spread over all 4 partitions (murmur2 of the key)
#: Generous, so a slow start-up of the restarted worker on a busy machine still comes
#: back within the session; without static membership the restart would rebalance
#: whatever this is.
SESSION_TIMEOUT_S = 30.0


def log_text(worker: WorkerProcess) -> str:
    return worker.log_path.read_text(errors="replace")


def revocations(worker: WorkerProcess) -> int:
    return len(re.findall(r"revoked partitions \[", log_text(worker)))


def restored(worker: WorkerProcess) -> list[set[int]]:
    """The partition sets the worker read back from the checkpoint topic, in order."""
    found = re.findall(r"assigned partitions \[([0-9, ]*)\]: restored", log_text(worker))
    return [{int(p) for p in f.split(",") if p.strip()} for f in found]


def revoked(worker: WorkerProcess) -> list[set[int]]:
    """The partition sets the worker gave up, in order."""
    found = re.findall(r"revoked partitions \[([0-9, ]*)\]: checkpointed", log_text(worker))
    return [{int(p) for p in f.split(",") if p.strip()} for f in found]


def owned(worker: WorkerProcess) -> set[int]:
    """The input partitions the worker holds now: its last assignment less what it gave
    up since (an incremental rebalance logs only what is added or revoked)."""
    held: set[int] = set()
    for kind, parts in re.findall(
        r"(assignment: partitions|revoked partitions) \[([0-9, ]*)\]", log_text(worker)
    ):
        nums = {int(p) for p in parts.split(",") if p.strip()}
        held = nums if kind.startswith("assignment") else held - nums
    return held


def test_kill_9_static_member_returns_without_revoking_the_other(
    kafka_bootstrap: str, make_rig, tmp_path: Path
) -> None:
    rig = make_rig(
        kafka_bootstrap, "static", partitions=4, worker={"session_timeout_s": SESSION_TIMEOUT_S}
    )
    topics = rig.topics
    stream = SyntheticStream(N_MODELS, min_confidence=MIN_CONFIDENCE, seed=53)
    escalations = rig.reader("escalations")

    a = rig.worker("a", instance_id="vigil-a").start()
    assert wait_until(lambda: "assigned partitions" in log_text(a), timeout=120), a.log_tail()
    b = rig.worker("b", instance_id="vigil-b").start()
    pub = BackgroundPublisher(
        kafka_bootstrap, topics["inference"], stream.take(8_000), rate=1_500
    ).start()
    assert wait_until(
        lambda: (
            bool(model_series(a))
            and bool(model_series(b))
            and topic_size(kafka_bootstrap, topics["checkpoints"]) > 0
        ),
        timeout=120,
    ), b.log_tail()
    on_b = model_series(b)
    revoked_on_a = revocations(a)

    b.kill()
    b2 = rig.worker("b2", instance_id="vigil-b").start()
    assert wait_until(lambda: processed(b2) > 0, timeout=120), b2.log_tail()
    pub.join()
    publish(kafka_bootstrap, topics["inference"], stream.take(2_000))
    audit = read_until_escalated(escalations, stream.qualifying, timeout=180)
    assert not audit.missing, audit
    assert not audit.conflicting, audit

    # b2 took b's place: the same models, and a was never asked to give anything up.
    assert model_series(b2) == on_b
    assert not model_series(a) & on_b
    assert revocations(a) == revoked_on_a, a.log_tail()
    assert a.stop() == 0, a.log_tail()
    assert b2.stop() == 0, b2.log_tail()
    assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid


def test_scaling_2_to_3_moves_only_the_partitions_that_change_owner(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rig = FaultRig(kafka_bootstrap, tmp_path, "scale", 4, ingest="batch")
    rig.create_topics()
    try:
        stream = SyntheticStream(N_MODELS, min_confidence=MIN_CONFIDENCE, seed=59)
        escalations = rig.reader("escalations")
        a = rig.worker("a", instance_id="vigil-a").start()
        assert wait_until(lambda: "assigned partitions" in log_text(a), timeout=120)
        b = rig.worker("b", instance_id="vigil-b").start()
        pub = BackgroundPublisher(
            kafka_bootstrap, rig.topics["inference"], stream.take(8_000), rate=1_500
        ).start()
        assert wait_until(lambda: bool(model_series(a)) and bool(model_series(b)), timeout=120)

        # Settled: each owns two partitions (a restored all four, then gave two to b).
        assert wait_until(lambda: len(owned(a)) == 2 == len(owned(b)), timeout=60)
        pair = {"a": a, "b": b}
        before = {n: owned(w) for n, w in pair.items()}
        n_restored = {n: len(restored(w)) for n, w in pair.items()}
        n_revoked = {n: len(revoked(w)) for n, w in pair.items()}

        c = rig.worker("c", instance_id="vigil-c").start()
        assert wait_until(lambda: bool(model_series(c)), timeout=120), c.log_tail()
        pub.join()
        publish(kafka_bootstrap, rig.topics["inference"], stream.take(2_000))
        audit = read_until_escalated(escalations, stream.qualifying, timeout=180)
        assert not audit.missing, audit
        assert not audit.conflicting, audit

        gained = owned(c)
        assert len(gained) == 1 or len(gained) == 2, c.log_tail()
        moved: set[int] = set()
        for n, w in pair.items():
            gave = set().union(*revoked(w)[n_revoked[n] :])
            # Only what c took was revoked; the rest stayed, never read back.
            assert gave <= gained, (n, gave, gained, w.log_tail())
            assert owned(w) == before[n] - gave, (n, w.log_tail())
            assert restored(w)[n_restored[n] :] == [], (n, w.log_tail())
            moved |= gave
        assert moved == gained
        assert restored(c) == [gained], c.log_tail()
        for w in (a, b, c):
            assert w.stop() == 0, w.log_tail()
        assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid
    finally:
        rig.close()
