"""Adaptive conformal escalation: hold the error rate of what is auto-accepted at a target.

The policy escalates a prediction whose nonconformity score ``1 - confidence``
exceeds a threshold ``tau`` and auto-accepts the rest. As labels arrive, ``tau``
moves by the adaptive conformal inference rule of Gibbs & Candès (2021,
"Adaptive Conformal Inference Under Distribution Shift", eq. 2), applied to the
auto-accepted items only::

    tau <- tau + learning_rate * (target_error - error)     for each accepted, labelled item

An accepted error lowers ``tau`` (escalate more), an accepted success raises it.
Summing the rule over the accepted items gives, for any label sequence,

    |accepted error rate - target_error| <= (tau_max - tau_min) / (learning_rate * n_accepted)

so the long-run error among auto-accepted items converges to the target
without any assumption on the data — also after an abrupt shift — which is the
same argument as Gibbs & Candès' Proposition 4.1, with "miscoverage" replaced by
"error among accepted". Escalated items do not move ``tau``: their outcome says
nothing about the error of what is accepted.

**Weighted labels.** When reviewers are the only label source, the accepted
items that get a label are an audit sample: each carries a weight
``w = 1 / inclusion probability`` (50 for a 2% audit; 1 for an outcome label
when outcomes are reported for every event). The step becomes::

    tau <- tau + learning_rate * (w / w_ref) * (target_error - error)

``w_ref`` is a reference weight of accepted labels: an exponential moving
average of their weights (smoothing ``1 / 256``), initialised at the first.
Dividing by it keeps ``learning_rate`` the step per labelled item: with every
accepted label at the same weight (a constant audit rate) ``w / w_ref`` is
exactly 1 and the rule is Gibbs & Candès' ACI unchanged, so a 2% audit does not
make the step 50 times larger; with mixed weights (outcome labels at 1 and
audits at 50, or an audit rate lowered by a cap) each item counts in proportion
to its weight. A moving average rather than a cumulative mean, so that the step
follows a change of the audit rate instead of carrying the old rate for ever
(and it stays exactly ``w`` under a constant weight, where a running mean of
many equal floats may round away from it).

The guarantee then holds for the ``v``-weighted error, ``v_i = w_i / w_ref_i``:
the same telescoping sum gives, while ``tau`` stays inside [0, 1],

    |sum v_i * error_i / sum v_i - target_error|
        <= (1 + learning_rate * max v_i) / (learning_rate * sum v_i)

While ``w_ref`` is steady, ``v`` is proportional to ``w`` and the left-hand side
is the self-normalised Horvitz-Thompson error rate of the labelled accepted
items, which estimates the error rate over *all* accepted items provided the
labelled accepted items are a probability sample of them with known, non-zero
inclusion probabilities (an audit drawn independently of the outcome). Under
that assumption the error of what is auto-accepted converges to the target even
when reviewers are the only label source; the convergence is as slow as the
audit is sparse (``sum v_i`` grows by about one per audited accepted item).

One failure mode remains: if ``tau`` falls below every score, nothing is
accepted and the rule never fires again. After ``patience`` consecutive labelled
items that were all escalated, ``tau`` is re-anchored at the lowest score among
them, so the least uncertain items are accepted again and the rule resumes. If
they are wrong, ``tau`` drops again and the next probe waits another
``patience`` items, so a broken model costs at most one probe per ``patience``
items.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from detectors.base import (
    Detector,
    check_bool,
    check_finite,
    check_in_range,
    check_positive,
    check_weight,
)
from detectors.escalation import Reason
from detectors.prediction import ClassPrediction, Prediction

__all__ = ["ConformalEscalation", "nonconformity"]

# Accepted-label weights are summed in fixed point, as in detectors.calibration:
# integer sums are exact, so a constant weight gives exactly the unweighted rate.
_FIXED_BITS = 80
_ONE = 1 << _FIXED_BITS

# Smoothing of the reference weight w_ref (a moving average over roughly the
# last 256 accepted labels: a few hours of a 2% audit at a few events a second).
_REF_WEIGHT_SMOOTHING = 1.0 / 256


def nonconformity(prediction: ClassPrediction) -> float:
    """The score the conformal policy thresholds: ``1 - confidence``, in [0, 1].

    >>> nonconformity(ClassPrediction("cat", 0.8))
    0.19999999999999996
    """
    return 1.0 - prediction.confidence


class ConformalEscalation(Detector):
    """Escalate predictions whose score ``1 - confidence`` exceeds an adaptive
    threshold that keeps the error rate of auto-accepted items at ``target_error``.

    Parameters
    ----------
    target_error
        Error rate wanted among auto-accepted (not escalated) items.
    learning_rate
        Step of the threshold, in score units, per accepted labelled item
        (Gibbs & Candès' gamma). Larger adapts faster after a shift but
        jitters more, which escalates a little more on average; 0.005 kept the
        escalation rate within a few percent of the best fixed threshold in
        ``benchmarks/escalation_quality.py``.
    initial_threshold
        Starting ``tau``; 0.4 escalates confidences below 0.6, like
        :class:`~detectors.escalation.ThresholdEscalation`'s default.
    patience
        Consecutive labelled items, all escalated, after which ``tau`` is
        re-anchored at their lowest score (see the module docstring).

    Examples
    --------
    A model wrong 20% of the time whose confidence says when: the threshold
    settles where the auto-accepted items are wrong about 5% of the time.

    >>> import random
    >>> rng = random.Random(1)
    >>> policy = ConformalEscalation(target_error=0.05)
    >>> accepted = errors = 0
    >>> for i in range(20_000):
    ...     confidence = 0.5 + 0.5 * rng.random() ** 0.6
    ...     pred = ClassPrediction("spam", confidence)
    ...     escalated = bool(policy.reasons(pred))
    ...     correct = rng.random() < confidence
    ...     if i >= 5_000 and not escalated:
    ...         accepted += 1
    ...         errors += not correct
    ...     _ = policy.update(nonconformity(pred), correct, escalated)
    >>> round(errors / accepted, 3), round(policy.threshold, 2)
    (0.051, 0.09)
    >>> [(r.kind, round(r.score, 2)) for r in policy.reasons(ClassPrediction("spam", 0.7))]
    [('conformal', 0.3)]
    >>> policy.reasons(ClassPrediction("spam", 0.97))
    []
    """

    _settings = ("target_error", "learning_rate", "initial_threshold", "patience")

    def __init__(
        self,
        target_error: float = 0.05,
        learning_rate: float = 0.005,
        initial_threshold: float = 0.4,
        patience: int = 200,
    ) -> None:
        self.target_error = target_error
        self.learning_rate = learning_rate
        self.initial_threshold = initial_threshold
        self.patience = patience
        check_in_range("target_error", target_error, 0.0, 1.0)
        check_in_range("learning_rate", learning_rate, 0.0, 1.0)
        check_positive("learning_rate", learning_rate)
        check_in_range("initial_threshold", initial_threshold, 0.0, 1.0)
        check_positive("patience", patience, integer=True)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"target_error": 0.05, "patience": 20}
        yield {"target_error": 0.2, "learning_rate": 0.05, "initial_threshold": 0.0, "patience": 3}

    def _reset(self) -> None:
        self._tau = float(self.initial_threshold)
        self._labelled = 0
        self._accepted = 0
        self._accepted_errors = 0
        # Fixed-point sums of accepted labels' weights (for ``accepted_error_rate``), w_ref.
        self._accepted_weight = 0
        self._accepted_error_weight = 0
        self._ref_weight: float | None = None
        self._since_accept = 0
        self._stuck_min: float | None = None

    def _state(self) -> dict[str, Any]:
        return {
            "tau": self._tau,
            "labelled": self._labelled,
            "accepted": self._accepted,
            "accepted_errors": self._accepted_errors,
            "accepted_weight": self._accepted_weight,
            "accepted_error_weight": self._accepted_error_weight,
            "ref_weight": self._ref_weight,
            "since_accept": self._since_accept,
            "stuck_min": self._stuck_min,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._tau = float(state["tau"])
        self._labelled = int(state["labelled"])
        self._accepted = int(state["accepted"])
        self._accepted_errors = int(state["accepted_errors"])
        # A snapshot from before weights: every label weighed 1.
        self._accepted_weight = int(state.get("accepted_weight", self._accepted * _ONE))
        self._accepted_error_weight = int(
            state.get("accepted_error_weight", self._accepted_errors * _ONE)
        )
        r = state.get("ref_weight", 1.0 if self._accepted else None)
        self._ref_weight = None if r is None else float(r)
        self._since_accept = int(state["since_accept"])
        m = state["stuck_min"]
        self._stuck_min = None if m is None else float(m)

    def update(
        self, score: float, correct: bool, was_escalated: bool, weight: float = 1.0
    ) -> float:
        """Learn from one labelled item; return the new threshold.

        ``score`` is the item's :func:`nonconformity` when it was decided,
        ``correct`` whether the model was right, ``was_escalated`` whether the
        item was escalated (``False``: it was auto-accepted), ``weight`` the
        label's ``1 / inclusion probability`` (a finite number > 0; see the
        module docstring).
        """
        s = check_finite("score", score)
        correct = check_bool("correct", correct)
        was_escalated = check_bool("was_escalated", was_escalated)
        # Most labels weigh 1.0: skip the call then.
        w = weight if weight == 1.0 and type(weight) is float else check_weight("weight", weight)
        self._labelled += 1
        if not was_escalated:
            self._accepted += 1
            self._accepted_errors += not correct
            fixed_w = _ONE if w == 1.0 else int(math.ldexp(w, _FIXED_BITS))
            self._accepted_weight += fixed_w
            if not correct:
                self._accepted_error_weight += fixed_w
            ref = self._ref_weight
            if ref != w:
                # Exactly w when w == ref, hence skipped: a constant weight gives
                # w / ref == 1.0 and the unweighted step, bit for bit.
                ref = w if ref is None else ref + _REF_WEIGHT_SMOOTHING * (w - ref)
                self._ref_weight = ref
            self._tau += self.learning_rate * (w / ref) * (self.target_error - (not correct))
            self._since_accept = 0
            self._stuck_min = None
        else:
            self._since_accept += 1
            self._stuck_min = s if self._stuck_min is None else min(self._stuck_min, s)
            if self._since_accept >= self.patience:
                self._tau = max(self._tau, self._stuck_min)
                self._since_accept = 0
                self._stuck_min = None
        # Outside [0, 1] the threshold accepts everything or nothing; letting it
        # wander further would only delay the reaction when the data turn.
        self._tau = min(1.0, max(0.0, self._tau))
        return self._tau

    @property
    def threshold(self) -> float:
        """Current ``tau``: a score above it (confidence below ``1 - tau``) escalates."""
        return self._tau

    @property
    def accepted_error_rate(self) -> float:
        """Weighted error rate among labelled auto-accepted items since the start,
        ``sum w * error / sum w`` (NaN before any)."""
        if not self._accepted:
            return math.nan
        return self._accepted_error_weight / self._accepted_weight

    @property
    def reference_weight(self) -> float:
        """``w_ref``, the moving average of accepted labels' weights (NaN before any)."""
        return math.nan if self._ref_weight is None else self._ref_weight

    def reasons(self, prediction: Prediction, *, boost: float = 0.0) -> list[Reason]:
        """A ``conformal`` reason if the score exceeds ``threshold - boost``.

        ``boost`` lowers the threshold temporarily (drift-aware mode).
        Regressions carry no confidence and get no conformal reason.
        """
        if not isinstance(prediction, ClassPrediction):
            return []
        return self._assess(prediction, boost)[0]

    def priority(self, prediction: Prediction) -> float:
        """Uncertainty in [0, 1] (``1 - margin``), as :class:`ThresholdEscalation`."""
        if isinstance(prediction, ClassPrediction):
            return self._assess(prediction, 0.0)[1]
        return 0.0

    def _assess(self, prediction: ClassPrediction, boost: float) -> tuple[list[Reason], float]:
        """(:meth:`reasons`, :meth:`priority`) of a classification, in one call: the
        escalation policy asks both per event."""
        score = 1.0 - prediction.confidence  # nonconformity(prediction), inlined: per event
        tau = self._tau - boost
        if not tau > 0.0:  # max(0.0, tau), NaN and -0.0 included
            tau = 0.0
        u = 1.0 - prediction.margin
        # min(1.0, max(0.0, u)) without the two calls (per event)
        priority = u if 0.0 < u < 1.0 else (1.0 if u >= 1.0 else 0.0)
        return ([Reason("conformal", score, tau)] if score > tau else []), priority
