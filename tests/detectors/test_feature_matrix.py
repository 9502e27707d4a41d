"""gather_clean and float_column (detectors._native through detectors.feature_matrix)
against what they replace in Python: every value looked up and kept only when all are
exact floats, and each event clean when its values are in range and its categories
known."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.feature_matrix import float_column, gather_clean

NAMES = ["a", "b", "c"]
CATEGORIES = ["u", "v"]
KNOWN = frozenset({"x", "y"})
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.floats(-1e3, 1e3).map(np.float64),  # a float subclass: not exactly a float
)
CATEGORY_VALUES = st.one_of(st.sampled_from(["x", "y", "z", ""]), VALUES)
FINITE = sys.float_info.max
EVENTS = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from([*NAMES, "other"]), VALUES, min_size=0, max_size=4),
        # The usual case: every numeric feature a float, the categories mostly known.
        st.fixed_dictionaries(
            {n: st.floats(-3, 3) for n in NAMES},
            optional={c: CATEGORY_VALUES for c in CATEGORIES},
        ),
    ),
    max_size=12,
)
BOUNDS = st.one_of(
    st.just((-FINITE, FINITE)),  # a feature without a range: the finite floats
    st.tuples(st.floats(-3, 0), st.floats(0, 3)),
    st.tuples(st.just(-math.inf), st.floats(-1, 1)),  # only a maximum configured
)


def reference(
    events: list[dict[str, Any]],
    names: list[str],
    bounds: list[tuple[float, float]],
    categories: list[str],
) -> tuple[list[list[float]], list[bool]] | None:
    """What DriftMonitor.prepare computed in numpy and Python before gather_clean."""
    if not all(all(type(e.get(n)) is float for n in names) for e in events):
        return None
    rows = [[e[n] for n in names] for e in events]
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    matrix = np.array(rows, dtype=float).reshape(len(events), len(names))
    clean = np.all((matrix >= lo) & (matrix <= hi), axis=1).tolist()
    for name in categories:
        clean = [
            c and type(v := e.get(name)) is str and v in KNOWN
            for c, e in zip(clean, events, strict=True)
        ]
    return rows, clean


@settings(max_examples=600, deadline=None)
@given(
    events=EVENTS,
    k=st.integers(0, 3),
    bounds=st.lists(BOUNDS, min_size=3, max_size=3),
    c=st.integers(0, 2),
)
def test_gather_clean_reads_a_batch_only_when_every_value_is_a_float(
    events: list[dict[str, Any]], k: int, bounds: list[tuple[float, float]], c: int
) -> None:
    names, bounds, categories = NAMES[:k], bounds[:k], CATEGORIES[:c]
    out = np.empty((len(events), k))
    want = reference(events, names, bounds, categories)
    got = gather_clean(
        events,
        names,
        [b[0] for b in bounds],
        [b[1] for b in bounds],
        [(name, KNOWN) for name in categories],
        out,
    )
    if want is None:
        assert got is None
        return
    rows, clean = want
    assert got == clean
    assert all(type(flag) is bool for flag in got)
    # NaN and infinities are floats: kept as they are
    assert all(
        (math.isnan(x) and math.isnan(y)) or x == y
        for row_got, row_want in zip(out.tolist(), rows, strict=True)
        for x, y in zip(row_got, row_want, strict=True)
    )


def test_gather_clean_takes_no_infinity_where_a_feature_has_no_range() -> None:
    events = [{"a": math.inf}, {"a": -math.inf}, {"a": math.nan}, {"a": 1e308}]
    got = gather_clean(events, ["a"], [-FINITE], [FINITE], [], np.empty((4, 1)))
    assert got == [False, False, False, True]


def test_gather_clean_refuses_what_is_not_a_dict_and_an_output_of_the_wrong_size() -> None:
    class Features(dict[str, float]):
        pass

    def gather(events: Any, out: np.ndarray, lo: Any = (0.0,)) -> list[bool] | None:
        return gather_clean(events, ["a"], list(lo), [2.0], [], out)

    assert gather([{"a": 1.0}], np.empty((1, 1))) == [True]
    # A dict subclass may look values up its own way: the general path asks it.
    assert gather([Features(a=1.0)], np.empty((1, 1))) is None
    assert gather([[("a", 1.0)]], np.empty((1, 1))) is None
    with pytest.raises(ValueError, match="out has 2 elements; expected 1"):
        gather([{"a": 1.0}], np.empty(2))
    with pytest.raises(ValueError, match="lo has 2 elements; expected 1"):
        gather([{"a": 1.0}], np.empty(1), lo=(0.0, 0.0))
    with pytest.raises(TypeError):
        gather(({"a": 1.0},), np.empty(1))  # a tuple
    with pytest.raises(BufferError):
        gather([{"a": 1.0}], np.empty(1, dtype=np.float32))
    with pytest.raises(TypeError):  # a category without its known values
        gather_clean([{"a": 1.0}], ["a"], [0.0], [2.0], ["a"], np.empty(1))  # type: ignore[list-item]


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
