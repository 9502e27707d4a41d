"""Fleet-wide false-alarm control: one number per model sets every drift threshold.

**Sensitivity** is the expected number of events a *stationary* model streams
between two false drift alerts (default 1,000,000). It means the same everywhere:
the budget of one *model*. Each detector takes that figure and ``n_signals``, the
number of signals sharing it; its own share, ``signal_sensitivity = sensitivity *
n_signals`` expected events between false alerts of one signal, is derived (and
shown by :attr:`SensitivityBudget.signal_sensitivity` and each detector's
``signal_sensitivity``). A detector used alone, with ``n_signals=1``, is a model of
one signal. The budget is a false-alarm *rate* ``1 / sensitivity`` per event, split
Bonferroni-style:

1. over the model's ``S`` signals (``feature:<name>``, ``data_quality:<name>``,
   ``confidence``, ``prediction``, ``multivariate``), signal ``i`` getting ``w_i / S`` of it with
   weights ``w_i`` (``weight``, a detector's ``budget_weight``) that add up to
   ``S``. :class:`~detectors.drift_monitor.DriftMonitor` gives each feature two
   even shares, :data:`FEATURE_DRIFT_WEIGHT` (1.8) to its distribution signal and
   :data:`DATA_QUALITY_WEIGHT` (0.2) to its data-quality signal, and one to the
   confidence, the prediction and the multivariate test: the exact rate tests are
   discrete and cannot use a share on clean data (a stream that is never missing has
   no false missing alarm at any level), so their share goes where it buys detection
   power;
2. inside a detector, over its ``T`` tests (``tests_per_signal``): three for a
   numeric signal (mean CUSUM, scale CUSUM, windowed KS), two for the others: each
   test's per-event false-alarm rate is ``alpha_event = w / (S * sensitivity * T)``.

Rates add under the union bound, so the whole model stays below ``1/sensitivity``
per event. Each test turns ``alpha_event`` into its own threshold:

* a **windowed test** run once every ``step`` events may fire with probability
  ``alpha_window = step * alpha_event`` per run (union bound over time: the
  windows overlap, so the real rate is lower). The numeric KS test uses the
  two-sample form (``n_eff = n m / (n + m)`` for a reference of ``m`` values), the
  categorical chi-squared test the two-sample statistic, the rate tests the exact
  conditional binomial test: each is valid with the reference a sample. The
  chi-squared approximation is not valid that far in the tail: the statistic's
  real tail at ``~1e-6`` per window was twice the nominal one (simulated), so the
  test runs at half its level
  (:data:`~detectors.categorical_drift.CHI2_TAIL_FACTOR`).
* a two-sided **CUSUM** (Page 1954) on scores that have mean 0 and variance 1
  under the reference: :func:`cusum_threshold` picks the threshold ``h`` from
  Siegmund's (1985) approximation of the average run length, generalised to the
  scores' own (bounded, possibly skewed) distribution through the root
  ``theta`` of ``E exp(theta (s - k)) = 1``.

**What is random, what is conditioned on.** The stream is assumed stationary
and its values independent; the reference is an independent sample of ``m``
values from the same distribution (a profile built from history, or the first
values of the stream). A test that took the reference for the truth would
keep its rate only *on average over references*, and a reference that happens
to sit far from the truth would raise the rate for as long as it is used (for a
CUSUM at ``1e-8`` per event, a mean off by ``2.6 / sqrt(m)`` standard deviations,
one reference in a hundred, multiplies the rate by ~500 at ``m = 1000``). So:

* the windowed tests use two-sample forms (their rate holds averaged over the
  reference draw);
* the CUSUM threshold accounts for the reference's error explicitly: given the
  reference's size ``m``, the live scores have mean ``eps ~ N(0, 1/m)`` and
  variance ``v ~ N(1, (kurtosis - 1)/m)`` (the reference's estimation error of the
  scores' standardisation); :func:`cusum_threshold` picks the smallest ``h`` for
  which the rate *averaged over that reference error* is at most the test's share
  **and** the rate of the 1 % worst references is at most 1.5 times it;
* a *learned* reference keeps learning: its bin edges are fixed by its first
  ``reference_size`` values, but calm data (a whole window after it was tested,
  never while a signal is in drift) keeps adding to its bin counts until it holds
  ``REFERENCE_GROWTH`` times as many values. ``m`` grows, the thresholds fall to
  their ``m -> infinity`` values and the spread of the rate across references
  shrinks (the rate of an unlucky reference is bounded per ``m``, see above).

The guarantee is thus about the probability law of (reference, stream): for a
fixed model, the expected number of false alerts per stationary event, averaged
over the reference the model happened to get, is at most ``1/sensitivity``, and
the per-test rate given the reference is at most 1.5 times its share for 99 % of
references (CUSUM tests; the windowed tests only on average). The approximations
(Siegmund's average run length, DKW for KS, the normal approximation of the
reference error, the chi-squared tail's correction) are checked by simulation in
``tests/detectors`` and ``benchmarks/detector_quality.py``. Dependent values
(autocorrelated streams) break the guarantee: a seasonal stream is a drifting one
here.

**How much of the budget is used** (measured: standalone detectors on stationary
streams with 20,000-value references in ``benchmarks/budget_use.py``, per family
in a whole model in ``benchmarks/detector_quality.py``): a numeric signal realises
0.6-0.8 of its share (normal, lognormal, uniform, Poisson and confidence-like
values alike; the mean and scale CUSUMs 0.7-1.1 of their thirds, KS 0.2-0.3 of
its); a categorical signal 0.2-0.3 at a loose budget and about 0.5 at the default
one (its chi-squared test about its own half there, the unseen-category test
nothing on a closed vocabulary); a data-quality signal nothing on clean data and
0.1-0.3 of its share with a 0.1-5 % missing rate (exact discrete tests are
conservative). A whole default model (48 signals) realised 0.50 of its budget
(12 alerts in 24M events, 95 % interval 0.26-0.87). The budget is a bound, not a
target: a family that realises less than its share leaves that part unused.

**Alarms latch.** A signal that fires enters drift and stays there: it is not
re-armed (unlike River's detectors, which report every new cut) until it has
*recovered*, one whole window of fresh data later looking like the reference
again (:class:`~detectors.hysteresis.DriftLatch`). One false alarm thus costs one
``drift`` and one ``recovered`` edge, never a burst.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from detectors._native import adjustment_coefficient
from detectors.base import check_positive
from detectors.errors import SettingsError

__all__ = [
    "CUSUM_ALLOWANCE",
    "DATA_QUALITY_WEIGHT",
    "DEFAULT_SENSITIVITY",
    "FEATURE_DRIFT_WEIGHT",
    "RECOVERY_ALPHA",
    "REFERENCE_GROWTH",
    "SensitivityBudget",
    "chi2_critical",
    "cusum_threshold",
    "default_step",
    "ks_critical",
    "preload_root_finder",
    "rate_pvalue",
]

DEFAULT_SENSITIVITY = 1_000_000.0
"""Expected stationary events between false alerts per model (issue 3)."""

RECOVERY_ALPHA = 0.01
"""A drifting signal counts a window as calm when that window would pass its test
at this level: far looser than the alarm level, so that a signal near its threshold
does not flap between drift and recovered (hysteresis)."""

REFERENCE_GROWTH = 50
"""A learned numeric reference keeps adding calm data to its bin counts until it
holds this many times ``reference_size`` values (bounded: the counts are a fixed
number of bins)."""

CUSUM_ALLOWANCE = 0.25
"""Reference value ``k`` of the CUSUM tests, in standard deviations of their
scores: Page's CUSUM with ``k = d / 2`` is the quickest detector of a shift of
``d`` (Lorden 1971), here tuned to half a standard deviation."""

# Worst-reference control: the rate given the reference may exceed the share by
# this factor for at most WORST_SHARE of references (CUSUM tests).
FEATURE_DRIFT_WEIGHT = 1.8
"""Share (in units of an even split) of a feature's distribution signal in a model
with :class:`~detectors.drift_monitor.DriftMonitor`; its ``data_quality:`` signal
gets ``2 - FEATURE_DRIFT_WEIGHT`` (:data:`DATA_QUALITY_WEIGHT`), so each feature
keeps two even shares in all and the union bound is unchanged. The rate tests are
exact but discrete: on clean data (a rate of 0, or a reference range that new
values leave with probability ``2 / (m + 1)``) they cannot fire at any level, and
with a rate above 0 they realise a small fraction of theirs, while the
distribution tests realise most of theirs (measured per family in
``benchmarks/detector_quality.py``). Budget spent where it can be used buys
detection power; the rate tests lose little (one more bad value per window at
most, at the default budget)."""

DATA_QUALITY_WEIGHT = 2.0 - FEATURE_DRIFT_WEIGHT
"""Share of a feature's ``data_quality:`` signal (see :data:`FEATURE_DRIFT_WEIGHT`)."""

