"""A reviewed record (SPEC §12) checked and flattened into one dataset row.

The row is what a training run reads: ids, the model and its version, the event time, the
features, the final label (or value) with how it was decided, the inclusion probability to
weight it by, every review as JSON, and where in Kafka the record came from.

**Features are one JSON text column** (``features``; keys sorted, values as the event had
them), not a column per feature. One table holds every model: columns per feature would
make it as wide as the union of all models' features (up to 512 each), mostly null; a
feature that is a number for one model and a string for another (or for the same model
after a change) has no Delta type that fits both, and Delta column names forbid characters
that feature names may contain (`` ,;{}()=``). JSON keeps each value's type exactly, gives
the table one schema that never needs to change when a model gains a feature (a new
feature *is* merged: it is a new key in the rows that have it), and is read by every
training stack (``pandas.json_normalize``, ``json_extract`` in SQL). Writes still use
``schema_mode="merge"`` so that a column added by a later vigil version merges into an
existing table (:mod:`streams.dataset.table`).

:func:`decode_reviewed` trusts nothing: a record that breaks SPEC §12 raises
:class:`~streams.errors.InvalidEventError`, which the sink counts and logs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from streams.errors import InvalidEventError

__all__ = ["COLUMNS", "FINAL_METHODS", "ROW_SCHEMA", "decode_reviewed", "rows_to_table"]

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
FINAL_METHODS = frozenset({"single", "majority", "weighted", "outcome"})
#: SPEC §2's time range for event times (1970–2200), applied to every time in the record.
_MAX_EPOCH = 7_258_118_400.0
_UTC_US = pa.timestamp("us", tz="UTC")

#: The row schema, in column order. ``model_id`` is the table's partition column.
ROW_SCHEMA = pa.schema(
    [
        pa.field("reviewed_id", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("event_ts", _UTC_US, nullable=False),
        pa.field("adjudicated_at", _UTC_US, nullable=False),
        pa.field("escalation_id", pa.string()),
        pa.field("final_label", pa.string()),
        pa.field("final_value", pa.float64()),
        pa.field("final_method", pa.string(), nullable=False),
        pa.field("agreement", pa.float64()),
        pa.field("inclusion_probability", pa.float64(), nullable=False),
        pa.field("prediction_label", pa.string()),
        pa.field("prediction_value", pa.float64()),
        pa.field("n_labels", pa.int32(), nullable=False),
        pa.field("features", pa.string(), nullable=False),
        pa.field("segment", pa.string(), nullable=False),
        pa.field("prediction", pa.string(), nullable=False),
        pa.field("reasons", pa.string(), nullable=False),
        pa.field("labels", pa.string(), nullable=False),
        pa.field("policy_name", pa.string()),
        pa.field("policy_version", pa.string()),
        pa.field("kafka_topic", pa.string(), nullable=False),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
    ]
)
COLUMNS: tuple[str, ...] = tuple(ROW_SCHEMA.names)


def _fail(detail: str) -> InvalidEventError:
    return InvalidEventError("schema", detail)


def _text(record: dict[str, Any], key: str, *, limit: int, required: bool = True) -> Any:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise _fail(f"{key} must be a string of 1-{limit} characters; got {value!r:.80}")
    return value


def _number(value: Any, key: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"{key} must be a number; got {value!r:.80}")
    number = float(value)
    if not math.isfinite(number) or number > high or number < low or (low_open and number == low):
        bound = "(" if low_open else "["
        raise _fail(f"{key} must be finite and in {bound}{low}, {high}]; got {value!r:.80}")
    return number


def _time(value: Any, key: str) -> datetime:
    """Epoch seconds or an RFC 3339 string with an offset → aware UTC."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _fail(f"{key} must be RFC 3339 with an offset; got {value!r:.80}") from None
        if parsed.tzinfo is None:
            raise _fail(f"{key} must have a UTC offset; got {value!r:.80}")
        stamp = parsed.astimezone(UTC)
        _number(stamp.timestamp(), key, 0.0, _MAX_EPOCH)
        return stamp
    return datetime.fromtimestamp(_number(value, key, 0.0, _MAX_EPOCH), UTC)


