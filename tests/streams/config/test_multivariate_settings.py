"""Settings of the multivariate signal, outlier escalation and drift impact."""

from __future__ import annotations

import pytest

from streams.config import settings_from_dict
from streams.config.loading import validate
from streams.processing.fleet import build_monitor


def test_defaults_build_a_monitor_with_multivariate_and_outliers_on() -> None:
    s = settings_from_dict({})
    assert s.defaults.drift.multivariate is True
    assert s.defaults.escalation.outlier_quantile == 0.99999
    drift = build_monitor("m", s.defaults, 64).drift
    assert drift is not None and drift.multivariate and drift.outlier_quantile == 0.99999


def test_they_can_be_turned_off_and_importance_reaches_the_monitor() -> None:
    s = settings_from_dict(
        {
            "defaults": {
                "drift": {"multivariate": False},
                "escalation": {"outlier_quantile": 0},
                "features": {"amount": {"type": "numeric", "importance": 2.5}},
            }
        }
    )
    drift = build_monitor("m", s.defaults, 64).drift
    assert drift is not None
    assert drift.multivariate is False and drift.outlier_quantile is None
    assert drift.importance("amount") == 2.5 and drift.importance("other") == 1.0


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (
            {"escalation": {"outlier_quantile": 0.2}},
            "defaults.escalation.outlier_quantile: must be 0 (off) or in [0.5, 1); got 0.2",
        ),
        ({"escalation": {"outlier_quantile": 1}}, "defaults.escalation.outlier_quantile"),
        ({"features": {"x": {"importance": -1}}}, "defaults.features.x.importance"),
        ({"drift": {"multivariate": "yes"}}, "defaults.drift.multivariate"),
    ],
)
def test_config_check_names_the_bad_key(raw: dict[str, object], problem: str) -> None:
    settings, problems = validate({"defaults": raw})
    assert settings is None
    assert any(problem in p for p in problems), problems