WORST_FACTOR = 1.5
WORST_SHARE = 0.01


def default_step(window: int) -> int:
    """Events between windowed tests when not set, the same for every detector: half
    the window (two tests per window), or the whole window when it is odd or short.

    >>> default_step(250), default_step(100), default_step(75)
    (125, 50, 75)
    """
    return window // 2 if window % 2 == 0 and window >= 20 else window


@dataclass(frozen=True, slots=True)
class SensitivityBudget:
    """Split one model's false-alarm budget over its signals and their tests.

    Parameters
    ----------
    sensitivity
        Expected stationary events between false alerts for the whole model.
    n_signals
        Number of signals sharing the budget.
    tests_per_signal
        Tests inside each signal's detector (union bound inside the signal).
    weight
        This signal's share of the model's budget in units of an even split: the
        signal gets ``weight / n_signals`` of it (``1.0``: an even split). The
        shares of a model's signals must add up to at most ``n_signals`` for the
        union bound to hold (see :data:`FEATURE_DRIFT_WEIGHT`).

    Examples
    --------
    >>> budget = SensitivityBudget(1_000_000, n_signals=48)
    >>> budget.signal_sensitivity  # expected events between false alerts of one signal
    48000000.0
    >>> budget.alpha_event  # per test, per event
    1.0416666666666667e-08
    >>> round(budget.window_alpha(step=50), 10)  # a windowed test run every 50 events
    5.208e-07
    >>> round(SensitivityBudget(1_000_000, n_signals=48, weight=1.8).signal_sensitivity)
    26666667
    >>> round(budget.window_alpha(step=50, share=0.9), 10)  # a test given 90 % of the signal's
    9.375e-07
    """

    sensitivity: float = DEFAULT_SENSITIVITY
    n_signals: int = 1
    tests_per_signal: int = 2
    weight: float = 1.0

    def __post_init__(self) -> None:
        check_positive("sensitivity", self.sensitivity)
        check_positive("n_signals", self.n_signals, integer=True)
        check_positive("tests_per_signal", self.tests_per_signal, integer=True)
        check_positive("weight", self.weight)

    @property
    def signal_sensitivity(self) -> float:
        """Expected stationary events between false alerts of one signal."""
        return float(self.sensitivity) * self.n_signals / float(self.weight)

    @property
    def alpha_event(self) -> float:
        """Per-event false-alarm probability of one test of one signal (an even split
        over its tests)."""
        return 1.0 / (self.signal_sensitivity * self.tests_per_signal)

    def window_alpha(self, step: int, share: float | None = None) -> float:
        """Significance level of a windowed test run once every ``step`` events, given
        ``share`` of the signal's budget (default: an even split over its tests)."""
        rate = self.alpha_event if share is None else share / self.signal_sensitivity
        return min(0.5, step * rate)


