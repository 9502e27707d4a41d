"""The CUSUM's adjustment coefficient, solved in Rust (detectors._native through
detectors.sensitivity._adjustment_coefficient), against the Newton loop it replaced,
written out here in Python: the same root bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detectors._native import adjustment_coefficient
from detectors.sensitivity import CUSUM_ALLOWANCE, _adjustment_coefficient


def python_loop(y: list[float], probs: list[float]) -> float | None:
    """The Python loop as it was, its sums written in order (as 3.11's ``sum`` adds
    floats; 3.12's compensates)."""
    terms = [(p, v) for p, v in zip(probs, y, strict=True) if p > 0]
    if not any(v > 0 for _, v in terms):
        return None
    top = max(v for _, v in terms)

    def f_and_slope(t: float) -> tuple[float, float]:
        shift = t * top
        total = moment = 0.0
        for p, v in terms:
            w = p * math.exp(t * v - shift)
            total += w
            moment += w * v
        return math.log(total) + shift, moment / total

    t = 1.0
    value, slope = f_and_slope(t)
    while value <= 0:
        t *= 2.0
        value, slope = f_and_slope(t)
    for _ in range(100):
        # IEEE division, as the Rust loop's: a slope that underflowed to 0 (a positive
        # value of ~1e-266 on a weight of ~1e-76) gives an infinite step, which stops it.
        step = value / slope if slope else math.copysign(math.inf, value)
        if not 0.0 < t - step < t:
            break
        t -= step
        if step <= 1e-13 * t:
            break
        value, slope = f_and_slope(t)
    return t


def scores_of(counts: list[int]) -> tuple[list[float], list[float]]:
    """A standardised score table and its probabilities, as NumericDrift builds them."""
    p = np.asarray(counts, dtype=float) / sum(counts)
    u = np.clip(np.cumsum(p) - p / 2.0, 1e-6, 1.0 - 1e-6)
    from scipy import special

    z = special.ndtri(u)
    s = z - float((p * z).sum())
    s = s / math.sqrt(float((p * s * s).sum()))
    return s.tolist(), p.tolist()


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(0, 10_000), min_size=2, max_size=40), sign=st.sampled_from([1, -1])
)
def test_the_root_of_a_score_table_is_the_python_loops_bit_for_bit(
    counts: list[int], sign: int
) -> None:
    if sum(1 for c in counts if c) < 2:
        return  # a constant score: NumericDrift never solves for it
    s, p = scores_of(counts)
    y = [sign * v - CUSUM_ALLOWANCE for v in s]
    want = python_loop(y, p)
    got = adjustment_coefficient(y, p)
    assert got == want  # floats compared exactly; None when no score is above k
    if want is not None:  # and the root is one: E exp(theta y) = 1
        assert math.fsum(q * math.exp(want * v) for q, v in zip(p, y, strict=True)) == (
            pytest.approx(1.0, abs=1e-9)
        )


@settings(max_examples=300, deadline=None)
@given(
    y=st.lists(st.floats(-50, 50), min_size=1, max_size=30),
    weights=st.lists(st.floats(0, 1), min_size=30, max_size=30),
)
# Found by hypothesis: the slope underflows to 0 at the root's scale (~1e267).
@example(
    y=[0.0, 0.0, 0.0, 3.350068301113889e-266, -1.0],
    weights=[0.0] * 3 + [3.438179767668444e-76, 1.0] + [0.0] * 25,
)
def test_any_finite_table_gets_the_python_loops_root(y: list[float], weights: list[float]) -> None:
    probs = weights[: len(y)]
    if sum(probs) == 0 or sum(p * v for p, v in zip(probs, y, strict=True)) >= 0:
        return  # E y < 0 is what the root needs (f'(0) < 0)
    assert adjustment_coefficient(y, probs) == python_loop(y, probs)


def test_the_wrapper_takes_arrays_and_no_positive_value_has_no_root() -> None:
    y, p = np.array([-1.5, 0.5]), np.array([0.5, 0.5])
    assert _adjustment_coefficient(y, p) == python_loop([-1.5, 0.5], [0.5, 0.5])
    assert _adjustment_coefficient(np.array([-1.0, 2.0]), np.array([1.0, 0.0])) is None
    assert adjustment_coefficient([], []) is None


def test_mismatched_or_non_finite_input_is_refused() -> None:
    with pytest.raises(ValueError, match="probs has 1 elements; expected 2"):
        adjustment_coefficient([-1.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="must be finite"):
        adjustment_coefficient([-1.0, math.nan], [0.5, 0.5])
    with pytest.raises(ValueError, match="must be finite"):
        adjustment_coefficient([-1.0, 1.0], [0.5, math.inf])
