"""Outlier escalations, multivariate and drift-impact series through the Processor."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from streams.config import settings_from_dict
from streams.events.dead_letters import MessageSource
from streams.processing.fleet import Fleet
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

T0 = 1_767_225_600


def message(n: int, features: dict[str, Any], model_id: str = "m") -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "model_id": model_id,
            "ts": T0 + n,
            "features": features,
            "prediction": {"label": "yes", "confidence": 0.95},
        }
    )


def correlated(rng: random.Random, rho: float = 0.8) -> dict[str, float]:
    a = rng.gauss(0, 1)
    b = rho * a + math.sqrt(1 - rho * rho) * rng.gauss(0, 1)
    return {"a": a, "b": b, "c": rng.gauss(0, 1)}


def run(raw: dict[str, Any], n: int, odd: dict[int, dict[str, float]], rho: float = 0.8):
    reg = CollectorRegistry()
    settings = settings_from_dict(raw)
    fleet = Fleet(settings)
    proc = Processor(settings, VigilMetrics(reg, 10, readings=fleet.readings), fleet, clock=None)
    rng = random.Random(0)
    out = Outgoing()
    escalations, alerts = [], []
    for i in range(n):
        features = odd.get(i) or correlated(rng, rho if i >= n // 2 else 0.8)
        proc.inference(message(i, features), MessageSource("in", 0, i, b"m"), out)
        escalations += [orjson.loads(v) for _, v in out.escalations]
        alerts += [orjson.loads(v) for _, v in out.alerts]
        out.clear()
    return reg, escalations, alerts


ABSURD = {"a": 3.0, "b": -3.0, "c": 0.0}  # each value ordinary, together absurd


def test_an_outlier_is_escalated_with_reason_outlier_and_counted() -> None:
    base = {"review": {"audit_rate": 0}, "escalation": {"data_reasons": False}}
    reg, escalations, _ = run({"defaults": base}, 3000, {2500: ABSURD})
    (esc,) = [e for e in escalations if any(r["kind"] == "outlier" for r in e["reasons"])]
    assert esc["event_id"] == "e2500"
    (reason,) = esc["reasons"]
    assert reason["score"] > reason["threshold"] > 0
    assert reason["detail"].startswith("score ") and "a " in reason["detail"]
    assert reg.get_sample_value("vigil_outlier_escalations_total", {"model": "m"}) == 1
    assert reg.get_sample_value("vigil_escalations_total", {"model": "m", "reason": "outlier"}) == 1
    # Turned off (0): the same stream escalates nothing.
    off = {**base, "escalation": {"data_reasons": False, "outlier_quantile": 0}}
    reg, escalations, _ = run({"defaults": off}, 3000, {2500: ABSURD})
    assert escalations == []
    assert reg.get_sample_value("vigil_outlier_escalations_total", {"model": "m"}) == 0


def test_multivariate_series_and_alert_on_a_correlation_flip() -> None:
    raw = {"defaults": {"review": {"audit_rate": 0}}}
    reg, _, alerts = run(raw, 6000, {}, rho=-0.8)
    assert [a["signal"] for a in alerts if a["state"] == "drift"] == ["multivariate"]
    labels = {"model": "m", "signal": "multivariate"}
    stat = reg.get_sample_value("vigil_drift_statistic", labels)
    threshold = reg.get_sample_value("vigil_drift_threshold", labels)
    assert stat is not None and threshold is not None and stat > threshold > 0
    assert reg.get_sample_value("vigil_drift_active", labels) == 1
    assert (
        reg.get_sample_value("vigil_drift_threshold", {"model": "m", "signal": "feature:a"}) is None
    )


def test_drift_impact_is_served_per_feature_and_carried_by_feature_alerts() -> None:
    raw = {
        "defaults": {
            "review": {"audit_rate": 0},
            "features": {"c": {"type": "numeric", "importance": 4.0}},
        }
    }
    shifted = {
        i: {**correlated(random.Random(i)), "c": random.Random(i).gauss(1.5, 1)}
        for i in range(3000, 5000)
    }
    reg, _, alerts = run(raw, 5000, shifted)
    (alert,) = [a for a in alerts if a["signal"] == "feature:c" and a["state"] == "drift"]
    assert alert["impact"] == round(4.0 * alert["statistic"] / alert["threshold"], 6)
    assert all("impact" not in a for a in alerts if a["signal"] != "feature:c")
    c = reg.get_sample_value("vigil_drift_impact", {"model": "m", "signal": "feature:c"})
    a = reg.get_sample_value("vigil_drift_impact", {"model": "m", "signal": "feature:a"})
    assert c is not None and a is not None and c > 4.0 > a >= 0.0
