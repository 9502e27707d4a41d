"""The label join's pending predictions as columns: the same rows, in the same order, as
an ``OrderedDict`` given the same calls; snapshots in ``SealedRows``' form (each reads
the other's) that restore the rows exactly; columns and chunks bounded by the rows, not
the stream."""

from __future__ import annotations

import pickle
import random
from collections import OrderedDict
from typing import Any

import pytest

from detectors.errors import SnapshotError
from streams.processing.pending_rows import PendingRow, PendingRows
from streams.processing.sealed_rows import SealedRows, plain_dumps

Reference = OrderedDict[str, PendingRow]


def same(k: Any, v: Any) -> tuple[str, PendingRow]:
    assert isinstance(k, str) and isinstance(v, tuple)
    return k, (v[0], float(v[1]), bool(v[2]), None if v[3] is None else float(v[3]))


def churn(rows: PendingRows, ref: Reference, rng: random.Random, n: int, keys: int = 400) -> None:
    """Adds (of keys removed before too) under a cap that moves, removals anywhere,
    expiries, on both; checks that they agree after every call."""
    for i in range(n):
        r = rng.random()
        if r < 0.6:
            key = f"k{rng.randrange(keys)}"
            if key not in ref:
                inclusion = rng.choice([None, 1.0, 0.25])
                row = (("c", "x" * (i % 3), i / 7), float(i), inclusion == 1.0, inclusion)
                ref[key] = row
                cap = rng.choice([keys, keys // 4])
                evicted = 0
                while len(ref) > cap:
                    ref.popitem(last=False)
                    evicted += 1
                assert rows.add(key, *row, cap=cap) == evicted
        elif r < 0.95:
            key = f"k{rng.randrange(keys)}"
            assert rows.pop(key) == ref.pop(key, None)
        else:
            before = float(i - rng.randrange(300))
            expired = 0
            while ref and next(iter(ref.values()))[1] < before:
                ref.popitem(last=False)
                expired += 1
            assert rows.expire(before) == expired
        assert len(rows) == len(ref)
    assert list(rows.items()) == list(ref.items())
    assert list(rows) == list(ref)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_are_those_of_an_ordered_dict_given_the_same_calls(seed: int) -> None:
    rows, ref = PendingRows(chunk_size=16), OrderedDict()
    churn(rows, ref, random.Random(seed), 5000)
    assert all(k in rows for k in ref) and "absent" not in rows
    assert rows.expire(float("inf")) == len(ref) and not rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_restored_store_is_the_same_and_goes_on_the_same(seed: int) -> None:
    rows, ref = PendingRows(chunk_size=16), OrderedDict()
    churn(rows, ref, random.Random(seed), 3000)
    snap = rows.snapshot()
    back = PendingRows.restore(pickle.loads(pickle.dumps(snap)), same, chunk_size=16)
    assert list(back.items()) == list(rows.items())
    assert back.snapshot() == snap  # the chunks kept as they were, not pickled again
    ref2 = OrderedDict(ref)
    churn(rows, ref, random.Random(seed + 100), 2000)
    churn(back, ref2, random.Random(seed + 100), 2000)
    assert list(back.items()) == list(rows.items())


def test_snapshots_are_those_of_sealed_rows_both_ways() -> None:
    """Checkpoints keep their form: a join's pending rows written by SealedRows (before
    the columns) restore here, and the columns' snapshots restore as SealedRows."""
    ref: Reference = OrderedDict()
    sealed = SealedRows(ref, chunk_size=16)
    rng = random.Random(7)
    for i in range(900):
        key = f"k{rng.randrange(300)}"
        if rng.random() < 0.6 and key not in ref:
            row = ref[key] = (("c", "x", i / 7), float(i), False, None)
            sealed.added(key, row)
        elif key in ref:
            sealed.pop(key)
    assert sealed.chunks and sealed.snapshot()["added"]  # chunks, holes and a tail
    back = PendingRows.restore(sealed.snapshot(), same, chunk_size=16)
    assert list(back.items()) == list(ref.items())
    again, _ = SealedRows.restore(back.snapshot(), same, chunk_size=16)
    assert list(again.items()) == list(ref.items())


def test_columns_and_chunks_stay_bounded_by_the_rows() -> None:
    """One row that never leaves, every other removed soon after it comes: the columns
    and the chunks hold about twice the rows, whatever the stream's length."""
    rows = PendingRows(chunk_size=16)
    rows.add("stays", None, 0.0, False, None, cap=100)
    for i in range(20_000):
        rows.add(f"k{i}", None, float(i), False, None, cap=100)
        if i >= 10:
            assert rows.pop(f"k{i - 10}") is not None
        assert len(rows._keys) - rows._head <= 2 * len(rows) + 3 * 16
        assert rows.chunked <= 2 * len(rows) + 3 * 16
    assert list(rows)[:2] == ["stays", "k19990"]
    back = PendingRows.restore(rows.snapshot(), same, chunk_size=16)
    assert list(back.items()) == list(rows.items())


def test_rows_the_cap_and_expiry_remove_are_gone_from_their_chunks() -> None:
    """The oldest rows, removed by the cap (one per added row, once full) and by expiry,
    are noted in their chunks a run at a time: snapshots restore exactly the rows there,
    and chunks of which none is left are dropped, at any point of the stream."""
    rows, ref = PendingRows(chunk_size=16), OrderedDict[str, PendingRow]()
    for i in range(3000):
        ref[f"k{i}"] = (i, float(i), False, None)
        evicted = 0
        while len(ref) > 40:
            ref.popitem(last=False)
            evicted += 1
        assert rows.add(f"k{i}", i, float(i), False, None, cap=40) == evicted
        if i % 7 == 0:  # a removal out of order, inside a chunk
            assert rows.pop(f"k{i - 20}") == ref.pop(f"k{i - 20}", None)
        if i % 500 == 499:
            kept = OrderedDict((k, v) for k, v in ref.items() if v[1] >= i - 30)
            assert rows.expire(before=float(i - 30)) == len(ref) - len(kept) > 0
            ref = kept
        assert rows.chunked <= len(rows) + 3 * 16
        if i % 97 == 0 or i % 500 == 499:
            back = PendingRows.restore(rows.snapshot(), same, chunk_size=16)
            assert list(back.items()) == list(rows.items()) == list(ref.items())
            assert back.snapshot() == rows.snapshot()
    assert list(rows.items()) == list(ref.items())


def test_rows_of_older_checkpoints_are_sealed_in_full_chunks() -> None:
    items = [(f"k{i}", (i, float(i), False, None)) for i in range(40)]
    rows = PendingRows.of(items, chunk_size=16)
    assert list(rows.items()) == items
    snap = rows.snapshot()
    assert len(snap["chunks"]) == 2 and len(snap["tail"][0]) == 8 and snap["added"] == 8
    with pytest.raises(SnapshotError, match="twice"):
        PendingRows.of(items + items[:1], chunk_size=16)


def test_malformed_snapshots_are_refused() -> None:
    big = plain_dumps(
        (tuple(f"k{i}" for i in range(17)), tuple((i, 0.0, False, None) for i in range(17)))
    )
    with pytest.raises(SnapshotError, match="a chunk of 17 rows"):
        PendingRows.restore({"chunks": ((big, ()),), "tail": ((), ()), "added": 0}, same, 16)
    one = plain_dumps((("k",), ((1, 0.0, False, None),)))
    twice = {"chunks": ((one, ()), (one, ())), "tail": ((), ()), "added": 0}
    with pytest.raises(SnapshotError, match="twice"):
        PendingRows.restore(twice, same, 16)
    # Removed in the first chunk, there in the second: the same key, once.
    back = PendingRows.restore({**twice, "chunks": ((one, (0,)), (one, ()))}, same, 16)
    assert list(back) == ["k"]
    with pytest.raises(SnapshotError):
        PendingRows.restore({"chunks": ((one, (3,)),), "tail": ((), ()), "added": 0}, same, 16)
    with pytest.raises(SnapshotError):
        PendingRows.restore({"chunks": (), "tail": ((), ()), "added": 16}, same, 16)
    with pytest.raises(SnapshotError):
        PendingRows.restore({"chunks": ((b"not a pickle", ()),)}, same, 16)
