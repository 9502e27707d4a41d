"""How often the fully automated decisions are wrong: the auto-accept error rate.

:class:`AutoAcceptMonitor` is fed the labels of *auto-accepted* items only (the
caller filters): the random audit sample reviewers label (weight
``1 / audit probability``) and, where an outcome system reports them, outcome
labels (weight ``1 / outcome rate``). It keeps the last ``window`` of them in a
ring buffer with exact fixed-point integer sums (as
:mod:`detectors.calibration`), and reports

* the self-normalised (Hajek) weighted error rate ``sum w * wrong / sum w``;
* a one-sided upper confidence bound on it: the Wilson score interval with
  continuity correction (Newcombe 1998, "Two-sided confidence intervals for the
  single proportion: comparison of seven methods", method 4), evaluated at
  Kish's effective sample size ``(sum w)**2 / sum w**2``.

What the bound assumes: the labelled items are an independent probability
sample of the auto-accepted ones with known inclusion probabilities, and the
error rate is roughly constant over the window. With equal weights (one audit
rate) the effective size is the number of labels and the bound is the
continuity-corrected Wilson bound, which covers at least its nominal level in
Newcombe's evaluation; with unequal weights Kish's size is an approximation
(the design effect of the weights, not of any clustering).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any, Literal

from detectors.base import (
    BivariateDetector,
    check_bool,
    check_in_range,
    check_positive,
    check_weight,
)
from detectors.errors import SettingsError
from detectors.signals import SignalChange, SignalState

__all__ = ["AutoAcceptMonitor", "wilson_upper"]

# Fixed point as in detectors.calibration: exact integer sums, no float drift.
_FIXED_BITS = 80
_SIGNAL = "autoaccept_error"


def _fixed(x: float) -> int:
    return int(math.ldexp(x, _FIXED_BITS))


def wilson_upper(p: float, n: float, z: float) -> float:
    """Upper end of the continuity-corrected Wilson score interval for a proportion
    ``p`` observed on ``n`` (possibly effective, non-integer) trials, ``z`` the normal
    quantile (Newcombe 1998, method 4).

    >>> round(wilson_upper(0.0, 100, 1.6448536269514722), 4)
    0.0354
    >>> round(wilson_upper(0.03, 1000, 1.6448536269514722), 4)
    0.0408
    >>> wilson_upper(1.0, 10, 1.96)
    1.0
    """
    if p >= 1.0:
        return 1.0
    z2 = z * z
    root = math.sqrt(max(0.0, z2 + 2.0 - 1.0 / n + 4.0 * p * (n * (1.0 - p) - 1.0)))
    corrected = (2.0 * n * p + z2 + 1.0 + z * root) / (2.0 * (n + z2))
    # The closed form is derived for whole counts; for a weighted p off that lattice
    # on a tiny effective n it can fall below the plain Wilson bound, which the
    # continuity correction is meant only to widen. Keep the wider of the two.
    plain = (2.0 * n * p + z2 + z * math.sqrt(z2 + 4.0 * n * p * (1.0 - p))) / (2.0 * (n + z2))
    return min(1.0, max(corrected, plain))


class AutoAcceptMonitor(BivariateDetector[bool, float, list[SignalChange]]):
    """Error rate among auto-accepted items, from audit (and outcome) labels, with an
    upper confidence bound and an edge-triggered ``autoaccept_error`` alert.

    Parameters
    ----------
    window
        Number of most recent labelled auto-accepted items the estimate covers.
    max_error
        The signal enters drift when the upper bound exceeds this.
    confidence
        Level of the one-sided upper bound.
    hysteresis
        A drifting signal recovers once the upper bound is below
        ``max_error - hysteresis``.
    min_labelled
        No alert before this many labelled items are in the window. The bound
        is wide on few labels: at a 95% level, even with no error at all it
        stays above 0.05 until about 70 (effective) labels, 104 at a true error
        of 1%, 175 at 2%. With ``min_labelled`` below that the signal starts in
        drift, meaning "not yet shown below ``max_error``", and recovers as
        audits accumulate; the default 200 spares a model with a low error
        that start-up alert.

    Examples
    --------
    A 2% audit (weight 50) of auto-accepted items that are wrong 3% of the time:

    >>> import random
    >>> rng = random.Random(4)
    >>> mon = AutoAcceptMonitor(window=2000, max_error=0.05)
    >>> for _ in range(100_000):
    ...     wrong = rng.random() < 0.03
    ...     if rng.random() < 0.02:
    ...         alerts = mon.update(not wrong, weight=50.0)
    >>> mon.count, round(mon.error, 3), round(mon.upper, 3), mon.state().drifting
    (2000, 0.025, 0.032, False)

    Then the model degrades: 10% of what it auto-accepts is wrong. The alert
    fires a few hundred audit labels later (the ``n``-th label after the change):

    >>> events, n = [], 0
    >>> for i in range(100_000):
    ...     wrong = rng.random() < 0.10
    ...     if rng.random() < 0.02:
    ...         n += 1
    ...         events += [(n, a.state, round(a.statistic, 3)) for a in mon.update(not wrong, 50.0)]
    >>> events, round(mon.error, 1), mon.effective_count
    ([(331, 'drift', 0.05)], 0.1, 2000.0)
    """

    _settings = ("window", "max_error", "confidence", "hysteresis", "min_labelled")

    def __init__(
        self,
        window: int = 2000,
        max_error: float = 0.05,
        confidence: float = 0.95,
        hysteresis: float = 0.005,
        min_labelled: int = 200,
    ) -> None:
        self.window = window
        self.max_error = max_error
        self.confidence = confidence
        self.hysteresis = hysteresis
        self.min_labelled = min_labelled
        check_positive("window", window, integer=True)
        check_in_range("max_error", max_error, 0.0, 1.0)
        check_in_range("confidence", confidence, 0.0, 1.0)
        if not 0.5 <= confidence < 1.0:
            raise SettingsError(f"'confidence' must be in [0.5, 1); got {confidence!r}")
        check_in_range("hysteresis", hysteresis, 0.0, 1.0)
        check_positive("min_labelled", min_labelled, integer=True)
        self._z = NormalDist().inv_cdf(confidence)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 300, "max_error": 0.08, "min_labelled": 30}
        yield {
            "window": 100,
            "max_error": 0.1,
            "confidence": 0.9,
            "hysteresis": 0.0,
            "min_labelled": 50,
        }

    def _reset(self) -> None:
        # Ring buffer of the window; the oldest item is at ``_head`` once it is full.
        self._correct: list[bool] = []
        self._weight: list[float] = []
        self._head = 0
        # Fixed-point sums over the window: w (2**80), w * wrong (2**80), w**2 (2**160).
        self._w = 0
        self._w_err = 0
        self._w2 = 0
        self._seen = 0
        self._drift = False

    def _state(self) -> dict[str, Any]:
        return {
            "correct": list(self._correct),
            "weight": list(self._weight),
            "head": self._head,
            "w": self._w,
            "w_err": self._w_err,
            "w2": self._w2,
            "seen": self._seen,
            "drift": self._drift,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._correct = [bool(y) for y in state["correct"]]
        self._weight = [float(w) for w in state["weight"]]
        self._head = int(state["head"])
        self._w = int(state["w"])
        self._w_err = int(state["w_err"])
        self._w2 = int(state["w2"])
        self._seen = int(state["seen"])
        self._drift = bool(state["drift"])

    def _add(self, correct: bool, weight: float, sign: int) -> None:
        w = _fixed(weight)
        self._w += sign * w
        self._w2 += sign * w * w
        if not correct:
            self._w_err += sign * w

    def update(self, correct: bool, weight: float = 1.0) -> list[SignalChange]:
        """Add the label of one auto-accepted item; return the alerts it triggers.

        ``correct`` is whether the model was right (a bool); ``weight`` is
        ``1 / inclusion probability`` of the label, a finite number > 0.
        """
        correct = check_bool("correct", correct)
        w = check_weight("weight", weight)
        if len(self._correct) < self.window:
            self._correct.append(correct)
            self._weight.append(w)
        else:
            h = self._head
            self._add(self._correct[h], self._weight[h], -1)
            self._correct[h] = correct
            self._weight[h] = w
            self._head = (h + 1) % self.window
        self._add(correct, w, +1)
        self._seen += 1
        return self._edges_triggered()

    def _edges_triggered(self) -> list[SignalChange]:
        if len(self._correct) < self.min_labelled:
            return []
        upper = self.upper
        if not self._drift and upper > self.max_error:
            self._drift = True
            return [self._change("drift", upper)]
        if self._drift and upper < self.max_error - self.hysteresis:
            self._drift = False
            return [self._change("recovered", upper)]
        return []

    def _change(self, state: Literal["drift", "recovered"], upper: float) -> SignalChange:
        return SignalChange(
            signal=_SIGNAL,
            detector=type(self).__name__,
            state=state,
            events_seen=self._seen,
            statistic=upper,
            threshold=self.max_error,
            reference=None,
            current={
                "error": self.error,
                "upper": upper,
                "count": self.count,
                "effective_count": self.effective_count,
            },
        )

    def state(self) -> SignalState:
        """Current reading of ``autoaccept_error`` (the upper bound), for gauges."""
        return SignalState(_SIGNAL, type(self).__name__, self.upper, self.max_error, self._drift)

    @property
    def error(self) -> float:
        """Weighted error rate among auto-accepted items in the window (NaN when empty)."""
        return self._w_err / self._w if self._w else math.nan

    @property
    def upper(self) -> float:
        """One-sided upper bound on :attr:`error` at level ``confidence`` (NaN when empty)."""
        if not self._w:
            return math.nan
        return wilson_upper(self.error, self.effective_count, self._z)

    @property
    def count(self) -> int:
        """Labelled auto-accepted items in the window."""
        return len(self._correct)

    @property
    def effective_count(self) -> float:
        """Kish's effective sample size ``(sum w)**2 / sum w**2`` (0 when empty)."""
        return self._w * self._w / self._w2 if self._w2 else 0.0

    @property
    def events_seen(self) -> int:
        """Labels seen since the start (not only in the window)."""
        return self._seen
