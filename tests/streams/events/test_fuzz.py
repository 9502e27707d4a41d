"""Hostile input at the edge: property-based and fuzz tests of the decoder and Processor.

Two properties, for any bytes at all (random, truncated, deeply nested, NaN/Infinity
literals, huge numbers, invalid UTF-8, wrong types, duplicate keys, oversized strings):

* ``decode_inference`` / ``decode_label`` return an event that keeps every rule of
  SPEC §2–3, or raise :class:`InvalidEventError` with reason ``too_large``,
  ``invalid_json``, ``schema`` or ``bad_value`` and a detail; nothing else escapes.
  A decoded event can always be serialised again (the escalation record of it).
* :class:`Processor` ends every message processed or dead-lettered, never with
  ``processing_error`` for input the decoder accepted, never raising; its counters and
  the metrics registry add up, and every output is JSON.

No Kafka here: the pure core, driven directly. Hypothesis runs derandomised (seeded
from each test's name), so CI sees the same examples every time.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.escalation import Decision
from detectors.prediction import ClassPrediction, RegressionPrediction
from streams.config import settings_from_dict
from streams.errors import DEAD_LETTER_REASONS, InvalidEventError
from streams.events.dead_letters import MessageSource
from streams.events.records import escalation_record
from streams.events.schema import (
    MAX_CLASSES,
    MAX_FEATURE_NAME,
    MAX_FEATURES,
    MAX_SEGMENT_ENTRIES,
    MAX_SEGMENT_VALUE,
    MAX_STRING_VALUE,
    MODEL_ID_RE,
    InferenceEvent,
    LabelEvent,
    decode_inference,
    decode_label,
)
from streams.kafka.checkpoints import Checkpoint
from streams.kafka.checkpoints import encode as checkpoint_encode
from streams.processing.fleet import Fleet
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

DECODE_REASONS = {"too_large", "invalid_json", "schema", "bad_value"}
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EPOCH_MIN = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MAX = datetime(2200, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- raw JSON text


@dataclass(frozen=True)
class Obj:
    """A JSON object as written: pairs in order, duplicate keys allowed."""

    pairs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Lit:
    """Text spliced into the JSON as is (NaN, Infinity, 400-digit numbers, ...)."""

    text: str


def render(value: Any) -> bytes:
    """JSON text for ``value``; unlike orjson it writes NaN/Infinity literals, numbers of
    any size, and objects with duplicate keys."""
    if isinstance(value, Lit):
        return value.text.encode()
    if isinstance(value, Obj):
        body = b",".join(render(k) + b":" + render(v) for k, v in value.pairs)
        return b"{" + body + b"}"
    if isinstance(value, dict):
        return render(Obj(tuple(value.items())))
    if isinstance(value, list | tuple):
        return b"[" + b",".join(render(v) for v in value) + b"]"
    if isinstance(value, float):
        if math.isnan(value):
            return b"NaN"
        if math.isinf(value):
            return b"Infinity" if value > 0 else b"-Infinity"
        return repr(value).encode()
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value)
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, str):
        return orjson.dumps(value)
    raise TypeError(f"cannot render {type(value).__name__}")


# ---------------------------------------------------------------- strategies

HOSTILE_NUMBERS = st.one_of(
    st.sampled_from(
        [
            Lit("NaN"),
            Lit("Infinity"),
            Lit("-Infinity"),
            Lit("1e999"),
            Lit("-1e999"),
            Lit("9" * 400),
            Lit("-" + "9" * 400),
            Lit("1e-400"),
            Lit("0.0000000000000000000000000000001e-330"),
            Lit("18446744073709551616"),
            Lit("-9223372036854775809"),
            Lit("1.7976931348623157e308"),
            Lit("01"),
            Lit("1."),
            Lit(".5"),
            Lit("+1"),
            Lit("0x10"),
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**200), max_value=2**200),
)
HOSTILE_STRINGS = st.one_of(
    st.text(max_size=20),
    st.text(min_size=257, max_size=2000),
    st.just("x" * 70_000),
    st.sampled_from([Lit('"\\ud800"'), Lit('"\\udfff\\ud800"'), Lit('"\\u0000"'), Lit('"\\x41"')]),
)
SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_NUMBERS, HOSTILE_STRINGS)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.builds(Obj, st.lists(st.tuples(st.text(max_size=10), inner), max_size=5).map(tuple)),
    ),
    max_leaves=20,
)


@st.composite
def classification(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(
            st.text(min_size=1, max_size=MAX_STRING_VALUE), min_size=1, max_size=6, unique=True
        )
    )
    label = draw(st.sampled_from(names))
    if draw(st.booleans()):
        return {"label": label, "confidence": draw(st.floats(0.0, 1.0))}
    weights = [draw(st.floats(0.01, 1.0)) for _ in names]
    total = sum(weights)
    return {"label": label, "scores": {n: w / total for n, w in zip(names, weights, strict=True)}}


@st.composite
def regression(draw: st.DrawFn) -> dict[str, Any]:
    value = draw(st.floats(-1e12, 1e12))
    if draw(st.booleans()):
        return {"value": value}
    lo = value - draw(st.floats(0.0, 1e6))
    hi = value + draw(st.floats(0.0, 1e6))
    return {"value": value, "interval": [lo, hi]}


FEATURE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=MAX_STRING_VALUE),
)
TIMESTAMPS = st.one_of(
    st.floats(0.0, 7_258_118_399.0),
    st.integers(0, 7_258_118_399),
    st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds;
        max_value=datetime(2199, 12, 30),  # noqa: DTZ001 - timezones= makes values UTC
        timezones=st.sampled_from([UTC]),
    ).map(lambda d: d.isoformat()),
)


@st.composite
def valid_inference(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=128)),
        "model_id": draw(st.from_regex(MODEL_ID_RE, fullmatch=True)),
        "ts": draw(TIMESTAMPS),
        "prediction": draw(st.one_of(classification(), regression())),
    }
    optional = {
        "model_version": st.text(max_size=64),
        "features": st.dictionaries(
            st.text(min_size=1, max_size=MAX_FEATURE_NAME), FEATURE_VALUES, max_size=12
        ),
        "segment": st.dictionaries(
            st.text(max_size=MAX_SEGMENT_VALUE),
            st.text(max_size=MAX_SEGMENT_VALUE),
            max_size=MAX_SEGMENT_ENTRIES,
        ),
        "trace_id": st.text(max_size=128),
        "metadata": st.dictionaries(
            st.text(max_size=10), st.one_of(st.none(), st.integers(-10, 10), st.text(max_size=10))
        ),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            event[name] = draw(strategy)
    return event


@st.composite
def valid_label(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=128)),
        "model_id": draw(st.from_regex(MODEL_ID_RE, fullmatch=True)),
        "ts": draw(TIMESTAMPS),
        "source": draw(st.sampled_from(["human", "outcome", "x" * 64])),
    }
    if draw(st.booleans()):
        event["label"] = draw(st.text(min_size=1, max_size=MAX_STRING_VALUE))
        if draw(st.booleans()):
            event["prediction"] = draw(classification())
    else:
        event["value"] = draw(st.floats(-1e12, 1e12))
        if draw(st.booleans()):
            event["prediction"] = draw(regression())
    return event


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if head not in value:
            return {**value, head: new} if not rest else value
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A valid event with one field (anywhere) replaced by hostile JSON, dropped, or
    duplicated with a conflicting value."""
    event = draw(base)
    path = draw(st.sampled_from(_paths(event)))
    action = draw(st.sampled_from(["replace", "drop", "duplicate"]))
    if action == "replace":
        return render(_replace(event, path, draw(ANY_JSON)))
    if action == "drop":
        parent = path[:-1]
        target = event
        for p in parent:
            target = target[p]
        if isinstance(target, dict):
            target = {k: v for k, v in target.items() if k != path[-1]}
            return render(_replace(event, parent, target) if parent else target)
        return render(event)
    # Duplicate key at the top level: {"k": hostile, ..., "k": original} or the reverse.
    key = str(path[0])
    pairs = [(k, v) for k, v in event.items()]
    dup = (key, draw(ANY_JSON))
    pairs = [dup, *pairs] if draw(st.booleans()) else [*pairs, dup]
    return render(Obj(tuple(pairs)))


