import pytest

from detectors.errors import SettingsError
from detectors.escalation import ThresholdEscalation
from detectors.prediction import ClassPrediction, RegressionPrediction


def test_reasons_for_each_threshold() -> None:
    policy = ThresholdEscalation(
        min_confidence=0.7, min_margin=0.3, max_entropy=0.9, max_interval_width=2.0
    )
    scores = {"a": 0.4, "b": 0.35, "c": 0.25}
    kinds = [r.kind for r in policy.reasons(ClassPrediction("a", 0.4, scores))]
    assert kinds == ["low_confidence", "small_margin", "high_entropy"]
    assert policy.reasons(ClassPrediction("a", 0.95, {"a": 0.95, "b": 0.05})) == []
    assert [r.kind for r in policy.reasons(RegressionPrediction(1.0, (0.0, 3.0)))] == [
        "wide_interval"
    ]
    assert policy.reasons(RegressionPrediction(1.0, (0.5, 1.5))) == []


def test_reason_carries_score_and_threshold() -> None:
    (reason,) = ThresholdEscalation(min_confidence=0.7).reasons(ClassPrediction("x", 0.65))
    assert (reason.kind, reason.score, reason.threshold) == ("low_confidence", 0.65, 0.7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_confidence": 1.5},
        {"min_margin": -0.1},
        {"max_interval_width": 0},
        {"min_confidence": float("nan")},
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        ThresholdEscalation(**kwargs)
