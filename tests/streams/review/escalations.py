"""Escalation records (SPEC §4) as the worker publishes them, for the review bridge tests."""

from __future__ import annotations

import random
from typing import Any

from streams.events.records import escalation_id

CLASSES = ("approve", "review", "reject")


def escalation(model_id: str, event_id: str, rng: random.Random) -> dict[str, Any]:
    """A classification escalation with scores over :data:`CLASSES`, seeded by ``rng``."""
    raw = [rng.random() + 0.05 for _ in CLASSES]
    scores = {c: round(r / sum(raw), 6) for c, r in zip(CLASSES, raw, strict=True)}
    label = max(scores, key=scores.__getitem__)
    priority = round(1.0 - scores[label], 6)
    return {
        "escalation_id": escalation_id(model_id, event_id),
        "event_id": event_id,
        "model_id": model_id,
        "model_version": "7",
        "event_ts": "2026-12-01T10:00:00+00:00",
        "escalated_at": "2026-12-01T10:00:01+00:00",
        "priority": priority,
        "reasons": [{"kind": "low_confidence", "score": scores[label], "threshold": 0.8}],
        "prediction": {"label": label, "scores": scores},
        "features": {"amount": round(rng.uniform(1, 500), 2), "country": "FR", "card": None},
        "segment": {"region": "eu"},
        "trace_id": None,
        "metadata": {},
        "policy": {"name": "threshold", "version": "1"},
        "inclusion_probability": 1.0,
        "reviews_wanted": 1,
    }


def escalations(model_id: str, n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}/{model_id}")
    return [escalation(model_id, f"{model_id}-e{i}", rng) for i in range(n)]
