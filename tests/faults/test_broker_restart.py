"""Stop and restart the broker mid-stream: the worker recovers without losing anything.

The test runs its own :class:`~streams.dev.local_broker.LocalBroker` (the session broker is
shared with other tests); ``restart()`` keeps the data directory and the ports.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.dev.local_broker import LocalBroker, LocalBrokerError
from tests.conftest import kafka_unavailable
from tests.faults.conftest import MIN_CONFIDENCE, CounterWatch, missing_report
from tests.support import (
    BackgroundPublisher,
    SyntheticStream,
    checkpointed_events_seen,
    read_until_escalated,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

N_EVENTS = 12_000


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    broker = LocalBroker()
    try:
        broker.start()
    except LocalBrokerError as exc:
        kafka_unavailable(f"local jar broker for the broker-restart test: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


#: Workers use a 10 s session timeout and an outage of 15 s outlasts it. The batch ingest
#: (librdkafka) then declares its session lost, drops the models of those partitions, and
#: restores them from their checkpoints when the partitions come back; the Faust ingest
#: (aiokafka) keeps its membership across the outage.
@pytest.mark.parametrize("down_for", [0.0, 15.0], ids=["quick", "past_session_timeout"])
def test_broker_restart_mid_stream(
    own_broker: LocalBroker, make_rig, tmp_path: Path, down_for: float
) -> None:
    bootstrap = own_broker.bootstrap
    rig = make_rig(bootstrap, "brokerrestart", partitions=4)
    stream = SyntheticStream(5, min_confidence=MIN_CONFIDENCE, invalid_every=89, seed=23)
    escalations = rig.reader("escalations")
    dead = rig.reader("deadletter")

    worker = rig.worker("worker").start()
    # Not the plain counters: an outage longer than the session timeout costs the worker
    # its partitions, and the series of the models it drops start again from 0.
    with (
        CounterWatch(worker, "vigil_events_total", outcome="processed") as n_processed,
        CounterWatch(worker, "vigil_events_total", outcome="dead_letter") as n_dead,
        CounterWatch(worker, "vigil_escalations_total") as n_escalated,
    ):
        pub = BackgroundPublisher(
            bootstrap, rig.topics["inference"], stream.take(N_EVENTS), rate=2_000
        ).start()
        assert wait_until(
            lambda: n_processed.value >= 2_000 and topic_size(bootstrap, rig.topics["checkpoints"]),
            timeout=120,
        ), worker.log_tail()
        own_broker.restart(down_for=down_for)
        pub.join()

        audit = read_until_escalated(escalations, stream.qualifying, timeout=180)
        # On failure, say first whether the worker processed the events after the outage,
        # whether their escalations reached the topic, and what its log last told.
        n_valid = sum(stream.valid.values())
        assert not audit.missing, (
            missing_report(
                worker,
                bootstrap,
                rig.topics["escalations"],
                escalations,
                processed=(n_processed.value, n_valid),
                escalated=(n_escalated.value, len(stream.qualifying)),
            )
            + f"; {audit}"
        )
        assert not audit.conflicting, audit
        assert not audit.bad_ids, audit

        # All accounted for: each valid event processed (redeliveries may count twice),
        # each malformed one dead-lettered.
        assert wait_until(lambda: n_processed.value >= n_valid, timeout=120), worker.log_tail()
        dead.read_until(len(stream.invalid), timeout=60)
        assert {base64.b64decode(d["payload_b64"]) for d in dead.messages} == set(stream.invalid)
        assert wait_until(lambda: n_dead.value >= len(stream.invalid), timeout=10)

    if down_for and rig.config["worker"]["ingest"] == "batch":  # the path this case is for
        assert "lost partitions" in worker.log_tail(10_000), worker.log_tail()

    # The same worker process survived the outage, its loop goes round (the liveness
    # probe's answer, either driver), and its state covers every event once.
    assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
    status, body = worker.healthz()
    assert status == 200 and body.startswith("ok: the ingest loop went round"), body
    code = worker.stop()
    assert code == 0, worker.log_tail()
    assert checkpointed_events_seen(bootstrap, rig.topics, rig.partitions) == stream.valid