def _mapping(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{key} must be an object; got {type(value).__name__}")
    return value


def _json(value: Any) -> str:
    # Sorted keys: the same record always gives the same text (export hashes rest on it).
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _label_or_value(outcome: dict[str, Any], key: str) -> tuple[str | None, float | None]:
    label = outcome.get("label")
    value = outcome.get("value")
    if (label is None) == (value is None):
        raise _fail(f"{key} must have exactly one of label and value")
    if label is not None:
        if not isinstance(label, str) or not label:
            raise _fail(f"{key}.label must be a non-empty string; got {label!r:.80}")
        return label, None
    return None, _number(value, f"{key}.value", -math.inf, math.inf)


def decode_reviewed(record: Any, *, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """One reviewed record (as ``orjson.loads`` gives it: dicts and lists) as a row of
    :data:`ROW_SCHEMA`.

    >>> row = decode_reviewed(
    ...     {"reviewed_id": "r1", "event_id": "e1", "model_id": "fraud", "event_ts": 0,
    ...      "prediction": {"label": "ok", "confidence": 0.7}, "inclusion_probability": 1,
    ...      "labels": [{"label": "bad", "reviewer": "ann", "source": "human", "ts": 5}],
    ...      "final": {"label": "bad", "method": "single", "agreement": 1.0},
    ...      "adjudicated_at": 6, "features": {"b": 1, "a": "x"}},
    ...     topic="vigil.reviewed", partition=0, offset=7)
    >>> row["final_label"], row["features"], row["model_version"], row["kafka_offset"]
    ('bad', '{"a":"x","b":1}', 'unknown', 7)
    """
    if not isinstance(record, dict):
        raise _fail(f"a reviewed record must be an object; got {type(record).__name__}")
    model_id = record.get("model_id")
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise _fail(f"model_id must match {_MODEL_ID.pattern}; got {model_id!r:.80}")
    prediction = record.get("prediction")
    if not isinstance(prediction, dict):
        raise _fail("prediction must be an object")
    predicted_label = prediction.get("label")
    predicted_value = prediction.get("value")
    labels = record.get("labels")
    if not isinstance(labels, list) or not labels:
        raise _fail("labels must be a non-empty list")
    for i, label in enumerate(labels):
        if not isinstance(label, dict):
            raise _fail(f"labels[{i}] must be an object")
        _label_or_value(label, f"labels[{i}]")
    final = record.get("final")
    if not isinstance(final, dict):
        raise _fail("final must be an object")
    final_label, final_value = _label_or_value(final, "final")
    method = final.get("method")
    if method not in FINAL_METHODS:
        raise _fail(f"final.method must be one of {sorted(FINAL_METHODS)}; got {method!r:.80}")
    agreement = final.get("agreement")
    policy = _mapping(record, "policy")
    reasons = record.get("reasons", [])
    if not isinstance(reasons, list):
        raise _fail("reasons must be a list")
    return {
        "reviewed_id": _text(record, "reviewed_id", limit=256),
        "event_id": _text(record, "event_id", limit=128),
        "model_id": model_id,
        "model_version": _text(record, "model_version", limit=64, required=False) or "unknown",
        "event_ts": _time(record.get("event_ts"), "event_ts"),
        "adjudicated_at": _time(record.get("adjudicated_at"), "adjudicated_at"),
        "escalation_id": _text(record, "escalation_id", limit=256, required=False),
        "final_label": final_label,
        "final_value": final_value,
        "final_method": method,
        "agreement": None if agreement is None else _number(agreement, "final.agreement", 0, 1),
        "inclusion_probability": _number(
            record.get("inclusion_probability"), "inclusion_probability", 0.0, 1.0, low_open=True
        ),
        "prediction_label": predicted_label if isinstance(predicted_label, str) else None,
        "prediction_value": (
            float(predicted_value)
            if isinstance(predicted_value, int | float) and not isinstance(predicted_value, bool)
            else None
        ),
        "n_labels": len(labels),
        "features": _json(_mapping(record, "features")),
        "segment": _json(_mapping(record, "segment")),
        "prediction": _json(prediction),
        "reasons": _json(reasons),
        "labels": _json(labels),
        "policy_name": _str_or_none(policy.get("name")),
        "policy_version": _str_or_none(policy.get("version")),
        "kafka_topic": topic,
        "kafka_partition": partition,
        "kafka_offset": offset,
    }


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def rows_to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows from :func:`decode_reviewed` as one Arrow table of :data:`ROW_SCHEMA`."""
    return pa.Table.from_pydict(
        {name: [row[name] for row in rows] for name in COLUMNS}, schema=ROW_SCHEMA
    )
