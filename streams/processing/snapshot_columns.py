"""One helper: rows of a snapshot transposed into columns, for checkpoints pickled fast.

A checkpoint round pickles each model on the ingest thread between batches (see
:mod:`streams.ingest.core`), so its time is every event's latency. The label join's
pending predictions and the review desk's remembered escalations are thousands of small
entries per model: pickled as a tuple per entry, the framing of each tuple was about half
the time; as one tuple per field (transposed in C) they pickle about twice as fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["columns"]


def columns(rows: Iterable[tuple[Any, ...]], width: int) -> tuple[tuple[Any, ...], ...]:
    """``rows`` (tuples of ``width`` fields) transposed: one tuple per field, empty ones
    when there are no rows. Raises ValueError if a row has another width.

    >>> columns([("a", 1), ("b", 2)], 2)
    (('a', 'b'), (1, 2))
    >>> columns([], 2)
    ((), ())
    >>> list(zip(*columns([("a", 1), ("b", 2)], 2)))  # and back
    [('a', 1), ('b', 2)]
    """
    transposed = tuple(zip(*rows, strict=True))
    if not transposed:
        return ((),) * width
    if len(transposed) != width:
        raise ValueError(f"rows of {len(transposed)} fields, expected {width}")
    return transposed
