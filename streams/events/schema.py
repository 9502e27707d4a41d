"""Decoding and validation of the events vigil consumes (SPEC §2 and §3).

Validation happens here, once, at the edge. Every rule broken raises
:class:`~streams.errors.InvalidEventError` whose ``reason`` is the dead-letter
reason and whose ``detail`` names the field and the rule:

* ``too_large``: the raw message is over ``max_event_bytes`` (never parsed);
* ``invalid_json``: not UTF-8 JSON (NaN/Infinity literals, depth > 1024, ...);
* ``schema``: a required field is missing or a field has the wrong type;
* ``bad_value``: right type, value outside its rule (range, length, pattern,
  non-finite, probabilities that do not sum to one, a timestamp without offset).

After this module, the rest of vigil trusts its input.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from itertools import product
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

import orjson

from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
from streams.errors import InvalidEventError

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "InferenceEvent",
    "LabelEvent",
    "decode_inference",
    "decode_label",
    "parse_json",
    "read_model_id",
]

DEFAULT_MAX_EVENT_BYTES = 64 * 1024
MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_EVENT_ID = 128
MAX_MODEL_VERSION = 64
MAX_FEATURES = 512
MAX_FEATURE_NAME = 128
MAX_STRING_VALUE = 256
MAX_SEGMENT_ENTRIES = 8
MAX_SEGMENT_VALUE = 64
MAX_TRACE_ID = 128
MAX_CLASSES = 1024
MAX_SOURCE = 64
MAX_REVIEWER = 128
SCORE_SUM_TOLERANCE = 0.01  # SPEC §2: probabilities sum to 1 ± 0.01
# Epoch seconds outside [1970, 2200) are certainly a unit error (ms, µs) or garbage.
MIN_EPOCH_S = 0.0
MAX_EPOCH_S = 7_258_118_400.0
# RFC 3339 section 5.6 (T/Z in either case, a space for T as its note allows), ASCII digits
# only: datetime.fromisoformat alone also takes ISO 8601 forms RFC 3339 does not
# ("2026-W01-1", "20260101T000000Z", "2026-01-01T00Z", offsets without a colon).
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# orjson.loads accepts nesting up to 1024 levels but orjson.dumps stops at 255: metadata
# deeper than that would pass validation and then fail when its escalation is serialised.
MAX_METADATA_DEPTH = 64

FeatureValue = float | int | str | bool | None
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _same_type_eq(self: tuple[Any, ...], other: object) -> bool:
    # Events are tuples for speed (a tuple is built in one C call; a frozen dataclass
    # sets each field through object.__setattr__), but compare like the frozen
    # dataclasses they were: equal only to an event of the same type.
    if type(other) is type(self):
        return tuple.__eq__(self, other)
    return False if isinstance(other, tuple) else NotImplemented


def _same_type_ne(self: tuple[Any, ...], other: object) -> bool:
    eq = _same_type_eq(self, other)
    return eq if eq is NotImplemented else not eq


class InferenceEvent(NamedTuple):
    """One validated prediction event. ``ts`` is timezone-aware UTC.

    Immutable; equal only to an ``InferenceEvent`` with equal fields.
    """

    event_id: str
    model_id: str
    model_version: str
    ts: datetime
    prediction: Prediction
    features: dict[str, FeatureValue]
    segment: dict[str, str]
    trace_id: str | None
    metadata: dict[str, Any] | None

    def __eq__(self, other: object) -> bool:
        return _same_type_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return _same_type_ne(self, other)


class LabelEvent(NamedTuple):
    """One validated ground-truth label. Exactly one of ``label`` / ``value`` is set.

    Immutable; equal only to a ``LabelEvent`` with equal fields.
    """

    event_id: str
    model_id: str
    ts: datetime
    label: str | None
    value: float | None
    source: str
    reviewer: str | None
    escalation_id: str | None
    prediction: Prediction | None
    # The probability with which the labelled item was sent for labelling, when the
    # label's source knows it (SPEC §3); None: vigil's own record decides.
    inclusion_probability: float | None = None

    def __eq__(self, other: object) -> bool:
        return _same_type_eq(self, other)

    def __ne__(self, other: object) -> bool:
        return _same_type_ne(self, other)


def parse_json(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> dict[str, Any]:
    """Size check, then parse: the object, or ``too_large`` / ``invalid_json`` / ``schema``."""
    if type(raw) is not bytes and not isinstance(raw, _BYTES_LIKE):
        raise InvalidEventError("schema", f"message value must be bytes; got {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise InvalidEventError(
            "too_large", f"message is {len(raw)} bytes; max_event_bytes is {max_bytes}"
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError("invalid_json", f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidEventError("schema", f"event must be a JSON object; got {_json_type(obj)}")
    return obj


def read_model_id(obj: object) -> str | None:
    """The event's ``model_id`` if it is present and valid, else ``None`` (for metrics)."""
    if isinstance(obj, dict):
        m = obj.get("model_id")
        if isinstance(m, str) and MODEL_ID_RE.fullmatch(m):
            return m
    return None


