"""Validation edge cases of the event contract, one rule at a time (SPEC §2–3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from detectors.prediction import ClassPrediction, RegressionPrediction
from streams.dev.traffic import INVALID_KINDS, invalid_event
from streams.errors import InvalidEventError
from streams.events.schema import decode_inference, decode_label


def event(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "model_id": "fraud.v2",
        "ts": "2026-03-01T12:00:00+01:00",
        "prediction": {"label": "a", "scores": {"a": 0.7, "b": 0.3}},
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def reject(obj: Any, reason: str, words: str, raw: bytes | None = None) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw if raw is not None else orjson.dumps(obj))
    assert info.value.reason == reason, info.value.detail
    assert words in info.value.detail, info.value.detail


def test_valid_classification_with_scores() -> None:
    e = decode_inference(orjson.dumps(event(features={"a": 1, "b": "x", "c": None, "d": True})))
    assert e.ts == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert e.ts.tzinfo is UTC
    assert isinstance(e.prediction, ClassPrediction)
    assert e.prediction.confidence == 0.7
    assert e.model_version == "unknown"


def test_valid_regression_and_epoch_ts() -> None:
    e = decode_inference(
        orjson.dumps(event(ts=1_767_225_600.5, prediction={"value": 3.0, "interval": [1, 4]}))
    )
    assert isinstance(e.prediction, RegressionPrediction)
    assert e.prediction.interval == (1.0, 4.0)
    assert e.ts == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_unknown_top_level_fields_are_ignored() -> None:
    assert decode_inference(orjson.dumps(event(something_new=[1, 2]))).event_id == "e-1"


@pytest.mark.parametrize(
    ("over", "reason", "words"),
    [
        ({"event_id": _DROP}, "schema", "event_id is required"),
        ({"event_id": ""}, "bad_value", "event_id must have 1–128"),
        ({"event_id": "x" * 129}, "bad_value", "event_id must have 1–128"),
        ({"event_id": 17}, "schema", "event_id must be a string"),
        ({"model_id": "-leading-dash"}, "bad_value", "model_id must match"),
        ({"model_id": "m" * 65}, "bad_value", "model_id"),
        ({"model_version": "v" * 65}, "bad_value", "model_version"),
        ({"ts": _DROP}, "schema", "ts is required"),
        ({"ts": "2026-01-01T00:00:00"}, "bad_value", "UTC offset"),
        ({"ts": "not a time"}, "bad_value", "RFC 3339"),
        ({"ts": -5}, "bad_value", "between 1970 and 2200"),
        ({"ts": 1_767_225_600_000}, "bad_value", "between 1970 and 2200"),
        ({"ts": True}, "schema", "ts (epoch seconds) must be a number"),
        ({"prediction": _DROP}, "schema", "prediction is required"),
        ({"prediction": [0.1]}, "schema", "prediction must be an object"),
        ({"prediction": {"label": "a"}}, "schema", "needs scores or confidence"),
        ({"prediction": {"label": "a", "confidence": 1.01}}, "bad_value", "in [0, 1]"),
        ({"prediction": {"label": "a", "confidence": "0.9"}}, "schema", "must be a number"),
        ({"prediction": {"label": "a", "scores": {"a": 0.5, "b": 0.6}}}, "bad_value", "sum to 1"),
        ({"prediction": {"label": "c", "scores": {"a": 0.5, "b": 0.5}}}, "bad_value", "one of"),
        ({"prediction": {"label": "a", "scores": {"a": -0.1, "b": 1.1}}}, "bad_value", "[0, 1]"),
        ({"prediction": {"value": 1, "interval": [2, 3]}}, "bad_value", "lo ≤ value ≤ hi"),
        ({"prediction": {"value": 1, "interval": [0]}}, "schema", "[lo, hi]"),
        ({"prediction": {"value": "1"}}, "schema", "prediction.value must be a number"),
        ({"features": [1, 2]}, "schema", "features must be an object"),
        ({"features": {"a": [1]}}, "schema", "number, string, boolean or null"),
        ({"features": {"a": {"b": 1}}}, "schema", "number, string, boolean or null"),
        ({"features": {"a": "x" * 257}}, "bad_value", "at most 256"),
        ({"features": {f"f{i}": 1 for i in range(513)}}, "bad_value", "at most 512"),
        ({"features": {"": 1}}, "bad_value", "feature names"),
        ({"segment": {f"s{i}": "v" for i in range(9)}}, "bad_value", "at most 8"),
        ({"segment": {"region": 5}}, "schema", "must be a string"),
        ({"segment": {"region": "r" * 65}}, "bad_value", "segment"),
        ({"trace_id": "t" * 129}, "bad_value", "trace_id"),
        ({"metadata": "free text"}, "schema", "metadata must be an object"),
    ],
)
def test_each_rule(over: dict[str, Any], reason: str, words: str) -> None:
    reject(event(**over), reason, words)


def test_nan_infinity_and_huge_numbers() -> None:
    raw = orjson.dumps(event(features={"a": 1.0})).replace(b"1.0", b"NaN")
    reject(None, "invalid_json", "JSON", raw)
    raw = orjson.dumps(event(features={"a": 1.0})).replace(b"1.0", b"Infinity")
    reject(None, "invalid_json", "JSON", raw)
    raw = orjson.dumps(event(features={"a": 1.0})).replace(b"1.0", b"1e999")
    reject(None, "invalid_json", "JSON", raw)
    raw = orjson.dumps(event(features={"a": 1.0})).replace(b"1.0", b"9" * 400)
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw)
    assert info.value.reason in ("invalid_json", "bad_value")


def test_oversized_is_not_parsed() -> None:
    raw = b"{" + b" " * 70_000 + b"}"
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw, max_bytes=65_536)
    assert info.value.reason == "too_large"
    assert "70002 bytes" in info.value.detail


def test_model_id_is_kept_for_metrics_when_readable() -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_inference(orjson.dumps(event(ts="soon")))
    assert info.value.model_id == "fraud.v2"
    with pytest.raises(InvalidEventError) as info:
        decode_inference(b"[]")
    assert info.value.model_id is None


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_traffic_invalid_kinds_get_their_reason(kind: str) -> None:
    raw, reason = invalid_event(kind, "m1", 3)
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw)
    assert info.value.reason == reason


def test_label_event() -> None:
    lab = decode_label(
        orjson.dumps(
            {
                "event_id": "e-1",
                "model_id": "m",
                "ts": 1_767_225_600,
                "value": 2.5,
                "source": "outcome",
                "prediction": {"value": 2.0},
            }
        )
    )
    assert lab.value == 2.5 and lab.label is None
    assert isinstance(lab.prediction, RegressionPrediction)


@pytest.mark.parametrize(
    ("over", "reason", "words"),
    [
        ({"label": None}, "schema", "exactly one of label or value"),
        ({"value": 1.0}, "schema", "exactly one of label or value"),
        ({"source": None}, "schema", "source is required"),
        ({"label": 5}, "schema", "label must be a string"),
        ({"prediction": {"label": "x", "confidence": 2}}, "bad_value", "[0, 1]"),
    ],
)
def test_label_rules(over: dict[str, Any], reason: str, words: str) -> None:
    base = {"event_id": "e", "model_id": "m", "ts": 0, "label": "ok", "source": "human"}
    base.update(over)
    with pytest.raises(InvalidEventError) as info:
        decode_label(orjson.dumps({k: v for k, v in base.items() if v is not None}))
    assert info.value.reason == reason
    assert words in info.value.detail
