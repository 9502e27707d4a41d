"""ModelMonitor between ``prepare(batch)`` and ``prepare(())``: the label-free accuracy
estimate may hold confidences back while no alert can come of them, and is what one
event at a time gives whenever the monitor reads it or hands it on."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from detectors.drift_monitor import DriftMonitor
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction

START = datetime(2026, 1, 1, tzinfo=UTC)


def monitor() -> ModelMonitor:
    return ModelMonitor(
        "m",
        EscalationPolicy(min_confidence=0.6),
        drift=DriftMonitor({"x": {"type": "numeric"}}, window=20, reference_size=40),
        performance=PerformanceEstimator(window=50, calibration_window=60, min_events=20),
    )


def events(n: int, seed: int) -> list[tuple[dict[str, float], ClassPrediction]]:
    rng = random.Random(seed)
    return [
        ({"x": rng.gauss(0.0, 1.0)}, ClassPrediction("a", round(rng.uniform(0.5, 1.0), 3)))
        for _ in range(n)
    ]


def test_a_batch_leaves_the_estimate_as_one_event_at_a_time_does() -> None:
    one, batched = monitor(), monitor()
    stream = events(400, seed=1)
    for start in range(0, len(stream), 100):
        batch = stream[start : start + 100]
        batched.prepare([f for f, _ in batch])
        for i, (features, prediction) in enumerate(batch, start):
            now = START + timedelta(seconds=i)
            a = one.observe(features, prediction, now, f"e{i}")
            b = batched.observe(features, prediction, now, f"e{i}")
            assert b.changes == a.changes
            if i == start + 50:
                if start == 0:  # the case under test: no labels, confidences held back
                    assert batched._held
                # A snapshot mid-batch: what one at a time has taken.
                assert batched.snapshot() == one.snapshot()
        batched.prepare(())
        perf_a, perf_b = one.performance, batched.performance
        assert perf_a is not None and perf_b is not None
        assert perf_b.snapshot() == perf_a.snapshot()


def test_a_label_mid_batch_gives_the_estimate_its_held_confidences_first() -> None:
    """A label in a batch (no worker does this, a notebook may) makes the estimate
    ready to alert: what was held back is taken before it, and nothing is held after."""
    one, batched = monitor(), monitor()
    stream = events(300, seed=2)
    batched.prepare([f for f, _ in stream])
    for i, (features, prediction) in enumerate(stream):
        now = START + timedelta(seconds=i)
        a = one.observe(features, prediction, now, f"e{i}")
        b = batched.observe(features, prediction, now, f"e{i}")
        assert b.changes == a.changes
        if i % 2 == 0 and 100 <= i < 250:  # after the window filled (held: all of it)
            for mon in (one, batched):
                mon.observe_label(prediction, "a" if i % 3 else "b", was_escalated=False)
    batched.prepare(())
    assert batched.snapshot() == one.snapshot()
    perf = batched.performance
    assert perf is not None and perf.reference is not None  # it became ready on the way


def test_a_batch_never_ended_loses_nothing_it_held() -> None:
    """A batch prepared over one never ended (its owner failed half-way): the next
    batch's prepare gives the estimate what the first held."""
    one, batched = monitor(), monitor()
    stream = events(120, seed=3)
    for start in (0, 60):
        batch = stream[start : start + 60]
        batched.prepare([f for f, _ in batch])  # no prepare(()) after the first
        for i, (features, prediction) in enumerate(batch[:40], start):
            now = START + timedelta(seconds=i)
            one.observe(features, prediction, now, f"e{i}")
            batched.observe(features, prediction, now, f"e{i}")
    batched.prepare(())
    perf_a, perf_b = one.performance, batched.performance
    assert perf_a is not None and perf_b is not None
    assert perf_b.snapshot() == perf_a.snapshot()