def decode_inference(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> InferenceEvent:
    """Decode and validate one InferenceEvent (SPEC §2).

    >>> e = decode_inference(b'{"event_id": "e1", "model_id": "fraud", "ts": 0,'
    ...                      b' "prediction": {"label": "ok", "confidence": 0.9}}')
    >>> e.model_version, e.ts.isoformat(), e.prediction.confidence
    ('unknown', '1970-01-01T00:00:00+00:00', 0.9)
    >>> decode_inference(b'{"event_id": "e1", "model_id": "fraud", "ts": 0}')
    Traceback (most recent call last):
    ...
    streams.errors.InvalidEventError: schema: prediction is required
    """
    obj = parse_json(raw, max_bytes)
    event = _fast_inference(obj)
    return event if event is not None else _precise(obj, _inference_from_obj)


def decode_label(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> LabelEvent:
    """Decode and validate one LabelEvent (SPEC §3).

    >>> lab = decode_label(b'{"event_id": "e1", "model_id": "fraud", "ts": 10,'
    ...                    b' "label": "ok", "source": "human"}')
    >>> lab.label, lab.source, lab.prediction is None
    ('ok', 'human', True)
    """
    obj = parse_json(raw, max_bytes)
    event = _fast_label(obj)
    return event if event is not None else _precise(obj, _label_from_obj)


_E = TypeVar("_E", "InferenceEvent", "LabelEvent")


def _precise(obj: Any, from_obj: Callable[[Any], _E]) -> _E:
    """``from_obj(obj)``, the precise validator; its error names the event's model (only a
    dead letter needs it, for its metrics)."""
    try:
        return from_obj(obj)
    except InvalidEventError as exc:
        exc.model_id = read_model_id(obj)
        raise


# ---------------------------------------------------------------- fast path
#
# Validating field by field in Python cost several times the JSON parse itself, and a
# worker must keep up with its inference traffic. So the decoders first try a fast
# path that can only *accept*: it proves a common-shaped event valid with cheap checks
# (exact types, no error text) and builds the very event the precise validators above
# would build. Whenever a check is inconclusive it returns None and the precise path
# decides, so every rejection, with its reason and detail, comes from one place.
# ``tests/streams/test_schema_fastpath.py`` checks the two paths agree.
#
# Its input is what orjson.loads returns: str keys, exact built-in types, and no
# non-finite float; the finiteness checks stay all the same (they are cheap).

_new = object.__new__
_fromisoformat = datetime.fromisoformat
_new_tuple = tuple.__new__
_EPOCH_START = datetime.fromtimestamp(MIN_EPOCH_S, UTC)
# Equivalent to ``timestamp() < MAX_EPOCH_S``: below 2**33 s a float resolves well
# under a microsecond, so no datetime before this one rounds up to it.
_EPOCH_END = datetime.fromtimestamp(MAX_EPOCH_S, UTC)
# A plain sum of at most MAX_CLASSES probabilities is within 1e-12 of math.fsum's
# (error ≤ n·ε·sum): closer to the tolerance than that, the precise path decides.
_SURELY_SUMS_TO_ONE = SCORE_SUM_TOLERANCE - 1e-12
# An int of at most this magnitude converts to a finite float.
_MAX_FINITE_INT = int(sys.float_info.max)
# Model ids that matched MODEL_ID_RE: a set lookup instead of a regex per event.
# Bounded, as model ids come from the input.
_KNOWN_MODEL_IDS: set[str] = set()
_MAX_KNOWN_MODEL_IDS = 4096


def _rfc3339_shapes() -> frozenset[bytes]:
    """Every RFC3339_RE match with its digits written as ``0`` and no lowercase letter.

    A string whose digits-to-0 image is one of these matches RFC3339_RE, and
    ``value.upper() == value``, so ``fromisoformat(value)`` is what the precise path
    parses.
    """
    shapes = set()
    for sep, frac, offset in product("T ", range(10), ("Z", "+00:00", "-00:00")):
        fraction = "." + "0" * frac if frac else ""
        shapes.add(f"0000-00-00{sep}00:00:00{fraction}{offset}".encode())
    return frozenset(shapes)


_RFC3339_SHAPES = _rfc3339_shapes()
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)


def _class_prediction_setters() -> tuple[Callable[[Any, Any], None], ...] | None:
    """Setters of ClassPrediction's three slots, or None if its fields ever change.

    The dataclass ``__init__`` sets each field through ``object.__setattr__``
    (frozen); writing the slots directly is the same, at a third of the cost.
    """
    names = tuple(f.name for f in fields(ClassPrediction))
    if names != ("label", "confidence", "scores") or hasattr(ClassPrediction, "__post_init__"):
        return None
    return tuple(vars(ClassPrediction)[name].__set__ for name in names)


_CLASS_PREDICTION_SETTERS = _class_prediction_setters()
if _CLASS_PREDICTION_SETTERS is not None:
    _set_label, _set_confidence, _set_scores = _CLASS_PREDICTION_SETTERS


def _known_model_id(value: str) -> bool:
    """Whether ``value`` matches MODEL_ID_RE, remembered."""
    if value in _KNOWN_MODEL_IDS:
        return True
    if not MODEL_ID_RE.fullmatch(value):
        return False
    if len(_KNOWN_MODEL_IDS) >= _MAX_KNOWN_MODEL_IDS:
        _KNOWN_MODEL_IDS.clear()
    _KNOWN_MODEL_IDS.add(value)
    return True


def _fast_timestamp(value: object) -> datetime | None:
    t = type(value)
    if t is str:
        if not value.isascii():  # type: ignore[attr-defined]
            return None
        shape = value.encode().translate(_DIGITS_TO_ZERO)  # type: ignore[attr-defined]
        if shape not in _RFC3339_SHAPES:
            return None
        try:
            utc = _fromisoformat(value)  # type: ignore[arg-type]
            if utc.tzinfo is not UTC:
                utc = utc.astimezone(UTC)
        except (ValueError, OverflowError):
            return None
    elif t is float or t is int:
        # NaN fails both comparisons; an int in range is exact as a float.
        if not MIN_EPOCH_S <= value < MAX_EPOCH_S:  # type: ignore[operator]
            return None
        return datetime.fromtimestamp(float(value), tz=UTC)  # type: ignore[arg-type]
    else:
        return None
    return utc if _EPOCH_START <= utc < _EPOCH_END else None


def _fast_prediction(value: object) -> Prediction | None:
    if type(value) is not dict:
        return None
    if value.get("value") is not None:
        return _fast_regression(value)
    label = value.get("label")
    if type(label) is not str or not 0 < len(label) <= MAX_STRING_VALUE:
        return None
    scores = value.get("scores")
    if scores is None:
        confidence = value.get("confidence")
        if type(confidence) is not float or not 0.0 <= confidence <= 1.0:
            return None
    else:
        if type(scores) is not dict or not 0 < len(scores) <= MAX_CLASSES:
            return None
        total = 0.0
        for k, v in scores.items():
            if type(v) is not float or not 0.0 <= v <= 1.0 or not 0 < len(k) <= MAX_STRING_VALUE:
                return None
            total += v
        confidence = scores.get(label)
        if confidence is None or not abs(total - 1.0) <= _SURELY_SUMS_TO_ONE:
            return None
        # The precise path copies the scores into a new dict of the same floats in the
        # same order; nothing else holds this one.
    if _CLASS_PREDICTION_SETTERS is None:
        return ClassPrediction(label, confidence, scores)
    p = _new(ClassPrediction)
    _set_label(p, label)
    _set_confidence(p, confidence)
    _set_scores(p, scores)
    return p


def _fast_finite(value: object) -> float | None:
    t = type(value)
    if t is float:
        return None if value - value else value  # type: ignore[operator,return-value]
    if t is int and -_MAX_FINITE_INT <= value <= _MAX_FINITE_INT:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    return None


def _fast_regression(raw: dict[str, Any]) -> RegressionPrediction | None:
    value = _fast_finite(raw["value"])
    if value is None:
        return None
    interval = raw.get("interval")
    if interval is None:
        return RegressionPrediction(value)
    if type(interval) is not list or len(interval) != 2:
        return None
    lo, hi = _fast_finite(interval[0]), _fast_finite(interval[1])
    if lo is None or hi is None or not lo <= value <= hi:
        return None
    return RegressionPrediction(value, (lo, hi))


def _fast_ids(get: Callable[[str], Any]) -> tuple[str, str] | None:
    """``event_id`` and ``model_id`` of an inference or label event, or None: ask the
    precise validator."""
    event_id = get("event_id")
    if type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID:
        return None
    model_id = get("model_id")
    if type(model_id) is not str or (
        model_id not in _KNOWN_MODEL_IDS and not _known_model_id(model_id)
    ):
        return None
    return event_id, model_id


def _fast_inference(obj: dict[str, Any]) -> InferenceEvent | None:
    """The event :func:`_inference_from_obj` would return, or None: ask it."""
    get = obj.get
    ids = _fast_ids(get)
    if ids is None:
        return None
    event_id, model_id = ids
    model_version = get("model_version")
    if type(model_version) is str and len(model_version) <= MAX_MODEL_VERSION:
        model_version = model_version or "unknown"
    elif model_version is None:
        model_version = "unknown"
    else:
        return None
    ts = _fast_timestamp(get("ts"))
    if ts is None:
        return None
    prediction = _fast_prediction(get("prediction"))
    if prediction is None:
        return None

    features = get("features")
    if features is None:
        features = {}
    elif type(features) is not dict:
        return None
    elif features:
        layout = _FEATURE_LAYOUTS.get((model_id, len(features)))
        if (layout is None or not _fits(layout, features)) and not _fast_features(
            features, model_id
        ):
            return None

    segment = get("segment")
    if segment is None:
        segment = {}
    elif type(segment) is not dict or len(segment) > MAX_SEGMENT_ENTRIES:
        return None
    else:
        for key, value in segment.items():
            if type(value) is not str or len(value) > MAX_SEGMENT_VALUE:
                return None
            if len(key) > MAX_SEGMENT_VALUE:
                return None

    trace_id = get("trace_id")
    if trace_id is not None and (type(trace_id) is not str or len(trace_id) > MAX_TRACE_ID):
        return None
    metadata = get("metadata")
    if metadata is not None and (
        type(metadata) is not dict or (metadata and _depth(metadata) > MAX_METADATA_DEPTH)
    ):
        return None
    return _new_tuple(
        InferenceEvent,
        (event_id, model_id, model_version, ts, prediction, features, segment, trace_id, metadata),
    )


def _fast_features(features: dict[str, Any], model_id: str) -> bool:
    """Whether every feature is valid, one by one; learns the layout of a valid one."""
    if len(features) > MAX_FEATURES or "" in features:
        return False
    learn = True
    for key, value in features.items():
        if len(key) > MAX_FEATURE_NAME:
            return False
        t = type(value)
        if t is float:
            if value - value:  # NaN for NaN and ±inf, 0.0 (false) for finite
                return False
        elif t is str:
            if len(value) > MAX_STRING_VALUE:
                return False
        elif t is int:
            if not -_MAX_FINITE_INT <= value <= _MAX_FINITE_INT:
                return False
        elif t is bool:
            pass
        elif value is None:
            learn = False  # a null says nothing of the kind of values its key takes
        else:
            return False
    if learn:
        _learn_layout(features, model_id)
    return True


# The features of one model mostly come with the same keys, each with the same kind of
# value. The layout of a model's last valid features of a given count (keys checked
# once, split into those of number and those of string values) checks all values of
# the next ones in a few C-level calls: getting them by key proves the keys the same
# (as many, all present), the numbers sum to a finite float (from 0.0, so an int too
# large for a float raises OverflowError), the strings join (all are strings) and are
# short enough. Anything else (KeyError, TypeError, ...) and the one-by-one check
# decides. Bounded, as model ids and keys come from the input.
_Getter = Callable[[dict[str, Any]], tuple[Any, ...]]
_FEATURE_LAYOUTS: dict[tuple[str, int], tuple[_Getter | None, _Getter | None]] = {}
_MAX_FEATURE_LAYOUTS = 128


def _tuple_getter(keys: list[str]) -> _Getter | None:
    if not keys:
        return None
    if len(keys) == 1:
        (key,) = keys
        return lambda d: (d[key],)
    return itemgetter(*keys)


def _learn_layout(features: dict[str, Any], model_id: str) -> None:
    """Remember the layout of ``features``: valid, with only numbers and strings."""
    if len(_FEATURE_LAYOUTS) >= _MAX_FEATURE_LAYOUTS:
        _FEATURE_LAYOUTS.clear()
    strings = [k for k, v in features.items() if type(v) is str]
    numbers = [k for k, v in features.items() if type(v) is not str]
    layout = (_tuple_getter(numbers), _tuple_getter(strings))
    _FEATURE_LAYOUTS[model_id, len(features)] = layout


def _fits(layout: tuple[_Getter | None, _Getter | None], features: dict[str, Any]) -> bool:
    numbers, strings = layout
    try:
        if numbers is not None and not math.isfinite(sum(numbers(features), 0.0)):
            return False
        if strings is not None:
            values = strings(features)
            # TypeError unless all are strings; at most one string's length if short.
            if len("".join(values)) > MAX_STRING_VALUE:
                return max(map(len, values)) <= MAX_STRING_VALUE
    except (KeyError, TypeError, OverflowError):
        return False
    return True


def _fast_optional_str(value: object, max_len: int) -> bool:
    return value is None or (type(value) is str and len(value) <= max_len)


def _fast_label(obj: dict[str, Any]) -> LabelEvent | None:
    """The event :func:`_label_from_obj` would return, or None: ask it."""
    get = obj.get
    ids = _fast_ids(get)
    if ids is None:
        return None
    event_id, model_id = ids
    ts = _fast_timestamp(get("ts"))
    if ts is None:
        return None
    label, value = get("label"), get("value")
    if label is not None:
        if value is not None or type(label) is not str or not 0 < len(label) <= MAX_STRING_VALUE:
            return None
    elif value is not None:
        value = _fast_finite(value)
        if value is None:
            return None
    else:
        return None
    source = get("source")
    if type(source) is not str or not 0 < len(source) <= MAX_SOURCE:
        return None
    reviewer, escalation_id = get("reviewer"), get("escalation_id")
    if not (
        _fast_optional_str(reviewer, MAX_REVIEWER)
        and _fast_optional_str(escalation_id, MAX_EVENT_ID)
    ):
        return None
    raw_pred = get("prediction")
    prediction = None
    if raw_pred is not None:
        prediction = _fast_prediction(raw_pred)
        if prediction is None:
            return None
        if (label is None) == (type(prediction) is ClassPrediction):
            return None
    inclusion = get("inclusion_probability")
    if inclusion is not None:
        inclusion = _fast_finite(inclusion)
        if inclusion is None or not 0.0 < inclusion <= 1.0:
            return None
    return _new_tuple(
        LabelEvent,
        (
            event_id,
            model_id,
            ts,
            label,
            value,
            source,
            reviewer,
            escalation_id,
            prediction,
            inclusion,
        ),
    )


def _inference_from_obj(obj: dict[str, Any]) -> InferenceEvent:
    event_id = _required_str(obj, "event_id", MAX_EVENT_ID)
    model_id = _model_id(obj)
    model_version = _optional_str(obj, "model_version", MAX_MODEL_VERSION) or "unknown"
    ts = _timestamp(obj, "ts")
    if "prediction" not in obj:
        raise InvalidEventError("schema", "prediction is required")
    prediction = _prediction(obj["prediction"], "prediction")
    features = _features(obj.get("features"))
    segment = _segment(obj.get("segment"))
    trace_id = _optional_str(obj, "trace_id", MAX_TRACE_ID)
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidEventError("schema", f"metadata must be an object; got {_json_type(metadata)}")
    if metadata and _depth(metadata) > MAX_METADATA_DEPTH:
        raise InvalidEventError(
            "bad_value", f"metadata must be nested at most {MAX_METADATA_DEPTH} levels deep"
        )
    return InferenceEvent(
        event_id, model_id, model_version, ts, prediction, features, segment, trace_id, metadata
    )


def _label_from_obj(obj: dict[str, Any]) -> LabelEvent:
    event_id = _required_str(obj, "event_id", MAX_EVENT_ID)
    model_id = _model_id(obj)
    ts = _timestamp(obj, "ts")
    has_label, has_value = obj.get("label") is not None, obj.get("value") is not None
    if has_label == has_value:
        raise InvalidEventError("schema", "exactly one of label or value is required")
    label = _required_str(obj, "label", MAX_STRING_VALUE) if has_label else None
    value = _finite(obj["value"], "value") if has_value else None
    source = _required_str(obj, "source", MAX_SOURCE)
    reviewer = _optional_str(obj, "reviewer", MAX_REVIEWER)
    escalation_id = _optional_str(obj, "escalation_id", MAX_EVENT_ID)
    raw_pred = obj.get("prediction")
    prediction = None if raw_pred is None else _prediction(raw_pred, "prediction")
    # The monitor learns from (prediction, truth) pairs of one kind; a mismatch found only
    # there would be a processing_error with a traceback per message.
    if isinstance(prediction, ClassPrediction) and label is None:
        raise InvalidEventError(
            "bad_value", "a label for a classification prediction needs label, not value"
        )
    if isinstance(prediction, RegressionPrediction) and value is None:
        raise InvalidEventError(
            "bad_value", "a label for a regression prediction needs value, not label"
        )
    inclusion = obj.get("inclusion_probability")
    if inclusion is not None:
        inclusion = _finite(inclusion, "inclusion_probability")
        if not 0.0 < inclusion <= 1.0:
            raise InvalidEventError(
                "bad_value", f"inclusion_probability must be in (0, 1]; got {inclusion!r}"
            )
    return LabelEvent(
        event_id,
        model_id,
        ts,
        label,
        value,
        source,
        reviewer,
        escalation_id,
        prediction,
        inclusion,
    )


def _depth(value: object) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            d += 1
            if d > deepest:
                deepest = d
                if deepest > MAX_METADATA_DEPTH:
                    break
            stack.extend((x, d) for x in v if isinstance(x, dict | list))
    return deepest


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _required_str(obj: dict[str, Any], name: str, max_len: int) -> str:
    if name not in obj or obj[name] is None:
        raise InvalidEventError("schema", f"{name} is required")
    return _str(obj[name], name, max_len, min_len=1)


def _optional_str(obj: dict[str, Any], name: str, max_len: int) -> str | None:
    value = obj.get(name)
    return None if value is None else _str(value, name, max_len)


def _str(value: object, name: str, max_len: int, min_len: int = 0) -> str:
    if not isinstance(value, str):
        raise InvalidEventError("schema", f"{name} must be a string; got {_json_type(value)}")
    if not min_len <= len(value) <= max_len:
        raise InvalidEventError(
            "bad_value", f"{name} must have {min_len}–{max_len} characters; got {len(value)}"
        )
    return value


def _model_id(obj: dict[str, Any]) -> str:
    model_id = _required_str(obj, "model_id", 64)
    if not MODEL_ID_RE.fullmatch(model_id):
        raise InvalidEventError(
            "bad_value",
            f"model_id must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$; got {model_id!r}",
        )
    return model_id


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEventError("schema", f"{name} must be a number; got {_json_type(value)}")
    f = float(value)
    if not math.isfinite(f):  # a huge integer overflows to inf
        raise InvalidEventError("bad_value", f"{name} must be finite; got {value!r}")
    return f


def _probability(value: object, name: str) -> float:
    p = _finite(value, name)
    if not 0.0 <= p <= 1.0:
        raise InvalidEventError("bad_value", f"{name} must be in [0, 1]; got {value!r}")
    return p


def _timestamp(obj: dict[str, Any], name: str) -> datetime:
    if name not in obj or obj[name] is None:
        raise InvalidEventError("schema", f"{name} is required")
    value = obj[name]
    if isinstance(value, str):
        if len(value) > 64:
            raise InvalidEventError("bad_value", f"{name} must be an RFC 3339 timestamp; too long")
        try:
            ts = datetime.fromisoformat(value.upper())
        except ValueError:
            raise InvalidEventError(
                "bad_value", f"{name} must be an RFC 3339 timestamp with offset; got {value!r}"
            ) from None
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise InvalidEventError(
                "bad_value", f"{name} must carry a UTC offset (e.g. 'Z'); got {value!r}"
            )
        if not RFC3339_RE.fullmatch(value):
            raise InvalidEventError(
                "bad_value", f"{name} must be an RFC 3339 timestamp with offset; got {value!r}"
            )
        try:
            # Out of datetime's range for years 1 and 9999 with an offset.
            utc = ts.astimezone(UTC)
        except OverflowError:
            utc = None
        if utc is None or not MIN_EPOCH_S <= utc.timestamp() < MAX_EPOCH_S:
            raise InvalidEventError(
                "bad_value", f"{name} must be between 1970 and 2200; got {value!r}"
            )
        return utc
    seconds = _finite(value, f"{name} (epoch seconds)")
    if not MIN_EPOCH_S <= seconds < MAX_EPOCH_S:
        raise InvalidEventError(
            "bad_value", f"{name} must be epoch seconds between 1970 and 2200; got {value!r}"
        )
    return datetime.fromtimestamp(seconds, tz=UTC)


def _prediction(value: object, name: str) -> Prediction:
    if not isinstance(value, dict):
        raise InvalidEventError("schema", f"{name} must be an object; got {_json_type(value)}")
    if "value" in value and value["value"] is not None:
        return _regression(value, name)
    if "label" not in value or value["label"] is None:
        raise InvalidEventError("schema", f"{name} needs label (classification) or value")
    label = _str(value["label"], f"{name}.label", MAX_STRING_VALUE, min_len=1)
    scores_raw = value.get("scores")
    if scores_raw is not None:
        scores = _scores(scores_raw, f"{name}.scores")
        if label not in scores:
            raise InvalidEventError(
                "bad_value", f"{name}.label {label!r} must be one of the keys of {name}.scores"
            )
        return ClassPrediction(label, scores[label], scores)
    if value.get("confidence") is None:
        raise InvalidEventError("schema", f"{name} needs scores or confidence")
    return ClassPrediction(label, _probability(value["confidence"], f"{name}.confidence"))


def _scores(raw: object, name: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise InvalidEventError("schema", f"{name} must be an object; got {_json_type(raw)}")
    if not 1 <= len(raw) <= MAX_CLASSES:
        raise InvalidEventError(
            "bad_value", f"{name} must have 1–{MAX_CLASSES} classes; got {len(raw)}"
        )
    for k in raw:
        if not 1 <= len(k) <= MAX_STRING_VALUE:
            raise InvalidEventError(
                "bad_value", f"{name} class names must have 1–{MAX_STRING_VALUE} characters"
            )
    scores: dict[str, float] = {}
    for k, v in raw.items():
        # Fast path for the common case; the slow path builds the field name for the error.
        if type(v) is float and 0.0 <= v <= 1.0:
            scores[k] = v
        else:
            scores[k] = _probability(v, f"{name}[{k!r}]")
    total = math.fsum(scores.values())
    if abs(total - 1.0) > SCORE_SUM_TOLERANCE:
        raise InvalidEventError(
            "bad_value", f"{name} must sum to 1 ± {SCORE_SUM_TOLERANCE}; got {total:.6g}"
        )
    return scores


def _regression(raw: dict[str, Any], name: str) -> RegressionPrediction:
    value = _finite(raw["value"], f"{name}.value")
    interval_raw = raw.get("interval")
    if interval_raw is None:
        return RegressionPrediction(value)
    if not isinstance(interval_raw, list) or len(interval_raw) != 2:
        raise InvalidEventError("schema", f"{name}.interval must be an array [lo, hi]")
    lo = _finite(interval_raw[0], f"{name}.interval[0]")
    hi = _finite(interval_raw[1], f"{name}.interval[1]")
    if not lo <= value <= hi:
        raise InvalidEventError(
            "bad_value",
            f"{name}.interval must satisfy lo ≤ value ≤ hi; got [{lo}, {hi}] around {value}",
        )
    return RegressionPrediction(value, (lo, hi))


def _features(raw: object) -> dict[str, FeatureValue]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidEventError("schema", f"features must be an object; got {_json_type(raw)}")
    if len(raw) > MAX_FEATURES:
        raise InvalidEventError(
            "bad_value", f"features must have at most {MAX_FEATURES} entries; got {len(raw)}"
        )
    # The hot loop of validation (tens of features per event): dispatch on the exact
    # type, cheapest cases first.
    isfinite = math.isfinite
    for key, value in raw.items():
        if not 0 < len(key) <= MAX_FEATURE_NAME:
            raise InvalidEventError(
                "bad_value", f"feature names must have 1–{MAX_FEATURE_NAME} characters"
            )
        t = type(value)
        if t is float:
            if not isfinite(value):
                raise InvalidEventError("bad_value", f"features[{key!r}] must be finite")
        elif t is str:
            if len(value) > MAX_STRING_VALUE:
                raise InvalidEventError(
                    "bad_value",
                    f"features[{key!r}] must have at most {MAX_STRING_VALUE} characters",
                )
        elif t is int:
            if not isfinite(float(value)):
                raise InvalidEventError("bad_value", f"features[{key!r}] must be finite")
        elif value is not None and t is not bool:
            raise InvalidEventError(
                "schema",
                f"features[{key!r}] must be a number, string, boolean or null; "
                f"got {_json_type(value)}",
            )
    return raw


def _segment(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidEventError("schema", f"segment must be an object; got {_json_type(raw)}")
    if len(raw) > MAX_SEGMENT_ENTRIES:
        raise InvalidEventError(
            "bad_value", f"segment must have at most {MAX_SEGMENT_ENTRIES} entries; got {len(raw)}"
        )
    for key, value in raw.items():
        _str(value, f"segment[{key[:64]!r}]", MAX_SEGMENT_VALUE)
        if len(key) > MAX_SEGMENT_VALUE:
            raise InvalidEventError(
                "bad_value", f"segment keys must have at most {MAX_SEGMENT_VALUE} characters"
            )
    return raw
