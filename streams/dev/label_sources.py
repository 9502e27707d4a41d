"""The demo's label sources: a review team for the escalations, an outcome system for one model.

Real labels come in two ways, and vigil weighs them differently (SPEC §3, §4):

* :class:`OutcomeSource`: an outcome system (chargebacks, cancellations) reports what
  happened to a random share of all events, whatever vigil did with them. Each label
  carries that share as its ``inclusion_probability``; the worker is configured with the
  same share (``labels.outcome_rate``).
* :class:`ReviewTeam`: reviewers label only what vigil sent them, the escalations, which
  are the uncertain items plus a random audit of the auto-accepted ones. Each label copies
  the escalation's ``inclusion_probability`` (1 for a rule's escalation, the audit
  probability for an audit) and ``escalation_id``, and names its ``reviewer``. The
  reviewers err at known rates, one of them carelessly; an escalation that wants several
  reviews (overlap) gets them from distinct reviewers; gold items, which the worker slips
  in under fresh ids, are answered from what they show
  (:mod:`streams.dev.gold_questions`). So vigil's reviewer scores, agreement and
  adjudication have something to find.

Both label after a random delay, from the demo's :class:`~streams.dev.ground_truth.GroundTruth`;
neither touches Kafka: they return :class:`PendingLabel` s that a :class:`LabelQueue` hands
back when due, so the demo's loop publishes them and the tests need no broker.
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from streams.dev.gold_questions import GoldAnswers
from streams.dev.ground_truth import Truth
from streams.dev.traffic import CLASSES

__all__ = [
    "REVIEWERS",
    "LabelQueue",
    "OutcomeSource",
    "PendingLabel",
    "ReviewTeam",
    "Reviewer",
    "ReviewerTally",
    "by_rule",
]


class PendingLabel(NamedTuple):
    """A LabelEvent (SPEC §3) to publish at ``due`` (monotonic seconds), for an event
    with ``truth``."""

    due: float
    label: dict[str, Any]
    truth: Truth
    #: A label on a gold item: it scores its reviewer, it is not the model's.
    gold: bool = False


def _delay(rng: random.Random, delay_s: tuple[float, float]) -> float:
    return rng.uniform(*delay_s)


def _check_delay(delay_s: tuple[float, float]) -> tuple[float, float]:
    low, high = delay_s
    if not 0.0 <= low <= high:
        raise ValueError(f"delay_s must be (low, high) with 0 ≤ low ≤ high; got {delay_s!r}")
    return (float(low), float(high))


class OutcomeSource:
    """Labels a random ``share`` of the events of ``models`` after a delay (source "outcome").

    >>> source = OutcomeSource({"churn"}, share=1.0, delay_s=(2.0, 2.0))
    >>> event = {"event_id": "e1", "model_id": "churn"}
    >>> pending = source.observe(event, Truth("pos", True), now=10.0)
    >>> pending.due, pending.label["source"], pending.label["inclusion_probability"]
    (12.0, 'outcome', 1.0)
    >>> source.observe({"event_id": "e2", "model_id": "fraud"}, Truth("pos", True), 10.0) is None
    True
    """

    def __init__(
        self,
        models: Collection[str],
        *,
        share: float,
        delay_s: tuple[float, float] = (2.0, 8.0),
        seed: int = 0,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1]; got {share!r}")
        self.models = frozenset(models)
        self.share = share
        self.delay_s = _check_delay(delay_s)
        self._rng = random.Random(seed)  # noqa: S311 - seeded synthetic labels, not a secret

    def observe(self, event: Mapping[str, Any], truth: Truth, now: float) -> PendingLabel | None:
        """One event sent: its label, if this source reports on it."""
        if event["model_id"] not in self.models or self._rng.random() >= self.share:
            return None
        label = {
            "event_id": event["event_id"],
            "model_id": event["model_id"],
            "ts": datetime.now(UTC).isoformat(),
            "label": truth.label,
            "source": "outcome",
            "inclusion_probability": self.share,
        }
        return PendingLabel(now + _delay(self._rng, self.delay_s), label, truth)


class Reviewer(NamedTuple):
    """A synthetic reviewer: its name (the label's ``reviewer``) and the share of its
    answers that are wrong."""

    name: str
    error_rate: float


#: The demo's review team: five careful reviewers (3-15 % wrong) and a careless one
#: (45 % wrong, in the issue's benchmark too), whom vigil's gold questions and agreement
#: should single out on the "review quality" dashboard.
REVIEWERS = (
    Reviewer("ana", 0.03),
    Reviewer("bruno", 0.06),
    Reviewer("chen", 0.09),
    Reviewer("dara", 0.12),
    Reviewer("eli", 0.15),
    Reviewer("careless-carl", 0.45),
)

#: Gold escalations remembered as answered, so that a redelivered one is not answered
#: twice (their event ids are fresh: the ground truth does not know them).
MAX_GOLD_ANSWERED = 10_000


@dataclass
class ReviewerTally:
    """What one synthetic reviewer answered since the demo started (true figures)."""

    labels: int = 0
    wrong: int = 0
    gold: int = 0

    @property
    def error(self) -> float | None:
        """Share of its labels that are wrong."""
        return self.wrong / self.labels if self.labels else None


class ReviewTeam:
    """Reviewers with known error rates label the escalations of ``models`` (source
    "human"), nothing else.

    An escalation that wants ``reviews_wanted`` reviews (SPEC §4; 1 when absent) gets a
    label from that many distinct reviewers (all of them at most), drawn at random, each
    after its own delay; the label's ``ts`` is when its reviewer answered. A reviewer
    answers wrong with its ``error_rate``: then a class other than the truth, drawn from
    the model's ``classes`` (default: the synthetic models' :data:`CLASSES`).

    The truth comes from the demo's ground truth, by event id; a gold escalation's event
    id is fresh and unknown to it, so the team recognises the item from its content in
    ``gold`` (:class:`~streams.dev.gold_questions.GoldAnswers`), as a person would.

    >>> team = ReviewTeam({"fraud"}, delay_s=(3.0, 3.0), reviewers=(Reviewer("ana", 0.0),))
    >>> escalation = {
    ...     "escalation_id": "x-1", "event_id": "e1", "model_id": "fraud",
    ...     "reasons": [{"kind": "audit", "score": 0.05, "threshold": 0.05}],
    ...     "inclusion_probability": 0.05,
    ... }
    >>> [pending] = team.review(escalation, Truth("neg", False), now=10.0)
    >>> pending.due, pending.label["reviewer"], pending.label["label"]
    (13.0, 'ana', 'neg')
    >>> pending.label["inclusion_probability"]
    0.05
    """

    def __init__(
        self,
        models: Collection[str],
        *,
        reviewers: Sequence[Reviewer] = REVIEWERS,
        classes: Mapping[str, Sequence[str]] | None = None,
        gold: GoldAnswers | None = None,
        delay_s: tuple[float, float] = (2.0, 8.0),
        seed: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not reviewers:
            raise ValueError("reviewers must name at least one reviewer; got none")
        names = [r.name for r in reviewers]
        if len(set(names)) != len(names):
            raise ValueError(f"reviewers must have distinct names; got {names!r}")
        for r in reviewers:
            if not 0.0 <= r.error_rate <= 1.0:
                raise ValueError(f"reviewer {r.name!r}: error_rate must be in [0, 1]; got {r!r}")
        self.models = frozenset(models)
        self.reviewers = tuple(reviewers)
        self.classes = {m: tuple((classes or {}).get(m, CLASSES)) for m in self.models}
        for model, known in self.classes.items():
            if len(set(known)) < 2:
                raise ValueError(f"model {model!r} needs at least two classes; got {known!r}")
        self.gold = gold
        self.delay_s = _check_delay(delay_s)
        self.clock = clock
        self.tallies = {r.name: ReviewerTally() for r in self.reviewers}
        self._rng = random.Random(seed)  # noqa: S311 - seeded synthetic labels, not a secret
        self._gold_answered: OrderedDict[str, None] = OrderedDict()

    def review(
        self, escalation: Mapping[str, Any], truth: Truth | None, now: float
    ) -> list[PendingLabel]:
        """One escalation (SPEC §4) read from the escalations topic, with the truth of its
        event (None: unknown to the demo, e.g. forgotten, or a gold item): the team's
        labels, none if it does not review this model, knows no answer, or the record
        asks for no valid number of reviews."""
        model = escalation.get("model_id")
        if model not in self.models:
            return []
        wanted = escalation.get("reviews_wanted", 1)
        if type(wanted) is not int or wanted < 1:
            return []
        gold = False
        if truth is None:
            truth = self._gold_truth(escalation)
            if truth is None:
                return []
            gold = True
        out = []
        for reviewer in self._rng.sample(self.reviewers, min(wanted, len(self.reviewers))):
            delay = _delay(self._rng, self.delay_s)
            answer = self._answer(reviewer, model, truth.label)
            label: dict[str, Any] = {
                "event_id": escalation["event_id"],
                "model_id": model,
                "ts": (self.clock() + timedelta(seconds=delay)).isoformat(),
                "label": answer,
                "source": "human",
                "reviewer": reviewer.name,
                "escalation_id": escalation["escalation_id"],
            }
            # Copied, not assumed: the worker weighs the label by its inverse (an escalation
            # from a worker without audit sampling has none; vigil's own record decides then).
            inclusion = escalation.get("inclusion_probability")
            if inclusion is not None:
                label["inclusion_probability"] = inclusion
            tally = self.tallies[reviewer.name]
            tally.labels += 1
            tally.wrong += answer != truth.label
            tally.gold += gold
            out.append(PendingLabel(now + delay, label, truth, gold))
        return out

    def _answer(self, reviewer: Reviewer, model: str, truth: str) -> str:
        if self._rng.random() >= reviewer.error_rate:
            return truth
        return self._rng.choice([c for c in self.classes[model] if c != truth])

    def _gold_truth(self, escalation: Mapping[str, Any]) -> Truth | None:
        """The truth of a gold item the escalation shows, once per escalation id."""
        if self.gold is None:
            return None
        answer = self.gold.answer(escalation)
        key = escalation["escalation_id"]
        if answer is None or key in self._gold_answered:
            return None
        self._gold_answered[key] = None
        if len(self._gold_answered) > MAX_GOLD_ANSWERED:
            self._gold_answered.popitem(last=False)
        predicted = escalation["prediction"].get("label")
        return Truth(answer, predicted == answer)


def by_rule(escalation: Mapping[str, Any]) -> bool:
    """Whether a rule escalated the event: its first reason is not ``audit`` (an audited
    event is one the rules auto-accepted)."""
    reasons = escalation.get("reasons") or [{}]
    return bool(reasons[0].get("kind") != "audit")


class LabelQueue:
    """Pending labels in order of when they are due (at most those of the last delay's
    worth of events and escalations: bounded by rate times delay)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PendingLabel]] = []
        self._pushed = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, pending: PendingLabel | Iterable[PendingLabel] | None) -> None:
        """Queue ``pending``: one label, several, or None (nothing to queue)."""
        if pending is None:
            return
        for one in [pending] if isinstance(pending, PendingLabel) else pending:
            # The counter breaks ties of ``due`` before the dicts would be compared.
            heapq.heappush(self._heap, (one.due, self._pushed, one))
            self._pushed += 1

    def due(self, now: float) -> list[PendingLabel]:
        """The labels due at ``now``, earliest first, taken off the queue."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out
