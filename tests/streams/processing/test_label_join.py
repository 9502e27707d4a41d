import pickle
import random
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.errors import SnapshotError
from streams.errors import ConfigError, InvalidEventError
from streams.processing.label_join import LabelJoin
from streams.processing.sealed_rows import SealedRows

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_join_then_duplicate_then_unmatched() -> None:
    join = LabelJoin(horizon=100, max_pending=10)
    assert join.add_prediction("m", "e1", "p1", at(0), escalated=True)
    first = join.match("m", "e1", at(30))
    assert (first.outcome, first.prediction, first.escalated) == ("joined", "p1", True)
    assert first.prediction_ts == at(0)
    assert first.delay_seconds == 30.0
    assert join.match("m", "e1", at(31)).outcome == "duplicate"
    assert join.match("m", "nope", at(31)).outcome == "unmatched"
    assert join.counts == {
        "joined": 1,
        "unmatched": 1,
        "duplicate": 1,
        "expired": 0,
        "overflow": 0,
    }
    assert join.pending == 0


def test_keys_are_per_model() -> None:
    join = LabelJoin()
    join.add_prediction("a", "e", "pa", at(0))
    join.add_prediction("b", "e", "pb", at(0))
    assert join.match("b", "e", at(1)).prediction == "pb"
    assert join.match("a", "e", at(1)).prediction == "pa"


def test_predictions_expire_after_horizon() -> None:
    join = LabelJoin(horizon=60, max_pending=100)
    join.add_prediction("m", "old", "p", at(0))
    join.add_prediction("m", "new", "p", at(50))
    assert join.match("m", "old", at(61)).outcome == "unmatched"
    assert join.match("m", "new", at(61)).outcome == "joined"
    assert join.counts["expired"] == 1
    # A prediction already past the horizon of the watermark is not kept.
    assert not join.add_prediction("m", "stale", "p", at(0))


def test_max_pending_evicts_oldest() -> None:
    join = LabelJoin(horizon=10_000, max_pending=3)
    for i in range(5):
        join.add_prediction("m", f"e{i}", i, at(i))
    assert join.pending == 3
    assert [join.match("m", f"e{i}", at(10)).outcome for i in range(5)] == [
        "unmatched",
        "unmatched",
        "joined",
        "joined",
        "joined",
    ]
    assert join.counts["overflow"] == 2


def test_duplicates_remembered_within_bounds() -> None:
    join = LabelJoin(horizon=100, max_pending=10, max_joined=2)
    for i in range(3):
        join.add_prediction("m", f"e{i}", i, at(i))
        join.match("m", f"e{i}", at(i + 1))
    # e0 fell out of the joined memory (cap 2): a late repeat is unmatched, not duplicate.
    assert join.match("m", "e0", at(5)).outcome == "unmatched"
    assert join.match("m", "e2", at(5)).outcome == "duplicate"
    # Joined ids are also forgotten past the horizon.
    assert join.match("m", "e2", at(500)).outcome == "unmatched"


def test_label_carrying_its_prediction_needs_no_join() -> None:
    join = LabelJoin()
    r = join.match("m", "x", at(0), prediction="inline")
    assert (r.outcome, r.prediction, r.escalated) == ("joined", "inline", None)
    assert join.match("m", "x", at(1), prediction="inline").outcome == "duplicate"
    # With a pending prediction, its escalated flag and time come back.
    join.add_prediction("m", "y", "stored", at(0), escalated=True)
    r = join.match("m", "y", at(2), prediction="inline")
    assert (r.prediction, r.escalated, r.delay_seconds) == ("inline", True, 2.0)
    assert join.pending == 0


def test_replayed_prediction_is_ignored() -> None:
    join = LabelJoin()
    assert join.add_prediction("m", "e", "first", at(0))
    assert not join.add_prediction("m", "e", "second", at(1))
    assert join.match("m", "e", at(2)).prediction == "first"
    assert not join.add_prediction("m", "e", "third", at(3))
    assert join.match("m", "e", at(4)).outcome == "duplicate"


def _ops(seed: int, n: int) -> list[tuple]:
    rng = random.Random(seed)
    ops: list[tuple] = []
    for i in range(n):
        t = at(i * 0.5 + rng.uniform(-2, 2))
        if rng.random() < 0.55:
            ops.append(("add", "m", f"e{rng.randrange(n // 2)}", {"i": i}, t, rng.random() < 0.3))
        else:
            ops.append(("match", "m", f"e{rng.randrange(n // 2)}", t))
    return ops


def _apply(join: LabelJoin, op: tuple) -> object:
    if op[0] == "add":
        return join.add_prediction(*op[1:])
    return join.match(*op[1:])


