"""DriftMonitor.prepare (issue 18): a batch's columnar work done in advance leaves the
state and every result exactly as one event at a time does."""

from __future__ import annotations

import math
import random
import zlib
from typing import Any

import numpy as np
import pytest

from detectors.drift_monitor import DriftMonitor
from detectors.errors import InvalidObservationError
from detectors.prediction import ClassPrediction, RegressionPrediction

# Values a feature may carry (SPEC §2 and worse): mostly plain floats, sometimes
# anything the per-event path must sort out itself.
ODD = [None, math.nan, math.inf, -math.inf, 3, True, "x", 1e30, -1e30, 7.5]


def event(rng: random.Random, i: int, odd: float) -> tuple[dict[str, Any], Any]:
    shift = 1.5 if i > 2500 else 0.0
    a = rng.gauss(shift, 1.0)
    features: dict[str, Any] = {
        "a": a,
        "b": 0.8 * a + 0.6 * rng.gauss(0, 1),
        "c": rng.gauss(5, 2),
        "d": rng.uniform(0, 10),
        "k": rng.choice(["x", "y", "z"]) if i < 2000 else rng.choice(["x", "y", "w"]),
    }
    if rng.random() < odd:
        features[rng.choice(list(features))] = rng.choice(ODD)
    if rng.random() < odd / 2:
        del features[rng.choice(list(features))]
    if rng.random() < 0.002:  # a large outlier, scored as one
        features["c"] = 60.0
    if i == 1800:  # a feature first seen mid-stream
        features["late"] = 1.0
    if i > 1800 and rng.random() < 0.5:
        features["late"] = rng.gauss(0, 1)
    return features, ClassPrediction(rng.choice(["p", "q"]), rng.uniform(0.3, 1.0))


