"""What the demo knows and vigil does not: the true label of every synthetic event.

:class:`GroundTruth` keeps the truths of recent events (bounded, oldest forgotten first),
for the label sources to label from, and running counts per model (:class:`ModelTally`)
that the summary shows next to vigil's estimates: the true accuracy of every event, the
true error among the events no rule escalated, and the plain accuracy of the labels sent.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["GroundTruth", "ModelTally", "Truth"]

#: Events whose truth is kept: at the demo's default 300 events/s about three minutes,
#: far longer than a worker takes to escalate an event (a second or two).
MAX_REMEMBERED = 50_000


class Truth(NamedTuple):
    """An event's true label and whether its prediction got it right."""

    label: str
    correct: bool


@dataclass
class ModelTally:
    """Running counts for one model since the demo started (a few integers: bounded)."""

    events: int = 0
    correct: int = 0
    #: Events a rule escalated (an audit is not a rule's call: audited events were
    #: auto-accepted), as far as the escalation arrived while the truth was remembered.
    escalated: int = 0
    escalated_correct: int = 0
    #: Events labelled (once each, whatever the number of labels).
    labelled: int = 0
    labelled_correct: int = 0

    @property
    def accuracy(self) -> float | None:
        """Share of all events predicted right."""
        return self.correct / self.events if self.events else None

    @property
    def autoaccept_error(self) -> float | None:
        """Share of the auto-accepted events (all but those a rule escalated) predicted wrong."""
        accepted = self.events - self.escalated
        if accepted <= 0:
            return None
        return (accepted - (self.correct - self.escalated_correct)) / accepted

    @property
    def labelled_accuracy(self) -> float | None:
        """Share of the labelled events predicted right, each label counting once: the
        figure an estimator that ignores why an item was labelled would report."""
        return self.labelled_correct / self.labelled if self.labelled else None


class GroundTruth:
    """The truths of the last ``max_remembered`` events, and a :class:`ModelTally` per model.

    >>> truth = GroundTruth(max_remembered=2)
    >>> for i, (predicted, label) in enumerate([("pos", "pos"), ("pos", "neg"), ("neg", "neg")]):
    ...     _ = truth.record("churn", f"e{i}", predicted, label)
    >>> truth.get("churn", "e0") is None  # forgotten: only the last two are kept
    True
    >>> truth.escalated("churn", "e1", by_rule=True)
    Truth(label='neg', correct=False)
    >>> tally = truth.tallies["churn"]
    >>> tally.accuracy, tally.autoaccept_error  # 2 of 3 right; the escalated one was wrong
    (0.6666666666666666, 0.0)
    """

    def __init__(self, max_remembered: int = MAX_REMEMBERED) -> None:
        if type(max_remembered) is not int or max_remembered < 1:
            raise ValueError(f"max_remembered must be an integer ≥ 1; got {max_remembered!r}")
        self.max_remembered = max_remembered
        self.tallies: dict[str, ModelTally] = {}
        self._truths: OrderedDict[tuple[str, str], Truth] = OrderedDict()
        # Events labelled lately, so that a second label (another review, an outcome after
        # the reviews) is not counted again: vigil learns from one final label per event.
        self._labelled: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._truths)

    def record(self, model_id: str, event_id: str, predicted: str, label: str) -> Truth:
        """One event sent: its truth is kept and counted."""
        truth = Truth(label, predicted == label)
        tally = self._tally(model_id)
        tally.events += 1
        tally.correct += truth.correct
        self._truths[(model_id, event_id)] = truth
        while len(self._truths) > self.max_remembered:
            self._truths.popitem(last=False)
        return truth

    def get(self, model_id: str, event_id: str) -> Truth | None:
        """The event's truth, or None if it was never recorded or has been forgotten."""
        return self._truths.get((model_id, event_id))

    def escalated(self, model_id: str, event_id: str, *, by_rule: bool) -> Truth | None:
        """vigil escalated the event: its truth (None if unknown), now forgotten, so that
        a redelivered escalation is neither counted nor reviewed twice."""
        truth = self._truths.pop((model_id, event_id), None)
        if truth is not None and by_rule:
            tally = self._tally(model_id)
            tally.escalated += 1
            tally.escalated_correct += truth.correct
        return truth

    def labelled(self, model_id: str, event_id: str, truth: Truth) -> None:
        """A label was sent for the event, which has this truth (counted once per event)."""
        key = (model_id, event_id)
        if key in self._labelled:
            return
        self._labelled[key] = None
        if len(self._labelled) > self.max_remembered:
            self._labelled.popitem(last=False)
        tally = self._tally(model_id)
        tally.labelled += 1
        tally.labelled_correct += truth.correct

    def _tally(self, model_id: str) -> ModelTally:
        tally = self.tallies.get(model_id)
        if tally is None:
            tally = self.tallies[model_id] = ModelTally()
        return tally
