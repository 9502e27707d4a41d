"""Everything vigil knows about one model, composed: drift, escalation, calibration.

:class:`ModelMonitor` is the single entry point the worker and ``vigil replay``
share, so live and replayed streams run the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from detectors.escalation import Decision, ThresholdEscalation
from detectors.prediction import Prediction
from detectors.signals import SignalChange

__all__ = ["ModelMonitor", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one observed event produced: the escalation decision and any alert edges."""

    decision: Decision
    changes: list[SignalChange] = field(default_factory=list)


class ModelMonitor:
    """Monitors of one model.

    Parameters
    ----------
    model_id
        The model this monitor belongs to.
    policy
        The escalation policy applied to each prediction.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from detectors.prediction import ClassPrediction
    >>> mon = ModelMonitor("fraud", ThresholdEscalation(min_confidence=0.7))
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> mon.observe({}, ClassPrediction("ok", 0.9), now).decision.escalate
    False
    >>> mon.observe({}, ClassPrediction("ok", 0.6), now).decision.escalate
    True
    >>> mon.events_seen
    2
    """

    def __init__(self, model_id: str, policy: ThresholdEscalation) -> None:
        self.model_id = model_id
        self.policy = policy
        self._events_seen = 0
        self.model_version = "unknown"

    @property
    def events_seen(self) -> int:
        return self._events_seen

    def observe(
        self, features: Mapping[str, Any], prediction: Prediction, now: datetime
    ) -> Verdict:
        self._events_seen += 1
        reasons = self.policy.update(prediction)
        decision = Decision(bool(reasons), self.policy.priority(prediction), tuple(reasons))
        return Verdict(decision)

    def snapshot(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "events_seen": self._events_seen,
            "policy": self.policy.snapshot(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> ModelMonitor:
        mon = cls(snapshot["model_id"], ThresholdEscalation.restore(snapshot["policy"]))
        mon._events_seen = int(snapshot["events_seen"])
        mon.model_version = snapshot["model_version"]
        return mon
