"""Synthetic traffic: a version rolled out mid-stream (the demo's canary)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from detectors.canary import VersionCanary
from streams.config import ModelSettings
from streams.dev.demo import demo_models
from streams.dev.traffic import Rollout, SyntheticModel
from streams.processing.fleet import build_versions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_rollout_serves_its_share_from_its_start_and_predicts_otherwise() -> None:
    model = SyntheticModel("m", n_numeric=3, seed=3, start=T0, rollout=Rollout("2.0", start=500))
    events = [model.event()[0] for _ in range(10_000)]
    assert {e["model_version"] for e in events[:500]} == {"1.0.0"}
    later = Counter((e["model_version"], e["prediction"]["label"]) for e in events[500:])
    new = later["2.0", "pos"] + later["2.0", "neg"]
    assert 0.27 < new / 9500 < 0.33
    old_pos = later["1.0.0", "pos"] / (9500 - new)
    assert later["2.0", "pos"] / new > old_pos + 0.1  # the bias: more "pos"


def test_the_demo_rollout_fires_its_canary_within_500_new_version_events() -> None:
    (router,) = [m for m in demo_models(rate=30) if m.model_id == "support-router"]
    assert router.rollout is not None
    settings = build_versions(ModelSettings()).canary  # as the worker sets it up
    assert settings is not None
    canary = VersionCanary(**settings)
    fired = None
    for _ in range(router.rollout.start + 20_000):
        event, _ = router.event()
        is_new = event["model_version"] == router.rollout.version
        if canary.update(is_new, event["prediction"]["label"]):
            fired = canary.new_seen
            break
    assert fired is not None and fired <= 500
