"""The fast path vigil's decoder had before issue 18 (orjson, then checks in Python).

Kept for ``benchmarks/processor.py`` only, as the "before" of ``us_decode`` measured in
the same run (``us_decode_orjson_fast_path``); nothing in ``detectors/`` or ``streams/``
imports it. :func:`decode_inference` is ``streams.events.schema.decode_inference`` as of
commit 329481a: ``orjson.loads``, then an accept-only fast path over the parsed dict
(exact types, a learned feature layout per model), else the precise validator. The code
below the imports is that commit's, unchanged; the helpers both paths still share
(timestamp shapes, the known model ids, ClassPrediction's slot setters) are imported.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
from streams.events.schema import (
    _CLASS_PREDICTION_SETTERS,
    _KNOWN_MODEL_IDS,
    DEFAULT_MAX_EVENT_BYTES,
    MAX_CLASSES,
    MAX_EVENT_ID,
    MAX_FEATURE_NAME,
    MAX_FEATURES,
    MAX_METADATA_DEPTH,
    MAX_MODEL_VERSION,
    MAX_SEGMENT_ENTRIES,
    MAX_SEGMENT_VALUE,
    MAX_STRING_VALUE,
    MAX_TRACE_ID,
    SCORE_SUM_TOLERANCE,
    InferenceEvent,
    _depth,
    _fast_timestamp,
    _inference_from_obj,
    _known_model_id,
    _precise,
    parse_json,
)

__all__ = ["decode_inference"]

_new = object.__new__
_new_tuple = tuple.__new__
_SURELY_SUMS_TO_ONE = SCORE_SUM_TOLERANCE - 1e-12
_MAX_FINITE_INT = int(sys.float_info.max)
if _CLASS_PREDICTION_SETTERS is not None:
    _set_label, _set_confidence, _set_scores = _CLASS_PREDICTION_SETTERS


def decode_inference(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> InferenceEvent:
    """``decode_inference`` as it was: parse, the fast path, else the precise validator."""
    obj = parse_json(raw, max_bytes)
    event = _fast_inference(obj)
    return event if event is not None else _precise(obj, _inference_from_obj)


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
