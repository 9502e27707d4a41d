"""Two workers, one joining and then one leaving mid-stream, over 4 partitions.

Checks: every partition keeps being consumed across both rebalances (faust #629), no
model is reported by both workers once the join settled, every qualifying event is
escalated without conflicting duplicates, and each model's checkpointed state has applied
each event exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import MIN_CONFIDENCE, model_series, processed
from tests.support import (
    BackgroundPublisher,
    SyntheticStream,
    checkpointed_events_seen,
    publish,
    read_until_escalated,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

N_MODELS = 12  # spread over all 4 partitions (murmur2 of the key)


def test_worker_joins_then_one_leaves(kafka_bootstrap: str, make_rig, tmp_path: Path) -> None:
    rig = make_rig(kafka_bootstrap, "rebalance", partitions=4)
    stream = SyntheticStream(N_MODELS, min_confidence=MIN_CONFIDENCE, seed=41)
    all_models = {m.model_id for m in stream.models}
    escalations = rig.reader("escalations")

    a = rig.worker("a").start()
    first = BackgroundPublisher(
        kafka_bootstrap, rig.topics["inference"], stream.take(6_000), rate=1_500
    ).start()
    assert wait_until(lambda: processed(a) >= 1_500, timeout=120), a.log_tail()

    # b joins mid-stream. Once it consumes, the rebalance is done; then every model gets
    # events, and each must be reported by exactly one worker.
    b = rig.worker("b").start()
    assert wait_until(lambda: bool(model_series(b)), timeout=120), b.log_tail()
    first.join()
    publish(kafka_bootstrap, rig.topics["inference"], stream.take(2_000))
    audit = read_until_escalated(escalations, stream.qualifying, timeout=120)
    assert not audit.missing, audit  # both consume: no partition left unfetched
    on_a, on_b = model_series(a), model_series(b)
    assert on_a and on_b, (on_a, on_b)
    assert not on_a & on_b, (on_a, on_b)
    assert on_a | on_b == all_models

    # a leaves (clean stop) while the stream flows: b takes over its partitions.
    second = BackgroundPublisher(
        kafka_bootstrap, rig.topics["inference"], stream.take(6_000), rate=1_500
    ).start()
    assert wait_until(lambda: second.sent >= 1_500, timeout=60)
    assert a.stop() == 0, a.log_tail()
    second.join()

    audit = read_until_escalated(escalations, stream.qualifying, timeout=180)
    assert not audit.missing, audit
    assert not audit.conflicting, audit
    assert wait_until(lambda: model_series(b) == all_models, timeout=60), b.log_tail()
    assert b.stop() == 0, b.log_tail()
    assert checkpointed_events_seen(kafka_bootstrap, rig.topics, rig.partitions) == stream.valid
