"""The drift monitor's row block (detectors._native's RowBlock) against the rows it
replaced, written out here in Python: a tuple of values per event whose keys are the
block's in order, spread over per-feature lists when asked."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._native import RowBlock
from detectors.feature_matrix import float_column

KEYS = ("a", "b", "c")
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-3, 3),
    st.integers(-5, 5),
    st.none(),
    st.text(max_size=2),
    st.booleans(),
)
EVENTS = st.lists(
    st.one_of(
        st.fixed_dictionaries({k: VALUES for k in KEYS}),  # the block's keys, in order
        st.fixed_dictionaries({k: st.floats(-3, 3) for k in KEYS}),
        st.fixed_dictionaries({k: VALUES for k in reversed(KEYS)}),  # another order
        st.dictionaries(st.sampled_from([*KEYS, "d"]), VALUES, max_size=4),
    ),
    max_size=30,
)


def same(a: list[Any], b: list[Any]) -> bool:
    """Equal lists, NaN equal to NaN, and every value of the same type."""
    return len(a) == len(b) and all(
        type(x) is type(y) and (x == y or (x != x and y != y)) for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=400, deadline=None)
@given(events=EVENTS, spill_at=st.integers(0, 30))
def test_the_block_keeps_what_the_python_rows_kept(
    events: list[dict[str, Any]], spill_at: int
) -> None:
    block = RowBlock(KEYS)
    bufs: list[list[Any]] = [[] for _ in KEYS]
    want: list[list[Any]] = [[] for _ in KEYS]
    rows: list[tuple[Any, ...]] = []
    for i, event in enumerate(events):
        taken = block.push(event)
        assert taken == (tuple(event) == KEYS)
        if taken:
            rows.append(tuple(event.values()))
        if i == spill_at:  # spread over the lists midway, as an irregular event does
            block.spill(bufs)
            for column, values in zip(want, zip(*rows, strict=True), strict=False):
                column.extend(values)
            rows.clear()
    assert len(block) == len(rows)
    again = pickle.loads(pickle.dumps(block))
    for j in range(len(KEYS)):
        column = [r[j] for r in rows]
        assert block.floats(j) == all(type(v) is float for v in column)
        out, expected = np.empty(len(column)), np.empty(len(column))
        got = block.float_column(j, -1.0, 1.0, out)
        if block.floats(j):
            assert got == float_column(column, -1.0, 1.0, expected)
            if got >= 0:
                assert out.tolist() == expected.tolist()
        else:
            assert got == -1
        block.spill_column(j, bufs[j])
        assert same(bufs[j], want[j] + column)
        other: list[Any] = []
        again.spill_column(j, other)
        assert same(other, column)


def test_a_block_refuses_columns_it_does_not_have_and_outputs_of_the_wrong_size() -> None:
    block = RowBlock(KEYS)
    assert block.push({"a": 1.0, "b": 2.0, "c": 3.0})
    assert block.keys == KEYS
    with pytest.raises(IndexError, match="no column 3"):
        block.floats(3)
    with pytest.raises(ValueError, match="out has 2 elements; expected 1"):
        block.float_column(0, 0.0, 1.0, np.empty(2))
    with pytest.raises(ValueError, match="bufs has 1 elements; expected 3"):
        block.spill([[]])
    with pytest.raises(ValueError, match="as long as each other"):
        RowBlock(KEYS, [[1.0], [2.0, 3.0], [4.0]])
    assert block.float_column(1, math.inf, math.inf, np.empty(1)) == 1  # outside [inf, inf]
    assert not block.push({"a": 1.0, "b": 2.0})  # a key short: nothing kept
    assert len(block) == 1
    block.clear()
    assert len(block) == 0 and block.floats(0)


def test_keys_compare_as_a_tuple_does_by_value_not_only_by_identity() -> None:
    block = RowBlock(("name",))
    assert block.push({"".join(["na", "me"]): 1.0})  # an equal string, another object
    assert not block.push({"nome": 1.0})
