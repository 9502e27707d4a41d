"""The shared contract (STYLE §4) over every class of the label/escalation work."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors.budget import EscalationBudget
from detectors.calibration import CalibrationMonitor
from detectors.conformal import ConformalEscalation
from detectors.escalation_policy import EscalationPolicy
from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction, RegressionPrediction
from tests.detectors.contract import check_bounded_memory, check_rejects, check_snapshot_resume

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NAN = float("nan")


def star(det: Any, x: tuple) -> Any:
    return det.update(*x)


def feed_performance(det: PerformanceEstimator, x: tuple) -> Any:
    return det.observe_label(*x[1:]) if x[0] == "label" else det.update(x[1])


def feed_policy(det: EscalationPolicy, x: tuple) -> Any:
    if x[0] == "label":
        return det.observe_label(*x[1:])
    _, pred, now, data, drift = x
    return det.decide(pred, now=now, data_reasons=data, drift_active=drift)


def labelled(rng: random.Random, i: int) -> tuple[float, bool]:
    # Miscalibrated in phases, so alerts fire and recover inside the streams.
    c = rng.uniform(0.5, 1.0)
    p = c if (i // 700) % 2 == 0 else c - 0.3
    return c, rng.random() < p


def calibration_x(i: int, rng: random.Random | None = None) -> tuple[float, bool]:
    return labelled(rng or random.Random(i), i)


def conformal_x(i: int, rng: random.Random | None = None) -> tuple[float, bool, bool]:
    rng = rng or random.Random(i)
    c, y = labelled(rng, i)
    return 1.0 - c, y, rng.random() < 0.6


def budget_x(i: int, rng: random.Random | None = None) -> tuple[float, datetime]:
    rng = rng or random.Random(i)
    return rng.random(), T0 + timedelta(seconds=0.2 * i + rng.uniform(0, 0.1))


def performance_x(i: int, rng: random.Random | None = None) -> tuple:
    rng = rng or random.Random(i)
    c, y = labelled(rng, i)
    if i % 3 == 0:
        return ("label", c, y)
    return ("event", c if (i // 900) % 2 == 0 else c * 0.8)


def policy_x(i: int, rng: random.Random | None = None) -> tuple:
    rng = rng or random.Random(i)
    c, y = labelled(rng, i)
    pred = ClassPrediction("a", c, {"a": c, "b": 1 - c})
    if i % 11 == 0:
        pred = RegressionPrediction(1.0, (0.0, rng.uniform(0, 5)))
    if i % 2:
        return ("label", pred, y, rng.random() < 0.5)
    data = {"out_of_range": ["age"]} if i % 17 == 0 else ()
    return ("decide", pred, T0 + timedelta(seconds=0.5 * i), data, (i // 500) % 2 == 1)


CASES = {
    "calibration": (
        lambda: CalibrationMonitor(window=300, min_labelled=50, ece_threshold=0.1),
        calibration_x,
        star,
        [(NAN, True), (1.01, True), ("0.5", True), (0.5, "yes"), (0.5, None), (None, True)],
    ),
    "performance": (
        lambda: PerformanceEstimator(window=200, calibration_window=300, min_events=50),
        performance_x,
        feed_performance,
        [("event", NAN), ("event", -1.0), ("label", 0.5, 1), ("label", float("inf"), True)],
    ),
    "conformal": (
        lambda: ConformalEscalation(target_error=0.05, patience=20),
        conformal_x,
        star,
        [(NAN, True, False), ("x", True, False), (0.2, 0, False), (0.2, True, "no")],
    ),
    "budget": (
        lambda: EscalationBudget(budget_per_minute=20, history=256),
        budget_x,
        star,
        [(NAN, T0), (2.0, T0), (0.5, datetime(2024, 1, 1)), (0.5, "2024-01-01T00:00:00Z")],  # noqa: DTZ001 - rejected on purpose
    ),
    "policy-threshold": (
        lambda: EscalationPolicy(
            min_confidence=0.7,
            min_margin=0.3,
            max_interval_width=2.0,
            budget_per_minute=30,
            budget_history=128,
        ),
        policy_x,
        feed_policy,
        [
            ("decide", ClassPrediction("a", 0.5), datetime(2024, 1, 1), (), False),  # noqa: DTZ001 - rejected on purpose
            ("decide", {"label": "a"}, T0, (), False),
            ("decide", ClassPrediction("a", 0.5), T0, {"nope": ["x"]}, False),
            ("label", ClassPrediction("a", 0.5), "yes", False),
        ],
    ),
    "policy-conformal": (
        lambda: EscalationPolicy(
            policy="conformal", budget_per_minute=30, budget_history=128, max_interval_width=2.0
        ),
        policy_x,
        feed_policy,
        [
            ("decide", ClassPrediction("a", 0.5), T0, (), "on"),
            ("decide", ClassPrediction("a", 0.5), T0, [("out_of_range", [1])], False),
            ("label", ClassPrediction("a", 0.5), True, None),
            ("label", "a", True, False),
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_snapshot_resume(name: str) -> None:
    factory, make_x, feed, _ = CASES[name]
    rng = random.Random(1234)
    stream = [make_x(i, rng) for i in range(3000)]
    check_snapshot_resume(factory, stream, feed)


@pytest.mark.parametrize("name", list(CASES))
def test_stream_exercises_alerts_or_decisions(name: str) -> None:
    """The contract streams are not trivial: something happens in them."""
    factory, make_x, feed, _ = CASES[name]
    det = factory()
    rng = random.Random(1234)
    outs = [feed(det, make_x(i, rng)) for i in range(3000)]
    assert len({repr(o) for o in outs}) >= 2


@pytest.mark.parametrize("name", list(CASES))
def test_rejects_bad_input(name: str) -> None:
    factory, make_x, feed, bad = CASES[name]
    det = factory()
    rng = random.Random(5)
    for i in range(500):
        feed(det, make_x(i, rng))
    check_rejects(det, bad, feed)


@pytest.mark.parametrize("name", list(CASES))
def test_bounded_memory(name: str) -> None:
    factory, make_x, feed, _ = CASES[name]
    check_bounded_memory(factory(), make_x, 20_000, feed)


@pytest.mark.parametrize("name", list(CASES))
def test_clone_and_restore_keep_settings(name: str) -> None:
    factory, *_ = CASES[name]
    det = factory()
    assert det.clone().settings() == det.settings()
    assert type(det).restore(det.snapshot()).snapshot() == det.snapshot()