@st.composite
def truncated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> bytes:
    raw = render(draw(base))
    return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]


@st.composite
def corrupted_utf8(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> bytes:
    raw = bytearray(render(draw(base)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        bad = draw(
            st.sampled_from(
                [
                    b"\xff",
                    b"\xc0\xaf",
                    b"\xed\xa0\x80",
                    b"\xe2\x82",
                    b"\xf8\x88\x80\x80\x80",
                    b"\x80",
                ]
            )
        )
        raw[at:at] = bad
    return bytes(raw)


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 3000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    inner = draw(st.sampled_from([b"1", b"null", b'"x"', b"[]"]))
    body = opener * depth + inner + closer * draw(st.integers(0, depth))
    where = draw(st.sampled_from(["whole", "metadata", "features", "prediction"]))
    if where == "whole":
        return body
    if not body.endswith(closer * depth):
        return body
    return (
        b'{"event_id":"e","model_id":"m","ts":0,"prediction":{"label":"a","confidence":0.1},"'
        + where.encode()
        + b'":'
        + body
        + b"}"
    )


def hostile_bytes(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        base.map(render),
        mutated(base),
        truncated(base),
        corrupted_utf8(base),
        deeply_nested(),
        st.builds(lambda v: render(v), ANY_JSON),
        st.sampled_from([b"", b"null", b"[]", b"{}", b'""', b"0", b"\x00", b"\xef\xbb\xbf{}"]),
    )


# ---------------------------------------------------------------- invariants


def check_inference(e: InferenceEvent) -> None:
    assert 1 <= len(e.event_id) <= 128
    assert MODEL_ID_RE.fullmatch(e.model_id)
    assert len(e.model_version) <= 64
    assert e.ts.utcoffset() is not None and e.ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert EPOCH_MIN <= e.ts < EPOCH_MAX
    assert len(e.features) <= MAX_FEATURES
    for k, v in e.features.items():
        assert isinstance(k, str) and 1 <= len(k) <= MAX_FEATURE_NAME
        assert v is None or isinstance(v, bool | int | float | str)
        if isinstance(v, float):
            assert math.isfinite(v)
        if isinstance(v, str):
            assert len(v) <= MAX_STRING_VALUE
    assert len(e.segment) <= MAX_SEGMENT_ENTRIES
    assert all(isinstance(v, str) and len(v) <= MAX_SEGMENT_VALUE for v in e.segment.values())
    assert e.trace_id is None or len(e.trace_id) <= 128
    assert e.metadata is None or isinstance(e.metadata, dict)
    check_prediction(e.prediction)
    # Whatever was accepted can be published again: the escalation of it serialises.
    decision = Decision(escalate=True, priority=0.5, reasons=[])
    record = escalation_record(e, decision, escalated_at=e.ts, policy_name="p", policy_version="1")
    assert orjson.loads(orjson.dumps(record))["event_id"] == e.event_id


def check_prediction(p: Any) -> None:
    if isinstance(p, ClassPrediction):
        assert 1 <= len(p.label) <= MAX_STRING_VALUE
        assert 0.0 <= p.confidence <= 1.0
        if p.scores is not None:
            assert 1 <= len(p.scores) <= MAX_CLASSES
            assert p.label in p.scores
            assert all(0.0 <= s <= 1.0 for s in p.scores.values())
            assert abs(math.fsum(p.scores.values()) - 1.0) <= 0.01 + 1e-12
    else:
        assert isinstance(p, RegressionPrediction)
        assert math.isfinite(p.value)
        if p.interval is not None:
            lo, hi = p.interval
            assert lo <= p.value <= hi


def check_label(e: LabelEvent) -> None:
    assert 1 <= len(e.event_id) <= 128
    assert MODEL_ID_RE.fullmatch(e.model_id)
    assert EPOCH_MIN <= e.ts < EPOCH_MAX
    assert (e.label is None) != (e.value is None)
    if e.value is not None:
        assert math.isfinite(e.value)
    assert 1 <= len(e.source) <= 64
    if e.prediction is not None:
        check_prediction(e.prediction)


def decode_or_reason(decode: Any, raw: bytes, max_bytes: int = 65_536) -> Any:
    """The decoded event, or the InvalidEventError; anything else fails the test."""
    try:
        return decode(raw, max_bytes)
    except InvalidEventError as exc:
        assert exc.reason in DECODE_REASONS, exc
        assert exc.detail, exc
        # Bounded, so a dead letter's detail never carries a message-sized payload.
        assert len(exc.detail) <= 1000, exc.detail[:200]
        return exc


# ---------------------------------------------------------------- decoder properties


@FUZZ
@given(valid_inference())
def test_valid_inference_events_decode(event: dict[str, Any]) -> None:
    e = decode_inference(render(event))
    check_inference(e)
    assert e.event_id == event["event_id"] and e.model_id == event["model_id"]


@FUZZ
@given(valid_label())
def test_valid_label_events_decode(event: dict[str, Any]) -> None:
    check_label(decode_label(render(event)))


@FUZZ
@given(hostile_bytes(valid_inference()))
def test_inference_decoder_accepts_or_names_a_reason(raw: bytes) -> None:
    result = decode_or_reason(decode_inference, raw)
    if not isinstance(result, InvalidEventError):
        check_inference(result)


@FUZZ
@given(hostile_bytes(valid_label()))
def test_label_decoder_accepts_or_names_a_reason(raw: bytes) -> None:
    result = decode_or_reason(decode_label, raw)
    if not isinstance(result, InvalidEventError):
        check_label(result)


@FUZZ
@given(st.binary(min_size=1, max_size=2048), st.integers(256, 4096))
def test_size_is_checked_before_parsing(raw: bytes, max_bytes: int) -> None:
    result = decode_or_reason(decode_inference, raw, max_bytes)
    if len(raw) > max_bytes:
        assert isinstance(result, InvalidEventError) and result.reason == "too_large"


# ---------------------------------------------------------------- decoder: named cases

BASE = {
    "event_id": "e-1",
    "model_id": "fraud",
    "ts": 1_767_225_600,
    "features": {"x": 1.5},
    "prediction": {"label": "a", "scores": {"a": 0.7, "b": 0.3}},
    "segment": {"region": "eu"},
    "trace_id": "t",
    "metadata": {"k": 1},
}
CONFIDENCE = {**BASE, "prediction": {"label": "a", "confidence": 0.7}}
REGRESSION = {**BASE, "prediction": {"value": 2.0, "interval": [1.0, 3.0]}}
LABEL = {"event_id": "e-1", "model_id": "fraud", "ts": 1_767_225_600, "label": "a",
         "source": "human", "reviewer": "r", "escalation_id": "x",
         "prediction": {"label": "a", "confidence": 0.7}}  # fmt: skip
VALUE_LABEL = {**LABEL, "label": None, "value": 2.5, "prediction": {"value": 2.0}}

JSON_OF_TYPE: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "number": 1.5,
    "string": "s",
    "array": [1],
    "object": {"k": 1},
}
# (base event, path, JSON types the field accepts, words the detail must contain)
FIELDS: list[tuple[str, dict[str, Any], tuple[Any, ...], set[str], str]] = [
    ("inference", BASE, ("event_id",), {"string"}, "event_id"),
    ("inference", BASE, ("model_id",), {"string"}, "model_id"),
    ("inference", BASE, ("model_version",), {"string", "null"}, "model_version"),
    ("inference", BASE, ("ts",), {"string", "number"}, "ts"),
    ("inference", BASE, ("features",), {"object", "null"}, "features"),
    ("inference", BASE, ("features", "x"), {"number", "string", "boolean", "null"}, "'x'"),
    ("inference", BASE, ("prediction",), {"object"}, "prediction"),
    ("inference", BASE, ("prediction", "label"), {"string"}, "prediction"),
    ("inference", BASE, ("prediction", "scores"), {"object"}, "prediction"),
    ("inference", BASE, ("prediction", "scores", "a"), {"number"}, "prediction.scores['a']"),
    ("inference", CONFIDENCE, ("prediction", "confidence"), {"number"}, "prediction"),
    ("inference", REGRESSION, ("prediction", "interval"), {"array", "null"}, "interval"),
    ("inference", REGRESSION, ("prediction", "interval", 0), {"number"}, "interval[0]"),
    ("inference", BASE, ("segment",), {"object", "null"}, "segment"),
    ("inference", BASE, ("segment", "region"), {"string"}, "segment['region']"),
    ("inference", BASE, ("trace_id",), {"string", "null"}, "trace_id"),
    ("inference", BASE, ("metadata",), {"object", "null"}, "metadata"),
    ("label", LABEL, ("event_id",), {"string"}, "event_id"),
    ("label", LABEL, ("model_id",), {"string"}, "model_id"),
    ("label", LABEL, ("ts",), {"string", "number"}, "ts"),
    ("label", LABEL, ("label",), {"string"}, "label"),
    ("label", VALUE_LABEL, ("value",), {"number"}, "value"),
    ("label", LABEL, ("source",), {"string"}, "source"),
    ("label", LABEL, ("reviewer",), {"string", "null"}, "reviewer"),
    ("label", LABEL, ("escalation_id",), {"string", "null"}, "escalation_id"),
    ("label", LABEL, ("prediction",), {"object", "null"}, "prediction"),
    ("label", LABEL, ("prediction", "confidence"), {"number"}, "prediction"),
]
WRONG_TYPE_CASES = [
    pytest.param(
        kind, base, path, json_type, words, id=f"{kind}-{'.'.join(map(str, path))}-{json_type}"
    )
    for kind, base, path, allowed, words in FIELDS
    for json_type in JSON_OF_TYPE
    if json_type not in allowed
]


@pytest.mark.parametrize(("kind", "base", "path", "json_type", "words"), WRONG_TYPE_CASES)
def test_wrong_type_in_every_field_is_a_schema_error(
    kind: str, base: dict[str, Any], path: tuple[Any, ...], json_type: str, words: str
) -> None:
    decode = decode_inference if kind == "inference" else decode_label
    raw = render(_replace(base, path, JSON_OF_TYPE[json_type]))
    with pytest.raises(InvalidEventError) as info:
        decode(raw)
    assert info.value.reason == "schema", info.value
    assert words in info.value.detail, info.value.detail
    if path != ("model_id",):
        assert info.value.model_id == "fraud"  # still counted under its model


def test_the_named_bases_are_valid() -> None:
    for base in (BASE, CONFIDENCE, REGRESSION):
        check_inference(decode_inference(render(base)))
    for base in (LABEL, VALUE_LABEL):
        check_label(decode_label(render(base)))


NAMED_HOSTILE: list[tuple[bytes, str]] = [
        (render({**BASE, "ts": Lit("NaN")}), "invalid_json"),
        (render({**BASE, "ts": Lit("-Infinity")}), "invalid_json"),
        (render({**BASE, "features": {"x": Lit("Infinity")}}), "invalid_json"),
        (render({**BASE, "features": {"x": Lit("9" * 400)}}), "invalid_json"),
        (render({**CONFIDENCE, "prediction": {"label": "a", "confidence": Lit("1e999")}}),
         "invalid_json"),
        (render({**BASE, "ts": 10**30}), "bad_value"),
        (render({**BASE, "ts": "0001-01-01T00:00:00+01:00"}), "bad_value"),
        (render({**BASE, "ts": "9999-12-31T23:59:59-23:59"}), "bad_value"),
        (render({**BASE, "ts": "2026-W01-1T00:00:00+00:00"}), "bad_value"),
        (render({**BASE, "ts": "20260101T000000Z"}), "bad_value"),
        (render({**BASE, "ts": "1969-12-31T23:59:59Z"}), "bad_value"),
        (render({**BASE, "ts": "2026-01-01T00:00:00+0100"}), "bad_value"),
        (render({**BASE, "metadata": Lit('{"a":' * 300 + "1" + "}" * 300)}), "bad_value"),
        (render({**BASE, "metadata": Lit("[" * 2000 + "]" * 2000)}), "invalid_json"),
        (render({**BASE, "prediction": {"label": "a", "scores": {"a": 1.0, "b" * 300: 0.0}}}),
         "bad_value"),
        (render({**BASE, "event_id": "e" * 100_000}), "too_large"),
        (render({**BASE, "event_id": "e" * 129}), "bad_value"),
        (render({**BASE, "features": {"x": "v" * 257}}), "bad_value"),
        (render({**BASE, "features": {"k" * 129: 1}}), "bad_value"),
        (render({**BASE, "segment": {"k" * 65: "v"}}), "bad_value"),
        (render(BASE).replace(b'"e-1"', b'"e-\xff"'), "invalid_json"),
        (render(BASE).replace(b'"e-1"', b'"\\ud800"'), "invalid_json"),
        (render(BASE)[:-1], "invalid_json"),
        (b"\xef\xbb\xbf" + render(BASE), "invalid_json"),
    ]  # fmt: skip


@pytest.mark.parametrize(("raw", "reason"), NAMED_HOSTILE)
def test_named_hostile_inputs(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw)
    assert info.value.reason == reason, info.value


@pytest.mark.parametrize(
    "label",
    [
        {**LABEL, "label": None, "value": 1.0},
        {**VALUE_LABEL, "value": None, "label": "a"},
    ],
)
def test_label_kind_must_match_its_prediction(label: dict[str, Any]) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_label(render(label))
    assert info.value.reason == "bad_value"
    assert "needs" in info.value.detail


def test_ten_thousand_features() -> None:
    features = {f"feature_{i:05d}": float(i) for i in range(10_000)}
    raw = render({**BASE, "features": features})
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw)
    assert info.value.reason == "too_large"
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw, max_bytes=16 * 2**20)
    assert info.value.reason == "bad_value"
    assert f"at most {MAX_FEATURES}" in info.value.detail


