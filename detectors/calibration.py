"""Calibration of one model over its most recent labelled events.

:class:`CalibrationMonitor` keeps a ring buffer of the last ``window`` labelled
``(confidence, correct)`` pairs and, per equal-width reliability bin, running
sums that make every update O(1): add the new pair, subtract the evicted one.

Running float sums drift when the same values are added and subtracted millions
of times. Here every sum is an *integer*: confidences are held in fixed point
with 2**-80 resolution (a float in [0, 1] times 2**80 is exact, and truncating
to an int loses less than 2**-80), so additions and subtractions are exact and
the statistics equal an offline recomputation on the same window up to the one
rounding done when a property is read.

Labels may come from human review rather than from every event: items escalated
by a rule (inclusion probability 1) and a random audit sample of the
auto-accepted ones (inclusion probability ``p``). Each label then carries the
Horvitz-Thompson weight ``w = 1 / p`` and every statistic is the
self-normalised weighted one (``sum w*x / sum w``), which estimates the value
over *all* events provided the labelled items are a probability sample with
known, non-zero inclusion probabilities. With every weight 1 the statistics are
bit-for-bit the unweighted ones: every ratio is a quotient of integers (Python
rounds it correctly), and a weight of one only multiplies numerator and
denominator by the same power of two.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from detectors.base import (
    BivariateDetector,
    check_bool,
    check_in_range,
    check_positive,
    check_probability,
    check_weight,
)
from detectors.errors import SettingsError
from detectors.signals import SignalChange, SignalState

__all__ = ["CalibrationMonitor", "reliability_edges"]

# Fixed-point scale of confidences and log losses. 80 bits keep the truncation
# error (< 2**-80 per item, < 1e-18 over a million items) far below the 1e-9
# agreement with an offline recomputation that the monitor promises.
_FIXED_BITS = 80
_ONE = 1 << _FIXED_BITS


def _fixed(x: float) -> int:
    return int(math.ldexp(x, _FIXED_BITS))


def reliability_edges(bins: int) -> list[float]:
    """Inner bin edges, bit-for-bit ``numpy.linspace(0, 1, bins + 1)[1:-1]``.

    A confidence ``c`` falls in bin ``bisect_left(edges, c)``, which is what
    scikit-learn's ``calibration_curve(strategy="uniform")`` computes with
    ``np.searchsorted(bins[1:-1], y_prob)`` (numpy's default ``side="left"``):
    a value exactly on an edge belongs to the lower bin.

    >>> reliability_edges(4)
    [0.25, 0.5, 0.75]
    """
    # numpy.linspace multiplies by the step (start 0, stop 1), it does not divide.
    step = 1.0 / bins
    return [i * step for i in range(1, bins)]


class CalibrationMonitor(BivariateDetector[float, bool, list[SignalChange]]):
    """Rolling calibration of one model: ECE, MCE, Brier (Murphy decomposition),
    log loss and accuracy over the last ``window`` labelled events, with
    edge-triggered alerts on ``calibration`` and ``accuracy``.

    ``confidence`` is the probability the model gave to its predicted label and
    ``correct`` whether that label was right, so each bin compares mean
    confidence with the share of correct predictions (top-label calibration).
    Each label may carry a weight ``1 / inclusion probability`` (see the module
    docstring); every statistic is then weighted and self-normalised, while
    :attr:`count` and the count column of :attr:`bins_table` stay numbers of items.

    Parameters
    ----------
    bins
        Number of equal-width reliability bins on [0, 1] (scikit-learn's
        ``calibration_curve(strategy="uniform")`` binning; see
        :func:`reliability_edges`).
    window
        Number of most recent labelled events the statistics cover.
    ece_threshold
        The ``calibration`` signal enters drift when ECE rises above this.
    accuracy_drop
        The ``accuracy`` signal enters drift when accuracy falls below
        ``reference_accuracy - accuracy_drop``.
    reference_accuracy
        Accuracy the model is expected to have; ``None`` learns it as the
        accuracy of the first full window.
    hysteresis
        A signal in drift recovers only once its statistic is this far back on
        the good side of its threshold, so a statistic hovering at the threshold
        does not flap.
    min_labelled
        No alert is raised before this many labelled events are in the window:
        binned ECE is biased upwards on small samples.
    eps
        Log loss clips probabilities to ``[eps, 1 - eps]`` (scikit-learn's
        historical default 1e-15).

    Examples
    --------
    A model that says 0.9 but is right only 60% of the time, then gets fixed:

    >>> import random
    >>> rng = random.Random(0)
    >>> mon = CalibrationMonitor(window=500, ece_threshold=0.1, min_labelled=100)
    >>> alerts = []
    >>> for i in range(400):
    ...     alerts += [(i, a.signal, a.state) for a in mon.update(0.9, rng.random() < 0.6)]
    >>> alerts, round(mon.ece, 3), mon.bins_table
    ([(99, 'calibration', 'drift')], 0.31, [(8, 0.9, 0.59, 400)])
    >>> for i in range(400, 1400):
    ...     alerts += [(i, a.signal, a.state) for a in mon.update(0.9, rng.random() < 0.9)]
    >>> alerts[-1], round(mon.ece, 3), mon.count
    ((750, 'calibration', 'recovered'), 0.022, 500)

    Labels from review only: every uncertain item (confidence 0.6, right 60% of
    the time) is labelled, and a 2% audit of the confident ones (0.95, right 95%
    of the time) with weight 50. Unweighted, the window is mostly the uncertain
    items; weighted, it stands for the traffic, 80% of which is confident:

    >>> mon = CalibrationMonitor(window=5000)
    >>> for i in range(50_000):
    ...     if rng.random() < 0.2:
    ...         _ = mon.update(0.6, rng.random() < 0.6)
    ...     elif rng.random() < 0.02:
    ...         _ = mon.update(0.95, rng.random() < 0.95, weight=50.0)
    >>> round(mon.accuracy, 2), mon.count
    (0.88, 5000)
    """

    _settings = (
        "bins",
        "window",
        "ece_threshold",
        "accuracy_drop",
        "reference_accuracy",
        "hysteresis",
        "min_labelled",
        "eps",
    )

    def __init__(
        self,
        bins: int = 10,
        window: int = 1000,
        ece_threshold: float = 0.1,
        accuracy_drop: float = 0.05,
        reference_accuracy: float | None = None,
        hysteresis: float = 0.01,
        min_labelled: int = 200,
        eps: float = 1e-15,
    ) -> None:
        self.bins = bins
        self.window = window
        self.ece_threshold = ece_threshold
        self.accuracy_drop = accuracy_drop
        self.reference_accuracy = reference_accuracy
        self.hysteresis = hysteresis
        self.min_labelled = min_labelled
        self.eps = eps
        check_positive("bins", bins, integer=True)
        check_positive("window", window, integer=True)
        check_in_range("ece_threshold", ece_threshold, 0.0, 1.0)
        check_in_range("accuracy_drop", accuracy_drop, 0.0, 1.0)
        if reference_accuracy is not None:
            check_in_range("reference_accuracy", reference_accuracy, 0.0, 1.0)
        check_in_range("hysteresis", hysteresis, 0.0, 1.0)
        check_positive("min_labelled", min_labelled, integer=True)
        check_in_range("eps", eps, 0.0, 0.5)
        if eps == 0.0:
            raise SettingsError(f"'eps' must be > 0 so log loss stays finite; got {eps!r}")
        self._edges = reliability_edges(bins)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 300, "min_labelled": 50, "ece_threshold": 0.1}
        yield {"bins": 4, "window": 100, "min_labelled": 20, "reference_accuracy": 0.8}

    def _reset(self) -> None:
        # Ring buffer of the window; slots beyond ``_n`` are unused.
        self._conf: list[float] = []
        self._correct: list[bool] = []
        self._weight: list[float] = []
        self._head = 0  # index of the oldest item once the buffer is full
        # Per bin: item count, then fixed-point sums of w, w * correct and w * c.
        self._count = [0] * self.bins
        self._wsum = [0] * self.bins
        self._w_total = 0  # sum(self._wsum), kept so reading a ratio does not re-sum
        self._hits = [0] * self.bins
        self._conf_sum = [0] * self.bins
        # Whole window, fixed point: sum of w * (c - y)**2 (scale 2**240) and of
        # w * log loss (scale 2**160).
        self._sq_err = 0
        self._logloss = 0
        self._seen = 0
        self._ref_acc: float | None = self.reference_accuracy
        self._cal_drift = False
        self._acc_drift = False

    # -- state -------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "conf": list(self._conf),
            "correct": list(self._correct),
            "weight": list(self._weight),
            "head": self._head,
            "count": list(self._count),
            "wsum": list(self._wsum),
            "hits": list(self._hits),
            "conf_sum": list(self._conf_sum),
            "sq_err": self._sq_err,
            "logloss": self._logloss,
            "seen": self._seen,
            "ref_acc": self._ref_acc,
            "cal_drift": self._cal_drift,
            "acc_drift": self._acc_drift,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._conf = [float(c) for c in state["conf"]]
        self._correct = [bool(y) for y in state["correct"]]
        self._head = int(state["head"])
        self._count = [int(v) for v in state["count"]]
        self._conf_sum = [int(v) for v in state["conf_sum"]]
        if "weight" in state:
            self._weight = [float(w) for w in state["weight"]]
            self._wsum = [int(v) for v in state["wsum"]]
            self._hits = [int(v) for v in state["hits"]]
            self._sq_err = int(state["sq_err"])
            self._logloss = int(state["logloss"])
        else:
            # A snapshot from before weights (every label weighs 1): hits were item
            # counts and the two window sums were not multiplied by a weight.
            self._weight = [1.0] * len(self._conf)
            self._wsum = [k * _ONE for k in self._count]
            self._hits = [int(v) * _ONE for v in state["hits"]]
            self._sq_err = int(state["sq_err"]) * _ONE
            self._logloss = int(state["logloss"]) * _ONE
        self._w_total = sum(self._wsum)
        self._seen = int(state["seen"])
        ref = state["ref_acc"]
        self._ref_acc = None if ref is None else float(ref)
        self._cal_drift = bool(state["cal_drift"])
        self._acc_drift = bool(state["acc_drift"])

    # -- updates -----------------------------------------------------------

    def _item_logloss(self, confidence: float, correct: bool) -> int:
        p = confidence if correct else 1.0 - confidence
        p = min(max(p, self.eps), 1.0 - self.eps)
        return _fixed(-math.log(p))

    def _add(self, confidence: float, correct: bool, weight: float, sign: int) -> None:
        # The integers are computed from the stored floats, so an evicted item
        # subtracts exactly what it added.
        b = bisect_left(self._edges, confidence)
        c = _fixed(confidence)
        loss = (c - _ONE) ** 2 if correct else c * c
        if weight == 1.0:
            # The general branch with w = _ONE, by shifts instead of products.
            w = _ONE
            wc = c
            w_loss = loss << _FIXED_BITS
            w_log = self._item_logloss(confidence, correct) << _FIXED_BITS
        else:
            w = _fixed(weight)
            # w * c rounds once, as an offline sum(w * c) does.
            wc = _fixed(weight * confidence)
            w_loss = w * loss
            w_log = w * self._item_logloss(confidence, correct)
        self._count[b] += sign
        self._wsum[b] += sign * w
        self._w_total += sign * w
        if correct:
            self._hits[b] += sign * w
        self._conf_sum[b] += sign * wc
        self._sq_err += sign * w_loss
        self._logloss += sign * w_log

    def update(self, confidence: float, correct: bool, weight: float = 1.0) -> list[SignalChange]:
        """Add one labelled event; return the alerts it triggers (usually none).

        ``confidence`` must be a finite number in [0, 1], ``correct`` a bool and
        ``weight`` (``1 / inclusion probability`` of the label) a finite number > 0.
        """
        c = check_probability("confidence", confidence)
        if correct is not True and correct is not False:
            correct = check_bool("correct", correct)  # numpy's bool, else raises
        # The label path is not per event, but most labels weigh 1.0: skip the call then.
        w = weight if weight == 1.0 and type(weight) is float else check_weight("weight", weight)
        if len(self._conf) < self.window:
            self._conf.append(c)
            self._correct.append(correct)
            self._weight.append(w)
        else:
            h = self._head
            self._add(self._conf[h], self._correct[h], self._weight[h], -1)
            self._conf[h] = c
            self._correct[h] = correct
            self._weight[h] = w
            self._head = (h + 1) % self.window
        self._add(c, correct, w, +1)
        self._seen += 1
        if self._ref_acc is None and len(self._conf) == self.window:
            self._ref_acc = self.accuracy
        return self._edges_triggered()

    def _edges_triggered(self) -> list[SignalChange]:
        out: list[SignalChange] = []
        if self.count < self.min_labelled:
            return out
        ece = self.ece
        if not self._cal_drift and ece > self.ece_threshold:
            self._cal_drift = True
            out.append(self._change("calibration", "drift", ece, self.ece_threshold))
        elif self._cal_drift and ece < self.ece_threshold - self.hysteresis:
            self._cal_drift = False
            out.append(self._change("calibration", "recovered", ece, self.ece_threshold))
        if self._ref_acc is not None:
            acc = self.accuracy
            floor = self._ref_acc - self.accuracy_drop
            if not self._acc_drift and acc < floor:
                self._acc_drift = True
                out.append(self._change("accuracy", "drift", acc, floor))
            elif self._acc_drift and acc >= floor + self.hysteresis:
                self._acc_drift = False
                out.append(self._change("accuracy", "recovered", acc, floor))
        return out

    def _change(self, signal: str, state: Any, statistic: float, threshold: float) -> SignalChange:
        if signal == "calibration":
            reference: Any = None
            current: Any = {"ece": statistic, "mce": self.mce, "count": self.count}
        else:
            reference = self._ref_acc
            current = {"accuracy": statistic, "count": self.count}
        return SignalChange(
            signal=signal,
            detector=type(self).__name__,
            state=state,
            events_seen=self._seen,
            statistic=statistic,
            threshold=threshold,
            reference=reference,
            current=current,
        )

    def states(self) -> list[SignalState]:
        """Current readings of ``calibration`` and ``accuracy``, for gauges."""
        ref = self._ref_acc
        floor = math.nan if ref is None else ref - self.accuracy_drop
        return [
            SignalState(
                "calibration", type(self).__name__, self.ece, self.ece_threshold, self._cal_drift
            ),
            SignalState("accuracy", type(self).__name__, self.accuracy, floor, self._acc_drift),
        ]

    # -- results -----------------------------------------------------------

    @property
    def count(self) -> int:
        """Labelled events in the window (items, not weights)."""
        return len(self._conf)

    def _total_weight(self) -> int:
        """Sum of the window's weights, fixed point (0 when empty)."""
        return self._w_total

    @property
    def events_seen(self) -> int:
        """Labelled events seen since the start (not only in the window)."""
        return self._seen

    @property
    def reference(self) -> float | None:
        """Reference accuracy (given, or learned from the first full window)."""
        return self._ref_acc

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of W_b / W * |acc_b - conf_b|
        (W: sum of weights; with unit weights W_b / W = n_b / N)."""
        total = self._total_weight()
        if total == 0:
            return 0.0
        gap = sum(abs(h - s) for h, s in zip(self._hits, self._conf_sum, strict=True))
        return gap / total

    @property
    def mce(self) -> float:
        """Maximum calibration error: the largest |acc_b - conf_b| over non-empty bins."""
        return max(
            (
                abs(h - s) / w
                for k, w, h, s in zip(
                    self._count, self._wsum, self._hits, self._conf_sum, strict=True
                )
                if k
            ),
            default=0.0,
        )

    @property
    def brier(self) -> float:
        """Weighted mean of (confidence - correct)**2 over the window."""
        total = self._total_weight()
        return self._sq_err / (total * _ONE * _ONE) if total else 0.0

    @property
    def accuracy(self) -> float:
        """Weighted share of correct predictions in the window."""
        total = self._total_weight()
        return sum(self._hits) / total if total else 0.0

    @property
    def reliability(self) -> float:
        """Murphy's reliability term over the bins: sum W_b / W * (conf_b - acc_b)**2.

        With binned forecasts, brier = reliability - resolution + uncertainty
        holds up to the within-bin spread of confidences (zero when every item
        of a bin has the same confidence).
        """
        total_w = self._total_weight()
        if total_w == 0:
            return 0.0
        total = sum(
            (s - h) ** 2 / w
            for k, w, h, s in zip(self._count, self._wsum, self._hits, self._conf_sum, strict=True)
            if k
        )
        return total / total_w

    @property
    def resolution(self) -> float:
        """Murphy's resolution term: sum W_b / W * (acc_b - acc)**2."""
        total_w = self._total_weight()
        if total_w == 0:
            return 0.0
        acc = self.accuracy
        return (
            sum(
                w * (h / w - acc) ** 2
                for k, w, h in zip(self._count, self._wsum, self._hits, strict=True)
                if k
            )
            / total_w
        )

    @property
    def uncertainty(self) -> float:
        """Murphy's uncertainty term: acc * (1 - acc)."""
        acc = self.accuracy
        return acc * (1.0 - acc)

    @property
    def log_loss(self) -> float:
        """Weighted mean negative log probability of the observed outcome (clipped by ``eps``)."""
        total = self._total_weight()
        return self._logloss / (total * _ONE) if total else 0.0

    @property
    def bins_table(self) -> list[tuple[int, float, float, int]]:
        """Non-empty bins as ``(bin index, mean confidence, accuracy, count)``: weighted
        means, and the number of items (not of weights)."""
        return [
            (b, s / w, h / w, k)
            for b, (k, w, h, s) in enumerate(
                zip(self._count, self._wsum, self._hits, self._conf_sum, strict=True)
            )
            if k
        ]
