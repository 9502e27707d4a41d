"""The unlabelled window of PerformanceEstimator, kept in Rust (detectors._native's
ConfidenceWindow), against the ring it replaced, written out here in Python: the same
values, counts, exact fixed-point sums and estimate totals, bit for bit."""

from __future__ import annotations

import math
import pickle
from bisect import bisect_left
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._native import ConfidenceWindow
from detectors.calibration import reliability_edges

ONE = 1 << 80


class PythonRing:
    """PerformanceEstimator's unlabelled window as it was in Python."""

    def __init__(self, edges: list[float], window: int) -> None:
        self.edges, self.window = edges, window
        self.conf: list[float] = []
        self.bins: list[int] = []
        self.head = 0
        self.counts = [0] * (len(edges) + 1)
        self.sums = [0] * (len(edges) + 1)

    def push(self, c: float) -> None:
        b = bisect_left(self.edges, c)
        f = int(math.ldexp(c, 80))
        if len(self.conf) < self.window:
            self.conf.append(c)
            self.bins.append(b)
        else:
            h = self.head
            old = self.bins[h]
            self.counts[old] -= 1
            self.sums[old] -= int(math.ldexp(self.conf[h], 80))
            self.conf[h], self.bins[h] = c, b
            self.head = (h + 1) % self.window
        self.counts[b] += 1
        self.sums[b] += f

    def total(self, offsets: list[float] | None) -> float:
        if offsets is None:
            return sum(self.sums) / ONE
        total = 0.0  # in order, as 3.11's sum adds floats (3.12's compensates)
        for s, k, off in zip(self.sums, self.counts, offsets, strict=True):
            total += s / ONE + k * off
        return total


CONFIDENCES = st.one_of(
    st.floats(0.0, 1.0),
    st.sampled_from([0.0, 1.0, 0.1, 0.5, 5e-324, 1.0 - 2**-53]),  # edges and extremes
)


@settings(max_examples=300, deadline=None)
@given(
    bins=st.integers(1, 12),
    window=st.integers(1, 40),
    values=st.lists(CONFIDENCES, max_size=120),
    offsets=st.lists(st.floats(-1.0, 1.0), min_size=12, max_size=12),
)
def test_the_window_is_the_python_rings_bit_for_bit(
    bins: int, window: int, values: list[float], offsets: list[float]
) -> None:
    edges = reliability_edges(bins)
    rust, python = ConfidenceWindow(edges, window), PythonRing(edges, window)
    for c in values:
        rust.push(c)
        python.push(c)
    assert len(rust) == len(python.conf)
    assert rust.values() == python.conf
    assert rust.head == python.head
    assert rust.counts() == python.counts
    assert rust.sums() == python.sums
    assert rust.total() == python.total(None)
    assert rust.total(offsets[:bins]) == python.total(offsets[:bins])
    # Restored from its values and head (a snapshot), the counts and sums are the same.
    again = ConfidenceWindow(edges, window, rust.values(), rust.head)
    assert (again.counts(), again.sums(), again.head) == (rust.counts(), rust.sums(), rust.head)
    copy = pickle.loads(pickle.dumps(rust))
    assert (copy.values(), copy.head, copy.sums()) == (rust.values(), rust.head, rust.sums())
    copy.push(0.5)
    python.push(0.5)
    assert copy.sums() == python.sums and copy.values() == python.conf


@settings(max_examples=200, deadline=None)
@given(
    window=st.integers(1, 40),
    runs=st.lists(st.lists(CONFIDENCES, max_size=30), max_size=8),
)
def test_extend_is_push_of_each_value_bit_for_bit(window: int, runs: list[list[float]]) -> None:
    edges = reliability_edges(10)
    one, many = ConfidenceWindow(edges, window), ConfidenceWindow(edges, window)
    for run in runs:
        for c in run:
            one.push(c)
        many.extend(run)
        assert (many.values(), many.head, many.counts(), many.sums()) == (
            one.values(),
            one.head,
            one.counts(),
            one.sums(),
        )


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, math.inf])
def test_extend_checks_every_value_before_it_adds_any(bad: float) -> None:
    w = ConfidenceWindow([0.5], 3)
    w.push(0.2)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        w.extend([0.7, 0.1, bad, 0.3])
    assert (w.values(), w.counts(), w.head) == ([0.2], [1, 0], 0)


@pytest.mark.parametrize("bad", [math.nan, -0.1, 1.5, math.inf])
def test_a_confidence_outside_0_1_is_refused_and_changes_nothing(bad: float) -> None:
    w = ConfidenceWindow([0.5], 3)
    w.push(0.2)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        w.push(bad)
    assert (w.values(), w.counts()) == ([0.2], [1, 0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.5], 0), "window must be at least 1"),
        (([0.6, 0.5], 3), "sorted"),
        (([math.nan], 3), "finite"),
        (([0.5], 2, [0.1, 0.2, 0.3]), "3 values for a window of 2"),
        (([0.5], 2, [0.1], 1), "head 1 is not a position"),
        (([0.5], 2, [0.1, 0.2], 2), "head 2 is not a position"),
        (([0.5], 2, [0.1, 2.0]), r"in \[0, 1\]"),
    ],
)
def test_a_window_that_cannot_be_is_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConfidenceWindow(*args)


def test_offsets_must_be_one_per_bin() -> None:
    with pytest.raises(ValueError, match="1 offsets for 2 bins"):
        ConfidenceWindow([0.5], 2).total([0.1])