def test_duplicate_keys_take_the_last_value() -> None:
    # orjson keeps the last of duplicate keys, as json and most parsers do; a checker that
    # kept the first would see a different event than vigil, so pin it.
    pairs = (*BASE.items(), ("model_id", "other"), ("features", {"x": "late"}))
    e = decode_inference(render(Obj(tuple(pairs))))
    assert e.model_id == "other" and e.features == {"x": "late"}
    pairs = (*BASE.items(), ("model_id", "!bad"))
    with pytest.raises(InvalidEventError) as info:
        decode_inference(render(Obj(tuple(pairs))))
    assert info.value.reason == "bad_value"


# ---------------------------------------------------------------- the Processor


MAX_MODELS = 4
MAX_TRACKED = 6
MAX_FEATURES_PER_MODEL = 8


def make_processor(*, replay: bool = False) -> Processor:
    config = {
        "worker": {
            "max_models": MAX_MODELS,
            "max_tracked_models": MAX_TRACKED,
            "max_features_per_model": MAX_FEATURES_PER_MODEL,
        },
        "defaults": {"escalation": {"min_confidence": 0.6}, "redact": ["secret"]},
    }
    settings_ = settings_from_dict(config)
    # Wired as VigilApp wires them: scrape-time gauges from the fleet, eviction drops series.
    holder: list[VigilMetrics] = []
    fleet = Fleet(settings_, on_evict=lambda model_id, _state: holder[0].forget_model(model_id))
    metrics = VigilMetrics(CollectorRegistry(), max_models=MAX_MODELS, readings=fleet.readings)
    holder.append(metrics)
    kwargs: dict[str, Any] = {"clock": None} if replay else {}
    return Processor(settings_, metrics, fleet, **kwargs)


