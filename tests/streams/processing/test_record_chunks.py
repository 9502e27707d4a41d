"""The review desk's compressed record store: what goes in comes out, from any chunk,
across a checkpoint and a repack; chunks go once nothing in them is live."""

from __future__ import annotations

import pickle

import pytest

from detectors.errors import SnapshotError
from streams.processing.record_chunks import RecordChunks


def filled(n: int, chunk_size: int = 4) -> tuple[RecordChunks, dict[int, bytes]]:
    store = RecordChunks(chunk_size)
    records = {}
    for i in range(n):
        record = b'{"event_id":"e%d","x":"%s"}' % (i, b"y" * (i % 7))
        records[store.add(record)] = record
    return store, records


def test_every_record_reads_back_sealed_or_open() -> None:
    store, records = filled(10)  # chunks 0 and 1 sealed, 2 records open
    assert store.sealed_chunks == 2 and store.live == 10
    for loc in [9, 0, 5, 1, 8, 4]:  # across chunks, back and forth
        assert store.get(loc) == records[loc]


def test_a_chunk_goes_when_its_last_record_is_released() -> None:
    store, _ = filled(10)
    for loc in (0, 1, 2):
        store.release(loc)
    assert store.sealed_chunks == 2
    store.release(3)
    assert store.sealed_chunks == 1 and store.live == 6
    with pytest.raises(KeyError):
        store.get(3)


def test_a_checkpoint_restores_the_live_records() -> None:
    store, records = filled(10)
    store.release(2)
    live = [loc for loc in records if loc != 2]
    restored = RecordChunks.restore(pickle.loads(pickle.dumps(store.snapshot())), live)
    assert {loc: restored.get(loc) for loc in live} == {loc: records[loc] for loc in live}
    assert restored.live == 9 and restored.snapshot() == store.snapshot()
    # Both go on alike: the next record lands at the same place.
    assert restored.add(b"z") == store.add(b"z") == 10


def test_a_checkpoint_whose_index_points_nowhere_is_refused() -> None:
    store, _ = filled(10)
    snap = store.snapshot()
    for bad in ([12], [40], [-1]):
        with pytest.raises(SnapshotError):
            RecordChunks.restore(snap, bad)
    with pytest.raises(SnapshotError):
        RecordChunks.restore({"class": "ReviewDesk"}, [])


def test_repacked_keeps_the_records_in_order_in_fewer_chunks() -> None:
    store, records = filled(40)
    keep = [loc for loc in records if loc % 5 == 0]  # 8 records over 10 chunks
    for loc in records:
        if loc not in keep:
            store.release(loc)
    assert store.sparse() and store.sealed_chunks == 8
    fresh, locs = store.repacked(keep)
    assert [fresh.get(loc) for loc in locs] == [records[loc] for loc in keep]
    assert fresh.sealed_chunks == 2 and not fresh.sparse()


def test_sealed_chunks_hold_less_than_their_records() -> None:
    store, records = filled(400, chunk_size=64)
    assert store.nbytes < sum(map(len, records.values())) / 2
