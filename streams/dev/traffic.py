"""Synthetic inference traffic for the demo, tests and benchmarks.

Each synthetic model is a calibrated logistic classifier over numeric and
categorical features, so the confidences it reports are honest until drift is
scheduled: then a feature's mean shifts and, optionally, the model becomes
overconfident. A :class:`CorrelationSchedule` makes two features move together and
changes how (their correlation flips) while each keeps its N(0, 1) distribution: a
shift only the ``multivariate`` signal can see. A fraction of events can be malformed
on purpose, each with the dead-letter reason vigil must give it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.errors import DeadLetterReason

__all__ = [
    "CLASSES",
    "INVALID_KINDS",
    "CorrelationSchedule",
    "DriftSchedule",
    "Rollout",
    "SyntheticModel",
    "invalid_event",
]

CATEGORIES = ("web", "ios", "android", "api", "pos")
#: The classes every synthetic model predicts (and every true label is one of).
CLASSES = ("neg", "pos")


@dataclass
class DriftSchedule:
    """From event ``start`` (inclusive) to ``end`` (exclusive), ``feature`` shifts by
    ``shift`` standard deviations; with ``segment`` (``(key, value)``), only in the events
    of that segment, and only the feature moves (the model's prediction does not follow:
    a shift the aggregate dilutes and the segment's monitors see)."""

    feature: str
    start: int
    end: int | None = None
    shift: float = 1.5
    segment: tuple[str, str] | None = None

    def active(self, i: int) -> bool:
        return i >= self.start and (self.end is None or i < self.end)


@dataclass
class Rollout:
    """From event ``start`` on, ``share`` of the model's events are served by a new
    ``version`` whose logit is off by ``bias``: it predicts ``pos`` more often (or less,
    for a negative bias) than the old version on the same inputs, and is less accurate.
    The truth does not change: it is drawn from the old, calibrated model."""

    version: str
    start: int
    share: float = 0.3
    bias: float = 0.5


@dataclass
class CorrelationSchedule:
    """Feature ``b`` correlated ``rho`` with feature ``a`` (``b`` after ``a`` in the
    model's features), and ``rho_shifted`` from event ``start`` (inclusive) to ``end``
    (exclusive): ``b = r a + sqrt(1 - r^2) e``, so both stay N(0, 1) whatever ``r``.

    >>> c = CorrelationSchedule("x0", "x1", start=10)
    >>> c.rho_at(9), c.rho_at(10)
    (0.8, -0.8)
    """

    a: str
    b: str
    start: int | None = None
    end: int | None = None
    rho: float = 0.8
    rho_shifted: float = -0.8

    def rho_at(self, i: int) -> float:
        shifted = self.start is not None and i >= self.start and (self.end is None or i < self.end)
        return self.rho_shifted if shifted else self.rho


@dataclass
class SyntheticModel:
    model_id: str
    n_numeric: int = 5
    n_categorical: int = 1
    seed: int = 0
    version: str = "1.0.0"
    drift: list[DriftSchedule] = field(default_factory=list)
    correlation: CorrelationSchedule | None = None
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    step: timedelta = timedelta(milliseconds=10)
    rollout: Rollout | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - seeded synthetic data, not a secret
        self.weights = [self._rng.uniform(-1.2, 1.2) for _ in range(self.n_numeric)]
        self.cat_weight = {c: self._rng.uniform(-0.5, 0.5) for c in CATEGORIES}
        self.i = 0

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes this model predicts: :data:`CLASSES`."""
        return CLASSES

    def event(self, event_id: str | None = None) -> tuple[dict[str, Any], str]:
        """One valid InferenceEvent dict and its true label."""
        rng = self._rng
        i = self.i
        self.i += 1
        features: dict[str, Any] = {}
        logit = 0.0
        corr = self.correlation
        for k in range(self.n_numeric):
            name = f"x{k}"
            mu = 0.0
            for d in self.drift:
                if d.feature == name and d.segment is None and d.active(i):
                    mu += d.shift
            v = rng.gauss(mu, 1.0)
            if corr is not None and name == corr.b and corr.a in features:
                rho = corr.rho_at(i)
                v = rho * features[corr.a] + math.sqrt(1.0 - rho * rho) * v
            features[name] = round(v, 5)
            logit += self.weights[k] * v
        for k in range(self.n_categorical):
            c = CATEGORIES[min(int(rng.expovariate(1.0)), len(CATEGORIES) - 1)]
            features[f"c{k}"] = c
            logit += self.cat_weight[c]
        p = 1.0 / (1.0 + math.exp(-logit))
        truth = "pos" if rng.random() < p else "neg"
        version = self.version
        r = self.rollout
        if r is not None and i >= r.start and rng.random() < r.share:
            version = r.version
            p = 1.0 / (1.0 + math.exp(-(logit + r.bias)))
        label = "pos" if p >= 0.5 else "neg"
        scores = {"pos": round(p, 6), "neg": round(1.0 - p, 6)}
        segment = {"region": rng.choice(("eu", "us", "apac"))}
        for d in self.drift:
            seg = d.segment
            hit = seg is not None and segment.get(seg[0]) == seg[1] and d.feature in features
            if hit and d.active(i):
                features[d.feature] = round(features[d.feature] + d.shift, 5)
        event = {
            "event_id": event_id or f"{self.model_id}-{i}",
            "model_id": self.model_id,
            "model_version": version,
            "ts": (self.start + self.step * i).isoformat(),
            "features": features,
            "prediction": {"label": label, "scores": scores},
            "segment": segment,
            "trace_id": f"t-{self.seed}-{i}",
        }
        return event, truth

    def stream(self, n: int) -> Iterator[tuple[dict[str, Any], str]]:
        for _ in range(n):
            yield self.event()


INVALID_KINDS: tuple[str, ...] = (
    "bad_json",
    "not_utf8",
    "nan_literal",
    "missing_event_id",
    "missing_prediction",
    "wrong_type_features",
    "wrong_type_confidence",
    "confidence_out_of_range",
    "scores_not_summing",
    "bad_timestamp",
    "naive_timestamp",
    "bad_model_id",
    "oversized",
    "not_an_object",
)


def invalid_event(
    kind: str, model_id: str, i: int, max_bytes: int = 64 * 1024
) -> tuple[bytes, DeadLetterReason]:
    """A malformed message of the given ``kind`` and the dead-letter reason it must get."""
    base: dict[str, Any] = {
        "event_id": f"bad-{model_id}-{i}",
        "model_id": model_id,
        "ts": 1_767_225_600 + i,
        "prediction": {"label": "pos", "confidence": 0.9},
    }

    def dump(d: dict[str, Any]) -> bytes:
        return orjson.dumps(d)

    if kind == "bad_json":
        return dump(base)[:-3], "invalid_json"
    if kind == "not_utf8":
        return b'{"event_id": "\xff\xfe", "model_id": "m"}', "invalid_json"
    if kind == "nan_literal":
        return dump(base).replace(b'"confidence":0.9', b'"confidence":NaN'), "invalid_json"
    if kind == "missing_event_id":
        del base["event_id"]
        return dump(base), "schema"
    if kind == "missing_prediction":
        del base["prediction"]
        return dump(base), "schema"
    if kind == "wrong_type_features":
        base["features"] = ["a", "b"]
        return dump(base), "schema"
    if kind == "wrong_type_confidence":
        base["prediction"] = {"label": "pos", "confidence": "high"}
        return dump(base), "schema"
    if kind == "confidence_out_of_range":
        base["prediction"] = {"label": "pos", "confidence": 1.7}
        return dump(base), "bad_value"
    if kind == "scores_not_summing":
        base["prediction"] = {"label": "pos", "scores": {"pos": 0.7, "neg": 0.7}}
        return dump(base), "bad_value"
    if kind == "bad_timestamp":
        base["ts"] = "yesterday at noon"
        return dump(base), "bad_value"
    if kind == "naive_timestamp":
        base["ts"] = "2026-01-01T00:00:00"
        return dump(base), "bad_value"
    if kind == "bad_model_id":
        base["model_id"] = "no spaces allowed!"
        return dump(base), "bad_value"
    if kind == "oversized":
        base["metadata"] = {"blob": "x" * (max_bytes + 10)}
        return dump(base), "too_large"
    if kind == "not_an_object":
        return b"[1, 2, 3]", "schema"
    raise ValueError(f"unknown invalid kind {kind!r}; valid: {', '.join(INVALID_KINDS)}")
