"""One helper: bytes kept in state at their own size.

A ``bytes`` returned by ``orjson.dumps`` keeps orjson's whole write buffer: measured with
orjson 3.13, 4 KiB for 31 bytes of class scores, 16 KiB for a 1.6 KB escalation record.
State that keeps thousands of them per model (pending predictions' scores and segment)
keeps exact-size copies instead; the review desk copies its escalation records into
compressed chunks (:mod:`streams.processing.record_chunks`).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps_own_size"]


def dumps_own_size(obj: Any) -> bytes:
    """``orjson.dumps(obj)``, at its own size (see the module): a copy of its bytes alone.

    >>> dumps_own_size({"cat": 0.6, "dog": 0.4})
    b'{"cat":0.6,"dog":0.4}'
    """
    return bytes(memoryview(orjson.dumps(obj)))
