from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.conformal import ConformalEscalation, nonconformity
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.prediction import ClassPrediction, RegressionPrediction


def stream(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated model wrong ~15% of the time; halfway it becomes overconfident
    (errors 1.6x as likely at each confidence) on less certain inputs."""
    rng = np.random.default_rng(seed)
    half = n // 2
    conf = 0.5 + 0.5 * rng.beta(3.5, 1.5, n)
    conf[half:] = 0.5 + 0.5 * rng.beta(3.0, 1.5, n - half)
    p_err = 1.0 - conf
    p_err[half:] = np.clip(1.6 * p_err[half:], 0, 1)
    return conf, rng.random(n) >= p_err


def run(policy: ConformalEscalation, conf: np.ndarray, correct: np.ndarray) -> np.ndarray:
    escalated = np.zeros(len(conf), dtype=bool)
    for i, (c, y) in enumerate(zip(conf.tolist(), correct.tolist(), strict=True)):
        pred = ClassPrediction("x", c)
        escalated[i] = bool(policy.reasons(pred))
        policy.update(nonconformity(pred), y, bool(escalated[i]))
    return escalated


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_autoaccept_error_tracks_target_before_and_after_shift(seed: int) -> None:
    n, burn = 60_000, 5_000
    conf, correct = stream(seed, n)
    esc = run(ConformalEscalation(target_error=0.05), conf, correct)
    for lo, hi in ((burn, n // 2), (n // 2 + burn, n)):
        acc = ~esc[lo:hi]
        assert 0.04 <= np.mean(~correct[lo:hi][acc]) <= 0.06
    # The shifted model is worse: more must be escalated to hold the target.
    assert esc[n // 2 + burn :].mean() > esc[burn : n // 2].mean() + 0.05


def test_long_run_bound_holds_for_any_sequence() -> None:
    # Gibbs & Candes' argument: |error - target| <= range(tau) / (lr * accepted).
    rng = np.random.default_rng(9)
    policy = ConformalEscalation(target_error=0.1, learning_rate=0.01)
    for _ in range(30_000):
        score = float(rng.random())
        was_escalated = bool(policy.reasons(ClassPrediction("x", 1 - score)))
        policy.update(score, bool(rng.random() < 0.7), was_escalated)  # labels ignore the score
    bound = 1.0 / (0.01 * policy._accepted)
    assert abs(policy.accepted_error_rate - 0.1) <= bound


def test_reanchors_after_everything_was_escalated() -> None:
    policy = ConformalEscalation(target_error=0.05, patience=50)
    # A broken model: every accepted item is wrong; tau drops below the scores
    # and only a probe every `patience` items is accepted.
    accepted = 0
    for i in range(1000):
        was_escalated = bool(policy.reasons(ClassPrediction("x", 0.8)))
        accepted += i >= 100 and not was_escalated  # after tau's first descent
        policy.update(0.2, False, was_escalated)
    assert policy.threshold < 0.2
    assert accepted <= 900 / 50 + 1
    # The model recovers on inputs with score 0.3: all escalated until a
    # re-anchor (at most two patience periods: one may still hold a 0.2 item).
    waited = 0
    recovered = ClassPrediction("x", 0.7)
    while policy.reasons(recovered):
        policy.update(nonconformity(recovered), True, True)
        waited += 1
        assert waited <= 100
    assert policy.threshold == nonconformity(recovered)


def test_escalated_items_do_not_move_threshold() -> None:
    policy = ConformalEscalation(initial_threshold=0.3)
    policy.update(0.5, False, True)
    assert policy.threshold == 0.3
    policy.update(0.1, False, False)
    assert policy.threshold == pytest.approx(0.3 - 0.005 * 0.95)


def test_reasons_and_boost() -> None:
    policy = ConformalEscalation(initial_threshold=0.2)
    assert policy.reasons(ClassPrediction("x", 0.85)) == []
    (r,) = policy.reasons(ClassPrediction("x", 0.85), boost=0.1)
    assert (r.kind, r.threshold) == ("conformal", pytest.approx(0.1))
    assert policy.reasons(RegressionPrediction(1.0, (0.0, 9.0))) == []


@pytest.mark.parametrize(
    ("prediction", "priority"),
    [
        (ClassPrediction("x", 1.0), 0.0),  # certain: last in the queue
        (ClassPrediction("x", 0.5), 1.0),  # a coin toss: first
        (ClassPrediction("x", 0.75), 0.5),
        (ClassPrediction("x", 0.5, {"x": 0.5, "y": 0.5}), 1.0),
        (ClassPrediction("x", 0.6, {"x": 0.6, "y": 0.3, "z": 0.1}), 0.7),
        (RegressionPrediction(1.0), 0.0),
    ],
)
def test_priority_is_one_minus_the_margin_within_0_and_1(
    prediction: ClassPrediction | RegressionPrediction, priority: float
) -> None:
    """The escalation policy's decision carries the same priority and reasons (it asks
    both in one call)."""
    policy = ConformalEscalation(initial_threshold=0.4)  # EscalationPolicy's default start
    assert policy.priority(prediction) == pytest.approx(priority)
    if isinstance(prediction, ClassPrediction):
        decided = EscalationPolicy("conformal").decide(
            prediction, now=datetime(2026, 1, 1, tzinfo=UTC)
        )
        assert decided.priority == policy.priority(prediction)
        assert list(decided.reasons) == policy.reasons(prediction)


@pytest.mark.parametrize("weight", [50.0, 1 / 0.013, 1.0])
def test_constant_weight_gives_exactly_the_unweighted_run(weight: float) -> None:
    """A constant audit rate: w / w_ref is 1 and every threshold is the same float."""
    conf, correct = stream(4, 20_000)
    plain, weighted = ConformalEscalation(), ConformalEscalation()
    for c, y in zip(conf.tolist(), correct.tolist(), strict=True):
        pred = ClassPrediction("x", c)
        escalated = bool(plain.reasons(pred))
        assert escalated == bool(weighted.reasons(pred))
        a = plain.update(nonconformity(pred), y, escalated)
        b = weighted.update(nonconformity(pred), y, escalated, 1.0 if escalated else weight)
        assert a == b
    assert plain.accepted_error_rate == weighted.accepted_error_rate
    assert weighted.reference_weight == weight


def run_stratified_audit(seed: int, weighted: bool) -> tuple[float, ConformalEscalation]:
    """Escalated items are all labelled; accepted ones with confidence < 0.9 are
    audited at 50%, the others at 5% (weights 2 and 20). Returns the true error
    among *all* accepted items after a burn-in, and the policy."""
    rng = np.random.default_rng(seed)
    n = 200_000
    conf = 0.5 + 0.5 * rng.random(n) ** 0.6
    correct = rng.random(n) < conf
    draw = rng.random(n)
    policy = ConformalEscalation(target_error=0.05)
    wrong = accepted = 0
    for i, (c, y, u) in enumerate(zip(conf.tolist(), correct.tolist(), draw.tolist(), strict=True)):
        score = 1.0 - c
        if score > policy.threshold:
            policy.update(score, y, True)
            continue
        if i >= n // 4:
            accepted += 1
            wrong += not y
        p = 0.5 if c < 0.9 else 0.05
        if u < p:
            policy.update(score, y, False, 1 / p if weighted else 1.0)
    return wrong / accepted, policy


def test_mixed_weights_hold_the_true_accepted_error_at_target() -> None:
    true_error, policy = run_stratified_audit(0, weighted=True)
    assert abs(true_error - 0.05) <= 0.01
    assert abs(policy.accepted_error_rate - 0.05) <= 0.01
    # Unweighted, the labelled accepted items over-represent the less confident
    # stratum: their error rate is not the error of what is accepted.
    true_error, policy = run_stratified_audit(0, weighted=False)
    assert policy.accepted_error_rate - true_error >= 0.015


def test_reference_weight_follows_a_change_of_audit_rate() -> None:
    policy = ConformalEscalation()
    for _ in range(3000):
        policy.update(0.05, True, False, 50.0)
    assert policy.reference_weight == 50.0
    for _ in range(3000):
        policy.update(0.05, True, False, 20.0)
    assert policy.reference_weight == pytest.approx(20.0, rel=1e-3)


@pytest.mark.parametrize(
    "bad",
    [
        (float("nan"), True, False),
        ("0.1", True, False),
        (0.1, 1, False),
        (0.1, True, None),
        (0.1, True, False, float("nan")),
        (0.1, True, False, 0.0),
        (0.1, True, False, -50.0),
        (0.1, True, False, True),
        (0.1, True, True, float("inf")),
    ],
)
def test_rejects_bad_labels(bad: tuple) -> None:
    policy = ConformalEscalation()
    policy.update(0.1, True, False, 50.0)
    before = policy.snapshot()
    with pytest.raises(InvalidObservationError):
        policy.update(*bad)
    assert policy.snapshot() == before


@pytest.mark.parametrize(
    "kwargs",
    [{"target_error": 1.5}, {"learning_rate": 0}, {"patience": 0}, {"initial_threshold": -0.1}],
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        ConformalEscalation(**kwargs)
