"""Fleet-wide false-alarm control: one number per model sets every drift threshold.

**Sensitivity** is the expected number of events a *stationary* model streams
between two false drift alerts (default 1,000,000). Each model's budget is a
false-alarm *rate* ``1 / sensitivity`` per event, split Bonferroni-style:

1. over the model's ``S`` signals (``feature:<name>``, ``data_quality:<name>``,
   ``confidence``, ``prediction``): a signal may raise a false alert at most once
   every ``sensitivity * S`` events; that product is the ``sensitivity`` handed to
   each detector;
2. inside a detector, over its ``T`` tests (two for every detector here, e.g.
   ADWIN + windowed KS): each test's per-event false-alarm probability is
   ``alpha_event = 1 / (signal_sensitivity * T)``.

Rates add under the union bound, so the whole model stays below ``1/sensitivity``
per event. Each test turns ``alpha_event`` into its own threshold:

* a **windowed test** run once every ``step`` events may fire with probability
  ``alpha_window = step * alpha_event`` per run (union bound over time: the
  windows overlap, so the real rate is lower);
* **ADWIN** [Bifet & Gavaldà 2007, Theorem 3.1] bounds the probability of a false
  cut per check by its ``delta``; River checks once every ``clock`` values, so
  ``delta = clock * alpha_event``.

The critical values below are the tail bounds each test uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from detectors.base import check_positive
from detectors.errors import SettingsError

__all__ = [
    "DEFAULT_SENSITIVITY",
    "RECOVERY_ALPHA",
    "SensitivityBudget",
    "chi2_critical",
    "ks_critical",
    "rate_pvalue",
]

DEFAULT_SENSITIVITY = 1_000_000.0
"""Expected stationary events between false alerts per model (issue 3)."""

RECOVERY_ALPHA = 0.01
"""A drifting signal counts a window as calm when that window would pass its test
at this level: far looser than the alarm level, so that a signal near its threshold
does not flap between drift and recovered (hysteresis)."""


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

    Examples
    --------
    >>> budget = SensitivityBudget(1_000_000, n_signals=48)
    >>> budget.signal_sensitivity
    48000000.0
    >>> budget.alpha_event  # per test, per event
    1.0416666666666667e-08
    >>> round(budget.window_alpha(step=50), 10)  # a windowed test run every 50 events
    5.208e-07
    >>> round(budget.adwin_delta(clock=32), 9)
    3.33e-07
    """

    sensitivity: float = DEFAULT_SENSITIVITY
    n_signals: int = 1
    tests_per_signal: int = 2

    def __post_init__(self) -> None:
        check_positive("sensitivity", self.sensitivity)
        check_positive("n_signals", self.n_signals, integer=True)
        check_positive("tests_per_signal", self.tests_per_signal, integer=True)

    @property
    def signal_sensitivity(self) -> float:
        """Expected stationary events between false alerts of one signal."""
        return float(self.sensitivity) * self.n_signals

    @property
    def alpha_event(self) -> float:
        """Per-event false-alarm probability of one test of one signal."""
        return 1.0 / (self.signal_sensitivity * self.tests_per_signal)

    def window_alpha(self, step: int) -> float:
        """Significance level of a windowed test run once every ``step`` events."""
        return min(0.5, step * self.alpha_event)

    def adwin_delta(self, clock: int) -> float:
        """ADWIN ``delta`` for a detector that checks for a cut every ``clock`` values."""
        return min(0.5, clock * self.alpha_event)


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


def chi2_critical(df: int, alpha: float) -> float:
    """Upper ``alpha`` quantile of the chi-squared distribution with ``df`` degrees of freedom.

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
