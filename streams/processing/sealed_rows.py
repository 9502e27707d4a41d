"""The rows of an insertion-ordered mapping, pickled and compressed once in sealed chunks
for checkpoints.

The label join keeps up to ``labels.max_pending`` joined ids per model (and as many
pending predictions, in columns that seal their rows the same way and write the same
snapshot: :mod:`streams.processing.pending_rows`), each added once at the end of an
``OrderedDict``, never changed, and removed when it expires or when the cap pushes it
out. Every checkpoint round pickled all of them again on the ingest thread (~12 ms per model with
10k pending, a stall of the stream). :class:`SealedRows` pickles each chunk of
:attr:`~SealedRows.chunk_size` added rows once, when the chunk is full, and compresses it
(a :class:`~streams.processing.frames.Frame`, which a checkpoint record carries as it
is; ~0.2 ms per chunk of 1024 pending predictions); a snapshot is the sealed chunks as
they are, the indices of their rows removed since, and the rows added
after the last chunk. The owner removes rows through the view (:meth:`SealedRows.pop`,
:meth:`SealedRows.pop_oldest`), which notes each removed row's index in its chunk as it
goes: a snapshot costs a few operations per chunk, not a look-up per row (a pass over
every key, ~3.6 ms per model with 10k pending predictions, was a third of a model's
checkpoint snapshot on the ingest thread, issue 18).

Memory: each row is also held pickled and compressed in its chunk (~26 bytes per pending
prediction in the throughput benchmark, ~112 uncompressed),
its key in the chunk's keys and in the view's index of which chunk holds it (one dict
entry) until the chunk goes, once none of its rows is left. When rows removed here and
there leave the chunks holding more than 1.5 times as many rows as the mapping (plus a
chunk), they are re-pickled from the mapping: removed rows held stay within about half
the live ones, and each re-pickling follows at least half as many removals.

A chunk is a pickle of plain data (tuples, strings, numbers, bytes, None), compressed
(chunks of checkpoints written before are not, and are compressed when restored), and is
read back by an unpickler that refuses any global: a checkpoint cannot make it build anything
else.
"""

from __future__ import annotations

import io
import pickle
from array import array
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from itertools import islice, repeat
from typing import Any, Generic, TypeVar

from detectors.errors import SnapshotError
from streams.processing.frames import ZSTD_MAGIC, Frame, as_frame, compressed, decompressed

__all__ = [
    "SealedChunk",
    "SealedRows",
    "plain_dumps",
    "plain_loads",
    "restored_chunk",
    "restored_tail",
    "sealed_snapshot",
]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def plain_dumps(obj: Any) -> bytes:
    """``obj`` (acyclic plain data) pickled without a memo, as checkpoints are.

    >>> plain_loads(plain_dumps((("m", "e1"), (0.5, None, b"{}"))))
    (('m', 'e1'), (0.5, None, b'{}'))
    """
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.fast = True
    pickler.dump(obj)
    return buf.getvalue()


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise SnapshotError(f"a sealed chunk refers to {module}.{name}: plain data only")


def plain_loads(data: bytes) -> Any:
    """Inverse of :func:`plain_dumps`, of its :func:`~streams.processing.frames.compressed`
    too; raises :class:`SnapshotError` for anything but plain data.

    >>> plain_loads(compressed(plain_dumps(("k", 1))))
    ('k', 1)
    >>> plain_loads(pickle.dumps(print))
    Traceback (most recent call last):
    ...
    detectors.errors.SnapshotError: a sealed chunk refers to builtins.print: plain data only
    """
    if data[:4] == ZSTD_MAGIC:
        data = decompressed(data)
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"a sealed chunk does not unpickle: {exc}") from exc


