"""What a model predicted, as the detectors see it (already validated at the edge)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ClassPrediction", "Prediction", "RegressionPrediction"]


@dataclass(frozen=True, slots=True)
class ClassPrediction:
    """A classification: the predicted ``label``, its ``confidence`` and, when the
    model sent them, the ``scores`` of every class (probabilities summing to ~1).

    >>> p = ClassPrediction("cat", 0.6, {"cat": 0.6, "dog": 0.3, "eel": 0.1})
    >>> round(p.margin, 3), round(p.entropy, 4)
    (0.3, 0.8979)
    >>> ClassPrediction("cat", 0.8).margin  # two-class view without scores
    0.6000000000000001
    """

    label: str
    confidence: float
    scores: dict[str, float] | None = field(default=None)

    @property
    def margin(self) -> float:
        """Top probability minus the runner-up (binary complement without scores)."""
        scores = self.scores
        if scores:
            n = len(scores)
            if n == 2:
                # _top_two unrolled for the common binary case (read per event): the same
                # comparisons, so the same result for any two values.
                a, b = scores.values()
                top = a if a > 0.0 else 0.0
                if b > top:
                    return b - top
                return top - (b if b > 0.0 else 0.0)
            if n > 2:
                top, second = _top_two(scores.values())
                return top - second
        return self.confidence - (1.0 - self.confidence)

    @property
    def entropy(self) -> float:
        """Shannon entropy in nats of ``scores`` (of ``[c, 1 - c]`` without scores)."""
        probs = self.scores.values() if self.scores else (self.confidence, 1.0 - self.confidence)
        return -sum(p * math.log(p) for p in probs if p > 0.0)

    @property
    def normalized_entropy(self) -> float:
        """Entropy divided by its maximum, log(number of classes), in [0, 1]."""
        k = len(self.scores) if self.scores else 2
        return self.entropy / math.log(k) if k > 1 else 0.0


@dataclass(frozen=True, slots=True)
class RegressionPrediction:
    """A regression: ``value`` and an optional prediction ``interval`` (lo, hi).

    >>> RegressionPrediction(3.0, (2.0, 5.0)).width
    3.0
    >>> RegressionPrediction(3.0).width is None
    True
    """

    value: float
    interval: tuple[float, float] | None = None

    @property
    def width(self) -> float | None:
        if self.interval is None:
            return None
        return self.interval[1] - self.interval[0]


Prediction = ClassPrediction | RegressionPrediction


def _top_two(values: object) -> tuple[float, float]:
    top = second = 0.0
    for v in values:  # type: ignore[attr-defined]
        if v > top:
            top, second = v, top
        elif v > second:
            second = v
    return top, second
