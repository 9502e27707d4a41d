"""ClassPrediction.margin: the unrolled binary case agrees with the general one."""

from __future__ import annotations

import itertools
import math

from detectors.prediction import ClassPrediction, _top_two

EDGES = [0.0, -0.0, 0.25, 0.5, 1.0, -1.0, math.nan, math.inf, -math.inf, 0, 1, 2, -3, 1e-300]


def test_binary_margin_is_the_general_rule_for_any_two_values() -> None:
    for a, b in itertools.product(EDGES, repeat=2):
        top, second = _top_two([a, b])
        want = top - second
        got = ClassPrediction("x", 0.5, {"a": a, "b": b}).margin
        if math.isnan(want):
            assert math.isnan(got), (a, b)
        else:
            assert got == want and type(got) is type(want), (a, b, got, want)
            assert math.copysign(1.0, got) == math.copysign(1.0, want), (a, b)


def test_margin_with_three_classes_and_without_scores() -> None:
    assert ClassPrediction("a", 0.6, {"a": 0.6, "b": 0.3, "c": 0.1}).margin == 0.6 - 0.3
    assert ClassPrediction("a", 0.8).margin == 0.8 - (1.0 - 0.8)
    assert ClassPrediction("a", 0.8, {"a": 0.8}).margin == 0.8 - (1.0 - 0.8)