class SealedChunk:
    """Sealed rows: their keys (unique within a chunk: only rows still there are
    sealed), their pickle, and the indices of those removed since.

    ``at``: where each key stood among the rows it was sealed from, ascending (None: the
    i-th key was the i-th row), for an owner that notes removals from the front a run at
    a time (:meth:`cut`) rather than one by one (:meth:`remove`).

    >>> chunk = SealedChunk.of(("k1", "k3", "k4"), (1, 3, 4), at=array("I", (1, 3, 4)))
    >>> chunk.cut(0, 4); sorted(chunk.gone), chunk.live  # rows 0-3 of 0-4: k1 and k3
    ([0, 1], 1)
    >>> chunk.remove("k4"); chunk.live
    0
    """

    __slots__ = ("_front", "_pos", "at", "blob", "gone", "keys")

    def __init__(
        self,
        keys: tuple[Any, ...],
        blob: Frame,
        gone: Iterable[int] = (),
        at: array[int] | None = None,
    ) -> None:
        self.keys = keys
        self.blob = blob  # compressed(plain_dumps((keys, values)))
        self.gone: set[int] = set(gone)
        self.at = at
        self._front = 0  # no row before it is still there
        self._pos: dict[Any, int] | None = None  # built at the first removal out of order

    @classmethod
    def of(
        cls, keys: tuple[Any, ...], values: tuple[Any, ...], at: array[int] | None = None
    ) -> SealedChunk:
        return cls(keys, compressed(plain_dumps((keys, values))), at=at)

    def cut(self, start: int, end: int) -> None:
        """The rows it was sealed from, from ``start`` to before ``end``, were removed
        (those of them it holds: see ``at``); any of them noted before may be again."""
        at = self.at
        if at is None:
            n = len(self.keys)
            self.gone.update(range(min(start, n), min(end, n)))
        else:
            self.gone.update(range(bisect_left(at, start), bisect_left(at, end)))

    @property
    def live(self) -> int:
        return len(self.keys) - len(self.gone)

    def remove(self, key: Any) -> None:
        """The row of ``key`` was removed: the oldest row still there (expiry, a cap)
        in a step, any other through an index of the keys made once."""
        gone, keys, i = self.gone, self.keys, self._front
        while i in gone:
            i += 1
        if i < len(keys) and keys[i] is key:
            self._front = i + 1
        else:
            if self._pos is None:
                self._pos = {k: j for j, k in enumerate(keys)}
            i = self._pos[key]
        gone.add(i)


#: Stands in the tail of a restored view for rows removed before the snapshot: they
#: count towards the next chunk as they did, and are never there.
_GONE: Any = object()


