import math

import numpy as np
import pytest
from scipy import optimize
from scipy.stats import norm

from detectors import sensitivity
from detectors.errors import SettingsError
from detectors.sensitivity import (
    CUSUM_ALLOWANCE,
    WORST_FACTOR,
    WORST_SHARE,
    SensitivityBudget,
    chi2_critical,
    cusum_threshold,
    default_step,
    ks_critical,
    rate_pvalue,
)


def test_budget_splits_rate_over_signals_and_tests() -> None:
    budget = SensitivityBudget(1_000_000, n_signals=50, tests_per_signal=2)
    # Union bound: all tests of all signals together stay within 1 / sensitivity per event.
    assert budget.alpha_event * 50 * 2 == pytest.approx(1e-6)
    assert budget.window_alpha(50) == pytest.approx(50 * budget.alpha_event)


def test_weights_move_budget_between_signals_and_keep_the_total() -> None:
    from detectors.sensitivity import DATA_QUALITY_WEIGHT, FEATURE_DRIFT_WEIGHT

    even = SensitivityBudget(1_000_000, n_signals=10)
    drift = SensitivityBudget(1_000_000, n_signals=10, weight=FEATURE_DRIFT_WEIGHT)
    quality = SensitivityBudget(1_000_000, n_signals=10, weight=DATA_QUALITY_WEIGHT)
    # A feature's two signals together keep two even shares.
    assert 1 / drift.signal_sensitivity + 1 / quality.signal_sensitivity == pytest.approx(
        2 / even.signal_sensitivity
    )
    assert drift.window_alpha(125) == pytest.approx(1.8 * even.window_alpha(125))
    # A test given share s of its signal: s / signal_sensitivity per event.
    assert drift.window_alpha(125, share=0.25) == pytest.approx(
        125 * 0.25 / drift.signal_sensitivity
    )
    with pytest.raises(SettingsError):
        SensitivityBudget(weight=0)


def test_more_sensitivity_means_stricter_thresholds() -> None:
    lax = SensitivityBudget(1_000, n_signals=10)
    strict = SensitivityBudget(1_000_000, n_signals=10)
    assert ks_critical(strict.window_alpha(50)) > ks_critical(lax.window_alpha(50))
    assert chi2_critical(4, strict.window_alpha(50)) > chi2_critical(4, lax.window_alpha(50))


def test_levels_are_capped_for_tiny_budgets() -> None:
    assert SensitivityBudget(1, n_signals=1).window_alpha(1000) == 0.5


def test_ks_critical_matches_dkw_bound() -> None:
    t = ks_critical(1e-6)
    assert 2 * math.exp(-2 * t * t) == pytest.approx(1e-6)


def test_rate_pvalue_is_exact_binomial_tail() -> None:
    from scipy.stats import binom

    # 12 hits in a 250-event window vs 4 in 1000 reference events.
    expected = binom.sf(11, 16, 250 / 1250)
    assert rate_pvalue(12, 250, 4, 1000) == pytest.approx(expected)
    assert rate_pvalue(0, 250, 4, 1000) == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"sensitivity": 0}, {"n_signals": 0}, {"sensitivity": float("nan")}]
)
def test_bad_budget_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        SensitivityBudget(**kwargs)


def _normal_scores(bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    p = np.full(bins, 1.0 / bins)
    z = norm.ppf(np.cumsum(p) - p / 2)
    z = z - (p * z).sum()
    return z / np.sqrt((p * z * z).sum()), p


def test_cusum_threshold_grows_with_the_reference_error_and_the_budget() -> None:
    s, p = _normal_scores()
    by_m = [cusum_threshold(1e-8, s, p, m) for m in (1000, 4000, 20_000, 1e9)]
    assert by_m == sorted(by_m, reverse=True)  # a smaller reference, a higher bar
    assert by_m[0] > 1.2 * by_m[-1]
    assert cusum_threshold(1e-8, s, p, 1e9) > cusum_threshold(1e-5, s, p, 1e9)


def test_cusum_threshold_matches_siegmund_for_a_reference_without_error() -> None:
    # Normal-like scores, m -> infinity: two one-sided CUSUMs, each at alpha / 2, and
    # Siegmund's ARL exp(2 k b) / (2 k^2) roughly (b = h + 1.166).
    s, p = _normal_scores(200)
    h = cusum_threshold(1e-6, s, p, 1e12)
    k = 0.25
    b = h + 1.166
    arl = (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)
    assert 2 / arl == pytest.approx(1e-6, rel=0.15)


def test_a_skewed_score_gets_a_higher_threshold() -> None:
    s, p = _normal_scores()
    q = s * s - 1
    q = q / np.sqrt((p * q * q).sum())
    assert cusum_threshold(1e-6, q, p, 1e9) > cusum_threshold(1e-6, s, p, 1e9)


def test_default_step_is_shared() -> None:
    assert default_step(250) == 125 and default_step(75) == 75


def _threshold_as_written(
    alpha: float, c_up: float, c_down: float, kurt: float, m: float, k: float
) -> float:
    """The threshold of :func:`cusum_threshold`'s docstring, step by step: the rates of
    both sides at every grid point for each ``h`` tried, their mean and numpy's 99th
    percentile (what ``_threshold`` computed before its per-threshold parts were
    hoisted and its percentile taken by one partition)."""
    eps = (sensitivity._Q / math.sqrt(m))[:, None]
    v = np.maximum(0.25, 1.0 + sensitivity._Q[None, :] * math.sqrt(max(kurt - 1.0, 0.0) / m))

    def excess(h: float) -> float:
        total = np.zeros((sensitivity._GRID, sensitivity._GRID))
        for c, e in ((c_up, eps), (c_down, -eps)):
            if math.isinf(c):
                continue
            mu = np.maximum(k - e, 1e-3)
            theta = c * 2.0 * mu / v
            b = h + 1.166 * np.sqrt(v)
            tb = np.minimum(theta * b, 700.0)
            arl = (np.expm1(tb) - tb) / (theta * mu)
            total += 1.0 / np.maximum(arl, 1.0)
        r = total.ravel()
        mean_ok = math.log(r.mean() / alpha)
        worst = np.quantile(r, 1.0 - WORST_SHARE)
        return max(mean_ok, math.log(worst / (WORST_FACTOR * alpha)))

    hi = 10.0
    while excess(hi) > 0:
        hi *= 2.0
    if excess(1e-3) <= 0:
        return 1e-3
    return float(optimize.brentq(excess, 1e-3, hi, xtol=1e-6))


@pytest.mark.parametrize("m", [1_000.0, 4_321.0, 50_000.0, 1e9])
@pytest.mark.parametrize(("c_up", "c_down"), [(1.0, 1.0), (0.93, 1.12), (1.05, math.inf)])
def test_threshold_is_the_one_written_out_bit_for_bit(m: float, c_up: float, c_down: float) -> None:
    for alpha, kurt in ((1e-7, 3.0), (3e-6, 1.8), (2e-8, 7.4)):
        sensitivity._threshold.cache_clear()
        assert sensitivity._threshold(alpha, c_up, c_down, kurt, m, CUSUM_ALLOWANCE) == (
            _threshold_as_written(alpha, c_up, c_down, kurt, m, CUSUM_ALLOWANCE)
        )


def test_worst_rate_is_numpys_percentile_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    n = sensitivity._GRID**2
    for r in (rng.random(n), rng.exponential(size=n) * 1e-9, np.full(n, 0.5), np.arange(n) / 7):
        assert sensitivity._worst_rate(r.copy()) == float(np.quantile(r, 1.0 - WORST_SHARE))