def test_snapshot_resume_gives_same_results() -> None:
    ops = _ops(11, 3000)
    whole = LabelJoin(horizon=120, max_pending=200, max_joined=150)
    out_whole = [_apply(whole, op) for op in ops]
    first = LabelJoin(horizon=120, max_pending=200, max_joined=150)
    out = [_apply(first, op) for op in ops[:1500]]
    resumed = LabelJoin.restore(pickle.loads(pickle.dumps(first.snapshot())))
    out += [_apply(resumed, op) for op in ops[1500:]]
    assert out == out_whole
    assert resumed.snapshot() == whole.snapshot()


def older_snapshots(join: LabelJoin) -> list[dict[str, Any]]:
    """The join's snapshot as versions 3 (an item per entry) and 4 (columns) wrote it."""
    now = join.snapshot()
    pending, joined = join.pending_items(), join.joined_items()
    columns = {
        "pending": {
            "model_id": tuple(m for (m, _), _ in pending),
            "event_id": tuple(e for (_, e), _ in pending),
            "prediction": tuple(v[0] for _, v in pending),
            "ts": tuple(v[1] for _, v in pending),
            "escalated": tuple(v[2] for _, v in pending),
            "inclusion": tuple(v[3] for _, v in pending),
        },
        "joined": {
            "model_id": tuple(m for (m, _), _ in joined),
            "event_id": tuple(e for (_, e), _ in joined),
            "at": tuple(t for _, t in joined),
        },
    }
    return [
        {**now, "version": 3, "state": {**now["state"], "pending": pending, "joined": joined}},
        {**now, "version": 4, "state": {**now["state"], **columns}},
    ]


def half_applied(seed: int) -> tuple[LabelJoin, list[tuple]]:
    """A join after the first half of 3,000 random operations (some pending, some
    joined), and all the operations."""
    ops = _ops(seed, 3000)
    join = LabelJoin(horizon=120, max_pending=200, max_joined=150)
    for op in ops[:1500]:
        _apply(join, op)
    assert join.pending and join.counts["joined"]
    return join, ops


def test_checkpoints_of_versions_3_and_4_are_read_as_they_were() -> None:
    """An item tuple per entry (3) and columns (4) restore to the same join as today's
    sealed chunks: the same entries in the same order, and the same results after."""
    join, ops = half_applied(12)
    older = older_snapshots(join)
    pending, joined = join.pending_items(), join.joined_items()
    expected = [_apply(join, op) for op in ops[1500:]]
    for old in older:
        restored = LabelJoin.restore(pickle.loads(pickle.dumps(old)))
        assert restored.pending_items() == pending
        assert restored.joined_items() == joined
        assert [_apply(restored, op) for op in ops[1500:]] == expected


def test_a_key_labelled_forgotten_and_predicted_again_is_a_new_entry() -> None:
    """Once its joined id is forgotten, an event can be pending again: the restored join
    must hold it once, at its new place, with its new prediction."""
    join = LabelJoin(horizon=1e9, max_pending=5000, max_joined=1)
    join.add_prediction("m", "e0", "old", T0)
    for i in range(1, 5):
        join.add_prediction("m", f"e{i}", i, T0)
    assert join.match("m", "e0", T0).outcome == "joined"
    join.match("m", "e1", T0)  # e0's joined id is forgotten (max_joined 1)
    assert join.add_prediction("m", "e0", "new", T0)
    for i in range(5, 3000):  # seals chunks of 1024 around them
        join.add_prediction("m", f"e{i}", i, T0)
    restored = LabelJoin.restore(pickle.loads(pickle.dumps(join.snapshot())))
    assert restored.pending_items() == join.pending_items()
    assert restored.match("m", "e0", T0).prediction == "new"


def test_state_stays_bounded() -> None:
    join = LabelJoin(horizon=1e9, max_pending=500, max_joined=300)
    for op in _ops(3, 20_000):
        _apply(join, op)
    assert join.pending <= 500
    assert len(join._joined) <= 300
    # What the checkpoint's chunks hold is bounded by the entries, not the stream.
    assert join._pending.chunked <= 2 * 500 + 3 * 1024
    assert join._sealed_joined.chunked <= 1.5 * 300 + 1024


@pytest.mark.parametrize(
    "call",
    [
        lambda j: j.add_prediction("m", "e", "p", datetime(2024, 1, 1)),  # noqa: DTZ001 - rejected on purpose
        lambda j: j.add_prediction("m", 3, "p", T0),
        lambda j: j.add_prediction("m", "e", "p", T0, escalated="yes"),
        lambda j: j.add_prediction("m", "e", "p", T0, inclusion=0.0),
        lambda j: j.add_prediction("m", "e", "p", T0, inclusion=1),
        lambda j: j.add_prediction(b"m", "e", "p", T0),
        lambda j: j.match("m", "e", 1_700_000_000),
    ],
)
def test_rejects_bad_input_without_change(call) -> None:
    join = LabelJoin()
    join.add_prediction("m", "keep", "p", T0)
    before = join.snapshot()
    with pytest.raises(InvalidEventError):
        call(join)
    assert join.snapshot() == before


