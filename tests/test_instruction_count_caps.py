"""``benchmarks/processor.py``'s instruction count: the counted events come after the
label join and the review desk are full.

Below their caps a processor skips the work a long-running worker does on every event
(an eviction, and a chunk sealed every 1,024 rows); the count is issue 18's repeatable
per-event figure, so its children lower the caps (``COUNT_CAPS``) and refuse to count
before they are full.
"""

from __future__ import annotations

import pytest

from benchmarks.processor import (
    COUNT_CAPS,
    COUNT_WARMUP,
    StepClock,
    caps_short,
    make_events,
    make_runner,
)
from streams.processing.processor import Outgoing, Processor


@pytest.fixture(scope="module")
def counted() -> tuple[Processor, dict[str, tuple[int, int]]]:
    made: list[Processor] = []
    run = make_runner(
        COUNT_CAPS, make_events(20_000), Outgoing(), StepClock(), batched=True, made=made
    )
    run(1_000)
    early = caps_short(made[0])
    run(COUNT_WARMUP - 1_000)
    return made[0], early


def test_every_cap_is_full_after_the_warm_up(counted) -> None:
    proc, _ = counted
    assert caps_short(proc) == {}
    max_pending = COUNT_CAPS["labels"]["max_pending"]
    max_open = COUNT_CAPS["review"]["max_open"]
    states = dict(proc.fleet.items())
    assert len(states) == 10
    for state in states.values():
        assert state.join.pending == max_pending
        assert state.review is not None and state.review.remembered == max_open


def test_caps_not_yet_full_are_reported(counted) -> None:
    _, early = counted
    # ~100 events per model: neither cap is full, and every model says by how much.
    assert len(early) == 10
    assert all(pending < 1_000 and remembered < 100 for pending, remembered in early.values())


def test_a_warm_up_that_leaves_the_caps_short_is_refused() -> None:
    from benchmarks.processor import count_instructions

    with pytest.raises(ValueError, match="leaves the caps short of full"):
        count_instructions(make_events(10), 10, 20, warmup=COUNT_WARMUP - 1)


def test_a_models_events_come_from_one_partition_as_topics_keyed_by_model_give(counted) -> None:
    # SPEC §1: keyed by model_id. Events of one model from several partitions make every
    # change of partition reset the model's offsets, which a worker never pays for.
    proc, _ = counted
    states = dict(proc.fleet.items())
    assert {s.partition for s in states.values()} <= {0, 1, 2, 3}
    assert len({s.partition for s in states.values()}) > 1  # the models are spread
    sources: list[tuple[int, bytes | None]] = []
    made: list[Processor] = []
    run = make_runner({}, make_events(200), Outgoing(), StepClock(), batched=True, made=made)
    # What the runner hands the processor, seen instead of processed.
    made[0].inference_batch = lambda messages, out: sources.extend(  # type: ignore[method-assign]
        (src.partition, src.key) for _, src in messages
    )
    run(400)
    by_key: dict[bytes | None, set[int]] = {}
    for partition, key in sources:
        by_key.setdefault(key, set()).add(partition)
    assert len(sources) == 400 and len(by_key) == 10
    assert all(len(parts) == 1 for parts in by_key.values())


@pytest.mark.parametrize(
    ("batch_size", "sizes"), [(None, [1_000, 1_000, 500]), (15, [15] * 166 + [10])]
)
def test_the_runner_hands_the_processor_batches_of_the_size_asked(
    batch_size: int | None, sizes: list[int]
) -> None:
    # --instruction-batch: a worker's batches at 5,000 events/s hold 10-20 events, where
    # the benchmarks' worker.batch_size (1,000) is what it reads at full load.
    seen: list[int] = []
    made: list[Processor] = []
    run = make_runner(
        {},
        make_events(200),
        Outgoing(),
        StepClock(),
        batched=True,
        made=made,
        batch_size=batch_size,
    )
    made[0].inference_batch = lambda messages, out: seen.append(len(messages))  # type: ignore[method-assign]
    run(2_500)
    assert seen == sizes
