from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.prediction import ClassPrediction, RegressionPrediction

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def test_threshold_policy_reasons_and_priority() -> None:
    policy = EscalationPolicy(min_confidence=0.7, min_margin=0.5, max_interval_width=2.0)
    d = policy.decide(ClassPrediction("a", 0.6, {"a": 0.6, "b": 0.4}), now=NOW)
    assert d.escalate and not d.suppressed
    assert [r.kind for r in d.reasons] == ["low_confidence", "small_margin"]
    assert d.priority == pytest.approx(0.8)
    assert not policy.decide(ClassPrediction("a", 0.9), now=NOW).escalate
    d = policy.decide(RegressionPrediction(1.0, (0.0, 3.0)), now=NOW)
    assert [r.kind for r in d.reasons] == ["wide_interval"]
    assert policy.threshold == 0.7
    assert policy.info == {"name": "threshold", "version": "1"}


def test_data_reasons_name_features_and_escalate_confident_items() -> None:
    policy = EscalationPolicy()
    d = policy.decide(
        ClassPrediction("a", 0.99),
        now=NOW,
        data_reasons=[("unseen_category", ["country"]), ("missing_features", ["age", "zip"])],
    )
    assert d.escalate
    assert [(r.kind, r.score, r.detail) for r in d.reasons] == [
        ("unseen_category", 1.0, "country"),
        ("missing_features", 2.0, "age, zip"),
    ]
    # An empty list is no reason.
    assert not policy.decide(
        ClassPrediction("a", 0.99), now=NOW, data_reasons={"out_of_range": []}
    ).escalate


@pytest.mark.parametrize("policy_name", ["threshold", "conformal"])
def test_drift_mode_escalates_more(policy_name: str) -> None:
    policy = EscalationPolicy(policy=policy_name, min_confidence=0.6, drift_confidence_boost=0.15)
    pred = ClassPrediction("a", 0.7)
    assert not policy.decide(pred, now=NOW).escalate
    d = policy.decide(pred, now=NOW, drift_active=True)
    assert d.escalate
    assert d.reasons[-1].kind == "drift_active"
    # Confident items stay auto-accepted during drift.
    assert not policy.decide(ClassPrediction("a", 0.9), now=NOW, drift_active=True).escalate


def test_conformal_policy_learns_from_labels() -> None:
    rng = np.random.default_rng(0)
    policy = EscalationPolicy(policy="conformal", target_error=0.05, min_confidence=0.6)
    assert policy.threshold == pytest.approx(0.6)
    accepted = errors = 0
    for i in range(30_000):
        c = float(0.5 + 0.5 * rng.beta(3.5, 1.5))
        pred = ClassPrediction("a", c)
        d = policy.decide(pred, now=NOW)
        correct = bool(rng.random() < c)
        if i > 5000 and not d.escalate:
            accepted += 1
            errors += not correct
        policy.observe_label(pred, correct, d.escalate)
    assert 0.04 <= errors / accepted <= 0.06
    assert policy.threshold > 0.85
    assert [r.kind for r in policy.decide(ClassPrediction("a", 0.7), now=NOW).reasons] == [
        "conformal"
    ]


def test_label_weight_reaches_the_conformal_threshold() -> None:
    """The weight is passed through: mixed weights move the threshold differently
    from unit weights, a constant weight exactly as unit weights."""
    labels = [(ClassPrediction("a", 0.9), bool(i % 7), False) for i in range(200)]
    unit, constant, mixed = (EscalationPolicy(policy="conformal") for _ in range(3))
    for i, (pred, correct, escalated) in enumerate(labels):
        unit.observe_label(pred, correct, escalated)
        constant.observe_label(pred, correct, escalated, 50.0)
        mixed.observe_label(pred, correct, escalated, 50.0 if correct else 1.0 + i % 2)
    assert unit.threshold == constant.threshold
    assert mixed.threshold != unit.threshold


def test_budget_suppresses_and_counts() -> None:
    policy = EscalationPolicy(min_confidence=0.9, budget_per_minute=3)
    decisions = [
        policy.decide(ClassPrediction("a", 0.5 + i / 100), now=NOW + timedelta(seconds=i))
        for i in range(10)
    ]
    assert sum(d.escalate for d in decisions) == 3
    assert sum(d.suppressed for d in decisions) == 7
    assert all(d.reasons for d in decisions)
    assert (policy.escalated, policy.suppressed, policy.decided) == (3, 7, 10)
    # A new minute, a new budget.
    assert policy.decide(ClassPrediction("a", 0.5), now=NOW + timedelta(minutes=1)).escalate


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.decide("0.5", now=NOW),
        lambda p: p.decide(ClassPrediction("a", 0.5), now=datetime(2024, 1, 1)),  # noqa: DTZ001 - rejected on purpose
        lambda p: p.decide(ClassPrediction("a", 0.5), now=NOW, drift_active=1),
        lambda p: p.decide(ClassPrediction("a", 0.5), now=NOW, data_reasons={"weird": ["x"]}),
        lambda p: p.decide(ClassPrediction("a", 0.5), now=NOW, data_reasons={"out_of_range": "x"}),
        lambda p: p.observe_label(ClassPrediction("a", 0.5), 1, False),
        lambda p: p.observe_label(ClassPrediction("a", 0.5), True, None),
        lambda p: p.observe_label(None, True, False),
        lambda p: p.observe_label(ClassPrediction("a", 0.5), True, False, float("nan")),
        lambda p: p.observe_label(ClassPrediction("a", 0.5), True, False, 0.0),
        lambda p: p.observe_label(RegressionPrediction(1.0), True, False, -1.0),
        lambda p: p.observe_label(RegressionPrediction(1.0), True, False, True),
    ],
)
@pytest.mark.parametrize("policy_name", ["threshold", "conformal"])
def test_rejects_bad_input_without_change(call, policy_name: str) -> None:
    policy = EscalationPolicy(policy=policy_name, budget_per_minute=5)
    policy.decide(ClassPrediction("a", 0.5), now=NOW)
    before = policy.snapshot()
    with pytest.raises(InvalidObservationError):
        call(policy)
    assert policy.snapshot() == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "magic"},
        {"budget_per_minute": 0},
        {"drift_confidence_boost": -1},
        {"target_error": 2},
        {"min_confidence": 1.1},
    ],
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        EscalationPolicy(**kwargs)
