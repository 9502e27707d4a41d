"""The multivariate detector's per-event arithmetic in Rust (detectors._native's
normal_scores and project, through detectors.reconstruction): the normal-score map bit
for bit what numpy computed before, and each row's projection the same alone or in any
batch, and equal to the formula it sums."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._native import normal_scores, project
from detectors.reconstruction import ReconstructionDrift, _marginal_table, _NormalScores


def numpy_map(to_z: _NormalScores, x: np.ndarray) -> np.ndarray:
    """_NormalScores.__call__ as it was: plain ufuncs and one interp."""
    u = x * to_z.scale
    u += to_z.shift
    np.maximum(u, to_z.low, out=u)
    np.minimum(u, to_z.high, out=u)
    return np.interp(u, to_z.xp, to_z.fp)


def fitted(seed: int, d: int) -> _NormalScores:
    rng = np.random.default_rng(seed)
    cols = [
        rng.normal(size=500),
        rng.lognormal(0.0, 1.0, 500),
        rng.poisson(2.0, 500).astype(float),  # ties: runs of equal quantiles
        rng.integers(0, 2, 500).astype(float),  # two values
    ]
    return _NormalScores(_marginal_table(np.column_stack([cols[j % 4] for j in range(d)])))


VALUES = st.one_of(
    st.floats(-20, 40),
    st.sampled_from([0.0, 1.0, 2.0, 3.0, math.nan, math.inf, -math.inf, 1e300, -1e300]),
)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 5), d=st.integers(1, 6), data=st.data())
def test_the_normal_score_map_is_numpys_bit_for_bit(seed: int, d: int, data: st.DataObject) -> None:
    to_z = fitted(seed, d)
    n = data.draw(st.integers(1, 30))
    x = np.array(data.draw(st.lists(VALUES, min_size=n * d, max_size=n * d))).reshape(n, d)
    with np.errstate(invalid="ignore", over="ignore"):
        want = numpy_map(to_z, x)
    got = to_z(x)
    assert got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)
    # The knots themselves (the quantiles, their runs' ends) take the knot's value.
    for j in range(d):
        stretch = slice(int(to_z.starts[j]), int(to_z.starts[j + 1]))
        u = (to_z.xp[stretch] - to_z.shift[j]) / to_z.scale[j]
        row = np.zeros((len(u), d))
        row[:, j] = u
        assert np.array_equal(to_z(row)[:, j], numpy_map(to_z, row)[:, j])


def reference_detector() -> ReconstructionDrift:
    rng = np.random.default_rng(3)
    det = ReconstructionDrift(
        reference_size=600, features=["a", "b", "c", "d"], window=100, step=50
    )
    for _ in range(700):
        a = rng.normal()
        det.update({"a": a, "b": a + 0.3 * rng.normal(), "c": rng.normal(), "d": rng.exponential()})
    assert det.active
    return det


def test_each_row_projects_alone_as_in_a_batch_and_as_its_formula() -> None:
    det = reference_detector()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(57, 4))
    x[5, 2] = math.nan  # NaN propagates: such a row is imputed by update
    spe, score = det.project(x)
    for i in range(len(x)):
        s1, c1 = det.project(x[i : i + 1])
        assert np.array_equal(s1, spe[i : i + 1], equal_nan=True)
        assert np.array_equal(c1, score[i : i + 1], equal_nan=True)
    c = det._centred(x)
    t = c @ det._w.T
    assert np.allclose(spe, (t * t) @ det._sums[0], equal_nan=True, rtol=1e-12)
    assert np.allclose(score, (t * t) @ det._sums[1], equal_nan=True, rtol=1e-12)
    assert math.isnan(spe[5]) and math.isnan(score[5])


def test_the_kernels_refuse_arrays_of_the_wrong_shape() -> None:
    to_z = fitted(0, 2)
    args = (to_z.scale, to_z.shift, to_z.low, to_z.high, to_z.xp, to_z.fp, to_z.starts)
    with pytest.raises(ValueError, match="out has 3 elements; expected 4"):
        normal_scores(np.zeros(4), *args, np.empty(3))
    with pytest.raises(ValueError, match="not rows of 2"):
        normal_scores(np.zeros(3), *args, np.empty(3))
    bad_starts = np.array([0, 5, 10**6], dtype=np.int64)
    with pytest.raises(ValueError, match="no stretch"):
        normal_scores(np.zeros(2), *args[:-1], bad_starts, np.empty(2))
    with pytest.raises(BufferError):
        normal_scores(np.zeros(2, dtype=np.float32), *args, np.empty(2))
    w, sums = np.eye(2), np.ones((2, 2))
    with pytest.raises(ValueError, match="wt has 9 elements; expected 4"):
        project(np.zeros((3, 2)), np.eye(3), sums, np.empty(3), np.empty(3))
    with pytest.raises(ValueError, match="spe has 2 elements; expected 3"):
        project(np.zeros((3, 2)), w, sums, np.empty(2), np.empty(3))
    with pytest.raises(ValueError, match="not rows of 2"):
        project(np.zeros(3), w, sums, np.empty(1), np.empty(1))