def sample_sum(processor: Processor, name: str) -> float:
    return sum(
        s.value
        for metric in processor.metrics.registry.collect()
        for s in metric.samples
        if s.name == name
    )


MESSAGES = st.lists(
    st.tuples(
        st.sampled_from(["inference", "label"]),
        st.one_of(hostile_bytes(valid_inference()), hostile_bytes(valid_label())),
    ),
    min_size=1,
    max_size=25,
)


@settings(FUZZ, max_examples=150)
@given(MESSAGES, st.booleans(), st.booleans())
def test_processor_ends_every_message_processed_or_dead_lettered(
    messages: list[tuple[str, bytes]], replay: bool, batched: bool
) -> None:
    """One message at a time, or runs of inference messages together as the ingest
    drivers hand them over (:meth:`Processor.inference_batch`)."""
    processor = make_processor(replay=replay)
    out = Outgoing()
    n_inference = 0
    run: list[tuple[bytes, MessageSource]] = []
    for offset, (topic, raw) in enumerate(messages):
        source = MessageSource(topic, 0, offset, b"key")
        if topic == "inference":
            n_inference += 1
            if batched:
                run.append((raw, source))
            else:
                processor.inference(raw, source, out)
        else:
            if run:
                processor.inference_batch(run, out)
                run = []
            processor.label(raw, source, out)
    if run:
        processor.inference_batch(run, out)

    p = processor
    assert p.processed + p.labels_processed + p.dead_lettered == len(messages)
    assert len(out.dead_letters) == p.dead_lettered
    assert sample_sum(p, "vigil_events_total") == n_inference
    assert sample_sum(p, "vigil_dead_letters_total") == p.dead_lettered
    reasons: Counter[str] = Counter()
    raw_by_offset = {i: raw for i, (_, raw) in enumerate(messages)}
    for key, value in out.dead_letters:
        dl = orjson.loads(value)
        assert key == b"key"
        assert dl["reason"] in DEAD_LETTER_REASONS
        assert dl["detail"]
        assert base64.b64decode(dl["payload_b64"]) == raw_by_offset[dl["source"]["offset"]]
        reasons[dl["reason"]] += 1
    # The decoder's verdict is final: nothing it accepted may fail later.
    assert reasons["processing_error"] == 0, out.dead_letters
    for _, value in out.escalations:
        esc = orjson.loads(value)
        assert "secret" not in esc["features"] or esc["features"]["secret"] == "[redacted]"
    for _, value in out.alerts:
        orjson.loads(value)
    assert len(p.fleet) <= MAX_TRACKED
    assert p.metrics.tracked_models <= MAX_MODELS


