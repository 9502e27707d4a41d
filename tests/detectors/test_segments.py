"""Segments (issue 16): the top-k in bounded memory, per-value monitors, the budget."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from detectors.drift_monitor import DriftMonitor
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.heavy_hitters import HeavyHitters
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction
from detectors.segments import OTHER_SEGMENT, SegmentMonitor, segment_name, split_budget

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_space_saving_bounds_hold_and_state_is_capacity_bounded() -> None:
    rng = random.Random(1)
    hh = HeavyHitters(capacity=20, horizon=10**9)
    truth: Counter[str] = Counter()
    for _ in range(50_000):
        v = f"hot{rng.randrange(5)}" if rng.random() < 0.5 else f"v{rng.randrange(5000)}"
        truth[v] += 1
        hh.update(v)
    for v, _ in hh.top(20):
        low, high = hh.bounds(v)
        assert low <= truth[v] <= high
    # Every value above n / capacity is in the summary: the five hot ones.
    assert {f"hot{i}" for i in range(5)} <= {v for v, _ in hh.top(5)}
    assert len(hh.snapshot()["state"]["counts"]) == 20


def test_counts_halve_every_horizon_so_the_summary_follows_the_recent_mix() -> None:
    hh = HeavyHitters(capacity=4, horizon=1000)
    for _ in range(5000):
        hh.update("old")
    for _ in range(3000):
        hh.update("new")
    assert hh.top(1)[0][0] == "new"
    assert hh.total < 1000


def test_segment_names_are_escaped_and_keys_checked() -> None:
    assert segment_name("eu") == "eu"
    assert segment_name("a b:c") == "a%20b%3Ac"
    assert segment_name("_other") != OTHER_SEGMENT
    assert segment_name("zürich") == "zürich"
    with pytest.raises(SettingsError, match="without ':'"):
        SegmentMonitor(["a:b"])
    with pytest.raises(SettingsError, match="1 to 8 distinct"):
        SegmentMonitor([f"k{i}" for i in range(9)])
    with pytest.raises(SettingsError, match="share"):
        SegmentMonitor(["region"], share=1.0)


def test_the_budget_is_split_between_aggregate_and_segments_and_scaled_per_value() -> None:
    agg, seg = split_budget(1_000_000, share=0.5)
    # Rates add up to the model's: 1/agg + 1/seg = 1/sensitivity.
    assert 1 / agg + 1 / seg == pytest.approx(1 / 1_000_000)
    mon = SegmentMonitor(["region", "tenant"], features=["amount"], sensitivity=1_000_000)
    # Each key gets half of the segment share; a value runs at that rate in its OWN events.
    assert mon.value_sensitivity == pytest.approx(seg * 2)
    signals = 2 * 1 + 3
    drift = mon._drift()
    # The drift monitor's 2F+2 signals and escalation_rate share it evenly.
    assert drift.sensitivity * (signals - 1) == pytest.approx(mon.value_sensitivity * signals)


def _feed(mon: SegmentMonitor, n: int, rng: random.Random, make: Any) -> list[Any]:
    out = []
    for i in range(n):
        seg, feats, pred, esc = make(i, rng)
        out += mon.update(seg, feats, pred, esc)
    return out


def test_only_frequent_values_get_monitors_and_a_long_tail_stays_one_pool() -> None:
    mon = SegmentMonitor(["region", "tenant"], top_k=3, window=50, reference_size=100)

    def make(i: int, rng: random.Random) -> tuple[Any, ...]:
        seg = {
            "region": rng.choice(["eu", "eu", "us", "apac"]),
            "tenant": f"t{rng.randrange(1000)}",
        }
        return seg, {}, ClassPrediction("a", rng.uniform(0.5, 1)), False

    _feed(mon, 20_000, random.Random(2), make)
    assert set(mon.monitored("region")) == {"eu", "us", "apac"}
    assert mon.monitored("tenant") == ()
    segments = {r.segment for r in mon.readings()}
    assert segments == {"region=eu", "region=us", "region=apac", "region=_other", "tenant=_other"}
    assert sum(r.events for r in mon.readings() if r.segment.startswith("tenant")) == 20_000


def test_a_new_dominant_value_replaces_the_weakest_and_the_pool_restarts() -> None:
    mon = SegmentMonitor(["region"], top_k=2, window=50, reference_size=100, horizon=2000)
    phase = {"mix": ["eu", "eu", "us", "us", "x1", "x2"]}

    def make(i: int, rng: random.Random) -> tuple[Any, ...]:
        return {"region": rng.choice(phase["mix"])}, {}, ClassPrediction("a", 0.8), False

    rng = random.Random(3)
    _feed(mon, 3000, rng, make)
    assert set(mon.monitored("region")) == {"eu", "us"}
    phase["mix"] = ["eu", "eu", "apac", "apac", "apac", "us"]
    _feed(mon, 6000, rng, make)
    assert set(mon.monitored("region")) == {"eu", "apac"}
    other = next(r for r in mon.readings() if r.segment == "region=_other")
    assert other.events < 6000  # restarted when the monitored set changed


def test_a_shift_in_one_region_fires_that_regions_signal_only() -> None:
    mon = SegmentMonitor(["region"], features=["amount"], window=100, reference_size=500)

    def make(i: int, rng: random.Random) -> tuple[Any, ...]:
        region = rng.choice(["eu", "us", "us", "apac", "latam"])
        shift = 1.0 if region == "eu" and i >= 15_000 else 0.0
        pred = ClassPrediction("a", rng.uniform(0.5, 1))
        return {"region": region}, {"amount": rng.gauss(shift, 1)}, pred, False

    changes = _feed(mon, 25_000, random.Random(4), make)
    fired = {c.signal for c in changes if c.state == "drift"}
    assert "segment:region=eu:feature:amount" in fired
    assert all(s.startswith("segment:region=eu:") for s in fired), fired


def test_escalation_rate_and_labelled_accuracy_per_segment() -> None:
    mon = SegmentMonitor(
        ["region"],
        window=100,
        reference_size=500,
        calibration={"window": 300, "min_labelled": 100, "accuracy_drop": 0.1},
    )
    rng = random.Random(5)
    changes = []
    for i in range(30_000):
        region = rng.choice(["eu", "us", "apac"])
        bad = region == "eu" and i >= 15_000
        esc = rng.random() < (0.3 if bad else 0.05)
        changes += mon.update({"region": region}, {}, ClassPrediction("a", 0.9), esc)
        if i % 3 == 0:  # a label for a third of the events
            right = rng.random() < (0.6 if bad else 0.9)
            changes += mon.observe_label({"region": region}, 0.9, right, 1.0)
    fired = {c.signal for c in changes if c.state == "drift"}
    assert "segment:region=eu:escalation_rate" in fired
    assert "segment:region=eu:accuracy" in fired
    assert all(s.startswith("segment:region=eu:") for s in fired), fired
    eu = next(r for r in mon.readings() if r.segment == "region=eu")
    us = next(r for r in mon.readings() if r.segment == "region=us")
    assert eu.accuracy is not None and us.accuracy is not None and eu.accuracy < us.accuracy
    change = next(c for c in changes if c.signal == "segment:region=eu:escalation_rate")
    assert change.detector == "escalation_rate" and change.current["escalation_rate"] > 0.2


def test_bad_segments_are_refused_before_anything_learns() -> None:
    mon = SegmentMonitor(["region"])
    before = mon.snapshot()
    with pytest.raises(InvalidObservationError, match="segment 'region' must be a string"):
        mon.update({"region": 1}, {}, ClassPrediction("a", 0.5), False)  # type: ignore[dict-item]
    with pytest.raises(InvalidObservationError, match="'segment' must be a mapping"):
        mon.update("eu", {}, ClassPrediction("a", 0.5), False)  # type: ignore[arg-type]
    assert mon.snapshot() == before


def test_model_monitor_passes_segments_and_restores_an_older_snapshot_without_them() -> None:
    mon = ModelMonitor(
        "m",
        EscalationPolicy(min_confidence=0.7),
        drift=DriftMonitor(window=100),
        segments=SegmentMonitor(["region"], window=50, reference_size=100),
    )
    rng = random.Random(6)
    for i in range(2000):
        region = rng.choice(["eu", "us"])
        mon.observe(
            {"x": rng.random()}, ClassPrediction("a", rng.random()), T0, f"e{i}", {"region": region}
        )
    mon.observe_label(ClassPrediction("a", 0.9), "b", was_escalated=False, segment={"region": "eu"})
    assert mon.segments is not None
    readings = {r.segment: r for r in mon.segments.readings()}
    assert readings["region=eu"].labels == 1 and readings["region=us"].labels == 0
    # Escalations per segment follow the decisions (confidence below 0.7: ~70 %).
    assert 0.6 < readings["region=eu"].escalations / readings["region=eu"].events < 0.8
    assert any(s.signal.startswith("segment:region=eu:") for s in mon.states())
    snap = mon.snapshot()
    assert ModelMonitor.restore(snap).segments.snapshot() == mon.segments.snapshot()  # type: ignore[union-attr]
    old = {k: v for k, v in snap.items() if k != "segments"}
    assert ModelMonitor.restore(old).segments is None


@pytest.mark.parametrize("features", [["amount", "kind"], ["amount"], []])
def test_update_many_gives_what_update_gives_event_by_event(features: list[str]) -> None:
    """Same changes per event and same state: through value promotions (the pool
    restarts), a shift in one region, an escalation burst and odd feature values
    (batches with them take the per-event path for the watched values, the others
    the columnar one), for two, one and no watched features."""
    rng = random.Random(21)

    def make(i: int) -> tuple[Any, ...]:
        mix = ["eu", "eu", "us", "x1", "x2"] if i < 6000 else ["eu", "apac", "apac", "us"]
        region = rng.choice(mix)
        seg = {"region": region, "tenant": f"t{rng.randrange(40 if i % 3 else 5)}"}
        shift = 1.5 if region == "eu" and i >= 9000 else 0.0
        feats: dict[str, Any] = {"amount": rng.gauss(shift, 1), "kind": rng.choice("abc")}
        r = rng.random()
        if r < 0.01:
            del feats["amount"]
        elif r < 0.02:
            feats["amount"] = np.float64(0.25)  # a numpy scalar: stored as a float
        elif r < 0.025:
            feats["amount"] = 2  # an int: per event
        if rng.random() < 0.05:
            seg.pop(rng.choice(["region", "tenant"]))
        escalated = rng.random() < (0.4 if 11_000 < i < 12_000 and region == "us" else 0.05)
        return seg, feats, ClassPrediction(rng.choice("ab"), rng.uniform(0.5, 1)), escalated

    params: dict[str, Any] = {
        "keys": ["region", "tenant"],
        "top_k": 3,
        "features": features,
        "window": 100,
        "reference_size": 300,
        "horizon": 3000,
        "calibration": {"window": 200, "min_labelled": 50},
    }
    one, many = SegmentMonitor(**params), SegmentMonitor(**params)
    stream = [make(i) for i in range(14_000)]
    want = [one.update(*e) for e in stream]
    got: list[Any] = []
    pos = 0
    while pos < len(stream):
        batch = stream[pos : pos + rng.choice([1, 3, 64, 250, 700])]
        got += many.update_many(
            [many.values(seg) for seg, _, _, _ in batch],
            [f for _, f, _, _ in batch],
            [p for _, _, p, _ in batch],
            [e for _, _, _, e in batch],
        )
        pos += len(batch)
    assert got == want
    fired = {c.signal for changes in want for c in changes if c.state == "drift"}
    assert ("segment:region=eu:feature:amount" in fired) == bool(features)  # edges compared
    assert "segment:region=us:escalation_rate" in fired
    assert set(many.monitored("region")) == {"eu", "us", "apac"}  # promotions happened
    assert many.snapshot() == one.snapshot()
    assert many.events_seen == len(stream)
    with pytest.raises(InvalidObservationError, match="one value list"):
        many.update_many([[None, None]], [{}, {}], [], [])
