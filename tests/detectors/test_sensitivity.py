import math

import pytest

from detectors.errors import SettingsError
from detectors.sensitivity import (
    SensitivityBudget,
    chi2_critical,
    ks_critical,
    rate_pvalue,
)


def test_budget_splits_rate_over_signals_and_tests() -> None:
    budget = SensitivityBudget(1_000_000, n_signals=50, tests_per_signal=2)
    # Union bound: all tests of all signals together stay within 1 / sensitivity per event.
    assert budget.alpha_event * 50 * 2 == pytest.approx(1e-6)
    assert budget.window_alpha(50) == pytest.approx(50 * budget.alpha_event)


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
