"""The messages vigil publishes: Escalation (SPEC §4), Alert (SPEC §5) and the reviewed
record (SPEC §12).

Ids are deterministic so that a replay, or a retry after a crash, produces the
same id for the same item, and consumers can deduplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detectors.adjudication import Decision as Adjudication
from detectors.escalation import Decision
from detectors.prediction import ClassPrediction, Prediction
from detectors.signals import SignalChange
from streams.events.schema import InferenceEvent

__all__ = [
    "REDACTED",
    "alert_id",
    "alert_record",
    "escalation_id",
    "escalation_record",
    "prediction_dict",
    "reviewed_id",
    "reviewed_record",
]

REDACTED = "[redacted]"
# A fixed namespace makes uuid5 ids stable across processes and versions.
VIGIL_NAMESPACE = uuid.UUID("6f1c2a52-33a1-4d5e-9a0b-7c3d1e9f0b21")
# SHA-1 already fed with the namespace: copying it is cheaper than hashing it again.
_NAMESPACE_SHA1 = hashlib.sha1(VIGIL_NAMESPACE.bytes, usedforsecurity=False)


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(VIGIL_NAMESPACE, name))`` (RFC 4122 §4.3) without the ``UUID``
    object: a third of the cost, and escalation ids are made per escalation.

    >>> _uuid5("esc\x1fm\x1fe1") == str(uuid.uuid5(VIGIL_NAMESPACE, "esc\x1fm\x1fe1"))
    True
    """
    sha = _NAMESPACE_SHA1.copy()
    sha.update(name.encode())
    b = bytearray(sha.digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def escalation_id(model_id: str, event_id: str) -> str:
    """Deterministic id of the escalation of one event.

    >>> escalation_id("fraud", "e1") == escalation_id("fraud", "e1")
    True
    >>> escalation_id("fraud", "e1") == escalation_id("fraud", "e2")
    False
    """
    return _uuid5(f"esc\x1f{model_id}\x1f{event_id}")


def reviewed_id(model_id: str, event_id: str) -> str:
    """Deterministic id of the reviewed record of one event (SPEC §12).

    >>> reviewed_id("fraud", "e1") == reviewed_id("fraud", "e1") != escalation_id("fraud", "e1")
    True
    """
    return _uuid5(f"reviewed\x1f{model_id}\x1f{event_id}")


def alert_id(model_id: str, model_version: str, signal: str, state: str, events_seen: int) -> str:
    """Deterministic id of one alert edge."""
    key = f"alert\x1f{model_id}\x1f{model_version}\x1f{signal}\x1f{state}\x1f{events_seen}"
    return _uuid5(key)


def prediction_dict(p: Prediction) -> dict[str, Any]:
    if isinstance(p, ClassPrediction):
        if p.scores is not None:
            return {"label": p.label, "scores": p.scores}
        return {"label": p.label, "confidence": p.confidence}
    out: dict[str, Any] = {"value": p.value}
    if p.interval is not None:
        out["interval"] = list(p.interval)
    return out


def escalation_record(
    event: InferenceEvent,
    decision: Decision,
    *,
    escalated_at: datetime,
    policy_name: str,
    policy_version: str,
    redacted: frozenset[str] = frozenset(),
    reviews_wanted: int = 1,
) -> dict[str, Any]:
    """The escalation of ``event`` (SPEC §4), for ``orjson.dumps``: its times
    (``event_ts``, ``escalated_at``) are the aware UTC datetimes themselves, which orjson
    writes as ``isoformat()`` does (RFC 3339, microseconds when there are any, ``+00:00``;
    tests/streams/events/test_records.py), in a fifth of the time."""
    features = event.features
    if redacted and not redacted.isdisjoint(features):
        features = {k: (REDACTED if k in redacted else v) for k, v in features.items()}
    return {
        "escalation_id": escalation_id(event.model_id, event.event_id),
        "event_id": event.event_id,
        "model_id": event.model_id,
        "model_version": event.model_version,
        "event_ts": event.ts,
        "escalated_at": escalated_at,
        "priority": round(decision.priority, 6),
        "reasons": [r.as_dict() for r in decision.reasons],
        "prediction": prediction_dict(event.prediction),
        "features": features,
        "segment": event.segment,
        "trace_id": event.trace_id,
        "metadata": event.metadata,
        "policy": {"name": policy_name, "version": policy_version},
        "inclusion_probability": decision.inclusion_probability,
        "reviews_wanted": reviews_wanted,
    }


def alert_record(
    model_id: str,
    model_version: str,
    change: SignalChange,
    *,
    detected_at: datetime,
    redacted: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The alert of one signal edge (with ``impact``, importance x statistic /
    threshold, when a feature signal enters drift). For a feature in ``redacted``,
    ``reference`` and ``current`` are replaced by ``"[redacted]"``: a categorical
    detector reports them as shares per category value, and those values are what
    redaction keeps inside vigil.

    >>> from detectors.signals import SignalChange
    >>> change = SignalChange("feature:card", "chi2", "drift", 500, 30.0, 9.0,
    ...                       {"4111-1111": 0.9}, {"5500-0000": 0.8})
    >>> r = alert_record("m", "1", change, detected_at=datetime(2026, 1, 1),
    ...                  redacted=frozenset({"card"}))
    >>> r["reference"], r["current"], r["statistic"]
    ('[redacted]', '[redacted]', 30.0)
    """
    reference, current = change.reference, change.current
    if redacted and change.signal.startswith("feature:") and change.signal[8:] in redacted:
        reference = current = REDACTED
    return {
        "alert_id": alert_id(
            model_id, model_version, change.signal, change.state, change.events_seen
        ),
        "model_id": model_id,
        "model_version": model_version,
        "signal": change.signal,
        "detector": change.detector,
        "state": change.state,
        "detected_at": detected_at.isoformat(),
        "events_seen": change.events_seen,
        "statistic": change.statistic,
        "threshold": change.threshold,
        "reference": reference,
        "current": current,
        **({} if change.impact is None else {"impact": change.impact}),
    }


def _answer(value: str | float) -> dict[str, Any]:
    return {"label": value} if isinstance(value, str) else {"value": value}


def reviewed_record(
    escalation: Mapping[str, Any], decision: Adjudication, *, inclusion_probability: float
) -> dict[str, Any]:
    """The reviewed record of one adjudicated event (SPEC §12), from the escalation that
    sent it for review (as published: features already redacted) and its decision.

    ``inclusion_probability`` is the one the model's statistics weighed the final label
    by. Labels appear in the order they were given, each with its reviewer (if any),
    source and time.

    >>> from datetime import UTC, datetime
    >>> from detectors.adjudication import Adjudicator
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> adj = Adjudicator(reviews_wanted=2)
    >>> _ = adj.add_label("e1", "fraud", reviewer="ann", now=t)
    >>> d = adj.add_label("e1", "ok", reviewer="bob", now=t).decisions[-1]
    >>> esc = {"event_id": "e1", "model_id": "m", "model_version": "3", "event_ts": "x",
    ...        "escalation_id": "x-1", "features": {}, "segment": {},
    ...        "prediction": {"label": "ok", "confidence": 0.6}, "reasons": [],
    ...        "policy": {"name": "default", "version": "1"}}
    >>> r = reviewed_record(esc, d, inclusion_probability=1.0)
    >>> r["final"], [x["reviewer"] for x in r["labels"]]
    ({'label': 'fraud', 'method': 'majority', 'agreement': 0.5}, ['ann', 'bob'])
    """
    model_id = str(escalation["model_id"])
    labels = []
    for review in decision.labels:
        item = _answer(review.label)
        if review.reviewer is not None:
            item["reviewer"] = review.reviewer
        item["source"] = review.source
        item["ts"] = review.ts.isoformat()
        labels.append(item)
    return {
        "reviewed_id": reviewed_id(model_id, decision.event_id),
        "event_id": decision.event_id,
        "model_id": model_id,
        "model_version": escalation.get("model_version", "unknown"),
        "event_ts": escalation.get("event_ts"),
        "features": escalation.get("features", {}),
        "segment": escalation.get("segment", {}),
        "prediction": escalation.get("prediction"),
        "escalation_id": escalation.get("escalation_id"),
        "reasons": escalation.get("reasons", []),
        "inclusion_probability": inclusion_probability,
        "reviews_wanted": escalation.get("reviews_wanted", 1),
        "labels": labels,
        "final": {
            **_answer(decision.final),
            "method": decision.method,
            "agreement": round(decision.agreement, 6),
        },
        "adjudicated_at": decision.decided_at.isoformat(),
        "policy": escalation.get("policy", {}),
    }
