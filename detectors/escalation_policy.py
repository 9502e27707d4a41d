"""The escalation policy of one model: uncertainty, data and drift reasons, and a budget.

:class:`EscalationPolicy` is what a worker calls per prediction. It composes

* an uncertainty policy, :class:`~detectors.escalation.ThresholdEscalation`
  (``policy="threshold"``) or :class:`~detectors.conformal.ConformalEscalation`
  (``policy="conformal"``);
* data reasons the caller found while validating the event (``out_of_range``,
  ``unseen_category``, ``missing_features``, each naming its features), and
  ``outlier`` (the event's outlier score beyond the reference's
  ``outlier_quantile``, :class:`~detectors.drift_monitor.Outlier`);
* a drift-aware mode: while the model's drift is active, the confidence bar is
  raised by ``drift_confidence_boost`` and escalations carry a ``drift_active``
  reason, so reviewers see more of a model that has just changed;
* an optional :class:`~detectors.budget.EscalationBudget`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from detectors.base import Detector, check_bool, check_in_range, check_positive, check_weight
from detectors.budget import EscalationBudget, check_aware
from detectors.conformal import ConformalEscalation, nonconformity
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation import (
    Decision,
    Reason,
    ThresholdEscalation,
)
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction

__all__ = ["DataReasonKind", "EscalationPolicy"]

DataReasonKind = Literal["out_of_range", "unseen_category", "missing_features"]
DATA_REASON_KINDS: tuple[str, ...] = get_args(DataReasonKind)
POLICIES = ("threshold", "conformal")

DataReasons = Mapping[str, Sequence[str]] | Iterable[tuple[str, Sequence[str]]]
# The default of ``decide(data_reasons=...)``; anything else passed is validated.
NO_DATA_REASONS: DataReasons = ()


def _data_reasons(data_reasons: DataReasons) -> list[Reason]:
    """Validate the caller's data reasons and turn them into :class:`Reason` items."""
    items = data_reasons.items() if isinstance(data_reasons, Mapping) else data_reasons
    out: list[Reason] = []
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidObservationError(
                f"a data reason must be a (kind, features) pair; got {item!r}"
            )
        kind, features = item
        if kind not in DATA_REASON_KINDS:
            raise InvalidObservationError(
                f"data reason kind must be one of {DATA_REASON_KINDS}; got {kind!r}"
            )
        if isinstance(features, str) or not all(isinstance(f, str) for f in features):
            raise InvalidObservationError(
                f"features of data reason {kind!r} must be a sequence of names; got {features!r}"
            )
        if features:
            kind = cast(DataReasonKind, kind)
            out.append(Reason(kind, float(len(features)), 0.0, ", ".join(features)))
    return out


def _outlier_reason(outlier: object) -> Reason:
    """The ``outlier`` reason of a ``(score, threshold, detail)`` triple (validated)."""
    if (
        not isinstance(outlier, tuple)
        or len(outlier) != 3
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in outlier[:2])
        or not isinstance(outlier[2], str)
    ):
        raise InvalidObservationError(
            f"'outlier' must be a (score, threshold, detail) triple; got {outlier!r}"
        )
    return Reason("outlier", float(outlier[0]), float(outlier[1]), outlier[2])


