"""Segments in the worker's core (issue 16): settings to monitors, events' segments to
the segment monitors, labels back to their event's segment, series at scrape time."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from detectors.segments import split_budget
from streams.config import settings_from_dict
from streams.events.dead_letters import MessageSource
from streams.processing.fleet import Fleet, ModelState
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor
from streams.processing.versions import VERSION_SHARE

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
CONFIG: dict[str, Any] = {
    "defaults": {
        "drift": {"window": 50, "reference_size": 100},
        "escalation": {"min_confidence": 0.7, "data_reasons": False},
        "review": {"audit_rate": 0.0},
        "segments": {"keys": ["region"], "top_k": 2, "features": ["x"]},
    }
}


def processor(raw: dict[str, Any]) -> tuple[Processor, CollectorRegistry]:
    """A processor whose registry reads the fleet's gauges at scrape time, as the worker's."""
    reg = CollectorRegistry()
    s = settings_from_dict(raw)
    fleet = Fleet(s)
    metrics = VigilMetrics(reg, s.worker.max_models, readings=fleet.readings)
    return Processor(s, metrics, fleet=fleet, clock=None), reg


def event(n: int, region: str | None, confidence: float) -> bytes:
    body: dict[str, Any] = {
        "event_id": f"e{n}",
        "model_id": "m",
        "ts": T0 + n,
        "features": {"x": float(n % 7)},
        "prediction": {"label": "a", "confidence": confidence},
    }
    if region is not None:
        body["segment"] = {"region": region, "other": "ignored"}
    return orjson.dumps(body)


def label(n: int, truth: str) -> bytes:
    return orjson.dumps(
        {"event_id": f"e{n}", "model_id": "m", "ts": T0 + n + 1, "label": truth, "source": "h"}
    )


def test_settings_build_segment_monitors_that_share_the_models_budget() -> None:
    proc, _ = processor(CONFIG)
    mon = proc.fleet.get("m").monitor
    assert mon.segments is not None and list(mon.segments.keys) == ["region"]
    assert mon.drift is not None
    # The version signals' tenth comes first (fleet.events_budget), then the split.
    events = 1_000_000 / (1.0 - VERSION_SHARE)
    aggregate, _ = split_budget(events)
    assert mon.drift.sensitivity == pytest.approx(aggregate)
    plain, _ = processor({})
    assert plain.fleet.get("m").monitor.segments is None
    assert plain.fleet.get("m").monitor.drift.sensitivity == pytest.approx(events)  # type: ignore[union-attr]


def test_events_and_labels_reach_their_segment() -> None:
    proc, _ = processor(CONFIG)
    out = Outgoing()
    rng = random.Random(1)
    regions = {}
    for n in range(600):
        region = rng.choice(["eu", "us"]) if n % 10 else None  # some events without one
        regions[n] = region
        conf = 0.6 if region == "eu" and n % 2 else 0.9
        proc.inference(event(n, region, conf), MessageSource("i", 0, n, b"m"), out)
    segs = proc.fleet.get("m").monitor.segments
    assert segs is not None and set(segs.monitored("region")) == {"eu", "us"}
    # eu events are labelled wrong, us events right: the accuracy follows the segment.
    for i, n in enumerate(range(300, 600)):
        if regions[n] is not None:
            truth = "b" if regions[n] == "eu" else "a"
            proc.label(label(n, truth), MessageSource("l", 0, i, b"m"), out)
    readings = {r.segment: r for r in segs.readings()}
    assert readings["region=eu"].accuracy == 0.0 and readings["region=us"].accuracy == 1.0
    assert readings["region=eu"].escalations > 0 and readings["region=us"].escalations == 0
    # Events without a region are in no segment of that key.
    before = [r.events for r in segs.readings()]
    for n in range(600, 620):
        proc.inference(event(n, None, 0.9), MessageSource("i", 0, n, b"m"), out)
    assert [r.events for r in segs.readings()] == before


def test_segment_series_at_scrape_time() -> None:
    proc, reg = processor(CONFIG)
    out = Outgoing()
    for n in range(400):
        proc.inference(event(n, "eu" if n % 2 else "us", 0.6), MessageSource("i", 0, n, b"m"), out)
    segs = proc.fleet.get("m").monitor.segments
    assert segs is not None
    for r in segs.readings():
        labels = {"model": "m", "segment": r.segment}
        assert reg.get_sample_value("vigil_segment_events_total", labels) == r.events
        assert reg.get_sample_value("vigil_segment_escalations_total", labels) == r.escalations
        assert reg.get_sample_value("vigil_segment_accuracy", labels) is None  # no labels yet
    assert {r.segment for r in segs.readings()} == {"region=eu", "region=us", "region=_other"}
    assert reg.get_sample_value(
        "vigil_segment_escalations_total", {"model": "m", "segment": "region=eu"}
    ) == pytest.approx(sum(r.events for r in segs.readings() if r.segment == "region=eu"))
    assert (
        reg.get_sample_value(
            "vigil_drift_active", {"model": "m", "signal": "segment:region=eu:confidence"}
        )
        == 0.0
    )


def test_a_checkpoint_from_before_segments_restores_and_gets_them_as_configured() -> None:
    proc, _ = processor(CONFIG)
    out = Outgoing()
    for n in range(10):
        proc.inference(event(n, "eu", 0.9), MessageSource("i", 0, n, b"m"), out)
    snap = proc.fleet.get("m").snapshot()
    del snap["monitor"]["segments"]
    fresh, _ = processor(CONFIG)
    fresh.fleet.put("m", ModelState.restore(snap))
    mon = fresh.fleet.get("m").monitor
    assert mon.segments is not None and mon.events_seen == 10
