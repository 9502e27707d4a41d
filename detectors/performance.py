"""Accuracy estimated before labels arrive (confidence-based performance estimation).

NannyML's CBPE (confidence-based performance estimation) observes that for a
calibrated model the probability that a prediction is correct *is* its
confidence, so the expected accuracy of a batch of unlabelled predictions is
the mean of their calibrated confidences. This holds under covariate shift
(the inputs change, ``P(correct | confidence)`` does not), which is when it is
useful: accuracy can be watched before any label arrives.

:class:`PerformanceEstimator` learns the calibration map from the labelled
``(confidence, correct)`` pairs it is shown (a bounded ring buffer of the
latest ``calibration_window``), by histogram binning of the residual: in bin
``b`` the map adds ``offset_b = (sum w*y - sum w*c) / (sum w + m)`` to a
confidence, the sums over the labelled pairs ``(c, y)`` of the bin with their
weights ``w`` (``1 / inclusion probability`` of the label; all 1, this is
``(correct_b - sum of confidences_b) / (n_b + m)``). Correcting the residual
rather than replacing a confidence by its bin's accuracy keeps the within-bin
slope, so a shift of the confidences *inside* a bin (exactly what covariate
shift does) is not mistaken for a change of accuracy. The pseudo-count
``m = prior_strength`` shrinks a bin with few labels towards "calibrated as is".

The weights matter when labels come from review: the escalated (uncertain)
items are all labelled and only an audit sample of the confident ones, so
within a bin the labelled items over-represent whatever made an item more
likely to be escalated. Weighting each label by its inverse inclusion
probability makes the per-bin residual an estimate over all events, provided
the labels are a probability sample with known, non-zero inclusion
probabilities. The pseudo-count is in units of weight: a bin holding a few
heavy audit labels is shrunk less than its number of labels alone would
suggest, so its offset is noisier than an unweighted bin of as many labels.

The map is applied only where the labels show it helps
(``calibration_map="auto"``, the default). For a model that is already calibrated
the offsets are pure sampling noise, and under covariate shift the unlabelled
window leans on the bins that had the fewest labels, so a map that is always
applied *adds* error (``benchmarks/cbpe_quality.py``, 2,000-event shifted windows:
0.8 points on average against the window's expected accuracy with 5,000 labels,
1.3 with 1,000, where the raw mean confidence is exact). The map corrects the
window when any of three checks says so (the map itself always rests on all the
labels):

* **Held-out Brier check** (does the map predict labels better than the raw
  confidences?). The labelled pairs are split into ``_FOLDS`` folds (by their slot
  in the ring buffer, so a label keeps its fold until evicted); the map learned
  from the other folds is scored on each fold. For fold ``k`` and bin ``b``, with
  ``W`` the sum of weights, ``R`` the sum of weighted residuals ``w * (y - c)`` and
  ``o`` the offset learned without fold ``k``, the Brier score drops by
  ``2 * o * R_kb - o**2 * W_kb`` (the ``sum w * (y - c)**2`` terms cancel): the
  check needs only per-fold per-bin sums, ``O(folds * bins)``, re-run each time the
  labels grew by ``1/_RECHECK`` of the window. It passes when the cross-fitted gain
  is > 0. Each fold's map rests on 4/5 of the labels, a little noisier than the map
  applied, so the check errs towards the identity.
* **Calibration test on all the labels** (do the labels reject "calibrated"?). The
  Brier check spends labels: each fold's map rests on 4/5 of them and is scored on
  the rest, so with few labels (1,000) a model that does need the map can fail it
  by chance (2 % of reference samples of the benchmark's overconfident model,
  whose labels sit mostly where it is nearly right). ``sum_b R_b**2 / V_b`` over
  the bins with labels (``R_b = sum w (y - c)``, ``V_b = sum w**2 c (1 - c)``, its
  variance were the model calibrated, ``y ~ Bernoulli(c)``) is chi-squared with one
  degree of freedom per bin under calibration; the map applies when its p-value
  is below 5 % (``calibration_pvalue``). A calibrated model's labels pass it 95 %
  of the time, so the raw confidences stay for them.
* **Window calibration test** (is the correction *this window* gets more than noise?).
  The Brier check scores the map on the labels' confidences; a shifted window puts
  its weight where the labels are few and the correction may be largest (an
  overconfident model is most wrong at low confidence). The window's correction
  ``d = sum_b k_b * o_b / n`` (``k_b`` of its ``n`` events in bin ``b``) has, were the
  model calibrated (``y ~ Bernoulli(c)``), variance
  ``sum_b k_b**2 * sum_i w_i**2 c_i (1 - c_i) / (W_b + m)**2 / n**2``; the map
  applies when ``|z| > 2`` (two-sided ~5 %).

Measured (``benchmarks/cbpe_quality.py``, 2,000-event windows, 5,000 labels): on a
calibrated model the error is that of the raw confidences (the window's own
Bernoulli noise), on an overconfident one that of the map (with 1,000 labels too:
the calibration test on all labels applies it to every window there, where the
two other checks missed 2 %). Both checks and their
result are reported by :attr:`PerformanceEstimator.calibration_info` and in every
alert's ``current``.

Assumed: the labelled pairs and the unlabelled window share ``P(correct |
confidence)`` (covariate shift); the labels are a probability sample with the
weights given (the null variance uses them as known). The decision is re-read with
the window: a window whose correction hovers near ``|z| = 2`` can switch between the
two estimates, which differ there by about two standard errors of the map.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from math import ldexp
from operator import mul
from typing import Any, Literal

from detectors._native import ConfidenceWindow
from detectors.base import (
    UnivariateDetector,
    check_bool,
    check_in_range,
    check_positive,
    check_probability,
    check_weight,
)
from detectors.calibration import reliability_edges
from detectors.errors import SettingsError
from detectors.signals import SignalChange, SignalState

__all__ = ["PerformanceEstimator"]

# Fixed point as in detectors.calibration: exact integer sums, no float drift.
_FIXED_BITS = 80
_ONE = 1 << _FIXED_BITS
# The estimate is a sum over all bins (O(bins)); re-reading it on every event cost ~12 µs
# per event here. Checking the alert condition every few events delays an alert by at
# most that many events out of a window of hundreds.
_CHECK_EVERY = 8
# Folds of the held-out check. 5: each fold's map rests on 80 % of the labels (close to the
# map applied) while each held-out fold is large enough to score it.
_FOLDS = 5
_MODES = ("auto", "always", "never")
_RECHECK = 32
# The labels' calibration test's level: the map applies when all the labels reject
# "calibrated" at this level, even if the cross-fitted Brier check fails.
_CALIBRATION_ALPHA = 0.05
# The window test's bar: |z| > 2, a two-sided ~5 % test of "calibrated" on the window's
# correction (the map's false corrections of a calibrated model are that rare).
_WINDOW_Z = 2.0


def _chi2_sf(df: int, x: float) -> float:
    """``P(X > x)`` for ``X`` chi-squared with integer ``df`` degrees of freedom, in plain
    Python (this module imports no numpy or scipy): ``Q(df / 2, x / 2)`` from
    ``Q(1/2, y) = erfc(sqrt y)`` or ``Q(1, y) = exp(-y)`` and ``Q(a + 1, y) = Q(a, y) +
    y**a exp(-y) / Gamma(a + 1)``.

    >>> round(_chi2_sf(1, 3.841459), 6), round(_chi2_sf(10, 18.307038), 6)
    (0.05, 0.05)
    """
    y = x / 2.0
    if df % 2:
        a, q = 0.5, math.erfc(math.sqrt(y))
    else:
        a, q = 1.0, math.exp(-y)
    while a < df / 2.0:
        q += math.exp(a * math.log(y) - y - math.lgamma(a + 1.0)) if y > 0 else 0.0
        a += 1.0
    return min(1.0, q)


def _fixed(x: float) -> int:
    return int(math.ldexp(x, _FIXED_BITS))


class PerformanceEstimator(UnivariateDetector[float, list[SignalChange]]):
    """Estimate accuracy from confidences (CBPE) and alert when it drops.

    Parameters
    ----------
    bins
        Equal-width bins of the calibration map (same edges as
        :class:`~detectors.calibration.CalibrationMonitor`).
    window
        Number of most recent unlabelled predictions the estimate covers.
    calibration_window
        Number of most recent labelled pairs the calibration map (and the check
        whether to apply it) rests on. Older labels are forgotten, so that the map
        follows a model whose calibration changes; :attr:`labels` is how many the
        map rests on, :attr:`labels_seen` how many were ever observed, and both are
        in :attr:`calibration_info` and in every alert.
    prior_strength
        Pseudo-count ``m`` shrinking each bin's correction towards zero.
    reference_accuracy
        Accuracy the model is expected to have; ``None`` takes the estimate
        when the window is full and at least ``min_events`` labels have shaped
        the calibration map.
    threshold
        ``estimated_accuracy`` enters drift below ``reference - threshold``.
    hysteresis
        It recovers at or above ``reference - threshold + hysteresis``.
    min_events
        No alert before this many predictions are in the window.
    calibration_map
        ``"auto"`` (default): apply the binned map only while its cross-fitted
        Brier score on the labels beats the raw confidences' (see the module
        docstring); ``"always"``: apply it whatever the labels say (vigil before
        the check, kept for comparison); ``"never"``: the mean raw confidence.

    Examples
    --------
    The model is calibrated on what it was trained on; in production its inputs
    move to where it is less sure, and accuracy falls before any label says so.

    >>> import random
    >>> rng = random.Random(0)
    >>> est = PerformanceEstimator(window=2000, min_events=500)
    >>> for _ in range(5000):  # labelled reference data
    ...     c = rng.uniform(0.6, 1.0)
    ...     est.observe_label(c, rng.random() < c)
    >>> alerts = []
    >>> for i in range(6000):
    ...     c = rng.uniform(0.6, 1.0) if i < 3000 else rng.uniform(0.5, 0.8)
    ...     alerts += [(i, a.state) for a in est.update(c)]
    >>> round(est.reference, 3), round(est.estimated_accuracy, 3), alerts
    (0.798, 0.649, [(3687, 'drift')])

    The model was calibrated, so the labels did not earn the map: the estimate is
    the mean raw confidence, and says what it rests on.

    >>> info = est.calibration_info
    >>> info["method"], info["labels"], info["labels_seen"], info["calibration_window"]
    ('identity', 5000, 5000, 5000)
    """

    _settings = (
        "bins",
        "window",
        "calibration_window",
        "prior_strength",
        "reference_accuracy",
        "threshold",
        "hysteresis",
        "min_events",
        "calibration_map",
    )

    def __init__(
        self,
        bins: int = 20,
        window: int = 1000,
        calibration_window: int = 5000,
        prior_strength: float = 10.0,
        reference_accuracy: float | None = None,
        threshold: float = 0.05,
        hysteresis: float = 0.01,
        min_events: int = 200,
        calibration_map: Literal["auto", "always", "never"] = "auto",
    ) -> None:
        self.bins = bins
        self.window = window
        self.calibration_window = calibration_window
        self.prior_strength = prior_strength
        self.reference_accuracy = reference_accuracy
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.min_events = min_events
        self.calibration_map = calibration_map
        check_positive("bins", bins, integer=True)
        check_positive("window", window, integer=True)
        check_positive("calibration_window", calibration_window, integer=True)
        check_positive("prior_strength", prior_strength)
        if reference_accuracy is not None:
            check_in_range("reference_accuracy", reference_accuracy, 0.0, 1.0)
        check_in_range("threshold", threshold, 0.0, 1.0)
        check_in_range("hysteresis", hysteresis, 0.0, 1.0)
        check_positive("min_events", min_events, integer=True)
        if calibration_map not in _MODES:
            raise SettingsError(
                f"'calibration_map' must be one of {', '.join(_MODES)}; got {calibration_map!r}"
            )
        self._edges = reliability_edges(bins)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 200, "calibration_window": 300, "min_events": 50}
        yield {
            "bins": 5,
            "window": 100,
            "calibration_window": 300,
            "min_events": 20,
            "reference_accuracy": 0.75,
        }
        yield {
            "window": 200,
            "calibration_window": 300,
            "min_events": 50,
            "calibration_map": "always",
        }

    def _reset(self) -> None:
        # Unlabelled window: ring buffer, per-bin counts and fixed-point sums (in Rust:
        # the per-event part of the estimate).
        self._u = ConfidenceWindow(self._edges, self.window)
        # Labelled pairs for the calibration map.
        self._l_conf: list[float] = []
        self._l_correct: list[bool] = []
        self._l_weight: list[float] = []
        self._l_head = 0
        # Per bin: item count, fixed-point sums of w, w * correct and w * c.
        self._l_count = [0] * self.bins
        self._l_wsum = [0] * self.bins
        self._l_wsq = 0  # fixed-point sum of w * w over the labelled pairs (Kish size)
        self._labels_ready = False  # effective labelled size >= min_events
        self._l_hits = [0] * self.bins
        self._l_sum = [0] * self.bins
        # Per fold and bin (index fold * bins + bin), fixed point: sum of w and of
        # w * (correct - c), for the held-out check. A label's fold is its buffer
        # slot mod _FOLDS: derived from the buffer, so not part of the snapshot.
        self._f_w = [0] * (_FOLDS * self.bins)
        self._f_r = [0] * (_FOLDS * self.bins)
        # Per bin, fixed point: sum of w**2 * c * (1 - c), the variance of the bin's
        # weighted residual sum if the model were calibrated (the window test's null).
        self._l_null = [0] * self.bins
        self._seen = 0
        self._labelled = 0
        self._ref: float | None = self.reference_accuracy
        self._drift = False
        self._map_cache: tuple[list[float], list[float], float, bool] | None = None
        # Per bin: the map's offset and its null variance, recomputed only for the bins
        # a label touched since they were last read (most reads follow one label).
        self._offs = [0.0] * self.bins
        self._null_v = [0.0] * self.bins
        self._dirty = set(range(self.bins))
        # The held-out check's result and labels_seen when it ran: re-run once the labels
        # grew by 1/_RECHECK of the window (a stale decision for a few labels costs
        # nothing; re-running it for every label cost ~80 us each). In the snapshot, so
        # that a restored estimator decides when the running one would have.
        self._gain: float | None = None
        self._gain_at = 0
        self._calib_p = 1.0  # set with the map (derived from the label sums)

    def _state(self) -> dict[str, Any]:
        return {
            "u_conf": self._u.values(),
            "u_head": self._u.head,
            "u_count": self._u.counts(),
            "u_sum": self._u.sums(),
            "l_conf": list(self._l_conf),
            "l_correct": list(self._l_correct),
            "l_weight": list(self._l_weight),
            "l_head": self._l_head,
            "l_count": list(self._l_count),
            "l_wsum": list(self._l_wsum),
            "l_wsq": self._l_wsq,
            "l_hits": list(self._l_hits),
            "l_sum": list(self._l_sum),
            "seen": self._seen,
            "labelled": self._labelled,
            "ref": self._ref,
            "drift": self._drift,
            "gain": self._gain,
            "gain_at": self._gain_at,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        # The counts and sums are exact integers: recomputed from the values, they are
        # the snapshot's (which keeps them for readers of the format).
        self._u = ConfidenceWindow(
            self._edges, self.window, [float(c) for c in state["u_conf"]], int(state["u_head"])
        )
        self._l_conf = [float(c) for c in state["l_conf"]]
        self._l_correct = [bool(y) for y in state["l_correct"]]
        self._l_head = int(state["l_head"])
        self._l_count = [int(v) for v in state["l_count"]]
        if "l_weight" in state:
            self._l_weight = [float(w) for w in state["l_weight"]]
            self._l_wsum = [int(v) for v in state["l_wsum"]]
            self._l_hits = [int(v) for v in state["l_hits"]]
        else:
            # A snapshot from before weights: every label weighed 1, hits were counts.
            self._l_weight = [1.0] * len(self._l_conf)
            self._l_wsum = [k * _ONE for k in self._l_count]
            self._l_hits = [int(v) * _ONE for v in state["l_hits"]]
        self._l_sum = [int(v) for v in state["l_sum"]]
        self._l_wsq = (
            int(state["l_wsq"])
            if "l_wsq" in state
            else sum(_ONE if w == 1.0 else _fixed(w * w) for w in self._l_weight)
        )
        # The fold sums are exact integers: rebuilt from the buffer they are the sums
        # the running object holds, whatever order the labels were added in.
        for slot, (c, y, w) in enumerate(
            zip(self._l_conf, self._l_correct, self._l_weight, strict=True)
        ):
            self._add_label(slot, c, y, w, +1, totals=False)
        self._labels_ready = self.effective_labelled >= self.min_events
        self._seen = int(state["seen"])
        self._labelled = int(state["labelled"])
        self._ref = None if state["ref"] is None else float(state["ref"])
        self._drift = bool(state["drift"])
        gain = state.get("gain")  # absent from snapshots taken before the check
        self._gain = None if gain is None else float(gain)
        self._gain_at = int(state.get("gain_at", 0))
        self._map_cache = None
        self._dirty = set(range(self.bins))

    def _bin(self, confidence: float) -> int:
        return bisect_left(self._edges, confidence)

    def _add_label(
        self,
        slot: int,
        confidence: float,
        correct: bool,
        weight: float,
        sign: int,
        *,
        totals: bool = True,
    ) -> None:
        """Add (``sign=+1``) or remove (-1) one label's terms, computed from the stored
        floats so that an evicted label subtracts exactly what it added. ``totals=False``:
        only the sums the decision rests on (fold sums, null variance), which are not
        in the snapshot and are rebuilt from the label buffer on restore."""
        b = bisect_left(self._edges, confidence)
        null = confidence * (1.0 - confidence)
        if weight == 1.0:
            w, wc, wsq = _ONE, int(ldexp(confidence, _FIXED_BITS)), _ONE  # _fixed, inlined
        else:
            # w * c rounds once, as an offline sum(w * c) does.
            w, wc, wsq = _fixed(weight), _fixed(weight * confidence), _fixed(weight * weight)
            null *= weight * weight
        if totals:
            self._l_count[b] += sign
            self._l_wsum[b] += sign * w
            self._l_wsq += sign * wsq
            if correct:
                self._l_hits[b] += sign * w
            self._l_sum[b] += sign * wc
            self._dirty.add(b)
        i = (slot % _FOLDS) * self.bins + b
        self._f_w[i] += sign * w
        self._f_r[i] += sign * ((w if correct else 0) - wc)
        self._l_null[b] += sign * int(ldexp(null, _FIXED_BITS))

    def observe_label(self, confidence: float, correct: bool, weight: float = 1.0) -> None:
        """Learn the calibration map from one labelled prediction; ``weight`` is the
        label's ``1 / inclusion probability`` (a finite number > 0). Beyond
        ``calibration_window`` labels the oldest is forgotten (counted in
        :attr:`calibration_info`)."""
        c = check_probability("confidence", confidence)
        y = correct if correct is True or correct is False else check_bool("correct", correct)
        # Most labels weigh 1.0: skip the call then.
        w = weight if weight == 1.0 and type(weight) is float else check_weight("weight", weight)
        if len(self._l_conf) < self.calibration_window:
            slot = len(self._l_conf)
            self._l_conf.append(c)
            self._l_correct.append(y)
            self._l_weight.append(w)
        else:
            slot = h = self._l_head
            self._add_label(h, self._l_conf[h], self._l_correct[h], self._l_weight[h], -1)
            self._l_conf[h] = c
            self._l_correct[h] = y
            self._l_weight[h] = w
            self._l_head = (h + 1) % self.calibration_window
        self._add_label(slot, c, y, w, +1)
        self._labelled += 1
        self._map_cache = None
        if self._ref is None:
            self._labels_ready = self.effective_labelled >= self.min_events

    def update(self, confidence: float) -> list[SignalChange]:
        """Add one unlabelled prediction; return the alerts it triggers (usually none)."""
        # Called once per event: the checks and helpers are inlined (same arithmetic).
        u = self._u
        if type(confidence) is float and 0.0 <= confidence <= 1.0:
            u.push(confidence)
        else:
            u.push(check_probability("confidence", confidence))
        self._seen += 1
        # The baseline waits for a calibration map learned from labels: an estimate taken
        # from raw confidences moves as soon as labels arrive, which read as a drop. With
        # weighted labels (a review sample), from ``min_events`` *effective* labels: a map
        # resting on a handful of heavy audit labels would set a baseline off by points.
        if self._ref is None:
            # ModelMonitor.observe reads this condition itself (per event) to hold values
            # back for update_many: no alert can come while it holds.
            if not self._labels_ready:  # nothing to read until labels (no alert without _ref)
                return []
            if len(u) == self.window:
                self._ref = self.estimated_accuracy
        if self._seen % _CHECK_EVERY:
            return []
        return self._edges_triggered()

    def update_many(self, confidences: Sequence[float]) -> list[SignalChange]:
        """Add unlabelled predictions in order: the same state, and the same alerts, as
        :meth:`update` of each in turn (tested bit for bit). All are checked before any
        is added: an invalid one raises and adds none.

        The window takes them a run at a time, in Rust; the alert condition is read
        where :meth:`update` reads it (every few predictions) and the reference is
        taken where it would be (at the prediction that fills the window once the labels
        are ready). Before a reference, ~3x cheaper per prediction than :meth:`update`
        (~90 against ~300 ns here); with one, the alert test every few predictions costs
        most, the same either way.

        >>> one = PerformanceEstimator(window=40, min_events=20)
        >>> many = PerformanceEstimator(window=40, min_events=20)
        >>> for i in range(200):  # a calibrated model: 60 % right at 0.6, 90 % at 0.9
        ...     for est in (one, many):
        ...         est.observe_label(0.9 if i % 2 else 0.6, i % 10 < (9 if i % 2 else 6))
        >>> cs = [0.9] * 100 + [0.6] * 100
        >>> alerts = [(i, a.state) for i, c in enumerate(cs) for a in one.update(c)]
        >>> alerts, [a.events_seen for a in many.update_many(cs)]
        ([(111, 'drift')], [112])
        >>> (many.reference, many.estimated_accuracy) == (one.reference, one.estimated_accuracy)
        True
        """
        values = confidences if type(confidences) is list else list(confidences)
        for c in values:
            if type(c) is not float or not 0.0 <= c <= 1.0:  # update's test, then its check
                values = [check_probability("confidence", c) for c in values]
                break
        u = self._u
        n = len(values)
        if self._ref is None and not self._labels_ready:  # nothing to read until labels
            u.extend(values)
            self._seen += n
            return []
        changes: list[SignalChange] = []
        window = self.window
        i = 0
        while i < n:  # a run up to the next place update() would read something
            seen = self._seen
            stop = i + _CHECK_EVERY - seen % _CHECK_EVERY
            waiting = self._ref is None and self._labels_ready
            if waiting:  # the value that fills the window takes the reference
                stop = min(stop, i + max(1, window - len(u)))
            if stop > n:
                stop = n
            u.extend(values[i:stop])
            self._seen = seen + stop - i
            if waiting and len(u) == window:
                self._ref = self.estimated_accuracy
            if not self._seen % _CHECK_EVERY:
                changes += self._edges_triggered()
            i = stop
        return changes

    def _edges_triggered(self) -> list[SignalChange]:
        if self._ref is None or len(self._u) < self.min_events:
            return []
        est = self.estimated_accuracy
        floor = self._ref - self.threshold
        if not self._drift and est < floor:
            self._drift = True
            return [self._change("drift", est, floor)]
        if self._drift and est >= floor + self.hysteresis:
            self._drift = False
            return [self._change("recovered", est, floor)]
        return []

    def _change(self, state: Any, est: float, floor: float) -> SignalChange:
        return SignalChange(
            signal="estimated_accuracy",
            detector=type(self).__name__,
            state=state,
            events_seen=self._seen,
            statistic=est,
            threshold=floor,
            reference=self._ref,
            current={
                "estimated_accuracy": est,
                "count": len(self._u),
                "calibration": self.calibration_info,
            },
        )

    def state(self) -> SignalState:
        """Current reading of ``estimated_accuracy``, for gauges."""
        floor = math.nan if self._ref is None else self._ref - self.threshold
        return SignalState(
            "estimated_accuracy", type(self).__name__, self.estimated_accuracy, floor, self._drift
        )

    def _map(self) -> tuple[list[float], list[float], float, bool]:
        """(per-bin offsets, per-bin null variances of the offsets, cross-fitted Brier
        gain per unit of label weight, whether the Brier check passed). Labels arrive
        far less often than events: kept until the next label."""
        cached = self._map_cache
        if cached is not None:
            return cached
        m = self.prior_strength
        auto = self.calibration_map == "auto"
        offsets, null = self._offs, self._null_v
        wsum, hits, sums, l_null = self._l_wsum, self._l_hits, self._l_sum, self._l_null
        for b in self._dirty:
            w = wsum[b]
            # With unit weights h = n_correct * 2**80 and w = n * 2**80: the unweighted
            # map, bit for bit (w / _ONE is the exact float n).
            offsets[b] = (hits[b] - sums[b]) / _ONE / (w / _ONE + m)
            if auto:
                null[b] = ldexp(l_null[b], -_FIXED_BITS) / (ldexp(w, -_FIXED_BITS) + m) ** 2
        self._dirty.clear()
        gain = 0.0
        if auto:
            n = len(self._l_conf)
            if self._gain is None or self._labelled - self._gain_at >= max(1, n // _RECHECK):
                self._gain = self._held_out_gain()
                self._gain_at = self._labelled
            gain = self._gain
            self._calib_p = self._calibration_pvalue()
        needed = gain > 0.0 or self._calib_p < _CALIBRATION_ALPHA
        cached = self._map_cache = (offsets, null, gain, needed)
        return cached

    def _calibration_pvalue(self) -> float:
        """P-value of "calibrated" from all the labels: ``sum_b R_b**2 / V_b`` over the
        bins with labels (``R_b`` the weighted residual sum ``sum w (y - c)``, ``V_b``
        its variance ``sum w**2 c (1 - c)`` were the model calibrated), against the
        chi-squared distribution with one degree of freedom per bin; 1.0 without
        labels."""
        stat = 0.0
        df = 0
        for h, s, v in zip(self._l_hits, self._l_sum, self._l_null, strict=True):
            if v > 0:
                r = ldexp(h - s, -_FIXED_BITS)
                stat += r * r / ldexp(v, -_FIXED_BITS)
                df += 1
        return _chi2_sf(df, stat) if df else 1.0

    def _held_out_gain(self) -> float:
        """Brier score of the raw confidences minus that of the map learned without
        fold k, on fold k, summed over folds and bins (``2 * o * R_kb - o**2 * W_kb``),
        per unit of label weight; 0.0 without labels."""
        m, nb = self.prior_strength, self.bins
        f_w = [ldexp(v, -_FIXED_BITS) for v in self._f_w]
        f_r = [ldexp(v, -_FIXED_BITS) for v in self._f_r]
        gain = total = 0.0
        for b, (w, h, s) in enumerate(zip(self._l_wsum, self._l_hits, self._l_sum, strict=True)):
            if not w:
                continue
            w_b, r_b = ldexp(w, -_FIXED_BITS), ldexp(h - s, -_FIXED_BITS)
            total += w_b
            for i in range(b, _FOLDS * nb, nb):
                w_k, r_k = f_w[i], f_r[i]
                o = (r_b - r_k) / (w_b - w_k + m)
                gain += o * (2.0 * r_k - o * w_k)
        return gain / total if total else 0.0

    def _window_test(self, offsets: list[float], null: list[float]) -> float | None:
        """The window's calibration z statistic: the map's correction of the window's
        mean confidence over its standard error were the model calibrated (``None``
        for an empty window or no labels under it)."""
        # Read every _CHECK_EVERY events while the Brier check fails: C-level loops.
        counts = self._u.counts()
        corr = sum(map(mul, counts, offsets))
        var = sum(map(mul, map(mul, counts, counts), null))
        return corr / math.sqrt(var) if var > 0.0 else None

    def _applied(self) -> tuple[list[float], bool]:
        """(offsets, whether the map corrects the current window)."""
        offsets, null, _, brier_ok = self._map()
        mode = self.calibration_map
        if mode != "auto":
            return offsets, mode == "always"
        if brier_ok:
            return offsets, True
        z = self._window_test(offsets, null)
        return offsets, z is not None and abs(z) > _WINDOW_Z

    def calibrate(self, confidence: float) -> float:
        """The calibrated confidence: probability that this prediction is correct
        (the confidence itself while the map does not correct the window)."""
        c = check_probability("confidence", confidence)
        offsets, applied = self._applied()
        if not applied:
            return c
        return min(1.0, max(0.0, c + offsets[self._bin(c)]))

    @property
    def estimated_accuracy(self) -> float:
        """Mean calibrated confidence of the unlabelled window (NaN when empty)."""
        n = len(self._u)
        if n == 0:
            return math.nan
        offsets, applied = self._applied()
        # sum(s / 2**80 + k * off) over the bins' sums and counts, or sum(s) / 2**80.
        total = self._u.total(offsets if applied else None)
        return min(1.0, max(0.0, total / n))

    @property
    def calibration_info(self) -> dict[str, Any]:
        """What the estimate rests on, as plain data (also in every alert's ``current``).

        ``method``: ``"binned"`` (the calibration map corrects the window) or
        ``"identity"`` (the raw confidences); ``mode``: the ``calibration_map``
        setting; ``labels``: labelled pairs the map and its checks rest on (at most
        ``calibration_window``); ``effective_labels``: their Kish effective size;
        ``labels_seen``: labels ever observed; ``labels_forgotten``: those evicted
        from the window; ``brier_gain``: the cross-fitted Brier score of the raw
        confidences minus the map's, per unit of label weight (> 0: the map helps);
        ``calibration_pvalue``: the p-value of "calibrated" from all the labels (the
        map applies when it is below 0.05); ``window_z``: the window's calibration
        z statistic (the map applies when
        ``|window_z| > 2`` even if ``brier_gain <= 0``). The last three are ``None``
        unless ``mode`` is ``"auto"`` (and ``window_z`` without a window or labels).
        """
        offsets, null, gain, _ = self._map()
        _, applied = self._applied()
        auto = self.calibration_map == "auto"
        n = len(self._l_conf)
        return {
            "method": "binned" if applied else "identity",
            "mode": self.calibration_map,
            "labels": n,
            "effective_labels": self.effective_labelled,
            "labels_seen": self._labelled,
            "labels_forgotten": self._labelled - n,
            "calibration_window": self.calibration_window,
            "brier_gain": gain if auto else None,
            "calibration_pvalue": self._calib_p if auto else None,
            "window_z": self._window_test(offsets, null) if auto else None,
        }

    @property
    def reference(self) -> float | None:
        """Reference accuracy (given, or the first full window's estimate)."""
        return self._ref

    @property
    def count(self) -> int:
        """Unlabelled predictions in the window."""
        return len(self._u)

    @property
    def effective_labelled(self) -> float:
        """Kish effective size of the labelled pairs, ``(sum w)**2 / sum w**2``
        (their number when every weight is 1)."""
        if not self._l_wsq:
            return 0.0
        return sum(self._l_wsum) ** 2 / (self._l_wsq * _ONE)

    @property
    def labels(self) -> int:
        """Labelled pairs the calibration map rests on: the latest ``calibration_window``
        of the :attr:`labels_seen`."""
        return len(self._l_conf)

    @property
    def labels_seen(self) -> int:
        """Labelled pairs ever observed (including those forgotten beyond the window)."""
        return self._labelled

    @property
    def labelled(self) -> int:
        """Labelled pairs in the calibration map (the same as :attr:`labels`)."""
        return len(self._l_conf)