def test_processor_survives_one_of_each_named_hostile_input() -> None:
    processor = make_processor()
    out = Outgoing()
    named = [raw for raw, _ in NAMED_HOSTILE]
    for offset, raw in enumerate(named):
        processor.inference(raw, MessageSource("i", 0, offset, None), out)
        processor.label(raw, MessageSource("l", 0, offset, None), out)
    assert processor.dead_lettered == 2 * len(named)
    assert {orjson.loads(v)["reason"] for _, v in out.dead_letters} <= DECODE_REASONS


def test_label_of_the_wrong_kind_for_its_joined_prediction_is_a_bad_value() -> None:
    processor = make_processor()
    out = Outgoing()
    processor.inference(render(CONFIDENCE), MessageSource("i", 0, 0, None), out)
    label = {k: v for k, v in VALUE_LABEL.items() if k != "prediction"}
    processor.label(render(label), MessageSource("l", 0, 0, None), out)
    assert processor.dead_lettered == 1
    assert orjson.loads(out.dead_letters[0][1])["reason"] == "bad_value"


def test_cardinality_flood_stays_within_the_caps() -> None:
    """10k models, 10k feature names, 10k category values: state and series bounded."""
    processor = make_processor()
    out = Outgoing()
    offset = 0

    def send(model_id: str, features: dict[str, Any], confidence: float = 0.9) -> None:
        nonlocal offset
        raw = render(
            {
                "event_id": f"e{offset}",
                "model_id": model_id,
                "ts": 1_767_225_600 + offset,
                "features": features,
                "prediction": {"label": "a", "confidence": confidence},
            }
        )
        processor.inference(raw, MessageSource("i", 0, offset, None), out)
        offset += 1

    for i in range(10_000):
        send(f"model-{i}", {"x": 1.0})
    for i in range(0, 10_000, 50):  # 50 new feature names per event, one model
        send("wide", {f"f{i + j}": 1.0 for j in range(50)})
    for i in range(10_000):
        send("catty", {"category": f"value-{i}"}, confidence=0.1)
    assert processor.processed == offset and processor.dead_lettered == 0

    assert len(processor.fleet) <= MAX_TRACKED
    assert processor.metrics.tracked_models <= MAX_MODELS
    for model_id in ("wide", "catty"):
        state = processor.fleet.peek(model_id)
        assert state is not None
        features = {
            s.signal.split(":", 1)[1]
            for s in state.monitor.states()
            if s.signal.startswith(("feature:", "data_quality:"))
        }
        assert len(features) <= MAX_FEATURES_PER_MODEL, sorted(features)
        assert len(checkpoint_encode(Checkpoint(model_id, 0, {}, state.snapshot(), 0.0))) < 2**20
    series = sum(len(m.samples) for m in processor.metrics.registry.collect())
    assert series <= series_bound(MAX_MODELS, MAX_FEATURES_PER_MODEL), series