def cusum_threshold(
    alpha: float,
    scores: np.ndarray,
    probs: np.ndarray,
    m: float,
    k: float = CUSUM_ALLOWANCE,
) -> float:
    """Threshold ``h`` of a two-sided CUSUM whose false-alarm rate per event is ``alpha``.

    The CUSUM runs ``S+ = max(0, S+ + s - k)`` and ``S- = max(0, S- - s - k)`` on
    scores ``s`` that take the value ``scores[i]`` with probability ``probs[i]``
    under the reference (mean 0, variance 1), and fires when either exceeds ``h``.

    One side's average run length to a false alarm, for increments of mean ``-mu``
    (``mu > 0``) and variance ``v``, is Siegmund's (1985) approximation
    ``(exp(theta b) - theta b - 1) / (theta mu)`` with ``b = h + 1.166 sqrt(v)``,
    where ``theta`` solves ``E exp(theta (s - k)) = 1`` (``2 mu / v`` for normal
    scores; the bounded, possibly skewed scores here get their own, through the
    ratio of the exact root to the normal one). The reference is a sample of ``m``:
    the live mean and variance of ``s`` are ``eps ~ N(0, 1/m)`` and ``v ~ N(1,
    (kurtosis - 1) / m)`` off. ``h`` is the smallest value with (a) the rate
    averaged over that error at most ``alpha`` and (b) the rate at the 99th
    percentile of it at most 1.5 ``alpha``. Results are cached (rounded
    conservatively: the skew ratio down, the kurtosis up).

    >>> s = np.array([-1.0, 1.0]); p = np.array([0.5, 0.5])
    >>> h_big, h_small = cusum_threshold(1e-6, s, p, 1e9), cusum_threshold(1e-6, s, p, 1000)
    >>> 10 < h_big < h_small
    True
    """
    scores = np.asarray(scores, dtype=float)
    probs = np.asarray(probs, dtype=float)
    ratios = []
    for sign in (1.0, -1.0):
        theta = _adjustment_coefficient(sign * scores - k, probs)
        # A side that cannot move up (no score above k) never fires: ratio infinite.
        ratios.append(math.inf if theta is None else math.floor(theta / (2 * k) * 100) / 100)
    kurt = float((probs * scores**4).sum())
    kurt = math.ceil(max(kurt, 1.0) * 10) / 10
    return _threshold(float(alpha), ratios[0], ratios[1], kurt, float(m), float(k))