@pytest.mark.parametrize(
    "kwargs", [{"horizon": 0}, {"horizon": float("inf")}, {"max_pending": 0}, {"max_joined": 1.5}]
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        LabelJoin(**kwargs)


def test_restore_refuses_foreign_snapshot() -> None:
    with pytest.raises(SnapshotError):
        LabelJoin.restore({"class": "Other", "version": 1})


def version_5(join: LabelJoin) -> dict[str, Any]:
    """The join's snapshot as version 5 wrote it: sealed rows keyed by (model, event) pairs."""
    now = join.snapshot()

    def sealed(items: list) -> dict[str, Any]:
        rows: OrderedDict = OrderedDict()
        view = SealedRows(rows)
        for key, value in items:
            rows[key] = value
            view.added(key, value)
        return view.snapshot()

    state = {k: v for k, v in now["state"].items() if k != "model"}
    state["pending"] = sealed(join.pending_items())
    state["joined"] = sealed(join.joined_items())
    return {**now, "version": 5, "state": state}


def test_rows_of_its_own_model_are_keyed_by_event_id_alone() -> None:
    """A worker's join serves one model: its rows carry no (model, event) pair each."""
    join = LabelJoin(horizon=1e9, max_pending=100)
    for i in range(3):
        join.add_prediction("m", f"e{i}", i, at(i))
    join.add_prediction("other", "e0", "o", at(3))
    join.match("m", "e2", at(4))
    assert list(join._pending) == ["e0", "e1", ("other", "e0")]
    assert list(join._joined) == ["e2"]
    assert join.pending_items() == [
        (("m", "e0"), (0, at(0).timestamp(), False, None)),
        (("m", "e1"), (1, at(1).timestamp(), False, None)),
        (("other", "e0"), ("o", at(3).timestamp(), False, None)),
    ]
    assert join.joined_items() == [(("m", "e2"), at(4).timestamp())]
    restored = LabelJoin.restore(pickle.loads(pickle.dumps(join.snapshot())))
    assert restored.pending_items() == join.pending_items()
    assert restored.match("other", "e0", at(5)).prediction == "o"
    assert restored.match("m", "e0", at(5)).prediction == 0


def test_checkpoints_of_version_5_are_read_as_they_were() -> None:
    """Version 5 keyed every row by its pair: restored, the rows of the first model are
    keyed by event id, and the join goes on as the one that wrote it."""
    join, ops = half_applied(13)
    old = version_5(join)
    restored = LabelJoin.restore(pickle.loads(pickle.dumps(old)))
    assert restored.pending_items() == join.pending_items()
    assert restored.joined_items() == join.joined_items()
    assert all(type(k) is str for k in restored._pending)
    assert [_apply(restored, op) for op in ops[1500:]] == [_apply(join, op) for op in ops[1500:]]


def test_checked_adds_are_the_adds_of_add_prediction() -> None:
    """The processor's unchecked entry (add_checked, an epoch time) keeps the state
    add_prediction keeps: the join's own model and another, replays, a small cap,
    expiry and labels on the way."""
    rng = random.Random(4)
    checked, plain = (
        LabelJoin(horizon=50.0, max_pending=30),
        LabelJoin(horizon=50.0, max_pending=30),
    )
    for i in range(2000):
        model, event = rng.choice(["own", "own", "other"]), f"e{rng.randrange(300)}"
        ts = at(i * 0.1 + rng.uniform(-80.0, 0.0))  # some later than the horizon
        if rng.random() < 0.8:
            esc, inc = rng.choice([(False, None), (True, 1.0), (False, 0.25)])
            added = plain.add_prediction(model, event, ("c", i), ts, esc, inc)
            assert checked.add_checked(model, event, ("c", i), ts.timestamp(), esc, inc) == added
        else:
            assert checked.match(model, event, ts) == plain.match(model, event, ts)
    assert checked.snapshot() == plain.snapshot() and checked.counts == plain.counts
    assert checked.counts["overflow"] and checked.counts["expired"] and checked.pending


def test_event_ids_without_a_model_are_refused() -> None:
    join = LabelJoin()
    with pytest.raises(InvalidEventError):
        join.add_prediction(None, "e", "p", T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError):
        join.match(None, "e", T0)  # type: ignore[arg-type]
    assert join.pending == 0 and join.snapshot()["state"]["model"] is None
    bad = join.snapshot()
    bad["state"]["pending"] = version_5(join)["state"]["pending"]
    bad["state"]["pending"]["tail"] = (("e",), (("p", 0.0, False, None),))
    bad["state"]["pending"]["added"] = 1
    with pytest.raises(SnapshotError, match="names no model"):
        LabelJoin.restore(bad)