def series_bound(max_models: int, max_features: int) -> int:
    """Upper bound on /metrics samples from the caps of SPEC §7.

    Per model label (``max_models`` plus ``_other`` and ``_unknown``): events 2,
    escalations by reason 9, suppressed 1, labels 3, three histograms of at most 21
    buckets + sum + count (69), scrape-time gauges 6 + 2 reliability families of at
    most 100 bins, and per signal (2 per feature + 5 model-level signals) 2 drift gauges
    and 2 alert counters. Plus the unlabelled families: dead letters by reason, the
    batch histogram, consumer lag per (topic, partition) on a small test topic.
    """
    signals = 2 * max_features + 5
    per_model = 2 + 9 + 1 + 3 + 69 + 6 + 200 + 4 * signals
    return (max_models + 2) * per_model + len(DEAD_LETTER_REASONS) + 15 + 64


def test_wide_events_through_the_processor_do_not_grow_state() -> None:
    processor = make_processor()
    out = Outgoing()
    for i in range(200):
        features = {f"f{i}_{j}": f"v{j}" for j in range(MAX_FEATURES)}
        raw = render(
            {
                "event_id": f"e{i}",
                "model_id": "wide",
                "ts": 1_767_225_600 + i,
                "features": features,
                "prediction": {"label": "a", "confidence": 0.9},
            }
        )
        processor.inference(raw, MessageSource("i", 0, i, None), out)
    assert processor.processed == 200
    state = processor.fleet.peek("wide")
    assert state is not None
    assert len(state.monitor.states()) <= 2 * MAX_FEATURES_PER_MODEL + 5


def test_hostile_feature_names_reach_metrics_escaped() -> None:
    """Quotes, backslashes, newlines and NUL in a feature name cannot forge a series."""
    processor = make_processor()
    out = Outgoing()
    name = 'x"} 1\nvigil_fake{a="b\\\x00'
    for i in range(300):
        raw = render(
            {
                "event_id": f"e{i}",
                "model_id": "m",
                "ts": 1_767_225_600 + i,
                "features": {name: float(i % 7)},
                "prediction": {"label": "a", "confidence": 0.9},
            }
        )
        processor.inference(raw, MessageSource("i", 0, i, None), out)
    assert processor.processed == 300
    text = generate_latest(processor.metrics.registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "vigil_fake" not in families
    signals = {s.labels["signal"] for s in families["vigil_drift_active"].samples}
    assert f"feature:{name}" in signals
