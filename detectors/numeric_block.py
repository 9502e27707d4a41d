"""The per-block arithmetic of :class:`~detectors.numeric_drift.NumericDrift`, compiled.

A numeric detector's work per block is a dozen small array operations (binning, four
CUSUMs, the bin counts, the KS window): in numpy each is a call of a few microseconds
on a block of ``step`` values, and a worker runs one block per feature and model every
``step`` events. Here the block is one pass over the values in Rust
(``detectors/native``, the extension ``detectors._native``, built by setuptools-rust
when the project is installed). The arithmetic is on integers (scores scaled by
``2**20``) and the KS gap is a maximum, so the results are the same bit for bit as the
loop that defines them, ``S_t = max(0, S_{t-1} + y_t)``, whatever the chunking of the
stream (tested against that loop in Python: ``tests/detectors/test_numeric_block.py``).

Arrays are numpy arrays the caller owns, C-contiguous, ``float64`` or ``int64`` as
named; results are written into them (no allocation per block). A wrong length or
layout is a ``ValueError`` before anything is read or written.

:func:`advance` bins ``values`` and runs the four CUSUMs over them; it returns the
number of crossings. ``bins`` (one per bin, ``len(edges) + 1``) becomes the bin counts
of ``values`` (bin ``b``: ``b`` edges at or below the value, as
``numpy.searchsorted(edges, v, side="right")``). With ``run``, CUSUM ``w``
(``cusum[w]``, in place) takes ``table[w, b]`` for each value and is floored at 0; the
first value that takes one above ``limit[w]`` is a crossing, written to ``crossings``
as a row ``(index, w, value)`` (the lowest ``w`` on a tie), and all four restart from 0
after it. ``crossings`` needs a row per value.

>>> import numpy as np
>>> edges = np.array([0.0])
>>> table = np.array([[-1, 3]] * 4, dtype=np.int64)  # bin 1 adds 3, bin 0 takes 1
>>> cusum = np.zeros(4, dtype=np.int64)
>>> limit = np.array([5, 100, 100, 100], dtype=np.int64)
>>> crossings = np.zeros((4, 3), dtype=np.int64)
>>> bins = np.zeros(2, dtype=np.int64)
>>> advance(np.array([1.0, -1.0, 2.0, 3.0]), edges, table, cusum, limit, True,
...         crossings, bins)
1
>>> crossings[0].tolist(), cusum.tolist(), bins.tolist()
([3, 0, 8], [0, 0, 0, 0], [1, 3])

:func:`slide` slides the KS window by one block and returns ``max |below - expected|``:
the block's counts below each edge (the running sum of ``bins`` but the last) replace
row ``pos`` of ``ring`` (the window's blocks) in ``below`` (their sum) and in the ring,
in place; integer counts keep the window exact.

>>> ring = np.array([[1, 2], [0, 1]], dtype=np.int64)
>>> below = ring.sum(axis=0)
>>> slide(np.array([2, 1, 1], dtype=np.int64), ring, 0, below, np.array([1.0, 3.5]))
1.0
>>> ring.tolist(), below.tolist()
([[2, 3], [0, 1]], [2, 4])
>>> slide(np.zeros(2, dtype=np.int64), ring, 0, below, np.zeros(2))
Traceback (most recent call last):
ValueError: bins has 2 elements; expected 3
"""

from __future__ import annotations

from detectors._native import advance, slide

__all__ = ["advance", "slide"]
