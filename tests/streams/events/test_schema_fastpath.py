"""The decoders' fast path agrees with the precise validators, event by event.

``decode_inference`` / ``decode_label`` first try a fast path that can only accept
(msgspec Structs with constraints, decoding the bytes); the precise, field-by-field
validators (``_inference_from_obj`` / ``_label_from_obj``, after ``orjson.loads``) decide
everything else. Here both run on the same bytes: random valid events and mutations of
them (wrong types, bools, huge numbers, integers either side of int64 and uint64, empty
and long strings, missing fields, unknown fields, duplicate keys, timestamps of every
accepted and rejected shape), the hostile inputs of ``test_fuzz`` and of
``benchmarks/hostile.py``. The outcome must be the same: an equal event of the same
field types, or the same reason, detail and model id. Seeded, so every run sees the
same cases.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.hostile import KINDS, _rare
from detectors.prediction import ClassPrediction, RegressionPrediction
from streams.errors import InvalidEventError
from streams.events import schema
from streams.events.schema import InferenceEvent, LabelEvent, decode_inference, decode_label
from tests.streams.events.test_fuzz import FUZZ, hostile_bytes, valid_inference, valid_label

Outcome = tuple[Any, ...]


def precise_inference(raw: bytes) -> InferenceEvent:
    return schema._precise(schema.parse_json(raw), schema._inference_from_obj)


def precise_label(raw: bytes) -> LabelEvent:
    return schema._precise(schema.parse_json(raw), schema._label_from_obj)


def outcome(decode: Any, raw: bytes) -> Outcome:
    """What decoding ``raw`` gives, comparable across paths; any other exception escapes."""
    try:
        e = decode(raw)
    except InvalidEventError as exc:
        return ("rejected", exc.reason, exc.detail, exc.model_id)
    return accepted(e)


def accepted(e: InferenceEvent | LabelEvent) -> Outcome:
    assert e.ts.tzinfo is UTC
    # repr tells 1 from 1.0 and shows the type of every field, nested ones included.
    return ("accepted", type(e), repr(e), e)


# ---------------------------------------------------------------- random events

MODEL_IDS = ["fraud", "m", "A.b_c-d", "9" * 64, "model-7"]
GOOD_TS: list[Any] = [
    "2026-03-01T12:00:00Z",
    "2026-03-01T12:00:00z",
    "2026-03-01t12:00:00+01:00",
    "2026-03-01 12:00:00-05:30",
    "2026-03-01T12:00:00.5+00:00",
    "2026-03-01T12:00:00.123456-00:00",
    "2026-03-01T12:00:00.123456789Z",
    "1970-01-01T00:00:00Z",
    "1970-01-01T01:00:00+01:00",
    "2199-12-31T23:59:59.999999Z",
    "2200-01-01T00:59:59+01:00",
    0,
    0.0,
    1_767_225_600,
    1_767_225_600.25,
    7_258_118_399.999999,
]
BAD_TS: list[Any] = [
    "2026-03-01T12:00:00",
    "2026-03-01T12:00:00+0100",
    "2026-03-01T12:00Z",
    "2026-03-01T12:00:60Z",
    "2026-02-30T12:00:00Z",
    "2026-13-01T12:00:00Z",
    "2026-03-01T24:00:00Z",
    "2026-03-01T12:00:00+24:00",
    "2026-03-01T12:00:00.1234567890Z",
    "2026-03-01T12:00:00.Z",
    "2026-03-01x12:00:00Z",
    "20260301T120000Z",
    "2026-W09-7T12:00:00Z",
    "２０２６-03-01T12:00:00Z",
    "2026-03-01T12:00:00Z ",
    "1969-12-31T23:59:59.999999Z",
    "1970-01-01T00:59:59+01:00",
    "2200-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "x" * 65,
    "",
    -0.5,
    -1,
    7_258_118_400,
    7_258_118_400.0,
    1_767_225_600_000,
    True,
    False,
    None,
    [],
    {},
]
WEIRD: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    0.0,
    1.0,
    -0.0,
    0.5,
    1.5,
    -1e308,
    1e308,
    2**63 - 1,
    -(2**63),
    "",
    "x",
    "0.5",
    "x" * 64,
    "x" * 65,
    "x" * 128,
    "x" * 129,
    "x" * 256,
    "x" * 257,
    [],
    [1.0, 2.0],
    {},
    {"a": 1},
]
# Replaced in the JSON text, after serialising: numbers orjson refuses or overflows on.
NUMBER_HOLE = 123456.789
RAW_NUMBERS = [
    b"1e400",
    b"-1e400",
    b"9" * 400,
    b"NaN",
    b"Infinity",
    b"1e-400",
    b"-0",
    b"18446744073709551616",  # over 64 bits: orjson reads it as a float
    b"1" + b"0" * 30,
    b"1e30",
    b"9007199254740993",  # 2**53 + 1: rounds as a float
    b"9223372036854775807",  # int64 max
    b"9223372036854775808",  # int64 max + 1: an int for orjson, over int64 for msgspec
    b"18446744073709551615",  # uint64 max: still an int for orjson
    b"-9223372036854775808",
    b"-9223372036854775809",  # below int64: a float for orjson
    b"1.7976931348623157e308",
    b"1.7976931348623159e308",  # rounds to infinity
    b"4.9e-324",
    b"0.1e1",
    b"-0.0",
    b"1E+2",
]


def name(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.choice([lo, hi, rng.randint(lo, hi), min(hi, rng.randint(lo, 8))])
    return "".join(rng.choice("abcxyz019._-é") for _ in range(n))


def class_prediction(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.2:
        return {"label": name(rng, 1, 10), "confidence": rng.choice([0.0, 1.0, 0, 1, rng.random()])}
    k = rng.choice([1, 2, 3, 3, 5, 12])
    weights = [rng.random() + 1e-3 for _ in range(k)]
    labels = [f"c{i}{name(rng, 0, 3)}" for i in range(k)]
    scores = {c: round(w / sum(weights), 6) for c, w in zip(labels, weights, strict=True)}
    if k == 1:
        scores = {labels[0]: rng.choice([1.0, 1, 0.995])}
    elif rng.random() < 0.05:  # out of [0, 1], and still summing to one
        scores[labels[0]] += 0.5
        scores[labels[1]] -= 0.5
    return {"label": rng.choice(list(scores)), "scores": scores}


def regression_prediction(rng: random.Random) -> dict[str, Any]:
    v = rng.choice([rng.uniform(-100, 100), rng.randint(-5, 5)])
    p: dict[str, Any] = {"value": v}
    if rng.random() < 0.6:
        p["interval"] = [v - rng.choice([0, 1, 2.5]), v + rng.choice([0, 1, 0.5])]
    return p


def feature_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.gauss(0, 1),
            rng.gauss(0, 1),
            rng.gauss(0, 1),
            rng.randint(-1000, 1000),
            2**63 - 1,
            name(rng, 0, 256),
            rng.choice(["web", "ios", ""]),
            True,
            False,
            None,
            0.0,
        ]
    )


def inference_event(rng: random.Random) -> dict[str, Any]:
    e: dict[str, Any] = {
        "event_id": name(rng, 1, 128),
        "model_id": rng.choice(MODEL_IDS),
        "ts": rng.choice(GOOD_TS),
        "prediction": class_prediction(rng) if rng.random() < 0.8 else regression_prediction(rng),
    }
    if rng.random() < 0.6:
        e["model_version"] = rng.choice([None, "", "1.0.0", "v" * 64])
    if rng.random() < 0.9:
        n = rng.choice([0, 1, 5, 23, 23, 40])
        e["features"] = {f"{name(rng, 1, 6)}{i}": feature_value(rng) for i in range(n)}
        if rng.random() < 0.05:
            e["features"]["k" * 128] = 1.0
    if rng.random() < 0.6:
        n = rng.choice([0, 1, 3, 8])
        e["segment"] = {name(rng, 0, 64): name(rng, 0, 64) for _ in range(n)}
    if rng.random() < 0.4:
        e["trace_id"] = rng.choice([None, "", "t-1", "t" * 128])
    if rng.random() < 0.2:
        e["metadata"] = rng.choice([None, {}, {"a": [1, {"b": None}]}, nested(64), nested(65)])
    if rng.random() < 0.1:
        e["unknown_field"] = [1, 2]
    return e


def label_event(rng: random.Random) -> dict[str, Any]:
    e: dict[str, Any] = {
        "event_id": name(rng, 1, 128),
        "model_id": rng.choice(MODEL_IDS),
        "ts": rng.choice(GOOD_TS),
        "source": rng.choice(["human", "outcome", "s" * 64]),
    }
    # Mostly a prediction of the label's kind; sometimes of the other kind (rejected).
    same_kind = rng.random() < 0.85
    if rng.random() < 0.5:
        e["label"] = name(rng, 1, 256)
        if rng.random() < 0.5:
            e["prediction"] = class_prediction(rng) if same_kind else regression_prediction(rng)
    else:
        e["value"] = rng.choice([rng.uniform(-10, 10), 3, 0, -0.0])
        if rng.random() < 0.5:
            e["prediction"] = regression_prediction(rng) if same_kind else class_prediction(rng)
    if rng.random() < 0.5:
        e["reviewer"] = rng.choice([None, "", "ann", "r" * 128])
    if rng.random() < 0.3:
        e["escalation_id"] = rng.choice([None, "", "esc-1", "e" * 128])
    if rng.random() < 0.3:
        e["inclusion_probability"] = rng.choice(
            [None, 0.02, 1, 1.0, 0, 0.0, -0.5, 1.5, "0.5", True, 1e-300, rng.random()]
        )
    return e


def nested(depth: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for _ in range(depth - 1):
        d = {"x": d}
    return d


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys of dicts, indices of lists)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


def mutate(rng: random.Random, event: dict[str, Any]) -> bytes:
    """``event`` with one thing broken (or not: some mutations are still valid)."""
    e = copy.deepcopy(event)
    path = rng.choice(paths(e)[:200])
    parent = e
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    how = rng.random()
    if how < 0.1 and isinstance(parent, dict):
        del parent[last]
    elif how < 0.2 and isinstance(parent, dict):  # rename a key: empty, long, other
        parent[rng.choice(["", "k" * 129, "k" * 65, "label", "value"])] = parent.pop(last)
    elif how < 0.35:
        parent[last] = NUMBER_HOLE
        raw = orjson.dumps(e)
        return raw.replace(b"123456.789", rng.choice(RAW_NUMBERS))
    elif how < 0.45 and path[0] == "ts":
        parent[last] = rng.choice(BAD_TS + GOOD_TS)
    elif how < 0.5 and isinstance(parent, dict):  # a duplicate key, first or last
        raw = orjson.dumps(e)
        dup = b'"%s":%s' % (str(last).encode(), orjson.dumps(rng.choice(WEIRD)))
        if parent is e:
            return (
                raw[:1] + dup + b"," + raw[1:]
                if rng.random() < 0.5
                else raw[:-1] + b"," + dup + b"}"
            )
        return raw
    elif how < 0.55 and isinstance(parent, dict):  # an unknown field (ignored: SPEC §2)
        parent[rng.choice(["extra", "x" * 200, "Event_id"])] = rng.choice(WEIRD)
    else:
        parent[last] = rng.choice(WEIRD)
    return orjson.dumps(e)


def cases(make: Any, seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        event = make(rng)
        out.append(orjson.dumps(event))
        for _ in range(3):
            out.append(mutate(rng, event))
    return out


INFERENCE_CASES = cases(inference_event, 20260301, 1500)
LABEL_CASES = cases(label_event, 20260302, 800)


# ---------------------------------------------------------------- the property


@pytest.mark.parametrize("chunk", range(6))
def test_inference_fast_path_agrees_with_precise_path(chunk: int) -> None:
    size = len(INFERENCE_CASES) // 6 + 1
    for raw in INFERENCE_CASES[chunk * size : (chunk + 1) * size]:
        assert outcome(decode_inference, raw) == outcome(precise_inference, raw), raw


@pytest.mark.parametrize("chunk", range(3))
def test_label_fast_path_agrees_with_precise_path(chunk: int) -> None:
    size = len(LABEL_CASES) // 3 + 1
    for raw in LABEL_CASES[chunk * size : (chunk + 1) * size]:
        assert outcome(decode_label, raw) == outcome(precise_label, raw), raw


def test_fast_path_accepts_only_what_the_precise_path_accepts() -> None:
    # Directly on the fast path: whatever it returns, the precise path returns too.
    hits = misses = 0
    for raw in INFERENCE_CASES:
        fast = schema._fast_inference(raw)
        if fast is not None:
            hits += 1
            assert accepted(fast) == outcome(precise_inference, raw), raw
        elif outcome(precise_inference, raw)[0] == "accepted":
            misses += 1
    for raw in LABEL_CASES:
        fast_label = schema._fast_label(raw)
        if fast_label is not None:
            hits += 1
            assert accepted(fast_label) == outcome(precise_label, raw), raw
        elif outcome(precise_label, raw)[0] == "accepted":
            misses += 1
    assert hits > 1000  # the comparison above is not vacuous
    assert misses > 0  # nor is the fallback (unknown fields, lowercase timestamps, ...)


@FUZZ
@given(st.one_of(hostile_bytes(valid_inference()), valid_inference().map(orjson.dumps)))
def test_hostile_inference_bytes_get_the_precise_outcome(raw: bytes) -> None:
    assert outcome(decode_inference, raw) == outcome(precise_inference, raw)
    fast = schema._fast_inference(raw)
    assert fast is None or accepted(fast) == outcome(precise_inference, raw)


@FUZZ
@given(st.one_of(hostile_bytes(valid_label()), valid_label().map(orjson.dumps)))
def test_hostile_label_bytes_get_the_precise_outcome(raw: bytes) -> None:
    assert outcome(decode_label, raw) == outcome(precise_label, raw)
    fast = schema._fast_label(raw)
    assert fast is None or accepted(fast) == outcome(precise_label, raw)


def test_the_hostile_benchmark_messages_get_the_precise_outcome() -> None:
    # Every kind benchmarks/hostile.py floods a worker with, valid mutations included.
    rng = random.Random(18)
    reasons = set()
    for i in range(1, 3000):
        rare = _rare(i)
        raw = rare if rare is not None else KINDS[i % len(KINDS)][1](i, rng)
        for decode, precise in (
            (decode_inference, precise_inference),
            (decode_label, precise_label),
        ):
            result = outcome(decode, raw)
            assert result == outcome(precise, raw), raw[:200]
            reasons.add(result[1] if result[0] == "rejected" else "accepted")
    assert {"too_large", "invalid_json", "schema", "bad_value"} <= reasons


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e","model_id":"m","ts":0,"prediction":{"label":"a","confidence":1},"x":1}',
        b'{"event_id":"e","model_id":"m","ts":0,"prediction":{"label":"a","confidence":1,"x":1}}',
        b'{"event_id":"e","model_id":"m","ts":0,"prediction":{"label":"a","confidence":1},'
        b'"x":[[[{"y":18446744073709551616}]]]}',
    ],
)
def test_unknown_fields_are_left_to_the_precise_path_and_ignored(raw: bytes) -> None:
    assert schema._fast_inference(raw) is None
    e = decode_inference(raw)
    assert e == precise_inference(raw)
    assert e.prediction == ClassPrediction("a", 1.0)


@pytest.mark.parametrize(
    "tail",
    [
        b"1e400",
        b"-Infinity",
        b"NaN",
        b"9" * 400,
        b"[" * 1100 + b"]" * 1100,
        b'"\\ud800"',
        b'"\xff"',
    ],
)
def test_unknown_fields_that_orjson_rejects_are_rejected(tail: bytes) -> None:
    # msgspec would skip an unknown field's value without reading it as orjson does.
    raw = b'{"event_id":"e","model_id":"m","ts":0,"prediction":{"value":1},"x":' + tail + b"}"
    assert schema._fast_inference(raw) is None
    assert outcome(decode_inference, raw) == outcome(precise_inference, raw)
    assert outcome(decode_inference, raw)[1] == "invalid_json"


@pytest.mark.parametrize("number", RAW_NUMBERS, ids=repr)
@pytest.mark.parametrize(
    "where",
    [
        b'"features":{"a":1.0,"b":%s}',
        b'"metadata":{"a":[%s]}',
        b'"prediction":{"value":%s}',
        b'"prediction":{"value":1e300,"interval":[-1e300,%s]}',
        b'"prediction":{"label":"a","scores":{"a":%s}}',
        b'"ts":%s',
    ],
)
def test_every_number_anywhere_gets_the_precise_outcome(number: bytes, where: bytes) -> None:
    fields = b'"event_id":"e","model_id":"m","ts":0,"prediction":{"value":1}'
    raw = b"{" + fields + b"," + where % number + b"}"
    assert outcome(decode_inference, raw) == outcome(precise_inference, raw), raw
    label = b'{"event_id":"e","model_id":"m","ts":0,"source":"s","value":%s}' % number
    assert outcome(decode_label, label) == outcome(precise_label, label), label


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_other_bytes_like_values_decode_alike(kind: Any) -> None:
    raw = orjson.dumps(FAST_SHAPED)
    assert decode_inference(kind(raw)) == decode_inference(raw)
    with pytest.raises(InvalidEventError, match="too_large"):
        decode_inference(kind(raw), len(raw) - 1)


def test_max_bytes_is_checked_before_the_fast_path() -> None:
    raw = orjson.dumps(FAST_SHAPED)
    assert decode_inference(raw, len(raw)) == precise_inference(raw)
    for decode in (decode_inference, decode_label):
        with pytest.raises(InvalidEventError) as info:
            decode(raw, len(raw) - 1)
        assert info.value.reason == "too_large"


@pytest.mark.parametrize("ts", GOOD_TS + BAD_TS, ids=repr)
def test_every_timestamp_shape_gets_the_same_outcome(ts: Any) -> None:
    event = orjson.dumps({**FAST_SHAPED, "ts": ts})
    assert outcome(decode_inference, event) == outcome(precise_inference, event)
    label = orjson.dumps({"event_id": "e", "model_id": "m", "ts": ts, "value": 1, "source": "s"})
    assert outcome(decode_label, label) == outcome(precise_label, label)


def test_timestamps_at_the_bounds() -> None:
    accepted = [
        "1970-01-01T00:00:00Z",
        "2199-12-31T23:59:59.999999Z",
        "2200-01-01T00:59:59.999999+01:00",
        0,
        7_258_118_399.999999,
    ]
    for ts in accepted:
        assert decode_inference(orjson.dumps({**FAST_SHAPED, "ts": ts})).ts.year in (1970, 2199)
    for ts in ["1969-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z", 7_258_118_400, -1e-6]:
        with pytest.raises(InvalidEventError, match="between 1970 and 2200"):
            decode_inference(orjson.dumps({**FAST_SHAPED, "ts": ts}))


def test_the_cases_cover_both_outcomes_and_all_reasons() -> None:
    results = [outcome(precise_inference, raw) for raw in INFERENCE_CASES]
    results += [outcome(precise_label, raw) for raw in LABEL_CASES]
    kinds = {r[0] for r in results}
    reasons = {r[1] for r in results if r[0] == "rejected"}
    assert kinds == {"accepted", "rejected"}
    assert reasons == {"schema", "bad_value", "invalid_json"}


# ---------------------------------------------------------------- the fast path is taken

FAST_SHAPED = {
    "event_id": "e-1",
    "model_id": "fraud",
    "model_version": "1.0.0",
    "ts": "2026-11-28T06:33:08.499314+00:00",
    "features": {"x0": 1.5, "x1": -2, "c0": "web", "b": True, "n": None},
    "prediction": {"label": "pos", "scores": {"pos": 0.6, "neg": 0.4}},
    "segment": {"region": "eu"},
    "trace_id": "t-1",
    "metadata": {"k": [1, {"v": None}]},
}


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"ts": "2026-11-28T06:33:08Z"},
        {"ts": "2026-11-28 07:33:08.5+01:00"},
        {"ts": 1_767_225_600.5},
        {"ts": 1_767_225_600},
        {"prediction": {"label": "pos", "confidence": 0.9}},
        {"prediction": {"value": 2.0}},
        {"prediction": {"value": 2, "interval": [1, 3.5]}},
        {"prediction": {"label": "pos", "confidence": 1}},  # an int probability
        {"prediction": {"label": "pos", "scores": {"pos": 1, "neg": 0}}},
        {"features": {"big": 2**63 - 1, "small": -(2**63), "zero": -0.0, "tiny": 5e-324}},
        {"metadata": {"deep": nested(63), "n": 18446744073709551615}},
        {"model_version": None, "features": None, "segment": None, "metadata": None},
    ],
)
def test_common_events_take_the_fast_path(over: dict[str, Any]) -> None:
    obj = {**FAST_SHAPED, **over}
    fast = schema._fast_inference(orjson.dumps(obj))
    assert fast is not None
    assert accepted(fast) == accepted(schema._inference_from_obj(orjson.loads(orjson.dumps(obj))))


def test_common_labels_take_the_fast_path() -> None:
    base = {"event_id": "e", "model_id": "m", "ts": "2026-01-01T00:00:00Z", "source": "human"}
    for extra in (
        {"label": "ok"},
        {"label": "ok", "prediction": {"label": "ok", "confidence": 0.5}, "reviewer": "ann"},
        {"value": 2.5, "prediction": {"value": 2.0}, "escalation_id": "esc-1"},
        {"value": 3},
        {"label": "ok", "inclusion_probability": 0.02},
    ):
        raw = orjson.dumps({**base, **extra})
        fast = schema._fast_label(raw)
        assert fast is not None
        assert accepted(fast) == accepted(schema._label_from_obj(orjson.loads(raw)))


@pytest.mark.parametrize(
    "over",
    [
        {"ts": "2026-11-28t06:33:08Z"},  # lowercase: the precise path upper-cases it
        {"ts": "2200-01-01T00:00:00Z"},
        {"ts": True},
        {"model_id": "-bad"},
        {"model_id": "fraud\n"},
        {"features": {"big": 2**63}},  # an int for orjson, over int64 for msgspec
        {"metadata": {"deep": nested(64)}},
        {"metadata": []},
        {"unknown": 1},
        {"prediction": {"label": "pos", "scores": {"pos": 0.6, "neg": 0.6}}},
        {"prediction": {"label": "pos", "scores": {"pos": 1.25, "neg": -0.25}}},
        {"prediction": {"value": 2.0, "interval": [3.0, 4.0]}},
        {"features": {"x": "y" * 257}},
        {"features": {"": 1.0}},
        {"segment": {"region": 1}},
    ],
)
def test_fast_path_declines_what_the_precise_path_must_judge(over: dict[str, Any]) -> None:
    raw = orjson.dumps({**FAST_SHAPED, **over})
    assert schema._fast_inference(raw) is None
    assert outcome(decode_inference, raw) == outcome(precise_inference, raw)


@pytest.mark.parametrize("bad", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
@pytest.mark.parametrize(
    "where",
    [
        {"features": {"a": 1.0, "b": NUMBER_HOLE}},
        {"ts": NUMBER_HOLE},
        {"prediction": {"label": "a", "confidence": NUMBER_HOLE}},
        {"prediction": {"label": "a", "scores": {"a": 1.0, "b": NUMBER_HOLE}}},
        {"prediction": {"value": NUMBER_HOLE}},
        {"prediction": {"value": 1.0, "interval": [0.0, NUMBER_HOLE]}},
    ],
)
def test_fast_path_declines_non_finite_numbers(bad: bytes, where: dict[str, Any]) -> None:
    raw = orjson.dumps({**FAST_SHAPED, **where}).replace(b"123456.789", bad)
    assert schema._fast_inference(raw) is None
    with pytest.raises(InvalidEventError) as info:
        decode_inference(raw)
    assert info.value.reason == "invalid_json"


# ---------------------------------------------------------------- feature values

FEATURE_VALUES: list[Any] = [
    1.5,
    -2,
    0,
    True,
    None,
    "web",
    "",
    "x" * 256,
    "x" * 257,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -(2**63),
    [],
    [1.0],
    {},
    {"a": 1},
]


@pytest.mark.parametrize("base", ["numbers", "strings", "mixed", "one number", "one string"])
def test_any_feature_value_at_any_key_agrees(base: str) -> None:
    features = {
        "numbers": {f"x{i}": float(i) for i in range(20)},
        "strings": {f"c{i}": "v" for i in range(3)},
        "mixed": {**{f"x{i}": i / 7 for i in range(20)}, "n": 3, "b": False, "c": "web"},
        "one number": {"x": 1.0},
        "one string": {"c": "web"},
    }[base]
    rng = random.Random(base)
    first = next(iter(features))
    for renamed in ("", "k" * 128, "k" * 129, "other", first):  # a key renamed, or repeated
        changed = {renamed: 1.0, **{k: v for k, v in features.items() if k != first}}
        raw = orjson.dumps({**FAST_SHAPED, "features": changed})
        assert outcome(decode_inference, raw) == outcome(precise_inference, raw), raw
    for key in features:
        for value in FEATURE_VALUES:
            changed = {**features, key: value}
            if rng.random() < 0.3:  # and another key changed too
                changed[rng.choice(list(features))] = rng.choice(FEATURE_VALUES)
            raw = orjson.dumps({**FAST_SHAPED, "features": changed})
            assert outcome(decode_inference, raw) == outcome(precise_inference, raw), raw
        for number in RAW_NUMBERS:
            raw = orjson.dumps({**FAST_SHAPED, "features": {**features, key: NUMBER_HOLE}})
            raw = raw.replace(b"123456.789", number)
            assert outcome(decode_inference, raw) == outcome(precise_inference, raw), raw


def test_too_many_features_or_segments_are_left_to_the_precise_path() -> None:
    for over in (
        {"features": {f"f{i}": 1.0 for i in range(schema.MAX_FEATURES + 1)}},
        {"segment": {f"s{i}": "v" for i in range(schema.MAX_SEGMENT_ENTRIES + 1)}},
        {"segment": {"k" * 65: "v"}},
        {"segment": {"k": "v" * 65}},
    ):
        raw = orjson.dumps({**FAST_SHAPED, **over})
        assert schema._fast_inference(raw) is None
        assert outcome(decode_inference, raw)[:2] == ("rejected", "bad_value")
    at_most = {
        "features": {f"f{i}": 1.0 for i in range(schema.MAX_FEATURES)},
        "segment": {f"s{i}" + "k" * 60: "v" * 64 for i in range(schema.MAX_SEGMENT_ENTRIES)},
    }
    raw = orjson.dumps({**FAST_SHAPED, **at_most})
    fast = schema._fast_inference(raw)
    assert fast is not None and accepted(fast) == outcome(precise_inference, raw)


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    raw = orjson.dumps(FAST_SHAPED)
    for dup in (b'"model_id":"other"', b'"ts":0', b'"features":{"a":1}', b'"segment":null'):
        last = raw[:-1] + b"," + dup + b"}"
        fast = schema._fast_inference(last)
        assert fast is not None and accepted(fast) == outcome(precise_inference, last), last
    # A bad first value the last one replaces: valid for the precise path, left to it.
    first = b'{"model_id":5,' + raw[1:]
    assert schema._fast_inference(first) is None
    assert outcome(decode_inference, first) == outcome(precise_inference, first)
    assert outcome(decode_inference, first)[0] == "accepted"


def test_the_known_model_ids_are_bounded() -> None:
    for i in range(schema._MAX_KNOWN * 2 + 5):
        assert schema._known_model_id(f"m{i}")
        assert len(schema._KNOWN_MODEL_IDS) <= schema._MAX_KNOWN
    assert not schema._known_model_id("-bad")
    assert "-bad" not in schema._KNOWN_MODEL_IDS


def test_events_of_one_model_share_its_id_version_and_labels() -> None:
    """What a pending prediction keeps of its event (model id, version, label) is one
    string per value, not a fresh copy per event."""
    first, second = (
        schema._fast_inference(orjson.dumps({**FAST_SHAPED, "event_id": f"e-{i}"}))
        for i in range(2)
    )
    assert first is not None and second is not None
    assert first.model_id is second.model_id
    assert first.model_version is second.model_version
    assert first.prediction.label is second.prediction.label  # type: ignore[union-attr]
    assert first.event_id is not second.event_id


def test_a_flood_of_new_versions_and_labels_stays_bounded() -> None:
    for i in range(schema._MAX_KNOWN * 2 + 5):
        event = schema._fast_inference(
            orjson.dumps(
                {
                    **FAST_SHAPED,
                    "model_version": f"v{i}",
                    "prediction": {"label": f"l{i}", "confidence": 0.5},
                }
            )
        )
        assert event is not None
        assert (event.model_version, event.prediction.label) == (f"v{i}", f"l{i}")  # type: ignore[union-attr]
        assert len(schema._KNOWN_VERSIONS) <= schema._MAX_KNOWN
        assert len(schema._KNOWN_LABELS) <= schema._MAX_KNOWN


def test_a_flood_of_new_feature_names_stays_bounded_and_names_are_shared() -> None:
    for i in range(schema._MAX_KNOWN // 8 + 5):
        names = {f"f{i}-{j}": float(j) for j in range(20)}
        event = schema._fast_inference(orjson.dumps({**FAST_SHAPED, "features": names}))
        assert event is not None and event.features == names
        assert len(schema._KNOWN_FEATURE_NAMES) <= schema._MAX_KNOWN
    # A name too long or empty is still left to the precise path (which rejects it).
    for bad in ("", "n" * (schema.MAX_FEATURE_NAME + 1)):
        raw = orjson.dumps({**FAST_SHAPED, "features": {bad: 1.0}})
        assert schema._fast_inference(raw) is None
        assert outcome(decode_inference, raw)[:2] == ("rejected", "bad_value")
    # Short names are one string object per name across events (msgspec's key cache).
    first, second = (
        schema._fast_inference(orjson.dumps({**FAST_SHAPED, "features": {"age": float(i)}}))
        for i in range(2)
    )
    assert first is not None and second is not None
    assert next(iter(first.features)) is next(iter(second.features))


# ---------------------------------------------------------------- the event types


def test_events_are_immutable_and_equal_only_to_their_own_type() -> None:
    e = decode_inference(orjson.dumps(FAST_SHAPED))
    same = schema._inference_from_obj(orjson.loads(orjson.dumps(FAST_SHAPED)))
    assert e == same
    assert not e != same  # noqa: SIM202
    assert e != tuple(e)
    assert not e == tuple(e)  # noqa: SIM201
    assert tuple(e) != e
    with pytest.raises(AttributeError):
        e.ts = datetime(2026, 1, 1, tzinfo=UTC)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        e.extra = 1  # type: ignore[attr-defined]
    lab = decode_label(
        orjson.dumps({"event_id": "e", "model_id": "m", "ts": 0, "label": "a", "source": "h"})
    )
    assert lab != lab._replace(prediction=ClassPrediction("a", 1.0))
    assert lab != lab._replace(inclusion_probability=0.5)
    assert lab == LabelEvent(*tuple(lab))
    assert lab != InferenceEvent(*tuple(lab)[:-1])  # type: ignore[arg-type]


def test_fast_class_prediction_is_an_ordinary_class_prediction() -> None:
    assert schema._CLASS_PREDICTION_SETTERS is not None  # the fast construction is used
    p = schema._fast_prediction(schema._PredictionStruct("a", scores={"a": 0.7, "b": 0.3}))
    assert type(p) is ClassPrediction
    assert p == ClassPrediction("a", 0.7, {"a": 0.7, "b": 0.3})
    assert repr(p) == repr(ClassPrediction("a", 0.7, {"a": 0.7, "b": 0.3}))
    assert round(p.margin, 6) == 0.4
    with pytest.raises(AttributeError):
        p.label = "b"  # type: ignore[misc]
    assert isinstance(decode_inference(orjson.dumps(FAST_SHAPED)).prediction, ClassPrediction)
    reg = decode_inference(orjson.dumps({**FAST_SHAPED, "prediction": {"value": 1}}))
    assert reg.prediction == RegressionPrediction(1.0)
