"""Segments end to end (issue 16): a shift confined to one region reaches the alerts
topic and ``/metrics`` through the real broker, while a tenant key with 1,000 distinct
values keeps the number of segment series bounded.

The worker watches ``region`` (five values, ``eu`` 20 %) and ``tenant`` (1,000 values,
each 0.1 %: none frequent enough for monitors of its own, all pooled as ``_other``).
Midway, ``amount`` moves by 2 sigma in ``eu`` only.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from tests.support import TopicReader, publish, start_worker, wait_until

pytestmark = pytest.mark.kafka

REGIONS = ["eu", "us", "us", "apac", "latam"]
N_EVENTS = 12_000
SHIFT_AT = 6_000
TOP_K = 4
T0 = 1_767_225_600  # 2026-01-01


def _events(rng: random.Random) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(N_EVENTS):
        region = rng.choice(REGIONS)
        shift = 2.0 if region == "eu" and i >= SHIFT_AT else 0.0
        event = {
            "event_id": f"e-{i}",
            "model_id": "m",
            "ts": T0 + i * 0.01,
            "prediction": {"label": "ok", "confidence": rng.uniform(0.5, 1.0)},
            "features": {"amount": rng.gauss(shift, 1.0), "other": rng.gauss(0, 1)},
            "segment": {"region": region, "tenant": f"t{rng.randrange(1000)}"},
        }
        out.append((b"m", orjson.dumps(event)))
    return out


def test_a_segment_only_shift_reaches_alerts_and_metrics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = {
        "defaults": {
            "drift": {"window": 100, "reference_size": 300},
            "escalation": {"data_reasons": False},
            "segments": {"keys": ["region", "tenant"], "top_k": TOP_K, "features": ["amount"]},
        }
    }
    topics, worker = start_worker(kafka_bootstrap, tmp_path, "segments", config)
    alerts = TopicReader(kafka_bootstrap, topics["alerts"])
    try:
        publish(kafka_bootstrap, topics["inference"], _events(random.Random(16)))
        target = "segment:region=eu:feature:amount"

        def alerted() -> bool:
            alerts.poll(1.0)
            return any(a["signal"] == target and a["state"] == "drift" for a in alerts.messages)

        assert wait_until(alerted, timeout=120), worker.log_tail()
        alert = next(a for a in alerts.messages if a["signal"] == target)
        assert alert["model_id"] == "m" and alert["state"] == "drift"
        # No other region fires (the aggregate may or may not, and so may the tenants'
        # pool, a fifth of which is the shifted eu traffic).
        fired = {
            a["signal"].split(":")[1] for a in alerts.messages if a["signal"][:8] == "segment:"
        }
        assert fired <= {"region=eu", "tenant=_other"}, fired

        def all_counted() -> bool:
            events = worker.scrape().get("vigil_segment_events_total", [])
            return sum(v for lab, v in events if lab["segment"].startswith("tenant=")) >= N_EVENTS

        assert wait_until(all_counted, timeout=60), worker.log_tail()
        samples = worker.scrape()
        assert worker.gauge("vigil_drift_active", model="m", signal=target) == 1.0
        segments = {lab["segment"] for lab, _ in samples["vigil_segment_events_total"]}
        # 1,000 tenants, none frequent: they are one series, _other.
        assert {s for s in segments if s.startswith("tenant=")} == {"tenant=_other"}
        assert {"region=eu", "region=us", "region=apac", "region=latam"} <= segments
        assert len(segments) <= 2 * (TOP_K + 1)
        escalations = {lab["segment"] for lab, _ in samples["vigil_segment_escalations_total"]}
        assert escalations == segments
        # Every segment signal series belongs to one of those bounded segment values.
        signals = {
            lab["signal"]
            for lab, _ in samples["vigil_drift_active"]
            if lab["signal"].startswith("segment:")
        }
        assert {s.split(":")[1] for s in signals} == segments
        # Per value: confidence, prediction, feature and data quality of amount, escalations.
        assert len(signals) <= len(segments) * 5
    finally:
        alerts.close()
        worker.stop()
