"""kill -9 a worker mid-stream, restart it, and check that nothing was lost or applied twice.

The worker is SIGKILLed (whole process group) after it has checkpointed and committed part
of a stream that is still being published; a second worker process with the same config
restores the checkpoints and carries on. After the restart one model drifts.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from streams.dev.traffic import DriftSchedule
from tests.faults.conftest import MIN_CONFIDENCE, processed
from tests.support import (
    BackgroundPublisher,
    SyntheticStream,
    checkpointed_events_seen,
    publish,
    read_until_escalated,
    topic_size,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

#: The restore's log line: how many checkpoint records it did not read.
SKIPPED = re.compile(r"checkpoint partitions .*; (\d+) skipped before the committed starts")
N_BEFORE = 16_000  # published while the first worker runs and dies
N_DRIFT = 1_500  # published for model-0 after the restart, its x0 shifted by 3 sd


def test_kill_9_mid_stream_then_restart(kafka_bootstrap: str, make_rig, tmp_path: Path) -> None:
    rig = make_rig(kafka_bootstrap, "kill9", partitions=4)
    topics = rig.topics
    stream = SyntheticStream(6, min_confidence=MIN_CONFIDENCE, invalid_every=97, seed=11)
    escalations = rig.reader("escalations")
    dead = rig.reader("deadletter")
    alerts = rig.reader("alerts")

    first = rig.worker("first").start()
    pub = BackgroundPublisher(
        kafka_bootstrap, topics["inference"], stream.take(N_BEFORE), rate=2_500
    ).start()
    # Kill once a few checkpoint rounds (and so commits) exist and the worker is busy with
    # the rest: the restart reads each partition's checkpoints from the start its last
    # commit named, past the older rounds (batch ingest; Faust's reads them all).
    assert wait_until(
        lambda: (
            processed(first) >= 3_000
            and topic_size(kafka_bootstrap, topics["checkpoints"]) >= 3 * len(stream.models)
        ),
        timeout=120,
    ), first.log_tail()
    first.kill()
    sent_at_kill = pub.sent

    second = rig.worker("second").start()
    pub.join()
    model0 = stream.models[0]
    before_drift = stream.valid[model0.model_id]
    model0.drift.append(DriftSchedule("x0", start=model0.i, shift=3.0))
    publish(kafka_bootstrap, topics["inference"], stream.take(N_DRIFT, model=0))

    # Every qualifying event escalated; replays repeat an escalation, never change it.
    audit = read_until_escalated(escalations, stream.qualifying)
    assert not audit.missing, audit
    assert not audit.conflicting, audit
    assert not audit.bad_ids, audit

    # Drift injected after the restart is detected, by a monitor that kept counting from
    # where the killed worker's checkpoint left off (events_seen continues).
    def drift_alert() -> list[dict]:
        alerts.poll(0.5)
        return [
            a
            for a in alerts.messages
            if a["model_id"] == model0.model_id
            and a["signal"] == "feature:x0"
            and a["state"] == "drift"
        ]

    assert wait_until(lambda: bool(drift_alert()), timeout=60), second.log_tail()
    assert max(a["events_seen"] for a in drift_alert()) > before_drift

    # Every malformed message dead-lettered (replays may repeat one).
    dead.read_until(len(stream.invalid), timeout=60)
    dead_payloads = {base64.b64decode(d["payload_b64"]) for d in dead.messages}
    assert dead_payloads == set(stream.invalid)

    # After a clean stop, each model's checkpointed monitor has seen each valid event once.
    assert wait_until(lambda: processed(second) > 0)
    code = second.stop()
    assert code == 0, second.log_tail()
    seen = checkpointed_events_seen(kafka_bootstrap, topics, rig.partitions)
    assert seen == stream.valid, (
        f"published {stream.published}, {sent_at_kill} sent when killed\n{second.log_tail()}"
    )
    skipped = [int(n) for n in SKIPPED.findall(second.log_path.read_text(errors="replace"))]
    assert skipped, second.log_tail()
    if rig.config["worker"]["ingest"] == "batch":
        assert sum(skipped) > 0, second.log_tail()
    else:
        assert sum(skipped) == 0, second.log_tail()
