"""The label join's pending predictions, held as columns, with sealed chunks for
checkpoints.

A worker's label join keeps up to ``labels.max_pending`` pending predictions per model
(~100,000 across ten models at the defaults), each added once, never changed, and
removed when its label comes, when it expires or when the cap pushes it out. Held as an
``OrderedDict`` of ``(prediction, ts, escalated, inclusion)`` tuples, each row was five
objects of its own (the dict's node, the tuple, the timestamp's float, the inclusion's
float, its index entry in :class:`~streams.processing.sealed_rows.SealedRows`), each
allocated per event and freed ~100,000 events later. :class:`PendingRows` keeps the rows
in columns instead (the keys and predictions in two lists, the timestamps and inclusion
probabilities in ``array('d')``, the flags in a ``bytearray``) and one dict from key to
row number: per row, only the key and the prediction are objects. Measured in process
(``benchmarks/processor.py``, issue 18): the memory the joins take while their caps fill
~22 % less (54 -> 42 MB for ten models), the time per event the same within the noise.

Rows are numbered in the order they are added; a removed row leaves a hole (its key
``None``) until the holes before the oldest row still there are cut off, or the columns
are compacted (when holes are more than the rows still there plus two chunks, checked
once per chunk: the columns stay within about twice the rows, whatever the stream).

Checkpoints: as :class:`~streams.processing.sealed_rows.SealedRows` does, every
:attr:`~PendingRows.chunk_size` rows added are pickled and compressed once into a
:class:`~streams.processing.sealed_rows.SealedChunk` (the rows still there of those
row numbers, as ``(key, (prediction, ts, escalated, inclusion))``), a removal notes its
index in its chunk (those of the oldest rows, removed by the cap or by expiry, a run at a
time before the chunks are read: once the cap is full, every added row removes one), and a
snapshot is the chunks as they are, the indices removed since and the rows after the last
chunk: the same snapshot as ``SealedRows``' (either reads the other's), so checkpoints
keep their form.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from itertools import compress, repeat
from operator import is_not
from typing import Any

from detectors.errors import SnapshotError
from streams.processing.sealed_rows import (
    SealedChunk,
    restored_chunk,
    restored_tail,
    sealed_snapshot,
)

__all__ = ["PendingRow", "PendingRows"]

#: A pending prediction: (prediction, ts, escalated by rule, inclusion probability or None)
PendingRow = tuple[Any, float, bool, float | None]

#: The inclusion column's value for None (an inclusion probability is in (0, 1]).
_NO_INCLUSION = -1.0


class PendingRows:
    """Rows ``key -> (prediction, ts, escalated, inclusion)`` in the order added, kept as
    columns; the owner adds a row only under a key not there, and never changes one.

    >>> rows = PendingRows(chunk_size=2)
    >>> [rows.add(f"k{i}", f"p{i}", float(i), i == 1, 0.5 if i == 1 else None, cap=4)
    ...  for i in range(5)]  # how many the cap removed
    [0, 0, 0, 0, 1]
    >>> rows.pop("k1"), rows.pop("k9")
    (('p1', 1.0, True, 0.5), None)
    >>> len(rows), "k3" in rows, rows.expire(before=3.5), list(rows)
    (3, True, 2, ['k4'])
    >>> back = PendingRows.restore(rows.snapshot(), lambda k, v: (k, v), chunk_size=2)
    >>> list(back.items()) == list(rows.items())
    True
    """

    __slots__ = (
        "_base",
        "_chunk0",
        "_chunks",
        "_esc",
        "_head",
        "_inc",
        "_keys",
        "_noted",
        "_preds",
        "_sealed",
        "_ts",
        "chunk_size",
        "index",
    )

    def __init__(self, chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        #: key -> row number: ``key in rows.index`` is ``key in rows`` without a Python
        #: call (the join asks it for every event); not to be changed but through here.
        self.index: dict[Hashable, int] = {}
        # Columns from row number _base on; a removed row's key and prediction are None.
        self._keys: list[Any] = []
        self._preds: list[Any] = []
        self._ts = array("d")
        self._esc = bytearray()
        self._inc = array("d")
        self._base = 0
        self._head = 0  # no row before this position is still there
        # Chunk j holds the rows numbered _chunk0 + j * chunk_size on (None: none was
        # left when it was sealed); rows from _sealed on are not sealed yet.
        self._chunks: deque[SealedChunk | None] = deque()
        self._chunk0 = 0
        self._sealed = 0
        # Rows removed from the front (the oldest: by the cap, by expiry) are noted in
        # their chunks a run at a time (_note_front), not one by one: up to row _noted.
        self._noted = 0

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def __iter__(self) -> Iterator[Any]:
        """The keys, oldest first."""
        return (k for k in self._keys[self._head :] if k is not None)

    def items(self) -> Iterator[tuple[Any, PendingRow]]:
        """``(key, (prediction, ts, escalated, inclusion))``, oldest first."""
        for p in range(self._head, len(self._keys)):
            key = self._keys[p]
            if key is not None:
                yield key, self._row(p)

    def _row(self, p: int) -> PendingRow:
        inc = self._inc[p]
        return (self._preds[p], self._ts[p], bool(self._esc[p]), None if inc < 0.0 else inc)

    def add(
        self,
        key: Hashable,
        prediction: Any,
        ts: float,
        escalated: bool,
        inclusion: float | None,
        cap: int,
    ) -> int:
        """Add a row at the end, under a key that is not there (not checked: the owner
        asks ``key in rows.index`` first), then remove the oldest rows while more than
        ``cap`` are there; how many were removed."""
        keys = self._keys
        index = self.index
        n = self._base + len(keys)
        index[key] = n
        keys.append(key)
        self._preds.append(prediction)
        self._ts.append(ts)
        self._esc.append(escalated)
        self._inc.append(_NO_INCLUSION if inclusion is None else inclusion)
        evicted = 0
        while len(index) > cap:  # the cap's one row per add, once full: inlined
            p = self._head
            while keys[p] is None:
                p += 1
            old = keys[p]
            del index[old]
            keys[p] = self._preds[p] = None  # its chunk notes it later: _note_front
            self._head = p + 1
            evicted += 1
        if n + 1 - self._sealed >= self.chunk_size:
            self._seal()
        return evicted

    def expire(self, before: float) -> int:
        """Remove the oldest rows while their ``ts`` is before ``before``; how many."""
        index = self.index
        keys, ts = self._keys, self._ts
        removed = 0
        while index:
            p = self._head
            while keys[p] is None:
                p += 1
            self._head = p
            if ts[p] >= before:
                break
            del index[keys[p]]
            keys[p] = self._preds[p] = None  # its chunk notes it later: _note_front
            removed += 1
        return removed

    def pop(self, key: Hashable) -> PendingRow | None:
        """Remove the row of ``key`` and return it; None if there is none."""
        n = self.index.pop(key, None)
        if n is None:
            return None
        p = n - self._base
        row = self._row(p)
        self._remove(key, n, p)
        return row

    def _remove(self, key: Any, n: int, p: int) -> None:
        self._keys[p] = None
        self._preds[p] = None
        if n < self._sealed:
            self._note_front()  # so that the chunk finds its oldest row still there
            chunk = self._chunks[(n - self._chunk0) // self.chunk_size]
            assert chunk is not None  # noqa: S101 - a chunk of none left holds no row there
            chunk.remove(key)

    # ------------------------------------------------------------ chunks

    def _note_front(self) -> None:
        """Note in their chunks the rows removed from the front since the last call (no
        row before ``_head`` is there): :meth:`add` and :meth:`expire` leave that to
        here, so the cap's removal per added row, once full, is no call on a chunk."""
        end = min(self._base + self._head, self._sealed)
        n = max(self._noted, self._chunk0)
        if n >= end:
            return
        chunks, size, first = self._chunks, self.chunk_size, self._chunk0
        while n < end:
            start = n - (n - first) % size  # the first row of n's chunk
            stop = min(start + size, end)
            chunk = chunks[(n - first) // size]
            if chunk is not None:
                chunk.cut(n - start, stop - start)
            n = stop
        self._noted = end

    def _seal(self) -> None:
        """Seal the rows after the last chunk; drop the chunks of which no row is left;
        cut the holes before the oldest row off the columns, or compact them."""
        self._note_front()
        keys = self._keys
        self._chunks.append(self._chunk_of(self._sealed - self._base, len(keys)))
        self._sealed = self._base + len(keys)
        chunks, size = self._chunks, self.chunk_size
        while chunks and (chunks[0] is None or not chunks[0].live):
            chunks.popleft()
            self._chunk0 += size
        held = len(keys) - self._head
        if held > 2 * len(self.index) + 2 * size:
            self._compact()
        elif self._head >= size:
            cut = self._head
            for column in (keys, self._preds, self._ts, self._esc, self._inc):
                del column[:cut]
            self._base += cut
            self._head = 0

    def _chunk_of(self, start: int, end: int) -> SealedChunk | None:
        """The rows still there at positions ``start`` to ``end``, sealed; None if none is."""
        keys = self._keys[start:end]
        incs = [None if v < 0.0 else v for v in self._inc[start:end]]
        at = None
        values: Iterator[PendingRow] = zip(
            self._preds[start:end],
            self._ts[start:end],
            map(bool, self._esc[start:end]),
            incs,
            strict=True,
        )
        if None in keys:  # holes: keep the rows still there
            there = list(map(is_not, keys, repeat(None)))
            keys = list(compress(keys, there))
            if not keys:
                return None
            values = compress(values, there)
            at = array("I", compress(range(end - start), there))
        return SealedChunk.of(tuple(keys), tuple(values), at)

    def _compact(self) -> None:
        """The rows still there renumbered from the end of the old numbering, without
        holes, and sealed again in full chunks."""
        rows = list(self.items())
        start = self._base + len(self._keys)
        self._clear(start)
        for key, (prediction, ts, escalated, inclusion) in rows:
            self._append(key, prediction, ts, escalated, inclusion)
        self._seal_full()

    def _clear(self, start: int) -> None:
        """No rows, numbering from ``start``."""
        self.index.clear()
        self._keys, self._preds = [], []
        self._ts, self._esc, self._inc = array("d"), bytearray(), array("d")
        self._base = self._sealed = self._chunk0 = self._noted = start
        self._head = 0
        self._chunks.clear()

    def _append(
        self, key: Any, prediction: Any, ts: float, escalated: bool, inclusion: float | None
    ) -> None:
        """:meth:`add` without sealing, or a hole (``key`` None)."""
        if key is not None:
            self.index[key] = self._base + len(self._keys)
        self._keys.append(key)
        self._preds.append(prediction)
        self._ts.append(ts)
        self._esc.append(escalated)
        self._inc.append(_NO_INCLUSION if inclusion is None else inclusion)

    def _seal_full(self) -> None:
        """Seal every full chunk of rows after the last one (all of them there)."""
        size = self.chunk_size
        while self._base + len(self._keys) - self._sealed >= size:
            at = self._sealed - self._base
            self._chunks.append(self._chunk_of(at, at + size))
            self._sealed += size

    @property
    def chunked(self) -> int:
        """Rows held in the chunks, removed or not: at most about twice the rows plus two
        chunks (the columns are compacted beyond it)."""
        return sum(len(c.keys) for c in self._chunks if c is not None)

    # ------------------------------------------------------------ checkpoint

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable, the form of :meth:`SealedRows.snapshot
        <streams.processing.sealed_rows.SealedRows.snapshot>`: the chunks as they are
        with the indices of their rows removed since, and the rows after the last chunk."""
        self._note_front()
        keys = self._keys
        start = self._sealed - self._base
        tail = [p for p in range(start, len(keys)) if keys[p] is not None]
        return sealed_snapshot(
            self._chunks, (keys[p] for p in tail), map(self._row, tail), len(keys) - start
        )

    @classmethod
    def restore(
        cls,
        snapshot: dict[str, Any],
        row: Callable[[Any, Any], tuple[Any, PendingRow]],
        chunk_size: int = 1024,
    ) -> PendingRows:
        """The rows of :meth:`snapshot` (or of a ``SealedRows`` snapshot), in their
        order, each through ``row`` (which checks and converts a key and value), with the
        snapshot's chunks kept as they are: nothing is pickled again. SnapshotError if
        malformed."""
        rows = cls(chunk_size)
        try:
            for blob, gone in snapshot["chunks"]:
                chunk, values = restored_chunk(blob, gone, row)
                if len(chunk.keys) > chunk_size:
                    raise SnapshotError(f"sealed rows: a chunk of {len(chunk.keys)} rows")
                for i, (key, value) in enumerate(zip(chunk.keys, values, strict=True)):
                    rows._restored_row(None if i in chunk.gone else key, value)
                for _ in range(chunk_size - len(chunk.keys)):
                    rows._append(None, None, 0.0, False, None)
                rows._chunks.append(chunk)
                rows._sealed += chunk_size
            tail_keys, tail_values, added = restored_tail(snapshot, row, chunk_size)
            # Rows removed since they were added still count towards the next chunk.
            for _ in range(added - len(tail_keys)):
                rows._append(None, None, 0.0, False, None)
            for key, value in zip(tail_keys, tail_values, strict=True):
                rows._restored_row(key, value)
        except SnapshotError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise SnapshotError(f"malformed sealed rows: {exc}") from exc
        return rows

    def _restored_row(self, key: Any, value: PendingRow) -> None:
        if key is not None and key in self.index:
            raise SnapshotError(f"sealed rows: {key!r} twice")
        prediction, ts, escalated, inclusion = value
        self._append(key, prediction, ts, escalated, inclusion)

    @classmethod
    def of(cls, rows: Iterable[tuple[Any, PendingRow]], chunk_size: int = 1024) -> PendingRows:
        """``rows`` (key, row), oldest first, all sealed in full chunks (rows restored
        from an older checkpoint); SnapshotError for a key twice."""
        out = cls(chunk_size)
        for key, value in rows:
            out._restored_row(key, value)
        out._seal_full()
        return out
