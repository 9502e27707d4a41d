"""Compressed, immutable chunks of a model's state that a checkpoint carries as they are.

The label join's and the review desk's sealed chunks (:mod:`streams.processing.sealed_rows`,
:mod:`streams.processing.record_chunks`) are most of a model's checkpoint (~3.3 of ~3.6 MB
pickled per model in the latency benchmark) and never change once sealed. Each is kept as
a :class:`Frame`: the chunk compressed (zstd) once, when sealed. A checkpoint record pickles
a frame *out of band* (pickle protocol 5, :class:`pickle.PickleBuffer`): the record's
pickle holds only a reference, and the frame's bytes are appended to the record as they
are, neither copied into the pickle on the ingest thread nor compressed again on the
compression thread each round (see :mod:`streams.kafka.checkpoints`). Measured on
models with a full desk and join (in process, medians of 15): the pickle of a snapshot
2.7-3.2 → 1.15 ms, its compression 5.0 → 1.0 ms.

A :class:`Frame` is a ``bytes``: it compares, hashes and slices as its bytes do.
"""

from __future__ import annotations

import pickle
from typing import Any

import cramjam

from detectors.errors import SnapshotError

__all__ = ["ZSTD_MAGIC", "Frame", "as_frame", "compressed", "decompressed"]

#: The first four bytes of every zstd frame.
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Frame(bytes):
    """Bytes pickled out of band when the pickler takes buffers (protocol 5 with a
    ``buffer_callback``), in band otherwise; unpickled as a :class:`Frame`.

    >>> f = Frame(b"abc")
    >>> f == b"abc", type(pickle.loads(pickle.dumps(f))) is Frame
    (True, True)
    >>> kept = []
    >>> header = pickle.dumps([f], protocol=5, buffer_callback=kept.append)
    >>> b"abc" in header, [bytes(k.raw()) for k in kept]
    (False, [b'abc'])
    >>> pickle.loads(header, buffers=kept)
    [b'abc']
    """

    __slots__ = ()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any]]:
        if isinstance(protocol, int) and protocol >= 5:
            return as_frame, (pickle.PickleBuffer(self),)
        return as_frame, (bytes(self),)


def as_frame(data: Any) -> Frame:
    """``data`` as a :class:`Frame` (itself if it is one): a bytes-like object, never a
    size (``bytes(10**12)`` would allocate it); SnapshotError otherwise. What a
    checkpoint's unpickler calls for each frame.

    >>> as_frame(b"ab"), as_frame(memoryview(b"ab"))
    (b'ab', b'ab')
    >>> as_frame(10**12)
    Traceback (most recent call last):
    ...
    detectors.errors.SnapshotError: a frame must be bytes, not int
    """
    if type(data) is Frame:
        return data
    if not isinstance(data, bytes | bytearray | memoryview | pickle.PickleBuffer):
        raise SnapshotError(f"a frame must be bytes, not {type(data).__name__}")
    return Frame(data)


def compressed(data: bytes | bytearray | memoryview, level: int = 1) -> Frame:
    """``data`` compressed (zstd at ``level``), as a :class:`Frame`.

    >>> decompressed(compressed(b"x" * 1000)) == b"x" * 1000
    True
    """
    return Frame(cramjam.zstd.compress(data, level=level))


def decompressed(frame: bytes | memoryview) -> bytes:
    """Inverse of :func:`compressed`; SnapshotError if ``frame`` is not zstd.

    >>> decompressed(b"not zstd")
    Traceback (most recent call last):
    ...
    detectors.errors.SnapshotError: not a zstd frame
    """
    if bytes(frame[:4]) != ZSTD_MAGIC:
        raise SnapshotError("not a zstd frame")
    try:
        return bytes(cramjam.zstd.decompress(frame))
    except Exception as exc:
        raise SnapshotError(f"corrupt zstd frame: {exc}") from exc
