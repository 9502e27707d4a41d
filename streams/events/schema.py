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
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from itertools import product
from typing import Annotated, Any, NamedTuple, TypeVar

import msgspec
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
    if type(raw) is bytes and len(raw) <= max_bytes:
        event = _fast_inference(raw)
        if event is not None:
            return event
    return _precise(parse_json(raw, max_bytes), _inference_from_obj)


def decode_label(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> LabelEvent:
    """Decode and validate one LabelEvent (SPEC §3).

    >>> lab = decode_label(b'{"event_id": "e1", "model_id": "fraud", "ts": 10,'
    ...                    b' "label": "ok", "source": "human"}')
    >>> lab.label, lab.source, lab.prediction is None
    ('ok', 'human', True)
    """
    if type(raw) is bytes and len(raw) <= max_bytes:
        event = _fast_label(raw)
        if event is not None:
            return event
    return _precise(parse_json(raw, max_bytes), _label_from_obj)


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
# path that can only *accept*: msgspec decodes the bytes straight into the Structs
# below, checking types, lengths and ranges in C; the checks msgspec cannot state
# (timestamps, probabilities that sum to one, interval order, metadata depth) and the
# model id pattern (a dict lookup once an id is known: cheaper than msgspec's regex)
# follow in Python; then it builds the very event the precise
# validators below would build. Whenever anything fails or is inconclusive it returns
# None and the precise path decides from the bytes, so every rejection, with its reason
# and detail, comes from one place. ``tests/streams/events/test_schema_fastpath.py``
# checks the two paths agree.
#
# What makes the Structs accept no more than the precise path (orjson, then the rules):
# * ``forbid_unknown_fields``: msgspec skips an unknown field's value without reading it
#   the way orjson does (huge numbers, nesting depth), so an event with one is left to
#   the precise path (SPEC §2 ignores them: they are valid, only slower);
# * every other value is decoded by msgspec into a declared type, and msgspec rejects
#   whatever JSON orjson rejects (NaN/Infinity literals, numbers out of a double's range,
#   invalid UTF-8, lone surrogates, control characters, trailing commas, ...); the tests
#   hold both to that;
# * integers: orjson gives an int in [-2**63, 2**64) and a float outside, msgspec an int
#   of any size: feature ints are bounded to int64 (outside: the precise path), and
#   numbers declared ``float`` (probabilities, values, intervals) convert ints the same
#   way ``float(int)`` does;
# * ``metadata`` is passed through unread (``msgspec.Raw``) and parsed by orjson itself,
#   so it is exactly what the precise path would pass on;
# * duplicate keys: the last one wins in both, and msgspec checks every occurrence.

_new = object.__new__
_fromisoformat = datetime.fromisoformat
_new_tuple = tuple.__new__
_EPOCH_START = datetime.fromtimestamp(MIN_EPOCH_S, UTC)
# Equivalent to ``timestamp() < MAX_EPOCH_S``: below 2**33 s a float resolves well
# under a microsecond, so no datetime before this one rounds up to it.
_EPOCH_END = datetime.fromtimestamp(MAX_EPOCH_S, UTC)
_fsum = math.fsum
# Model ids that matched MODEL_ID_RE, each mapped to itself: a dict lookup instead of a
# regex per event, which also gives the fast path one string object per model id.
# Bounded, as model ids come from the input.
_KNOWN_MODEL_IDS: dict[str, str] = {}
_MAX_KNOWN = 4096
# Model versions and class labels the fast path has seen, each mapped to itself (bounded
# the same way): a pending prediction keeps its event's model id, version and label until
# its label comes or it is evicted (``labels.max_pending`` per model, 10,000 by default),
# and with these each is one shared string instead of a fresh copy per event (~50-60
# bytes each, allocated per event and freed cold at eviction).
_KNOWN_VERSIONS: dict[str, str] = {}
_KNOWN_LABELS: dict[str, str] = {}
# Feature names the fast path has found 1 to MAX_FEATURE_NAME characters long (bounded
# the same way).
_KNOWN_FEATURE_NAMES: set[str] = set()


def _interned(table: dict[str, str], value: str) -> str:
    """``value`` as ``table`` holds it, added if new (the table emptied first when full).

    >>> t: dict[str, str] = {}
    >>> a = _interned(t, "".join(["c", "at"]))
    >>> _interned(t, "".join(["ca", "t"])) is a
    True
    """
    known = table.get(value)
    if known is None:
        if len(table) >= _MAX_KNOWN:
            table.clear()
        table[value] = known = value
    return known


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
    return _known_model_id_as_held(value) is not None


def _known_model_id_as_held(value: str) -> str | None:
    """``value`` as :data:`_KNOWN_MODEL_IDS` holds it if it matches MODEL_ID_RE, else
    None."""
    known = _KNOWN_MODEL_IDS.get(value)
    if known is not None:
        return known
    if not MODEL_ID_RE.fullmatch(value):
        return None
    return _interned(_KNOWN_MODEL_IDS, value)


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


_Meta = msgspec.Meta
_EventId = Annotated[str, _Meta(min_length=1, max_length=MAX_EVENT_ID)]
# The pattern is checked in Python (_known_model_id_as_held: a dict lookup for a known id).
_ModelId = Annotated[str, _Meta(min_length=1, max_length=64)]
# Timestamps are checked in Python (_fast_timestamp): msgspec's own datetime parsing
# rounds fractions of a microsecond (Python truncates) and takes offsets without a colon.
_Timestamp = Annotated[str, _Meta(max_length=64)] | int | float
_Label = Annotated[str, _Meta(min_length=1, max_length=MAX_STRING_VALUE)]
_Probability = Annotated[float, _Meta(ge=0.0, le=1.0)]
_Scores = Annotated[dict[_Label, _Probability], _Meta(min_length=1, max_length=MAX_CLASSES)]
# orjson reads an integer outside int64 (up to 2**64 - 1) as an int, beyond as a float:
# the fast path takes only the int64 ones, read the same by both.
_Int64 = Annotated[int, _Meta(ge=-(2**63), le=2**63 - 1)]
_FeatureString = Annotated[str, _Meta(max_length=MAX_STRING_VALUE)]
# Feature names as plain ``str``: msgspec reuses one string object per name (its cache of
# short ASCII keys: no new string, no new hash per name and event), which it does for no
# key type with constraints. Their lengths are checked in Python, once per name
# (_feature_names_known).
_Features = Annotated[
    dict[str, float | _Int64 | _FeatureString | bool | None],
    _Meta(max_length=MAX_FEATURES),
]
_SegmentString = Annotated[str, _Meta(max_length=MAX_SEGMENT_VALUE)]
_Segment = Annotated[dict[_SegmentString, _SegmentString], _Meta(max_length=MAX_SEGMENT_ENTRIES)]
# The default of an absent metadata field, told apart by identity.
_NO_METADATA = msgspec.Raw(b"null")


class _PredictionStruct(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Either kind of prediction (SPEC §2): an untagged union is not a msgspec type.

    Stricter than the precise path where a field does not count (a regression with a
    ``label``, scores with a ``confidence``): those must still have their types here.
    """

    label: _Label | None = None
    confidence: _Probability | None = None
    scores: _Scores | None = None
    value: float | None = None
    interval: tuple[float, float] | None = None


# Fields in the order publishers write them: msgspec looks for the next field first.
class _InferenceStruct(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    event_id: _EventId
    model_id: _ModelId
    model_version: Annotated[str, _Meta(max_length=MAX_MODEL_VERSION)] | None = None
    ts: _Timestamp
    features: _Features | None = None
    prediction: _PredictionStruct
    segment: _Segment | None = None
    trace_id: Annotated[str, _Meta(max_length=MAX_TRACE_ID)] | None = None
    metadata: msgspec.Raw = _NO_METADATA


class _LabelStruct(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    event_id: _EventId
    model_id: _ModelId
    ts: _Timestamp
    label: _Label | None = None
    value: float | None = None
    source: Annotated[str, _Meta(min_length=1, max_length=MAX_SOURCE)]
    reviewer: Annotated[str, _Meta(max_length=MAX_REVIEWER)] | None = None
    escalation_id: Annotated[str, _Meta(max_length=MAX_EVENT_ID)] | None = None
    prediction: _PredictionStruct | None = None
    inclusion_probability: Annotated[float, _Meta(gt=0.0, le=1.0)] | None = None


# Built once: a Decoder compiles its type on creation.
_INFERENCE_DECODER = msgspec.json.Decoder(_InferenceStruct)
_LABEL_DECODER = msgspec.json.Decoder(_LabelStruct)
# DecodeError covers ValidationError; RecursionError: msgspec's own nesting limit.
_NOT_FAST = (msgspec.DecodeError, RecursionError)


def _fast_prediction(p: _PredictionStruct) -> Prediction | None:
    """The prediction the precise path would build from ``p``, or None: ask it."""
    value = p.value
    if value is not None:
        interval = p.interval
        if interval is None:
            return RegressionPrediction(value)
        if not interval[0] <= value <= interval[1]:
            return None
        return RegressionPrediction(value, interval)
    label = p.label
    if label is None:
        return None
    label = _KNOWN_LABELS.get(label) or _interned(_KNOWN_LABELS, label)
    scores = p.scores
    if scores is None:
        confidence = p.confidence
        if confidence is None:
            return None
    else:
        confidence = scores.get(label)
        # The precise path's own test, on the same floats.
        if confidence is None or abs(_fsum(scores.values()) - 1.0) > SCORE_SUM_TOLERANCE:
            return None
    if _CLASS_PREDICTION_SETTERS is None:
        return ClassPrediction(label, confidence, scores)
    prediction = _new(ClassPrediction)
    _set_label(prediction, label)
    _set_confidence(prediction, confidence)
    _set_scores(prediction, scores)
    return prediction


def _fast_metadata(raw: msgspec.Raw) -> tuple[dict[str, Any] | None] | None:
    """``(metadata,)`` as the precise path would pass it on, or None: ask it."""
    if raw is _NO_METADATA:
        return (None,)
    try:
        metadata = orjson.loads(memoryview(raw))
    except orjson.JSONDecodeError:
        return None
    if metadata is None:
        return (None,)
    if type(metadata) is not dict or (metadata and _depth(metadata) > MAX_METADATA_DEPTH):
        return None
    return (metadata,)


def _feature_names_known(features: dict[str, Any]) -> bool:
    """Whether every feature name has 1 to :data:`MAX_FEATURE_NAME` characters (as the
    precise path requires); if so they are remembered in :data:`_KNOWN_FEATURE_NAMES`
    (emptied first when full).

    >>> _feature_names_known({"age": 1.0}), "age" in _KNOWN_FEATURE_NAMES
    (True, True)
    >>> _feature_names_known({"": 1.0}), _feature_names_known({"a" * 129: 1.0})
    (False, False)
    """
    for name in features:
        if not 0 < len(name) <= MAX_FEATURE_NAME:
            return False
    if len(_KNOWN_FEATURE_NAMES) + len(features) > _MAX_KNOWN:
        _KNOWN_FEATURE_NAMES.clear()
    _KNOWN_FEATURE_NAMES.update(features)
    return True


def _fast_inference(raw: bytes) -> InferenceEvent | None:
    """The event :func:`_inference_from_obj` would return for ``raw``, or None: ask it."""
    try:
        s = _INFERENCE_DECODER.decode(raw)
    except _NOT_FAST:
        return None
    model_id = _KNOWN_MODEL_IDS.get(s.model_id) or _known_model_id_as_held(s.model_id)
    if model_id is None:
        return None
    ts = _fast_timestamp(s.ts)
    if ts is None:
        return None
    prediction = _fast_prediction(s.prediction)
    if prediction is None:
        return None
    version = s.model_version
    if version:
        version = _KNOWN_VERSIONS.get(version) or _interned(_KNOWN_VERSIONS, version)
    metadata = None
    if s.metadata is not _NO_METADATA:
        found = _fast_metadata(s.metadata)
        if found is None:
            return None
        (metadata,) = found
    features, segment = s.features, s.segment
    if features is None:
        features = {}
    elif not features.keys() <= _KNOWN_FEATURE_NAMES and not _feature_names_known(features):
        return None
    return _new_tuple(
        InferenceEvent,
        (
            s.event_id,
            model_id,
            version or "unknown",
            ts,
            prediction,
            features,
            {} if segment is None else segment,
            s.trace_id,
            metadata,
        ),
    )


def _fast_label(raw: bytes) -> LabelEvent | None:
    """The event :func:`_label_from_obj` would return for ``raw``, or None: ask it."""
    try:
        s = _LABEL_DECODER.decode(raw)
    except _NOT_FAST:
        return None
    model_id = _KNOWN_MODEL_IDS.get(s.model_id) or _known_model_id_as_held(s.model_id)
    if model_id is None:
        return None
    ts = _fast_timestamp(s.ts)
    if ts is None:
        return None
    label, value = s.label, s.value
    if (label is None) == (value is None):
        return None
    prediction = None
    if s.prediction is not None:
        prediction = _fast_prediction(s.prediction)
        if prediction is None or (label is None) == (type(prediction) is ClassPrediction):
            return None
    return _new_tuple(
        LabelEvent,
        (
            s.event_id,
            model_id,
            ts,
            label,
            value,
            s.source,
            s.reviewer,
            s.escalation_id,
            prediction,
            s.inclusion_probability,
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