def _brentq() -> Callable[..., float]:
    """scipy's root finder, imported on first use: ``scipy.optimize`` is ~40 % of a
    worker's imports, and a worker restoring checkpoints (which keep their solved
    thresholds) starts processing without it."""
    from scipy import optimize

    return optimize.brentq  # type: ignore[no-any-return]


def preload_root_finder() -> None:
    """Import the root finder :func:`cusum_threshold` needs now, not when the first
    threshold is solved. That import (``scipy.optimize``) took ~0.23 s on this
    project's machine; a stream processor that first needs it when its references are
    learned stalls every event behind it. A service calls this on a thread of its own
    at start-up, while it joins its group and restores its state (an event that needs
    the import meanwhile waits for it to finish, as before). Idempotent and cheap once
    done.

    >>> preload_root_finder()
    >>> import sys
    >>> "scipy.optimize" in sys.modules
    True
    """
    _brentq()


def _adjustment_coefficient(y: np.ndarray, probs: np.ndarray) -> float | None:
    """The root ``theta > 0`` of ``f(t) = log sum p exp(t y) = 0`` (``E y < 0``).

    ``f`` is convex with ``f(0) = 0`` and ``f'(0) = E y < 0``, so right of the root it is
    positive and increasing, and Newton's method started there falls to the root
    monotonically (quadratically near it): ~6 steps to full precision, in plain floats
    (a score table has a few dozen values at most, where numpy's per-call overhead was
    most of the time of the root-finder used before, scipy's ``brentq`` to 1e-10).
    The loop runs in Rust (``detectors._native``: ~50 times faster than it was in
    Python, where it was half of a threshold's refresh), with the same arithmetic in
    the same order, so the same root bit for bit (tested against the Python loop).

    >>> y = np.array([-1.5, 0.5]); p = np.array([0.5, 0.5])  # normal-free: check exactly
    >>> theta = _adjustment_coefficient(y, p)
    >>> abs(0.5 * math.exp(-1.5 * theta) + 0.5 * math.exp(0.5 * theta) - 1.0) < 1e-12
    True
    """
    return adjustment_coefficient(y.tolist(), probs.tolist())


_GRID = 64
# Midpoint quantiles of N(0, 1): a deterministic sample for the reference's error.
_Q = special.ndtri((np.arange(_GRID) + 0.5) / _GRID)
# np.quantile(r, 1 - WORST_SHARE) of _GRID**2 rates ("linear": Hyndman and Fan's 7th
# method) is the order statistic _WORST_AT interpolated towards the next by
# _WORST_GAMMA, with numpy's own arithmetic (see _worst_rate).
_WORST_VIRTUAL = (_GRID * _GRID - 1) * (1.0 - WORST_SHARE)
_WORST_AT = math.floor(_WORST_VIRTUAL)
_WORST_GAMMA = _WORST_VIRTUAL - _WORST_AT
_add_reduce = np.add.reduce  # ndarray.mean's sum, without its Python wrapper


def _worst_rate(rates: np.ndarray) -> float:
    """``np.quantile(rates, 1 - WORST_SHARE)`` for :data:`_GRID` squared rates, bit for
    bit (tested), without its general machinery (most of the cost of a threshold's
    every step): the two order statistics by one partition, and numpy's ``_lerp``.

    >>> r = np.random.default_rng(0).random(_GRID * _GRID)
    >>> _worst_rate(r) == float(np.quantile(r, 1.0 - WORST_SHARE))
    True
    """
    low, high = np.partition(rates, (_WORST_AT, _WORST_AT + 1))[_WORST_AT : _WORST_AT + 2]
    diff = high - low
    if _WORST_GAMMA >= 0.5:
        return float(high - diff * (1.0 - _WORST_GAMMA))
    return float(low + diff * _WORST_GAMMA)