MONITORS = [
    {"reference_size": 300, "window": 100, "step": 50, "outlier_quantile": 0.99},
    {"reference_size": 300, "window": 100, "step": 50, "outlier_quantile": None},
    {
        "features": {"a": {"type": "numeric", "min": -2.5, "max": 2.5}, "d": {"max": 9.0}},
        "reference_size": 200,
        "window": 60,
        "step": 20,
        "outlier_quantile": 0.999,
    },
    {"reference_size": 200, "multivariate": False, "outlier_quantile": None},
]


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN included (snapshots hold NaN where a value was NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("params", MONITORS)
@pytest.mark.parametrize("odd", [0.0, 0.05])
def test_prepared_batches_give_the_same_results_and_state(
    params: dict[str, Any], odd: float
) -> None:
    rng = random.Random(zlib.crc32(repr((params, odd)).encode()))
    one, batched = DriftMonitor(**params), DriftMonitor(**params)
    stream = [event(rng, i, odd) for i in range(4000)]
    prepared_clean = prepared_scored = 0
    pos = 0
    while pos < len(stream):
        size = rng.choice([1, 2, 7, 50, 120])
        batch = stream[pos : pos + size]
        # Prepared with one extra event that is never updated: it must cost nothing.
        extra = [dict(batch[0][0], a=0.0)]
        batched.prepare([f for f, _ in batch] + extra)
        pre = batched._pre
        if pre is not None:
            prepared_clean += sum(pre.clean)
            prepared_scored += sum(s is not None for s in pre.scores or [])
        for features, prediction in batch:
            got = batched.update(features, prediction)
            want = one.update(features, prediction)
            assert got == want
            assert batched.last_quality == one.last_quality
            assert batched.last_outlier == one.last_outlier
        pos += size
    assert _same(batched.snapshot(), one.snapshot())
    assert one.events_seen == len(stream)
    # The batch path was taken (else this test would prove nothing).
    assert prepared_clean > 1000
    if params.get("outlier_quantile") is not None and params.get("multivariate", True):
        assert prepared_scored > 1000
        assert one.multivariate_detector is not None
        assert one.multivariate_detector.active


def test_prepare_before_references_are_learned_prepares_nothing() -> None:
    rng = random.Random(3)
    mon = DriftMonitor(reference_size=500)
    batch = [event(rng, i, 0.0) for i in range(10)]
    mon.prepare([f for f, _ in batch])
    assert mon._pre is None  # not started
    for f, p in batch:
        mon.update(f, p)
    mon.prepare([f for f, _ in batch])
    assert mon._pre is None  # still learning


def test_a_new_feature_mid_batch_sends_the_rest_of_the_batch_per_event() -> None:
    """Events after the one that adds a slot are assessed against it (``missing``)."""
    mon = DriftMonitor({"a": {"type": "numeric", "min": 0, "max": 1}}, reference_size=20)
    for _ in range(40):
        mon.update({"a": 0.5}, RegressionPrediction(1.0))
    batch = [{"a": 0.5}, {"a": 0.5, "new": 2.0}, {"a": 0.5}]
    mon.prepare(batch)
    assert mon._pre is not None and mon._pre.clean == [True, True, True]
    qualities = []
    for f in batch:
        mon.update(f, RegressionPrediction(1.0))
        qualities.append(mon.last_quality)
    assert qualities[0].ok and qualities[1].ok
    assert qualities[2].missing == ("new",)


def test_what_prepare_keeps_between_batches_is_read_again_when_a_block_ends() -> None:
    """prepare keeps what it reads of the slots (ready or not, the ranges) from one batch
    to the next: a range learned at the end of a block, and a restored monitor's, are
    what the next batch is checked against."""
    mon = DriftMonitor(reference_size=40, window=20, step=10, multivariate=False)
    learning = [{"a": float(i % 5)} for i in range(30)]  # the range learned: [0, 4]
    for f in learning:
        mon.prepare([f, f])
        assert mon._pre is None  # still learning: nothing prepared, batch after batch
        mon.update(f, RegressionPrediction(1.0))
    for f in learning[:10]:  # the reference's 40th value ends a block
        mon.prepare([f, f])
        mon.update(f, RegressionPrediction(1.0))
    assert (mon._slots["a"].lo, mon._slots["a"].hi) == (0.0, 4.0)
    batch = [{"a": 2.0}, {"a": 9.0}]
    mon.prepare(batch)
    assert mon._pre is not None and mon._pre.clean == [True, False]  # 9.0: out of range
    back = DriftMonitor.restore(mon.snapshot())
    back.prepare(batch)
    assert back._pre is not None and back._pre.clean == [True, False]


def test_project_scores_a_row_alike_alone_and_in_any_batch() -> None:
    """Bit for bit: the batch path's outlier flags are the per-event path's."""
    rng = random.Random(5)
    mon = DriftMonitor(reference_size=300)
    for i in range(600):  # its reference is fitted a block after the features' (at 500)
        mon.update(*event(rng, i, 0.0))
    mv = mon.multivariate_detector
    assert mv is not None and mv.active
    x = np.array([[rng.gauss(0, 3) for _ in mv.feature_names] for _ in range(257)])
    spe, score = mv.project(x)
    for size in (1, 2, 5, 64):
        for start in range(0, len(x), size):
            s2, c2 = mv.project(x[start : start + size])
            assert s2.tolist() == spe[start : start + size].tolist()
            assert c2.tolist() == score[start : start + size].tolist()


def regression_event(rng: random.Random, i: int, odd: float) -> tuple[dict[str, Any], Any]:
    features, _ = event(rng, i, odd)
    value: Any = rng.gauss(10.0 if i > 2500 else 0.0, 1.0)
    if rng.random() < odd:  # an int, a numpy float: plain enough, but per event
        value = rng.choice([3, np.float64(0.5)])
    return features, RegressionPrediction(value)


# update_many's own path runs without the multivariate detector (with it: per event).
WITHOUT_MV = [
    {"reference_size": 300, "window": 100, "step": 50, "multivariate": False},
    {
        "features": {"a": {"type": "numeric", "min": -2.5, "max": 2.5}, "k": {}},
        "reference_size": 200,
        "window": 60,
        "step": 20,
        "multivariate": False,
    },
]


@pytest.mark.parametrize("params", MONITORS + WITHOUT_MV)
@pytest.mark.parametrize("odd", [0.0, 0.05])
@pytest.mark.parametrize("make", [event, regression_event])
def test_update_many_gives_what_update_gives_event_by_event(
    params: dict[str, Any], odd: float, make: Any
) -> None:
    rng = random.Random(zlib.crc32(repr((params, odd, make.__name__)).encode()))
    one, many = DriftMonitor(**params), DriftMonitor(**params)
    per_event = 0
    update = many.update

    def counted(features: Any, prediction: Any) -> Any:
        nonlocal per_event
        per_event += 1
        return update(features, prediction)

    many.update = counted  # type: ignore[method-assign]
    stream = [make(rng, i, odd) for i in range(4000)]
    want: list[tuple[int, Any]] = []
    for i, (features, prediction) in enumerate(stream):
        changes = one.update(features, prediction)
        if changes:
            want.append((i, changes))
    got: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(stream):
        batch = stream[pos : pos + rng.choice([1, 2, 7, 50, 120, 400])]
        found = many.update_many([f for f, _ in batch], [p for _, p in batch])
        got += [(pos + j, changes) for j, changes in found]
        pos += len(batch)
    assert got == want
    assert any(changes for _, changes in want)  # the stream drifts: edges were compared
    assert _same(many.snapshot(), one.snapshot())
    assert many.last_quality == one.last_quality
    assert many.events_seen == len(stream)
    if params.get("multivariate", True):
        assert per_event == len(stream)
    else:  # most took the columnar path (half of those after "late" appears lack it)
        assert per_event < (0.4 if odd else 0.3) * len(stream)


def test_update_many_raises_at_an_invalid_event_with_the_ones_before_taken() -> None:
    rng = random.Random(11)
    mon = DriftMonitor(reference_size=100, multivariate=False)
    ref = DriftMonitor(reference_size=100, multivariate=False)
    stream = [event(rng, i, 0.0) for i in range(300)]
    for f, p in stream[:200]:
        mon.update(f, p)
        ref.update(f, p)
    batch = stream[200:]
    preds = [p for _, p in batch]
    preds[40] = RegressionPrediction(1.0)  # a class model's regression prediction
    with pytest.raises(InvalidObservationError, match="predictions are class"):
        mon.update_many([f for f, _ in batch], preds)
    for f, p in batch[:40]:
        ref.update(f, p)
    assert _same(mon.snapshot(), ref.snapshot())
    with pytest.raises(InvalidObservationError, match="one prediction per event"):
        mon.update_many([f for f, _ in batch], preds[:3])