class SealedRows(Generic[K, V]):
    """Checkpoint view of ``rows``, an ``OrderedDict`` whose owner only adds rows at the
    end (telling :meth:`added`) and removes rows through the view (:meth:`pop`,
    :meth:`pop_oldest`), never changing one.

    >>> rows: OrderedDict[str, int] = OrderedDict()
    >>> sealed = SealedRows(rows, chunk_size=2)
    >>> for i in range(5):
    ...     rows[f"k{i}"] = i
    ...     sealed.added(f"k{i}", i)
    >>> sealed.pop("k1"), sealed.pop("k4"), sealed.pop("k9")
    (1, 4, None)
    >>> snap = sealed.snapshot()
    >>> [plain_loads(c) for c, _ in snap["chunks"]]  # pickled once, when full
    [(('k0', 'k1'), (0, 1)), (('k2', 'k3'), (2, 3))]
    >>> [gone for _, gone in snap["chunks"]], snap["tail"], snap["added"]
    ([(1,), ()], ((), ()), 1)
    >>> restored, _ = SealedRows.restore(snap, lambda k, v: (k, v), chunk_size=2)
    >>> list(restored.items())
    [('k0', 0), ('k2', 2), ('k3', 3)]
    """

    def __init__(self, rows: OrderedDict[K, V], chunk_size: int = 1024) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.chunk_size = chunk_size
        self._rows = rows
        self._chunks: deque[SealedChunk] = deque()
        self._where: dict[K, SealedChunk] = {}  # the chunk of each row still there
        self._chunked = 0  # rows in the chunks, removed or not
        # Rows added after the last chunk (removed or not), as two lists: a tuple per
        # row would be one more object per row for the garbage collector to track.
        self._tail_keys: list[K] = []
        self._tail_values: list[V] = []
        # Rows of the tail removed since (or gone before a restore): while none is, the
        # tail is all there and needs no look-up per row when sealed or snapshotted.
        self._tail_gone = 0

    def added(self, key: K, value: V) -> None:
        """``rows[key] = value`` was just added at the end of the rows."""
        self._tail_keys.append(key)
        self._tail_values.append(value)
        if len(self._tail_keys) >= self.chunk_size:
            self._seal()

    def pop(self, key: K) -> V | None:
        """``rows.pop(key, None)``, noted."""
        value = self._rows.pop(key, None)
        if value is not None:
            chunk = self._where.pop(key, None)
            if chunk is None:  # it is in the tail
                self._tail_gone += 1
            else:
                chunk.remove(key)
        return value

    def pop_oldest(self) -> tuple[K, V]:
        """``rows.popitem(last=False)``, noted."""
        key, value = self._rows.popitem(last=False)
        chunk = self._where.pop(key, None)
        if chunk is None:  # it is in the tail
            self._tail_gone += 1
        else:
            chunk.remove(key)
        return key, value

    def _seal(self) -> None:
        rows = self._rows
        keys, values = self._live_tail()
        self._tail_keys, self._tail_values = [], []
        self._tail_gone = 0
        if keys:
            self._add_chunk(SealedChunk.of(tuple(keys), tuple(values)))
        chunks = self._chunks
        while chunks and not chunks[0].live:  # the oldest go first
            self._chunked -= len(chunks.popleft().keys)
        if 2 * self._chunked > 3 * len(rows) + 2 * self.chunk_size:
            self._rechunk()

    def _add_chunk(self, chunk: SealedChunk) -> None:
        """A chunk whose rows not :attr:`SealedChunk.gone` are there."""
        self._chunks.append(chunk)
        self._chunked += len(chunk.keys)
        if gone := chunk.gone:
            self._where.update((k, chunk) for i, k in enumerate(chunk.keys) if i not in gone)
        else:
            self._where.update(zip(chunk.keys, repeat(chunk)))

    def _rechunk(self) -> None:
        """Every row but the tail's, re-pickled into full chunks."""
        rows = self._rows
        in_tail = len(self._live_tail()[0])
        items = list(islice(rows.items(), len(rows) - in_tail))
        self._chunks.clear()
        self._where.clear()
        self._chunked = 0
        size = self.chunk_size
        for at in range(0, len(items), size):
            keys, values = zip(*items[at : at + size], strict=True)
            self._add_chunk(SealedChunk.of(keys, values))

    def _live_tail(self) -> tuple[list[K], list[V]]:
        """The tail's rows still there, as two lists (the tail's own while all are)."""
        if not self._tail_gone:
            return self._tail_keys, self._tail_values
        get = self._rows.get
        keys, values = [], []
        for k, v in zip(self._tail_keys, self._tail_values, strict=True):
            if get(k) is v:
                keys.append(k)
                values.append(v)
        return keys, values

    @classmethod
    def sealing(cls, rows: OrderedDict[K, V], chunk_size: int = 1024) -> SealedRows[K, V]:
        """The view of ``rows`` as they are now, all of them pickled into chunks (a
        mapping restored from an older checkpoint)."""
        sealed = cls(rows, chunk_size)
        sealed._rechunk()
        return sealed

    @property
    def chunks(self) -> int:
        return len(self._chunks)

    @property
    def chunked(self) -> int:
        """Rows held in the chunks, removed from the mapping or not: at most 1.5 times
        the mapping's, plus a chunk, whenever a chunk is sealed, and unchanged in
        between (so at most 1.5 times the mapping's cap, plus a chunk)."""
        return self._chunked

    # ------------------------------------------------------------ checkpoint

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable: the chunks as they are with the indices of their rows
        removed since, and the rows added after the last chunk."""
        keys, values = self._live_tail()
        return sealed_snapshot(self._chunks, keys, values, len(self._tail_keys))

    @classmethod
    def restore(
        cls,
        snapshot: dict[str, Any],
        row: Callable[[Any, Any], tuple[K, V]],
        chunk_size: int = 1024,
    ) -> tuple[OrderedDict[K, V], SealedRows[K, V]]:
        """The rows of :meth:`snapshot`, in their order, each through ``row`` (which
        checks and converts a key and value), and their view with the snapshot's chunks
        kept as they are: nothing is pickled again. SnapshotError if malformed."""
        rows: OrderedDict[K, V] = OrderedDict()
        sealed = cls(rows, chunk_size)
        try:
            for blob, gone in snapshot["chunks"]:
                chunk, values = restored_chunk(blob, gone, row)
                skip = chunk.gone
                rows.update(
                    (k, v)
                    for i, (k, v) in enumerate(zip(chunk.keys, values, strict=True))
                    if i not in skip
                )
                sealed._add_chunk(chunk)
            tail_keys, tail_values, added = restored_tail(snapshot, row, chunk_size)
            rows.update(zip(tail_keys, tail_values, strict=True))
            sealed._tail_keys, sealed._tail_values = tail_keys, tail_values
            # Rows removed since they were added still count towards the next chunk.
            gone = added - len(sealed._tail_keys)
            sealed._tail_keys[:0] = [_GONE] * gone
            sealed._tail_values[:0] = [_GONE] * gone
            sealed._tail_gone = gone
        except SnapshotError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise SnapshotError(f"malformed sealed rows: {exc}") from exc
        return rows, sealed


def sealed_snapshot(
    chunks: Iterable[SealedChunk | None], keys: Iterable[Any], values: Iterable[Any], added: int
) -> dict[str, Any]:
    """The snapshot of :meth:`SealedRows.snapshot` (and of
    :class:`~streams.processing.pending_rows.PendingRows`): ``chunks`` (None: no chunk)
    with the indices of their rows removed since, the rows after the last chunk, and how
    many were added there (removed ones too)."""
    return {
        "chunks": tuple((c.blob, tuple(sorted(c.gone))) for c in chunks if c is not None),
        "tail": (tuple(keys), tuple(values)),
        "added": added,
    }


def restored_chunk(
    blob: Any, gone: Iterable[int], row: Callable[[Any, Any], tuple[K, V]]
) -> tuple[SealedChunk, list[V]]:
    """A chunk of a :meth:`SealedRows.snapshot` (its blob and the indices of its rows
    removed since) as it was, and its rows' values (removed ones too), each row through
    ``row``; SnapshotError if malformed, TypeError or ValueError for a row ``row``
    refuses."""
    skip = set(gone)
    keys, values = [], []
    for k, v in zip(*plain_loads(blob), strict=True):
        key, value = row(k, v)
        keys.append(key)
        values.append(value)
    if not skip <= set(range(len(keys))):
        raise SnapshotError(f"sealed rows: removed rows {sorted(skip)} out of range")
    frame = as_frame(blob)
    if frame[:4] != ZSTD_MAGIC:  # written before chunks were compressed
        frame = compressed(frame)
    return SealedChunk(tuple(keys), frame, skip), values


def restored_tail(
    snapshot: dict[str, Any], row: Callable[[Any, Any], tuple[K, V]], chunk_size: int
) -> tuple[list[K], list[V], int]:
    """The rows a :meth:`SealedRows.snapshot` holds after its last chunk, each through
    ``row``, and how many were added there (removed ones too); SnapshotError if more
    than a chunk's."""
    keys, values = [], []
    for k, v in zip(*snapshot["tail"], strict=True):
        key, value = row(k, v)
        keys.append(key)
        values.append(value)
    added = int(snapshot["added"])
    if not len(keys) <= added < chunk_size:
        raise SnapshotError(f"sealed rows: {added} added after the last chunk")
    return keys, values, added
