"""A message refused after decoding is dead-lettered; the rest of its batch is not lost.

The refused input is a genuine one, not a test hook: a regression prediction for a model
whose predictions have been classifications. Each event is valid on its own, so the
decoder accepts it; the processor refuses it (SPEC §2: one model has one kind). It used
to make the model monitor raise, a ``processing_error``; that exception path is tested
on the pure core (``tests/streams/processing/test_processing.py``).
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from tests.faults.conftest import MIN_CONFIDENCE, processed
from tests.support import (
    SyntheticStream,
    checkpointed_events_seen,
    publish,
    read_until_escalated,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def test_a_refused_event_is_dead_lettered_and_batch_survives(
    kafka_bootstrap: str, make_rig, tmp_path: Path
) -> None:
    rig = make_rig(kafka_bootstrap, "procerr", partitions=2, worker={"batch_size": 1000})
    stream = SyntheticStream(2, min_confidence=MIN_CONFIDENCE, seed=5)
    messages = stream.take(600)
    model0 = stream.models[0].model_id
    poison = orjson.dumps(
        {
            "event_id": "poison-1",
            "model_id": model0,
            "ts": "2026-01-01T00:00:00Z",
            "prediction": {"value": 3.5},
        }
    )
    # In the middle of model-0's events: published before the worker starts, so it is
    # consumed in one batch with hundreds of others.
    messages.insert(300, (model0.encode(), poison))
    publish(kafka_bootstrap, rig.topics["inference"], messages)
    dead = rig.reader("deadletter")
    escalations = rig.reader("escalations")

    worker = rig.worker("worker").start()
    got = dead.read_until(1, timeout=60)
    assert len(got) == 1, (got, worker.log_tail())
    assert got[0]["reason"] == "bad_value"
    assert "is a classification model; got a regression prediction" in got[0]["detail"]
    assert base64.b64decode(got[0]["payload_b64"]) == poison
    assert got[0]["source"]["key"] == model0

    audit = read_until_escalated(escalations, stream.qualifying)
    assert not audit.missing, audit
    assert not audit.conflicting, audit
    assert wait_until(lambda: processed(worker) >= sum(stream.valid.values()), timeout=60)
    assert processed(worker) == sum(stream.valid.values())
    code = worker.stop()
    assert code == 0, worker.log_tail()
    # The failed event was not applied; every other one was, once.
    assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid
