"""The label join's checkpoint view: a snapshot of sealed chunks restores the mapping
exactly (rows, order, and what comes after), holds a bounded number of rows, and reads
nothing but plain data."""

from __future__ import annotations

import pickle
import random
from collections import OrderedDict

import pytest

from detectors.errors import SnapshotError
from streams.processing.sealed_rows import SealedRows, plain_dumps

Rows = OrderedDict[str, tuple[int, str]]


def same(k: object, v: object) -> tuple[str, tuple[int, str]]:
    assert isinstance(k, str) and isinstance(v, tuple)
    return k, (int(v[0]), str(v[1]))


def churn(rows: Rows, sealed: SealedRows[str, tuple[int, str]], rng: random.Random, n: int) -> None:
    """Adds (some of them keys removed before), removals anywhere, oldest-first evictions
    (removals through the view, as its owners do)."""
    for i in range(n):
        r = rng.random()
        if r < 0.6:
            key = f"k{rng.randrange(400)}"
            if key not in rows:
                value = rows[key] = (i, "v" * (i % 5))
                sealed.added(key, value)
                if not sealed.snapshot()["added"]:  # just sealed a chunk
                    assert 2 * sealed.chunked <= 3 * len(rows) + 2 * sealed.chunk_size
        elif r < 0.9 and rows:
            key = rng.choice(list(rows))
            assert sealed.pop(key) is not None and key not in rows
        elif rows:
            key, _ = sealed.pop_oldest()
            assert key not in rows
        assert sealed.chunked <= 1.5 * 400 + sealed.chunk_size  # 400 keys at most


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_restored_mapping_is_the_same_and_goes_on_the_same(seed: int) -> None:
    rows: Rows = OrderedDict()
    sealed = SealedRows(rows, chunk_size=16)
    churn(rows, sealed, random.Random(seed), 3000)
    snap = sealed.snapshot()
    back, resumed = SealedRows.restore(pickle.loads(pickle.dumps(snap)), same, chunk_size=16)
    assert list(back.items()) == list(rows.items())
    assert resumed.snapshot() == snap
    churn(rows, sealed, random.Random(seed + 100), 2000)
    churn(back, resumed, random.Random(seed + 100), 2000)
    assert list(back.items()) == list(rows.items())
    assert resumed.snapshot() == sealed.snapshot()


def test_chunks_are_pickled_once_and_copied_after() -> None:
    rows: Rows = OrderedDict()
    sealed = SealedRows(rows, chunk_size=100)
    for i in range(250):
        rows[f"k{i}"] = (i, "x")
        sealed.added(f"k{i}", rows[f"k{i}"])
    first, second = sealed.snapshot(), sealed.snapshot()
    assert sealed.chunks == 2 and len(first["tail"][0]) == 50
    assert all(a[0] is b[0] for a, b in zip(first["chunks"], second["chunks"], strict=True))


def test_an_older_mapping_is_sealed_whole() -> None:
    rows: Rows = OrderedDict((f"k{i}", (i, "y")) for i in range(40))
    sealed = SealedRows.sealing(rows, chunk_size=16)
    assert sealed.chunks == 3 and sealed.chunked == 40
    back, _ = SealedRows.restore(sealed.snapshot(), same, chunk_size=16)
    assert back == rows


def test_a_chunk_that_would_build_anything_but_plain_data_is_refused() -> None:
    evil = pickle.dumps((("k", print),))
    with pytest.raises(SnapshotError, match="plain data"):
        SealedRows.restore({"chunks": ((evil, ()),), "tail": (), "added": 0}, same)
    with pytest.raises(SnapshotError):
        SealedRows.restore({"chunks": ((b"not a pickle", ()),), "tail": (), "added": 0}, same)
    with pytest.raises(SnapshotError):
        SealedRows.restore({"chunks": ((plain_dumps(((1, 2, 3),)), ()),)}, same)
    with pytest.raises(SnapshotError):  # more added since the last chunk than a chunk
        SealedRows.restore({"chunks": (), "tail": ((), ()), "added": 5000}, same)
    chunk = plain_dumps((("k0", "k1"), ((0, ""), (1, ""))))
    with pytest.raises(SnapshotError, match="out of range"):  # a removed row it never had
        SealedRows.restore({"chunks": ((chunk, (5,)),), "tail": ((), ()), "added": 0}, same)
    rows, _ = SealedRows.restore({"chunks": ((chunk, (0,)),), "tail": ((), ()), "added": 0}, same)
    assert list(rows) == ["k1"]
