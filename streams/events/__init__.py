"""The wire contract (SPEC §2–6): decoding and validating input, outgoing records, dead letters."""

from __future__ import annotations

from streams.events.dead_letters import DeadLetter, MessageSource
from streams.events.records import (
    REDACTED,
    alert_id,
    alert_record,
    escalation_id,
    escalation_record,
    prediction_dict,
)
from streams.events.schema import (
    DEFAULT_MAX_EVENT_BYTES,
    InferenceEvent,
    LabelEvent,
    decode_inference,
    decode_label,
    parse_json,
    read_model_id,
)

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "REDACTED",
    "DeadLetter",
    "InferenceEvent",
    "LabelEvent",
    "MessageSource",
    "alert_id",
    "alert_record",
    "decode_inference",
    "decode_label",
    "escalation_id",
    "escalation_record",
    "parse_json",
    "prediction_dict",
    "read_model_id",
]
