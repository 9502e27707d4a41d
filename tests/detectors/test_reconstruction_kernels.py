"""The multivariate detector's per-event arithmetic in Rust (detectors._native's
normal_scores and project, through detectors.reconstruction): the normal-score map bit
for bit what numpy computed before, and each row's projection the same alone or in any
batch, and equal to the formula it sums; the two fused (RowScorer) the same floats."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors._native import RowScorer, normal_scores, project
from detectors.reconstruction import _SUSPECT, ReconstructionDrift, _marginal_table, _NormalScores


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


def apart(to_z: _NormalScores, wt: np.ndarray, sums: np.ndarray, x: np.ndarray) -> list:
    """The two kernels one after the other, as ReconstructionDrift.project runs them,
    with an unusable row's pair as None."""
    c = to_z(x)
    spe, score = np.empty(len(x)), np.empty(len(x))
    project(c, wt, sums, spe, score)
    pairs = zip(spe.tolist(), score.tolist(), strict=True)
    return [(a, b) if b < _SUSPECT else None for a, b in pairs]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 5), d=st.integers(1, 6), extra=st.integers(0, 3), data=st.data())
def test_the_fused_scorer_gives_the_two_kernels_floats(
    seed: int, d: int, extra: int, data: st.DataObject
) -> None:
    to_z = fitted(seed, d)
    rng = np.random.default_rng(seed)
    wt = rng.normal(size=(d, d))
    sums = np.vstack([rng.integers(0, 2, d), rng.exponential(size=d)]).astype(float)
    scorer = to_z.scorer(wt, sums)
    n = data.draw(st.integers(0, 20))
    width = d + extra
    m = np.array(data.draw(st.lists(VALUES, min_size=n * width, max_size=n * width)))
    m = m.reshape(n, width)
    # Some of the matrix's columns, in any order (a feature's column anywhere).
    cols = data.draw(st.permutations(range(width)))[:d]
    with np.errstate(invalid="ignore", over="ignore"):
        want = apart(to_z, wt, sums, np.ascontiguousarray(m[:, cols]))
    got = scorer.score(m, cols)
    assert got == want  # bit for bit: equal floats, None in the same rows
    if extra == 0:
        with np.errstate(invalid="ignore", over="ignore"):
            assert scorer.score(m) == apart(to_z, wt, sums, m)
    assert pickle.loads(pickle.dumps(scorer)).score(m, cols) == got


def test_a_detector_scores_rows_as_it_projects_them() -> None:
    det = reference_detector()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 6))
    x[3, 1] = math.nan  # a missing value: not usable, scored per event
    x[7, 4] = 1e300  # a column the detector does not read
    cols = [5, 1, 0, 2]
    got = det.score_rows(x, cols)
    spe, score = det.project(np.ascontiguousarray(x[:, cols]))
    assert got is not None and len(got) == 40
    for i, pair in enumerate(got):
        if i == 3:
            assert pair is None
        else:
            assert pair == (spe[i], score[i])
    copied = pickle.loads(pickle.dumps(det))
    assert copied.score_rows(x, cols) == got
    plain = ReconstructionDrift(
        reference_size=600,
        features=["a", "b", "c", "d"],
        window=100,
        step=50,
        normal_scores=False,
    )
    plain._use_reference(det._ref | {"marginals": None})
    assert plain.score_rows(x, cols) is None  # no map: project's own path


def test_the_fused_scorer_refuses_what_does_not_fit() -> None:
    to_z = fitted(0, 2)
    w, sums = np.eye(2), np.ones((2, 2))
    with pytest.raises(ValueError, match="wt has 9 elements; expected 4"):
        to_z.scorer(np.eye(3), sums)
    with pytest.raises(ValueError, match="sums has 2 elements; expected 4"):
        to_z.scorer(w, np.ones(2))
    scorer = to_z.scorer(w, sums)
    with pytest.raises(ValueError, match="two dimensions"):
        scorer.score(np.zeros(4))
    with pytest.raises(ValueError, match="matrix's columns has 3 elements; expected 2"):
        scorer.score(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="columns has 1 elements; expected 2"):
        scorer.score(np.zeros((2, 3)), [0])
    with pytest.raises(ValueError, match="column 3 is not in a matrix of 3"):
        scorer.score(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match="C-contiguous"):
        scorer.score(np.zeros((3, 4))[:, :2])
    with pytest.raises(ValueError, match="no feature"):
        RowScorer([], [], [], [], [0.0], [0.0], [0], [], [], 1.0)
