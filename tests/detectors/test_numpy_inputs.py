"""Numpy scalars are accepted wherever Python numbers and bools are, and change nothing.

Every class the contract suite finds is fed its contract stream twice: once with
numpy scalars (``np.float32``, ``np.float64``, ``np.int64``, ``np.bool_``) in place of
every float, int and bool, once with the same values as Python numbers. The outputs and
the final snapshot must be equal, and the snapshot must hold no numpy value (it is
plain data: JSON and checkpoints take it as is). NaN, infinities, numpy bools where a
number belongs and 0-d arrays are still refused.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import detectors
from detectors.base import (
    as_bool,
    as_real,
    check_bool,
    check_count,
    check_finite,
    check_probability,
    check_weight,
)
from detectors.data_quality import DataQualityDrift
from detectors.errors import InvalidObservationError
from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction, RegressionPrediction
from tests.detectors.test_contract import CASES, CLASSES, build, inputs, stream

# Float types by position, so that one stream exercises each (float64 is a float
# subclass: it takes the checks' slow path, not their `type(x) is float` fast path).
FLOATS = (np.float32, np.float64)


def _convert(x: Any, numpy: bool, state: list[int]) -> Any:
    t = type(x)
    if t is bool:
        return np.bool_(x) if numpy else x
    if t is int:
        return np.int64(x) if numpy else x
    if t is float:
        state[0] += 1
        kind = FLOATS[state[0] % len(FLOATS)]
        if not math.isfinite(x):
            return kind(x) if numpy else x
        # The plain run sees the value the numpy scalar holds.
        return kind(x) if numpy else float(kind(x))
    if t is tuple:
        return tuple(_convert(v, numpy, state) for v in x)
    if t is list:
        return [_convert(v, numpy, state) for v in x]
    if t is dict:
        return {k: _convert(v, numpy, state) for k, v in x.items()}
    if t is ClassPrediction or t is RegressionPrediction:
        return dataclasses.replace(
            x,
            **{
                f.name: _convert(getattr(x, f.name), numpy, state)
                for f in dataclasses.fields(x)
                if f.name != "label"
            },
        )
    return x


def numpy_and_plain(x: Any) -> tuple[Any, Any]:
    return _convert(x, True, [0]), _convert(x, False, [0])


def _numpy_values(data: Any, path: str = "snapshot") -> list[str]:
    if isinstance(data, np.generic | np.ndarray):
        return [f"{path}: {data!r}"]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _numpy_values(v, f"{path}[{k!r}]")]
    if isinstance(data, list | tuple):
        return [p for i, v in enumerate(data) for p in _numpy_values(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize(("cls", "k"), CASES)
def test_numpy_scalars_give_the_same_results_and_plain_snapshots(cls: Any, k: int) -> None:
    feed = inputs(cls).feed
    items = [numpy_and_plain(x) for x in stream(cls, 1500)]
    with_numpy, plain = build(cls, k), build(cls, k)
    out_numpy = [feed(with_numpy, x) for x, _ in items]
    out_plain = [feed(plain, x) for _, x in items]
    assert out_numpy == out_plain
    snap = with_numpy.snapshot()
    assert snap == plain.snapshot()
    assert not _numpy_values(snap)


def test_the_classes_fed_numpy_are_the_exported_ones() -> None:
    """Every detector under contract is exported by the package (so the test above
    covers what a notebook imports)."""
    names = {cls.__qualname__ for cls in CLASSES}
    assert names <= set(detectors.__all__)
    for cls in CLASSES:
        assert getattr(detectors, cls.__qualname__) is cls


@pytest.mark.parametrize(
    "value", [np.float32(0.25), np.float64(0.25), np.int64(0), np.int32(1), np.float16(0.5)]
)
def test_checks_accept_numpy_numbers(value: Any) -> None:
    got = check_probability("confidence", value)
    assert type(got) is float and got == float(value)
    assert type(check_finite("x", value)) is float


@pytest.mark.parametrize(
    "bad",
    [
        np.float32("nan"),
        np.float64("inf"),
        np.float32("-inf"),
        np.bool_(True),
        np.array(0.5),
        np.array([0.5]),
        True,
        "0.5",
        None,
        complex(0.5, 0),
    ],
)
def test_checks_refuse_non_finite_and_non_numbers(bad: Any) -> None:
    with pytest.raises(InvalidObservationError, match="'x' must be a finite number"):
        check_finite("x", bad)
    with pytest.raises(InvalidObservationError, match="'w' must be a finite number > 0"):
        check_weight("w", bad)


def test_weights_and_counts_accept_numpy() -> None:
    assert check_weight("w", np.float32(50.0)) == 50.0
    assert check_weight("w", np.int64(2)) == 2.0
    assert type(check_count("n", np.int64(7))) is int
    for bad in (np.float64(1.0), np.bool_(False), True, -1, np.int64(-1), 1.0):
        with pytest.raises(InvalidObservationError, match="'n' must be an integer >= 0"):
            check_count("n", bad)
    with pytest.raises(InvalidObservationError, match="'w' must be a finite number > 0"):
        check_weight("w", np.float32(0.0))


def test_bools_accept_numpy_bool_only() -> None:
    assert check_bool("correct", np.bool_(True)) is True
    assert check_bool("correct", np.False_) is False
    for bad in (1, 0, np.int64(1), 1.0, "True", None, np.array(True)):
        with pytest.raises(InvalidObservationError, match="'correct' must be a bool"):
            check_bool("correct", bad)


def test_performance_estimator_from_numpy_arrays_element_by_element() -> None:
    """The notebook case: iterate over numpy arrays directly (no ``.tolist()``)."""
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 3000).astype(np.float32)
    correct = rng.random(3000) < conf
    a, b = PerformanceEstimator(window=500), PerformanceEstimator(window=500)
    for c, y in zip(conf, correct, strict=True):
        a.observe_label(c, y, np.float64(1.0))
        a.update(c)
    for c, y in zip(conf.tolist(), correct.tolist(), strict=True):
        b.observe_label(c, y)
        b.update(c)
    assert a.snapshot() == b.snapshot()
    assert not _numpy_values(a.snapshot())
    assert a.estimated_accuracy == b.estimated_accuracy


def test_data_quality_blocks_accept_numpy_counts() -> None:
    a, b = DataQualityDrift(), DataQualityDrift()
    rng = np.random.default_rng(1)
    for _ in range(200):
        missing = rng.binomial(50, 0.02 if _ < 100 else 0.3)
        a.update_block(np.int64(50), missing, np.int32(0))
        b.update_block(50, int(missing), 0)
    assert a.snapshot() == b.snapshot()
    assert not _numpy_values(a.snapshot())
    for bad in (np.float64(50.0), np.bool_(True), -1):
        with pytest.raises(InvalidObservationError, match="must be an integer >= 0"):
            a.update_block(bad, 0, 0)


def test_sorting_helpers_for_the_drift_monitor() -> None:
    """``as_real`` / ``as_bool``: the non-raising forms, for paths that sort values
    (a numeric feature's value out of range, a categorical feature's bool)."""
    assert as_real(np.float32(0.5)) == 0.5 and type(as_real(np.float32(0.5))) is float
    assert as_real(np.int64(3)) == 3.0
    assert math.isnan(as_real(np.float64("nan")))  # type: ignore[arg-type]
    assert as_real(np.bool_(True)) is None and as_real(10**400) is None
    assert as_bool(np.True_) is True and as_bool(np.int64(1)) is None


def test_importing_detectors_imports_no_numpy() -> None:
    code = (
        "import sys, detectors, detectors.base, detectors.performance; "
        "print(sorted(m for m in ('numpy', 'scipy', 'river') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
