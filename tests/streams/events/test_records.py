"""Records as published: the escalation's times are written as ``isoformat()`` writes them."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from detectors.escalation import Decision
from streams.events.records import escalation_record
from streams.events.schema import MAX_EPOCH_S, MIN_EPOCH_S, decode_inference

# Every time an event may carry (the decoder's range), to the microsecond.
TIMES = st.datetimes(
    min_value=datetime.fromtimestamp(MIN_EPOCH_S, UTC).replace(tzinfo=None),
    max_value=datetime.fromtimestamp(MAX_EPOCH_S - 1, UTC).replace(tzinfo=None),
    timezones=st.just(UTC),
)


@given(ts=TIMES, at=TIMES)
def test_escalation_times_are_written_as_isoformat(ts: datetime, at: datetime) -> None:
    raw = orjson.dumps(
        {
            "event_id": "e1",
            "model_id": "m",
            "ts": ts.isoformat(),
            "prediction": {"label": "a", "confidence": 0.5},
        }
    )
    event = decode_inference(raw)
    decision = Decision(escalate=True, priority=0.5, reasons=())
    record = escalation_record(
        event, decision, escalated_at=at, policy_name="p", policy_version="1"
    )
    published = orjson.loads(orjson.dumps(record))
    assert published["event_ts"] == ts.isoformat() == event.ts.isoformat()
    assert published["escalated_at"] == at.isoformat()
