"""``ModelMonitor.observe`` checks an event once, then hands it on unchecked
(``ModelMonitor._observe``, which the processor calls for the events its decoder
validated): its drift monitor takes of each event what ``DriftMonitor.update`` takes, a
bad event is refused before anything has seen it, and numpy numbers reach no component
as numpy numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from detectors.drift_monitor import DriftMonitor
from detectors.errors import InvalidObservationError
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction

START = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = {"x": {"type": "numeric"}, "colour": {"type": "categorical"}}


def drift() -> DriftMonitor:
    return DriftMonitor(FEATURES, window=20, reference_size=60)


def stream(kind: str, n: int, seed: int) -> list[tuple[dict[str, Any], Prediction]]:
    """Events whose features, confidence (or value) and label all shift halfway."""
    rng = random.Random(seed)
    out: list[tuple[dict[str, Any], Prediction]] = []
    for i in range(n):
        late = i >= n // 2
        features: dict[str, Any] = {
            "x": rng.gauss(3.0 if late else 0.0, 1.0),
            "colour": rng.choice(["red", "blue"] if late else ["red", "green"]),
        }
        if kind == "class":
            label = rng.choice(["b", "b", "a"] if late else ["a", "a", "b"])
            conf = round(rng.uniform(0.5, 0.7) if late else rng.uniform(0.8, 1.0), 4)
            out.append((features, ClassPrediction(label, conf)))
        else:
            out.append((features, RegressionPrediction(rng.gauss(5.0 if late else 0.0, 1.0))))
    return out


@pytest.mark.parametrize("kind", ["class", "regression"])
def test_the_drift_monitor_inside_takes_what_its_own_update_takes(kind: str) -> None:
    mon = ModelMonitor("m", EscalationPolicy(min_confidence=0.6), drift=drift())
    alone = drift()
    seen = []
    for i, (features, prediction) in enumerate(stream(kind, 600, seed=3)):
        verdict = mon.observe(features, prediction, START + timedelta(seconds=i), f"e{i}")
        changes = alone.update(features, prediction)
        assert verdict.changes == changes
        seen += changes
    # Not a trivial stream: the output's signal (confidence or prediction) entered drift.
    assert any(c.state == "drift" and not c.signal.startswith("feature:") for c in seen)
    inside = mon.drift
    assert inside is not None
    assert inside.snapshot() == alone.snapshot()


def test_a_prediction_of_the_other_kind_is_refused_and_leaves_no_trace() -> None:
    mon = ModelMonitor("m", EscalationPolicy(min_confidence=0.6), drift=drift())
    for i, (features, prediction) in enumerate(stream("class", 100, seed=4)):
        mon.observe(features, prediction, START + timedelta(seconds=i), f"e{i}")
    before = mon.snapshot()
    with pytest.raises(InvalidObservationError, match="predictions are class"):
        mon.observe({"x": 0.0, "colour": "red"}, RegressionPrediction(1.0), START, "bad")
    assert mon.snapshot() == before


def test_numpy_numbers_in_a_prediction_reach_the_policy_as_floats() -> None:
    """``check_prediction`` is applied whether or not there is a drift monitor (which
    took numpy scalars itself, and until the thirtieth session of issue 18 passed the
    prediction on to the escalation policy as it came)."""
    for with_drift in (True, False):
        mon = ModelMonitor(
            "m", EscalationPolicy(min_confidence=0.6), drift=drift() if with_drift else None
        )
        verdict = mon.observe(
            {"x": 0.0, "colour": "red"}, ClassPrediction("a", np.float64(0.55)), START
        )
        assert verdict.decision.escalate
        assert type(verdict.decision.priority) is float
        assert [type(r.score) for r in verdict.decision.reasons] == [float]
