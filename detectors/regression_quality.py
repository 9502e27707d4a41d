"""Quality of a regression model from its labels: errors and interval coverage.

:class:`RegressionQualityMonitor` keeps the last ``window`` labelled predictions
and reports their mean absolute error, root mean squared error and bias
(mean of prediction minus truth), and, over those whose prediction carried an
interval, the **coverage**: the share of true values inside ``[lo, hi]``. A
model that promises 90 % intervals should cover about 90 % of the truths; when
it covers clearly fewer, its intervals are too narrow for what it now sees
(drift, a new regime, a broken uncertainty head) and the escalation policy's
``wide_interval`` rule no longer means what it was tuned for.

Every label weighs ``1 / inclusion probability`` (Horvitz-Thompson) and every
figure is the self-normalised weighted one, kept in exact fixed-point integer
sums as in :mod:`detectors.calibration`, so an O(1) update keeps the window's
figures equal to an offline recomputation (up to one rounding of ``w * e`` and
``w * e**2`` per item).

**The coverage alert.** The signal ``coverage`` enters drift when the data show,
at level ``confidence``, that coverage is below ``interval_level -
coverage_tolerance`` (the *floor*): the one-sided upper confidence bound on the
window's coverage (continuity-corrected Wilson, Newcombe 1998, at Kish's
effective sample size ``(sum w)**2 / sum w**2``; see
:func:`~detectors.autoaccept.wilson_upper`) falls below the floor. It recovers
once the window's coverage is back at or above the floor. What this assumes:
whether a labelled truth falls in its interval is an independent Bernoulli draw
with a probability constant over the window (otherwise the bound is about the
window's average), and the labels are a probability sample of the predictions
with known inclusion probabilities (with unequal weights Kish's size is an
approximation). Under that, while the true coverage is at or above the floor
each check alerts with probability at most ``1 - confidence``; for a model that
covers its nominal level, ``coverage_tolerance`` above the floor, the
probability is far smaller (``benchmarks/regression_quality.py`` measures the
false-alarm rate over consecutive, overlapping checks and the detection delay).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from statistics import NormalDist
from typing import Any, Literal

from detectors.autoaccept import wilson_upper
from detectors.base import (
    BivariateDetector,
    check_finite,
    check_in_range,
    check_positive,
    check_weight,
)
from detectors.calibration import _ONE, _fixed
from detectors.errors import InvalidObservationError, SettingsError
from detectors.prediction import RegressionPrediction
from detectors.signals import SignalChange, SignalState

__all__ = ["COVERAGE_SIGNAL", "RegressionQualityMonitor"]

COVERAGE_SIGNAL = "coverage"
# w * e**2 is summed in fixed point (2**80); beyond this a float would overflow there.
_MAX_SQUARED = 1e280


class RegressionQualityMonitor(BivariateDetector[RegressionPrediction, float, list[SignalChange]]):
    """Rolling MAE, RMSE, bias and interval coverage of one regression model, with an
    edge-triggered ``coverage`` alert.

    Parameters
    ----------
    window
        Number of most recent labelled predictions the figures cover.
    interval_level
        Nominal coverage of the model's prediction intervals (0.9 for 90 % intervals).
    coverage_tolerance
        How far below ``interval_level`` coverage may fall before it is a problem:
        the floor is ``interval_level - coverage_tolerance``.
    confidence
        Level of the one-sided upper bound on coverage that must fall below the
        floor for an alert.
    min_labelled
        No alert before this many labelled predictions with an interval are in
        the window: the first checks, on few labels, are where a calibrated
        model's rare false alerts come from (at 100, about one start in 2,000
        alerted in simulation; see ``benchmarks/regression_quality.py``).

    Examples
    --------
    A model with calibrated 90 % intervals (a normal error, ±1.645σ), whose
    errors then double, so that its intervals cover only 59 %:

    >>> import random
    >>> rng = random.Random(2)
    >>> mon = RegressionQualityMonitor(window=500, interval_level=0.9)
    >>> alerts = []
    >>> for i in range(3000):
    ...     sigma = 1.0 if i < 2000 else 2.0
    ...     truth = rng.gauss(10.0, sigma)
    ...     p = RegressionPrediction(10.0, (10.0 - 1.645, 10.0 + 1.645))
    ...     alerts += [(i, a.signal, a.state) for a in mon.update(p, truth)]
    >>> alerts
    [(2120, 'coverage', 'drift')]
    >>> round(mon.coverage, 2), round(mon.mae, 2), round(mon.rmse, 2), round(mon.bias, 2)
    (0.56, 1.61, 2.0, -0.12)

    Weighted: a label with inclusion probability 0.02 stands for 50 predictions.

    >>> mon = RegressionQualityMonitor()
    >>> _ = mon.update(RegressionPrediction(3.0), 1.0, weight=50.0)
    >>> _ = mon.update(RegressionPrediction(3.0), 4.0)
    >>> round(mon.bias, 4), round(mon.mae, 4), math.isnan(mon.coverage)
    (1.9412, 1.9804, True)
    """

    _settings = ("window", "interval_level", "coverage_tolerance", "confidence", "min_labelled")

    def __init__(
        self,
        window: int = 1000,
        interval_level: float = 0.9,
        coverage_tolerance: float = 0.05,
        confidence: float = 0.99,
        min_labelled: int = 200,
    ) -> None:
        self.window = window
        self.interval_level = interval_level
        self.coverage_tolerance = coverage_tolerance
        self.confidence = confidence
        self.min_labelled = min_labelled
        check_positive("window", window, integer=True)
        check_in_range("interval_level", interval_level, 0.0, 1.0)
        if not 0.0 < interval_level < 1.0:
            raise SettingsError(f"'interval_level' must be in (0, 1); got {interval_level!r}")
        check_in_range("coverage_tolerance", coverage_tolerance, 0.0, 1.0)
        if coverage_tolerance >= interval_level:
            raise SettingsError(
                f"'coverage_tolerance' must be below 'interval_level' ({interval_level!r}); "
                f"got {coverage_tolerance!r}"
            )
        check_in_range("confidence", confidence, 0.0, 1.0)
        if not 0.5 <= confidence < 1.0:
            raise SettingsError(f"'confidence' must be in [0.5, 1); got {confidence!r}")
        check_positive("min_labelled", min_labelled, integer=True)
        self._z = NormalDist().inv_cdf(confidence)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 300, "min_labelled": 50}
        yield {
            "window": 100,
            "interval_level": 0.8,
            "coverage_tolerance": 0.1,
            "confidence": 0.9,
            "min_labelled": 30,
        }

    def _reset(self) -> None:
        # Ring buffer of the window: (error, covered or None without interval, weight).
        self._items: list[tuple[float, bool | None, float]] = []
        self._head = 0
        # Fixed-point sums over the window: w, w*e, w*|e|, w*e**2 (all 2**80), and over
        # the items with an interval: w, w*covered (2**80), w**2 (2**160), their number.
        self._w = 0
        self._w_err = 0
        self._w_abs = 0
        self._w_sq = 0
        self._cw = 0
        self._cw_hit = 0
        self._cw2 = 0
        self._n_int = 0
        self._seen = 0
        self._drift = False

    def _state(self) -> dict[str, Any]:
        return {
            "items": [list(item) for item in self._items],
            "head": self._head,
            "w": self._w,
            "w_err": self._w_err,
            "w_abs": self._w_abs,
            "w_sq": self._w_sq,
            "cw": self._cw,
            "cw_hit": self._cw_hit,
            "cw2": self._cw2,
            "n_int": self._n_int,
            "seen": self._seen,
            "drift": self._drift,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._items = [
            (float(e), None if c is None else bool(c), float(w)) for e, c, w in state["items"]
        ]
        self._head = int(state["head"])
        self._w = int(state["w"])
        self._w_err = int(state["w_err"])
        self._w_abs = int(state["w_abs"])
        self._w_sq = int(state["w_sq"])
        self._cw = int(state["cw"])
        self._cw_hit = int(state["cw_hit"])
        self._cw2 = int(state["cw2"])
        self._n_int = int(state["n_int"])
        self._seen = int(state["seen"])
        self._drift = bool(state["drift"])

    # -- updates -----------------------------------------------------------

    def _add(self, err: float, covered: bool | None, weight: float, sign: int) -> None:
        if weight == 1.0:
            w = _ONE
            self._w_err += sign * _fixed(err)
            self._w_abs += sign * _fixed(abs(err))
            self._w_sq += sign * _fixed(err * err)
        else:
            w = _fixed(weight)
            self._w_err += sign * _fixed(weight * err)
            self._w_abs += sign * _fixed(weight * abs(err))
            self._w_sq += sign * _fixed(weight * err * err)
        self._w += sign * w
        if covered is not None:
            self._cw += sign * w
            self._cw2 += sign * w * w
            self._n_int += sign
            if covered:
                self._cw_hit += sign * w

    def update(
        self, prediction: RegressionPrediction, truth: float, weight: float = 1.0
    ) -> list[SignalChange]:
        """Add one labelled prediction; return the alerts it triggers (usually none).

        ``prediction`` is a :class:`~detectors.prediction.RegressionPrediction`
        (finite value, interval ``(lo, hi)`` with ``lo <= hi`` or none), ``truth``
        the true value and ``weight`` (``1 / inclusion probability``) a finite
        number > 0. A squared error beyond 1e280 is refused (it cannot be summed).
        """
        if not isinstance(prediction, RegressionPrediction):
            raise InvalidObservationError(
                f"'prediction' must be a RegressionPrediction; got {prediction!r}"
            )
        value = check_finite("value", prediction.value)
        y = check_finite("truth", truth)
        w = check_weight("weight", weight)
        covered: bool | None = None
        interval = prediction.interval
        if interval is not None:
            if not isinstance(interval, tuple | list) or len(interval) != 2:
                raise InvalidObservationError(f"'interval' must be (lo, hi); got {interval!r}")
            lo, hi = (check_finite("interval", b) for b in interval)
            if lo > hi:
                raise InvalidObservationError(f"'interval' must have lo <= hi; got {interval!r}")
            covered = lo <= y <= hi
        err = value - y
        if not abs(w * err * err) < _MAX_SQUARED:
            raise InvalidObservationError(
                f"the error {err!r} (weight {w!r}) is too large to track: its weighted "
                f"square must stay below {_MAX_SQUARED:g}"
            )
        if len(self._items) < self.window:
            self._items.append((err, covered, w))
        else:
            h = self._head
            self._add(*self._items[h], -1)
            self._items[h] = (err, covered, w)
            self._head = (h + 1) % self.window
        self._add(err, covered, w, +1)
        self._seen += 1
        return self._edges_triggered()

    def _edges_triggered(self) -> list[SignalChange]:
        if self._n_int < self.min_labelled:
            return []
        floor = self.floor
        if not self._drift:
            upper = self.coverage_upper
            if upper < floor:
                self._drift = True
                return [self._change("drift", upper)]
        elif self.coverage >= floor:
            self._drift = False
            return [self._change("recovered", self.coverage)]
        return []

    def _change(self, state: Literal["drift", "recovered"], statistic: float) -> SignalChange:
        return SignalChange(
            signal=COVERAGE_SIGNAL,
            detector=type(self).__name__,
            state=state,
            events_seen=self._seen,
            statistic=statistic,
            threshold=self.floor,
            reference=self.interval_level,
            current={
                "coverage": self.coverage,
                "upper": self.coverage_upper,
                "count": self.coverage_count,
                "effective_count": self.effective_count,
                "mae": self.mae,
            },
        )

    def state(self) -> SignalState:
        """Current reading of ``coverage`` (the window's coverage against the floor)."""
        return SignalState(
            COVERAGE_SIGNAL, type(self).__name__, self.coverage, self.floor, self._drift
        )

    # -- results -----------------------------------------------------------

    @property
    def floor(self) -> float:
        """``interval_level - coverage_tolerance``: coverage shown below it alerts."""
        return self.interval_level - self.coverage_tolerance

    @property
    def drifting(self) -> bool:
        """Whether ``coverage`` is in drift."""
        return self._drift

    @property
    def count(self) -> int:
        """Labelled predictions in the window (items, not weights)."""
        return len(self._items)

    @property
    def coverage_count(self) -> int:
        """Labelled predictions with an interval in the window."""
        return self._n_int

    @property
    def events_seen(self) -> int:
        """Labelled predictions seen since the start (not only in the window)."""
        return self._seen

    @property
    def mae(self) -> float:
        """Weighted mean of |prediction - truth| (NaN when empty)."""
        return self._w_abs / self._w if self._w else math.nan

    @property
    def rmse(self) -> float:
        """Square root of the weighted mean of (prediction - truth)**2 (NaN when empty)."""
        return math.sqrt(self._w_sq / self._w) if self._w else math.nan

    @property
    def bias(self) -> float:
        """Weighted mean of prediction - truth: > 0 when the model predicts too high."""
        return self._w_err / self._w if self._w else math.nan

    @property
    def coverage(self) -> float:
        """Weighted share of truths inside their interval (NaN without intervals)."""
        return self._cw_hit / self._cw if self._cw else math.nan

    @property
    def effective_count(self) -> float:
        """Kish's effective size of the coverage sample ``(sum w)**2 / sum w**2``."""
        return self._cw * self._cw / self._cw2 if self._cw2 else 0.0

    @property
    def coverage_upper(self) -> float:
        """One-sided upper bound on coverage at level ``confidence`` (NaN when empty)."""
        if not self._cw:
            return math.nan
        return wilson_upper(self.coverage, self.effective_count, self._z)

    @property
    def coverage_lower(self) -> float:
        """One-sided lower bound on coverage at level ``confidence`` (NaN when empty)."""
        if not self._cw:
            return math.nan
        return 1.0 - wilson_upper(1.0 - self.coverage, self.effective_count, self._z)
