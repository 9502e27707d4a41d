"""Immutable records kept compressed in chunks: the review desk's remembered escalations.

A model's review desk remembers up to ``review.max_open`` escalation records (~0.9 KB of
JSON each in the throughput benchmark), each until its first label or until it is
forgotten. Kept as one ``bytes`` each they were most of a model's memory and of its
checkpoint: every checkpoint round pickled and compressed all of them again (9 of a full
model's 10 MB, on the ingest thread and the compression thread), although a record never
changes once sent.

:class:`RecordChunks` appends records to an open chunk and compresses it (zstd) once it
holds :attr:`~RecordChunks.chunk_size` records; a checkpoint copies the sealed chunks as
they are. Measured on the benchmark's escalations: chunks of 64 compress ~4.8x at ~2 µs
per record, and reading one record back decompresses its chunk (~60 µs; the last chunk
read is kept decompressed, as labels tend to come in the order of their escalations).

A record is addressed by its location, one int (chunk number x chunk size + index). A
chunk is dropped when none of its records is live any more (:meth:`RecordChunks.release`);
records taken here and there can leave many sealed chunks with few live records, so the
owner repacks the live ones into a fresh store when :meth:`RecordChunks.sparse` says so.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import cramjam

from detectors.errors import SnapshotError
from streams.processing.frames import Frame, as_frame, compressed

__all__ = ["RecordChunks"]

_SNAPSHOT_VERSION = 1


class RecordChunks:
    """Records by location, compressed in chunks of ``chunk_size``.

    >>> store = RecordChunks(chunk_size=2)
    >>> locs = [store.add(b'{"n":%d}' % i) for i in range(5)]
    >>> locs, store.sealed_chunks, store.get(locs[1]), store.get(locs[4])
    ([0, 1, 2, 3, 4], 2, b'{"n":1}', b'{"n":4}')
    >>> store.release(locs[0]); store.release(locs[1]); store.sealed_chunks  # all of chunk 0
    1
    >>> RecordChunks.restore(store.snapshot(), locs[2:]).get(locs[3])
    b'{"n":3}'
    """

    def __init__(self, chunk_size: int = 64, *, level: int = 1) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        self.level = level
        self._sealed: dict[int, tuple[Frame, array[int]]] = {}  # chunk -> zstd frame, ends
        self._open_no = 0
        self._open = bytearray()
        self._open_ends: array[int] = array("Q")
        self._open_live = 0  # records of the open chunk not released
        self._live: dict[int, int] = {}  # sealed chunk -> records not released
        self._live_total = 0
        self._cached: tuple[int, bytes] = (-1, b"")  # the last sealed chunk read

    # ------------------------------------------------------------ records

    def add(self, record: bytes) -> int:
        """Keep a copy of ``record``; returns its location."""
        buf = self._open
        buf += record
        ends = self._open_ends
        ends.append(len(buf))
        self._open_live += 1
        self._live_total += 1
        n = len(ends)
        loc = self._open_no * self.chunk_size + n - 1
        if n == self.chunk_size:
            self._seal()
        return loc

    def get(self, loc: int) -> bytes:
        """The record at ``loc`` (KeyError if its chunk is gone)."""
        no, i = divmod(loc, self.chunk_size)
        if no == self._open_no:
            data: bytes | bytearray = self._open
            ends = self._open_ends
        else:
            frame, ends = self._sealed[no]
            if self._cached[0] != no:
                self._cached = (no, bytes(cramjam.zstd.decompress(frame)))
            data = self._cached[1]
        if i >= len(ends):
            raise KeyError(loc)
        return bytes(data[ends[i - 1] if i else 0 : ends[i]])

    def release(self, loc: int) -> None:
        """The record at ``loc`` (added, not released since) is no longer needed; a
        sealed chunk none of whose records is needed is dropped."""
        self._live_total -= 1
        no = loc // self.chunk_size
        if no == self._open_no:
            self._open_live -= 1
            return
        left = self._live[no] - 1
        if left:
            self._live[no] = left
            return
        del self._live[no], self._sealed[no]
        if self._cached[0] == no:
            self._cached = (-1, b"")

    def _seal(self) -> None:
        no = self._open_no  # its last record was just added: live
        frame = compressed(self._open, self.level)
        self._sealed[no] = (frame, self._open_ends)
        self._live[no] = self._open_live
        self._open_no = no + 1
        self._open = bytearray()
        self._open_ends = array("Q")
        self._open_live = 0

    # ------------------------------------------------------------ readings

    @property
    def live(self) -> int:
        """Records not released."""
        return self._live_total

    @property
    def sealed_chunks(self) -> int:
        return len(self._sealed)

    @property
    def nbytes(self) -> int:
        """Bytes held: the sealed chunks' frames and the open chunk."""
        return sum(len(f) for f, _ in self._sealed.values()) + len(self._open)

    def sparse(self) -> bool:
        """More than twice as many sealed chunks as the live records fill (plus two):
        time to repack them (:meth:`repacked`). Keeps the chunks held within about twice
        the compressed size of the live records, at one repack per at least as many
        releases as there are live records."""
        return len(self._sealed) > 2 * (self._live_total // self.chunk_size) + 2

    def repacked(self, locs: Iterable[int]) -> tuple[RecordChunks, list[int]]:
        """A fresh store of the records at ``locs`` (in that order), and their new
        locations."""
        fresh = RecordChunks(self.chunk_size, level=self.level)
        return fresh, [fresh.add(self.get(loc)) for loc in locs]

    # ------------------------------------------------------------ checkpoint

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable state: the sealed chunks as they are (already compressed)."""
        nos = tuple(self._sealed)
        return {
            "class": "RecordChunks",
            "version": _SNAPSHOT_VERSION,
            "chunk_size": self.chunk_size,
            "level": self.level,
            "sealed": {
                "chunk": nos,
                "frame": tuple(self._sealed[n][0] for n in nos),
                "ends": tuple(self._sealed[n][1].tobytes() for n in nos),
            },
            "open_no": self._open_no,
            "open": bytes(self._open),
            "open_ends": self._open_ends.tobytes(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any], locs: Iterable[int]) -> RecordChunks:
        """A store from :meth:`snapshot`, whose live records are at ``locs`` (the owner's
        index: what is live is the owner's to say)."""
        if (
            not isinstance(snapshot, dict)
            or snapshot.get("class") != "RecordChunks"
            or snapshot.get("version") != _SNAPSHOT_VERSION
        ):
            raise SnapshotError(f"not a RecordChunks snapshot of version {_SNAPSHOT_VERSION}")
        store = cls(int(snapshot["chunk_size"]), level=int(snapshot["level"]))
        sealed = snapshot["sealed"]
        for no, frame, ends in zip(sealed["chunk"], sealed["frame"], sealed["ends"], strict=True):
            store._sealed[int(no)] = (as_frame(frame), _ends(ends))
        store._open_no = int(snapshot["open_no"])
        store._open = bytearray(snapshot["open"])
        store._open_ends = _ends(snapshot["open_ends"])
        size = store.chunk_size
        for loc in locs:
            no, i = divmod(loc, size)
            if no == store._open_no:
                held = len(store._open_ends)
            else:
                held = len(store._sealed[no][1]) if no in store._sealed else 0
            if not 0 <= i < held:
                raise SnapshotError(f"RecordChunks snapshot lacks the record at {loc}")
            if no == store._open_no:
                store._open_live += 1
            else:
                store._live[no] = store._live.get(no, 0) + 1
            store._live_total += 1
        for no in set(store._sealed) - set(store._live):  # nothing live: not kept
            del store._sealed[no]
        return store


def _ends(raw: bytes) -> array[int]:
    ends = array("Q")
    ends.frombytes(raw)
    return ends
