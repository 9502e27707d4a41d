"""The compiled per-block loops (detectors._native through detectors.numeric_block)
against the definitions they implement, written here in plain Python."""

from __future__ import annotations

import random
from bisect import bisect_right

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.numeric_block import advance, slide
from detectors.numeric_drift import NumericDrift


def reference_advance(
    values: list[float],
    edges: list[float],
    table: list[list[int]],
    cusum: list[int],
    limit: list[int],
    run: bool,
) -> tuple[list[int], list[tuple[int, int, int]], list[int]]:
    """(bins, crossings, cusum after): S_t = max(0, S_{t-1} + y_t) per CUSUM, the first
    over its limit (lowest index on a tie) a crossing, all four from 0 after it."""
    bins = [0] * (len(edges) + 1)
    s = list(cusum)
    crossings = []
    for j, v in enumerate(values):
        b = bisect_right(edges, v)
        bins[b] += 1
        if not run:
            continue
        s = [max(0, s[w] + table[w][b]) for w in range(4)]
        over = [w for w in range(4) if s[w] > limit[w]]
        if over:
            crossings.append((j, over[0], s[over[0]]))
            s = [0, 0, 0, 0]
    return bins, crossings, s


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    k=st.integers(1, 12),
    run=st.booleans(),
)
def test_advance_is_the_cusum_loop(seed: int, n: int, k: int, run: bool) -> None:
    rng = random.Random(seed)
    edges = sorted(rng.gauss(0, 1) for _ in range(k - 1))
    # Values on the edges too: a value equal to an edge is in the bin above it.
    values = [
        rng.choice(edges) if edges and rng.random() < 0.2 else rng.gauss(0, 1.3) for _ in range(n)
    ]
    table = [[rng.randint(-5, 4) for _ in range(k)] for _ in range(4)]
    start = [rng.randint(0, 10) for _ in range(4)]
    limit = [rng.randint(5, 40) for _ in range(4)]
    want_bins, want_crossings, want_cusum = reference_advance(
        values, edges, table, start, limit, run
    )
    cusum = np.array(start, dtype=np.int64)
    crossings = np.zeros((n, 3), dtype=np.int64)
    bins = np.full(k, -7, dtype=np.int64)  # overwritten, not added to
    found = advance(
        np.array(values, dtype=float),
        np.array(edges, dtype=float),
        np.array(table, dtype=np.int64),
        cusum,
        np.array(limit, dtype=np.int64),
        run,
        crossings,
        bins,
    )
    assert bins.tolist() == want_bins
    assert [tuple(row) for row in crossings[:found].tolist()] == want_crossings
    assert cusum.tolist() == want_cusum


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 12), blocks=st.integers(1, 6))
def test_slide_is_the_window_sum(seed: int, k: int, blocks: int) -> None:
    rng = random.Random(seed)
    ring = np.array([[rng.randint(0, 50) for _ in range(k - 1)] for _ in range(blocks)])
    ring = ring.astype(np.int64).reshape(blocks, k - 1)
    below = ring.sum(axis=0)
    expected = np.array([rng.uniform(0, 200) for _ in range(k - 1)])
    bins = np.array([rng.randint(0, 30) for _ in range(k)], dtype=np.int64)
    pos = rng.randrange(blocks)
    cum = np.cumsum(bins)[:-1]
    want_below = below - ring[pos] + cum
    want_ring = ring.copy()
    want_ring[pos] = cum
    want_gap = float(np.abs(want_below - expected).max()) if k > 1 else 0.0
    gap = slide(bins, ring, pos, below, expected)
    assert gap == want_gap
    assert below.tolist() == want_below.tolist()
    assert ring.tolist() == want_ring.tolist()


def _arrays(k: int = 3, n: int = 4) -> dict[str, np.ndarray]:
    return {
        "values": np.zeros(n),
        "edges": np.zeros(k - 1),
        "table": np.zeros((4, k), dtype=np.int64),
        "cusum": np.zeros(4, dtype=np.int64),
        "limit": np.zeros(4, dtype=np.int64),
        "crossings": np.zeros((n, 3), dtype=np.int64),
        "bins": np.zeros(k, dtype=np.int64),
    }


def _advance(a: dict[str, np.ndarray]) -> int:
    return advance(
        a["values"],
        a["edges"],
        a["table"],
        a["cusum"],
        a["limit"],
        True,
        a["crossings"],
        a["bins"],
    )


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("bins", np.zeros(2, dtype=np.int64), "bins has 2 elements; expected 3"),
        ("table", np.zeros((3, 3), dtype=np.int64), "table has 9 elements; expected 12"),
        ("cusum", np.zeros(3, dtype=np.int64), "cusum has 3 elements; expected 4"),
        ("limit", np.zeros(5, dtype=np.int64), "limit has 5 elements; expected 4"),
        ("crossings", np.zeros((3, 3), dtype=np.int64), "a row of 3 per value"),
        ("values", np.zeros(8)[::2], "values must be a C-contiguous array"),
    ],
)
def test_advance_refuses_arrays_that_do_not_fit(name: str, bad: np.ndarray, message: str) -> None:
    a = _arrays()
    a[name] = bad
    with pytest.raises(ValueError, match=message):
        _advance(a)


def test_advance_refuses_a_read_only_output_and_the_wrong_element_type() -> None:
    a = _arrays()
    a["cusum"].flags.writeable = False
    with pytest.raises(ValueError, match="cusum must be a writable C-contiguous array"):
        _advance(a)
    a = _arrays()
    a["bins"] = np.zeros(3, dtype=np.int32)
    with pytest.raises(BufferError):
        _advance(a)
    a = _arrays()
    a["values"] = np.zeros(4, dtype=np.float32)
    with pytest.raises(BufferError):
        _advance(a)


def test_slide_refuses_a_row_outside_the_ring() -> None:
    ring = np.zeros((2, 2), dtype=np.int64)
    below = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError, match="no row 2 of 2"):
        slide(np.zeros(3, dtype=np.int64), ring, 2, below, np.zeros(2))
    with pytest.raises(ValueError, match="expected has 1 elements; expected 2"):
        slide(np.zeros(3, dtype=np.int64), ring, 0, below, np.zeros(1))
    with pytest.raises(OverflowError):
        slide(np.zeros(3, dtype=np.int64), ring, -1, below, np.zeros(2))


def test_a_detector_is_the_same_whatever_the_chunking_across_crossings() -> None:
    """A shift that crosses the CUSUMs inside blocks: value by value, whole blocks and
    odd chunks give the same edges and the same state."""
    rng = random.Random(3)
    stream = [rng.gauss(0, 1) for _ in range(3000)] + [rng.gauss(1.5, 1) for _ in range(3000)]
    settings_ = {"reference_size": 500, "window": 100, "step": 25, "sensitivity": 1e4}
    one, whole, odd = (NumericDrift(**settings_) for _ in range(3))  # type: ignore[arg-type]
    edges_one = [c for v in stream for c in one.update(v)]
    edges_whole = whole.update_many(stream)
    edges_odd = []
    i = 0
    while i < len(stream):
        size = rng.randint(1, 60)
        edges_odd += odd.update_many(stream[i : i + size])
        i += size
    assert edges_one, "the shift must raise an edge for this test to mean anything"
    assert edges_one == edges_whole == edges_odd
    assert one.snapshot() == whole.snapshot() == odd.snapshot()
