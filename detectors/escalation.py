"""Escalation decisions: which predictions a human must look at, and why.

A policy turns one validated prediction into a :class:`Decision` made of
:class:`Reason` items (SPEC §4 reason kinds). This module holds the shared
types and the :class:`ThresholdEscalation` policy; the conformal policy, the
budget and data/drift reasons live in their own modules and produce the same
types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from detectors.base import (
    UnivariateDetector,
    check_finite,
    check_in_range,
    check_positive,
    check_probability,
)
from detectors.errors import InvalidObservationError
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction

__all__ = ["REASON_KINDS", "Decision", "Reason", "ThresholdEscalation", "check_prediction"]

REASON_KINDS = (
    "low_confidence",
    "small_margin",
    "high_entropy",
    "conformal",
    "wide_interval",
    "out_of_range",
    "unseen_category",
    "missing_features",
    "drift_active",
    "audit",
    "outlier",
)

ReasonKind = Literal[
    "low_confidence",
    "small_margin",
    "high_entropy",
    "conformal",
    "wide_interval",
    "out_of_range",
    "unseen_category",
    "missing_features",
    "drift_active",
    "audit",
    "outlier",
]


# Reason and Decision are made per event (a decision for every one, reasons for those
# escalated): msgspec Structs, built in C in one step, where a frozen dataclass's
# __init__ set each field through object.__setattr__ (~0.4 µs a decision; issue 18).
# Frozen, compared by value, not tracked by the garbage collector (they hold no
# container that could lead back to them).


class Reason(msgspec.Struct, frozen=True, gc=False):
    """One reason to escalate: its ``kind``, the ``score`` seen and the ``threshold`` crossed.

    >>> Reason("conformal", 0.3, 0.2).as_dict()
    {'kind': 'conformal', 'score': 0.3, 'threshold': 0.2}
    """

    kind: ReasonKind
    score: float
    threshold: float
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "score": self.score, "threshold": self.threshold}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class Decision(msgspec.Struct, frozen=True, gc=False):
    """The verdict on one item. ``priority`` in [0, 1]: higher means look first.

    ``inclusion_probability`` is the probability with which the item was sent
    for review: 1 for a decision by rule, the audit probability for an item
    escalated by the audit sample (its first reason is then ``audit``).

    >>> d = Decision(True, 0.8, (Reason("audit", 0.02, 0.02),), inclusion_probability=0.02)
    >>> d.audited, d == Decision(True, 0.8, d.reasons, False, 0.02)
    (True, True)
    """

    escalate: bool
    priority: float
    reasons: tuple[Reason, ...] = ()
    suppressed: bool = False
    inclusion_probability: float = 1.0

    @property
    def audited(self) -> bool:
        """Escalated by the audit sample, not by a rule."""
        return bool(self.reasons) and self.reasons[0].kind == "audit"


def check_prediction(prediction: object) -> Prediction:
    """Return ``prediction`` if it is a valid prediction, else raise.

    A prediction holding numpy scalars (``np.float32`` confidence or scores, ...)
    comes back as a copy holding Python floats, so that nothing downstream computes
    in float32 or keeps numpy values in its state; use the returned value.

    >>> check_prediction(RegressionPrediction(1.0, (0.0, float("inf"))))
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'interval' must be a finite number; got inf
    """
    if isinstance(prediction, ClassPrediction):
        c = check_probability("confidence", prediction.confidence)
        if not isinstance(prediction.label, str):
            raise InvalidObservationError(f"'label' must be a string; got {prediction.label!r}")
        scores = prediction.scores
        if scores and not all(type(v) is float for v in scores.values()):
            scores = {k: check_finite(f"scores[{k!r}]", v) for k, v in scores.items()}
        if c is not prediction.confidence or scores is not prediction.scores:
            return ClassPrediction(prediction.label, c, scores)
    elif isinstance(prediction, RegressionPrediction):
        v = check_finite("value", prediction.value)
        # check_finite returns a Python float as is: another object means a conversion.
        converted = v is not prediction.value
        interval = prediction.interval
        if interval is not None:
            lo, hi = (check_finite("interval", b) for b in interval)
            converted = converted or lo is not interval[0] or hi is not interval[1]
            interval = (lo, hi)
        if converted:
            return RegressionPrediction(v, interval)
    else:
        raise InvalidObservationError(
            f"prediction must be a ClassPrediction or RegressionPrediction; got {prediction!r}"
        )
    return prediction


class ThresholdEscalation(UnivariateDetector[Prediction, list[Reason]]):
    """Escalate a prediction whose uncertainty crosses a fixed threshold.

    Parameters
    ----------
    min_confidence
        Escalate classifications whose confidence is below this (``low_confidence``).
    min_margin
        Escalate when top-1 minus top-2 probability is below this (``small_margin``);
        ``None`` turns the check off.
    max_entropy
        Escalate when the normalized entropy (in [0, 1]) is above this
        (``high_entropy``); ``None`` turns the check off.
    max_interval_width
        Escalate regressions whose interval is wider than this (``wide_interval``);
        ``None`` turns the check off.

    Examples
    --------
    >>> policy = ThresholdEscalation(min_confidence=0.7, min_margin=0.2)
    >>> policy.reasons(ClassPrediction("spam", 0.9))
    []
    >>> [r.kind for r in policy.reasons(ClassPrediction("spam", 0.55))]
    ['low_confidence', 'small_margin']
    >>> round(policy.priority(ClassPrediction("spam", 0.55)), 3)
    0.9
    """

    _settings = ("min_confidence", "min_margin", "max_entropy", "max_interval_width")

    def __init__(
        self,
        min_confidence: float = 0.6,
        min_margin: float | None = None,
        max_entropy: float | None = None,
        max_interval_width: float | None = None,
    ) -> None:
        self.min_confidence = min_confidence
        self.min_margin = min_margin
        self.max_entropy = max_entropy
        self.max_interval_width = max_interval_width
        check_in_range("min_confidence", min_confidence, 0.0, 1.0)
        if min_margin is not None:
            check_in_range("min_margin", min_margin, 0.0, 1.0)
        if max_entropy is not None:
            check_in_range("max_entropy", max_entropy, 0.0, 1.0)
        if max_interval_width is not None:
            check_positive("max_interval_width", max_interval_width)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {
            "min_confidence": 0.7,
            "min_margin": 0.3,
            "max_entropy": 0.9,
            "max_interval_width": 2.0,
        }

    def _reset(self) -> None:
        self._seen = 0

    def _state(self) -> dict[str, Any]:
        return {"seen": self._seen}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])

    def update(self, x: Prediction) -> list[Reason]:
        """Count the prediction and return its reasons (same as :meth:`reasons`).

        Unlike :meth:`reasons` (the per-event path, fed validated predictions), this
        checks its input: a confidence in [0, 1], a finite value and interval.
        """
        prediction = check_prediction(x)
        self._seen += 1
        return self.reasons(prediction)

    def reasons(self, prediction: Prediction) -> list[Reason]:
        """The threshold reasons for one prediction (empty: auto-accept)."""
        out: list[Reason] = []
        if isinstance(prediction, ClassPrediction):
            c = prediction.confidence
            if c < self.min_confidence:
                out.append(Reason("low_confidence", c, self.min_confidence))
            if self.min_margin is not None:
                m = prediction.margin
                if m < self.min_margin:
                    out.append(Reason("small_margin", m, self.min_margin))
            if self.max_entropy is not None:
                h = prediction.normalized_entropy
                if h > self.max_entropy:
                    out.append(Reason("high_entropy", h, self.max_entropy))
        elif self.max_interval_width is not None:
            w = prediction.width
            if w is not None and w > self.max_interval_width:
                out.append(Reason("wide_interval", w, self.max_interval_width))
        return out

    def priority(self, prediction: Prediction) -> float:
        """Uncertainty in [0, 1]: 1 - margin for classifications; for regressions the
        interval width relative to the threshold, capped at 1."""
        if isinstance(prediction, ClassPrediction):
            u = 1.0 - prediction.margin
            # min(1.0, max(0.0, u)) without the two calls (per event)
            return u if 0.0 < u < 1.0 else (1.0 if u >= 1.0 else 0.0)
        w = prediction.width
        if w is None or not self.max_interval_width:
            return 0.0
        return min(1.0, w / (2.0 * self.max_interval_width))
