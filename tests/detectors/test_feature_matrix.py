"""gather_floats (detectors._native through detectors.feature_matrix) against what it
replaces in Python: every value looked up and kept only when all are exact floats."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.feature_matrix import float_column, gather_floats

NAMES = ["a", "b", "c"]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.floats(-1e3, 1e3).map(np.float64),  # a float subclass: not exactly a float
)
EVENTS = st.lists(
    st.dictionaries(st.sampled_from([*NAMES, "other"]), VALUES, min_size=0, max_size=4),
    max_size=12,
)


def reference(events: list[dict[str, Any]], names: list[str]) -> list[list[float]] | None:
    rows = [[e.get(n) for n in names] for e in events]
    if all(type(v) is float for row in rows for v in row) and all(
        all(n in e for n in names) for e in events
    ):
        return rows  # type: ignore[return-value]
    return None


@settings(max_examples=400, deadline=None)
@given(events=EVENTS, k=st.integers(1, 3))
def test_gather_floats_keeps_a_batch_only_when_every_value_is_a_float(
    events: list[dict[str, Any]], k: int
) -> None:
    names = NAMES[:k]
    out = np.empty((len(events), k))
    want = reference(events, names)
    assert gather_floats(events, names, out) is (want is not None)
    if want is not None:  # NaN and infinities are floats: kept as they are
        got = out.tolist()
        assert all(
            (math.isnan(x) and math.isnan(y)) or x == y
            for row_got, row_want in zip(got, want, strict=True)
            for x, y in zip(row_got, row_want, strict=True)
        )


def test_gather_floats_refuses_what_is_not_a_dict_and_an_output_of_the_wrong_size() -> None:
    class Features(dict[str, float]):
        pass

    assert gather_floats([{"a": 1.0}], ["a"], np.empty((1, 1)))
    # A dict subclass may look values up its own way: the general path asks it.
    assert not gather_floats([Features(a=1.0)], ["a"], np.empty((1, 1)))
    assert not gather_floats([[("a", 1.0)]], ["a"], np.empty((1, 1)))
    with pytest.raises(ValueError, match="out has 2 elements; expected 1"):
        gather_floats([{"a": 1.0}], ["a"], np.empty(2))
    with pytest.raises(TypeError):
        gather_floats(({"a": 1.0},), ["a"], np.empty(1))  # type: ignore[arg-type]  # a tuple
    with pytest.raises(BufferError):
        gather_floats([{"a": 1.0}], ["a"], np.empty(1, dtype=np.float32))


@settings(max_examples=400, deadline=None)
@given(
    values=st.lists(VALUES, max_size=40),
    lo=st.floats(-10, 10),
    width=st.floats(0, 20),
    bounded=st.booleans(),
)
def test_float_column_takes_a_block_only_when_every_value_is_a_finite_float(
    values: list[Any], lo: float, width: float, bounded: bool
) -> None:
    low, high = (lo, lo + width) if bounded else (-math.inf, math.inf)
    out = np.empty(len(values))
    got = float_column(values, low, high, out)
    if all(type(v) is float and math.isfinite(v) for v in values):
        assert got == sum(1 for v in values if v < low or v > high)
        assert out.tolist() == values
    else:
        assert got == -1


def test_float_column_refuses_an_output_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="out has 1 elements; expected 2"):
        float_column([1.0, 2.0], 0.0, 1.0, np.empty(1))