class EscalationPolicy(Detector):
    """Decide per prediction whether a human must look at it, why, and how urgently.

    Parameters
    ----------
    policy
        ``"threshold"`` (fixed confidence/margin/entropy/interval thresholds) or
        ``"conformal"`` (adaptive threshold holding the error rate of
        auto-accepted items at ``target_error``).
    min_confidence, min_margin, max_entropy, max_interval_width
        Thresholds of :class:`~detectors.escalation.ThresholdEscalation`. With
        ``policy="conformal"`` only ``max_interval_width`` is used (regressions
        have no confidence), and ``1 - min_confidence`` is the conformal
        starting threshold.
    target_error, learning_rate
        Settings of :class:`~detectors.conformal.ConformalEscalation`.
    drift_confidence_boost
        While drift is active, escalate confidences below
        ``threshold + drift_confidence_boost``. With the conformal policy the
        boost is absorbed as labels of the drifting model arrive (the
        threshold re-learns the target), so it bridges the time until labels
        catch up.
    budget_per_minute
        Escalations per minute; ``None`` means unlimited.
    budget_history
        Recent candidate priorities the budget learns its cut from
        (:class:`~detectors.budget.EscalationBudget`'s ``history``).

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> now = datetime(2024, 1, 1, tzinfo=UTC)
    >>> policy = EscalationPolicy(min_confidence=0.7)
    >>> policy.decide(ClassPrediction("spam", 0.9), now=now).escalate
    False
    >>> d = policy.decide(ClassPrediction("spam", 0.65), now=now)
    >>> d.escalate, round(d.priority, 2), [r.kind for r in d.reasons]
    (True, 0.7, ['low_confidence'])
    >>> d = policy.decide(ClassPrediction("spam", 0.75), now=now, drift_active=True)
    >>> [(r.kind, round(r.threshold, 2)) for r in d.reasons]
    [('low_confidence', 0.8), ('drift_active', 0.0)]
    >>> d = policy.decide(
    ...     ClassPrediction("spam", 0.95), now=now, data_reasons={"out_of_range": ["age", "income"]}
    ... )
    >>> [(r.kind, r.detail) for r in d.reasons]
    [('out_of_range', 'age, income')]

    With a budget of one escalation a minute, the second candidate is suppressed:

    >>> tight = EscalationPolicy(min_confidence=0.7, budget_per_minute=1)
    >>> [tight.decide(ClassPrediction("spam", 0.6), now=now).suppressed for _ in range(2)]
    [False, True]
    """

    _settings = (
        "policy",
        "min_confidence",
        "min_margin",
        "max_entropy",
        "max_interval_width",
        "target_error",
        "learning_rate",
        "drift_confidence_boost",
        "budget_per_minute",
        "budget_history",
    )
    version = "1"

    def __init__(
        self,
        policy: Literal["threshold", "conformal"] = "threshold",
        min_confidence: float = 0.6,
        min_margin: float | None = None,
        max_entropy: float | None = None,
        max_interval_width: float | None = None,
        target_error: float = 0.05,
        learning_rate: float = 0.005,
        drift_confidence_boost: float = 0.1,
        budget_per_minute: int | None = None,
        budget_history: int = 4096,
    ) -> None:
        self.policy = policy
        self.min_confidence = min_confidence
        self.min_margin = min_margin
        self.max_entropy = max_entropy
        self.max_interval_width = max_interval_width
        self.target_error = target_error
        self.learning_rate = learning_rate
        self.drift_confidence_boost = drift_confidence_boost
        self.budget_per_minute = budget_per_minute
        self.budget_history = budget_history
        if policy not in POLICIES:
            raise SettingsError(f"'policy' must be one of {POLICIES}; got {policy!r}")
        check_in_range("drift_confidence_boost", drift_confidence_boost, 0.0, 1.0)
        # Checked whichever policy is chosen, so a config is valid or not as a whole.
        check_in_range("target_error", target_error, 0.0, 1.0)
        check_in_range("learning_rate", learning_rate, 0.0, 1.0)
        check_positive("learning_rate", learning_rate)
        if budget_per_minute is not None:
            check_positive("budget_per_minute", budget_per_minute, integer=True)
        check_positive("budget_history", budget_history, integer=True)
        # The parts check their own settings.
        self._threshold = ThresholdEscalation(
            min_confidence, min_margin, max_entropy, max_interval_width
        )
        boosted = min(1.0, min_confidence + drift_confidence_boost)
        self._boosted = ThresholdEscalation(boosted, min_margin, max_entropy, max_interval_width)
        self._conformal = (
            ConformalEscalation(
                target_error=target_error,
                learning_rate=learning_rate,
                initial_threshold=1.0 - min_confidence,
            )
            if policy == "conformal"
            else None
        )
        self._budget = (
            EscalationBudget(budget_per_minute=budget_per_minute, history=budget_history)
            if budget_per_minute is not None
            else None
        )
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {
            "min_confidence": 0.7,
            "min_margin": 0.3,
            "max_interval_width": 2.0,
            "budget_per_minute": 30,
            "budget_history": 128,
        }
        yield {
            "policy": "conformal",
            "budget_per_minute": 30,
            "budget_history": 128,
            "max_interval_width": 2.0,
        }

    def _reset(self) -> None:
        if self._conformal is not None:
            self._conformal._reset()
        if self._budget is not None:
            self._budget._reset()
        self._decided = 0
        self._escalated = 0
        self._suppressed = 0
        self._labels = 0

    def _state(self) -> dict[str, Any]:
        return {
            "conformal": None if self._conformal is None else self._conformal._state(),
            "budget": None if self._budget is None else self._budget._state(),
            "decided": self._decided,
            "escalated": self._escalated,
            "suppressed": self._suppressed,
            "labels": self._labels,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        if self._conformal is not None:
            self._conformal._load_state(state["conformal"])
        if self._budget is not None:
            self._budget._load_state(state["budget"])
        self._decided = int(state["decided"])
        self._escalated = int(state["escalated"])
        self._suppressed = int(state["suppressed"])
        self._labels = int(state["labels"])

    def decide(
        self,
        prediction: Prediction,
        *,
        now: datetime,
        data_reasons: DataReasons = NO_DATA_REASONS,
        drift_active: bool = False,
        outlier: tuple[float, float, str] | None = None,
    ) -> Decision:
        """The decision on one prediction.

        ``data_reasons`` maps ``out_of_range`` / ``unseen_category`` /
        ``missing_features`` to the names of the features concerned (a mapping
        or ``(kind, names)`` pairs). ``outlier``: ``(score, threshold, detail)`` of
        an event found to be an outlier (reason ``outlier``, after the data
        reasons). ``now`` is the decision time, used by the
        budget. A candidate the budget rejects comes back with
        ``escalate=False, suppressed=True`` and its reasons.

        >>> from datetime import UTC, datetime
        >>> d = EscalationPolicy().decide(ClassPrediction("a", 0.9), now=datetime(2026, 1, 1,
        ...     tzinfo=UTC), outlier=(80.0, 59.0, "score 80.0 > 59.0; x1 70%"))
        >>> d.escalate, [(r.kind, r.score, r.threshold) for r in d.reasons]
        (True, [('outlier', 80.0, 59.0)])
        """
        if not isinstance(prediction, ClassPrediction | RegressionPrediction):
            raise InvalidObservationError(
                f"'prediction' must be a ClassPrediction or RegressionPrediction; "
                f"got {prediction!r}"
            )
        if type(now) is not datetime or now.tzinfo is not UTC:  # else certainly aware
            check_aware("now", now)
        if drift_active is not True and drift_active is not False:
            drift_active = check_bool("drift_active", drift_active)  # numpy's bool, else raises
        return self._decide(prediction, now, data_reasons, drift_active, outlier)

    def _decide(
        self,
        prediction: Prediction,
        now: datetime,
        data_reasons: DataReasons,
        drift_active: bool,
        outlier: tuple[float, float, str] | None,
    ) -> Decision:
        """:meth:`decide` of input already checked: a :class:`ClassPrediction` or
        :class:`RegressionPrediction`, an aware UTC ``now``, a ``bool`` ``drift_active``
        (what :meth:`~detectors.model_monitor.ModelMonitor.observe` calls per event, its
        input checked once there)."""
        # Called once per event: the parts are inlined (a few µs per event).
        is_class = isinstance(prediction, ClassPrediction)
        conformal = self._conformal
        if conformal is None:
            reasons = (self._boosted if drift_active else self._threshold).reasons(prediction)
            priority = self._threshold.priority(prediction)
        elif is_class:
            boost = self.drift_confidence_boost if drift_active else 0.0
            reasons, priority = conformal._assess(prediction, boost)  # type: ignore[arg-type]
        else:
            reasons = self._threshold.reasons(prediction)
            priority = conformal.priority(prediction)
        if data_reasons is not NO_DATA_REASONS:
            reasons += _data_reasons(data_reasons)
        if outlier is not None:
            reasons.append(_outlier_reason(outlier))
        if reasons and drift_active:
            reasons.append(
                Reason(
                    "drift_active",
                    1.0,
                    0.0,
                    f"drift active: confidence bar raised by {self.drift_confidence_boost}",
                )
            )
        self._decided += 1
        if not reasons:
            return Decision(False, priority)
        if self._budget is not None and not self._budget.update(priority, now):
            self._suppressed += 1
            return Decision(False, priority, tuple(reasons), True)
        self._escalated += 1
        return Decision(True, priority, tuple(reasons))

    def update(
        self,
        prediction: Prediction,
        *,
        now: datetime,
        data_reasons: DataReasons = NO_DATA_REASONS,
        drift_active: bool = False,
        outlier: tuple[float, float, str] | None = None,
    ) -> Decision:
        """Same as :meth:`decide`."""
        return self.decide(
            prediction,
            now=now,
            data_reasons=data_reasons,
            drift_active=drift_active,
            outlier=outlier,
        )

    def observe_label(
        self, prediction: Prediction, correct: bool, was_escalated: bool, weight: float = 1.0
    ) -> None:
        """Learn from a labelled prediction (the conformal threshold moves; see
        :meth:`ConformalEscalation.update`). ``was_escalated`` is whether the
        item was actually escalated; a suppressed item was not. ``weight`` is
        the label's ``1 / inclusion probability`` (checked for every prediction,
        regressions included, though only classifications use it)."""
        if not isinstance(prediction, ClassPrediction | RegressionPrediction):
            raise InvalidObservationError(
                f"'prediction' must be a ClassPrediction or RegressionPrediction; "
                f"got {prediction!r}"
            )
        w = check_weight("weight", weight)
        correct = check_bool("correct", correct)
        was_escalated = check_bool("was_escalated", was_escalated)
        if self._conformal is not None and isinstance(prediction, ClassPrediction):
            self._conformal.update(nonconformity(prediction), correct, was_escalated, w)
        self._labels += 1

    @property
    def threshold(self) -> float:
        """Confidence below which a classification is escalated (for
        ``vigil_escalation_threshold``), without the drift boost; for the
        conformal policy ``1 - tau``."""
        if self._conformal is not None:
            return 1.0 - self._conformal.threshold
        return float(self.min_confidence)

    @property
    def info(self) -> dict[str, str]:
        """``{"name", "version"}`` for the escalation's ``policy`` field (SPEC §4)."""
        return {"name": self.policy, "version": self.version}

    @property
    def suppressed(self) -> int:
        """Candidates the budget suppressed since the start."""
        return self._suppressed

    @property
    def escalated(self) -> int:
        """Escalations sent since the start."""
        return self._escalated

    @property
    def decided(self) -> int:
        """Predictions decided since the start."""
        return self._decided