@functools.lru_cache(maxsize=512)
def _threshold(alpha: float, c_up: float, c_down: float, kurt: float, m: float, k: float) -> float:
    eps = (_Q / math.sqrt(m))[:, None]
    v = np.maximum(0.25, 1.0 + _Q[None, :] * math.sqrt(max(kurt - 1.0, 0.0) / m))
    # What does not depend on h, once per threshold: per side theta, theta * mu and
    # the overshoot 1.166 sqrt(v) (the same arithmetic as per step, so the same h).
    overshoot = 1.166 * np.sqrt(v)
    sides = []
    for c, e in ((c_up, eps), (c_down, -eps)):
        if math.isinf(c):
            continue
        mu = np.maximum(k - e, 1e-3)  # drift of the increments towards 0
        theta = c * 2.0 * mu / v
        sides.append((theta, theta * mu))

    def rates(h: float) -> np.ndarray:
        total = np.zeros((_GRID, _GRID))
        b = h + overshoot
        for theta, theta_mu in sides:
            tb = np.minimum(theta * b, 700.0)
            arl = (np.expm1(tb) - tb) / theta_mu
            total += 1.0 / np.maximum(arl, 1.0)
        return total.ravel()

    def excess(h: float) -> float:
        r = rates(h)
        mean_ok = math.log(_add_reduce(r) / r.size / alpha)
        worst_ok = math.log(_worst_rate(r) / (WORST_FACTOR * alpha))
        return max(mean_ok, worst_ok)

    hi = 10.0
    while excess(hi) > 0:
        hi *= 2.0
        if hi > 1e6:
            return hi
    if excess(1e-3) <= 0:
        return 1e-3
    return float(_brentq()(excess, 1e-3, hi, xtol=1e-6))


def ks_critical(alpha: float) -> float:
    """Critical value ``t`` of ``sqrt(n_eff) * D`` for a KS statistic ``D`` at level ``alpha``.

    From the Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant,
    ``P(sqrt(n) * D > t) <= 2 exp(-2 t**2)`` for every ``n`` (one sample). With a
    reference of ``m`` values use ``n_eff = n m / (n + m)`` (the two-sample
    asymptotic). Evaluating ``D`` only at bin edges can only lower it, so the
    binned test is conservative.

    >>> round(ks_critical(0.05), 4)
    1.3581
    >>> round(ks_critical(1e-6), 3)
    2.693
    """
    if not 0.0 < alpha < 1.0:
        raise SettingsError(f"'alpha' must be in (0, 1); got {alpha!r}")
    return math.sqrt(math.log(2.0 / alpha) / 2.0)


@functools.lru_cache(maxsize=1024)
def chi2_critical(df: int, alpha: float) -> float:
    """Upper ``alpha`` quantile of the chi-squared distribution with ``df`` degrees of freedom
    (memoised: the detectors ask for the same few levels at every check).

    >>> round(chi2_critical(1, 0.05), 3)
    3.841
    """
    if not 0.0 < alpha < 1.0:
        raise SettingsError(f"'alpha' must be in (0, 1); got {alpha!r}")
    return float(special.chdtri(df, alpha))


def rate_pvalue(hits: int, events: int, ref_hits: float, ref_events: float) -> float:
    """One-sided p-value that a window's rate ``hits / events`` exceeds the reference's.

    The exact conditional test for two Poisson/binomial rates: given ``t = hits +
    ref_hits`` occurrences in total, under equal rates ``hits ~ Binomial(t, f)`` with
    ``f = events / (events + ref_events)``; the p-value is ``P(X >= hits)``. It
    accounts for the reference being a finite sample too, and stays exact in the
    far tail where normal and chi-squared approximations of rare events fail.

    >>> rate_pvalue(0, 250, 3, 1000)
    1.0
    >>> round(rate_pvalue(10, 250, 3, 1000), 7)  # 4% in the window vs 0.3% before
    1.61e-05
    """
    if hits <= 0:
        return 1.0
    f = events / (events + ref_events)
    # P(X >= a) for X ~ Binomial(t, f) is the regularized incomplete beta I_f(a, t - a + 1).
    return float(special.betainc(hits, ref_hits + 1.0, f))
