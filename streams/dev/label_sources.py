"""The demo's label sources: a review team for the escalations, an outcome system for one model.

Real labels come in two ways, and vigil weighs them differently (SPEC §3, §4):

* :class:`OutcomeSource`: an outcome system (chargebacks, cancellations) reports what
  happened to a random share of all events, whatever vigil did with them. Each label
  carries that share as its ``inclusion_probability``; the worker is configured with the
  same share (``labels.outcome_rate``).
* :class:`ReviewTeam`: reviewers label only what vigil sent them, the escalations, which
  are the uncertain items plus a random audit of the auto-accepted ones. Each label copies
  the escalation's ``inclusion_probability`` (1 for a rule's escalation, the audit
  probability for an audit) and ``escalation_id``, and names its ``reviewer``.

Both label after a random delay, from the demo's :class:`~streams.dev.ground_truth.GroundTruth`;
neither touches Kafka: they return :class:`PendingLabel` s that a :class:`LabelQueue` hands
back when due, so the demo's loop publishes them and the tests need no broker.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streams.dev.ground_truth import Truth

__all__ = ["REVIEWERS", "LabelQueue", "OutcomeSource", "PendingLabel", "ReviewTeam", "by_rule"]

#: The demo's review team.
REVIEWERS = ("ana", "bruno", "chen", "dara")


class PendingLabel(NamedTuple):
    """A LabelEvent (SPEC §3) to publish at ``due`` (monotonic seconds), for an event
    with ``truth``."""

    due: float
    label: dict[str, Any]
    truth: Truth


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


class ReviewTeam:
    """Labels the escalations of ``models`` after a delay (source "human"), nothing else.

    >>> team = ReviewTeam({"fraud"}, delay_s=(3.0, 3.0), reviewers=("ana",))
    >>> escalation = {
    ...     "escalation_id": "x-1", "event_id": "e1", "model_id": "fraud",
    ...     "reasons": [{"kind": "audit", "score": 0.05, "threshold": 0.05}],
    ...     "inclusion_probability": 0.05,
    ... }
    >>> pending = team.review(escalation, Truth("neg", False), now=10.0)
    >>> pending.due, pending.label["reviewer"], pending.label["inclusion_probability"]
    (13.0, 'ana', 0.05)
    """

    def __init__(
        self,
        models: Collection[str],
        *,
        reviewers: tuple[str, ...] = REVIEWERS,
        delay_s: tuple[float, float] = (2.0, 8.0),
        seed: int = 0,
    ) -> None:
        if not reviewers:
            raise ValueError("reviewers must name at least one reviewer; got none")
        self.models = frozenset(models)
        self.reviewers = tuple(reviewers)
        self.delay_s = _check_delay(delay_s)
        self._rng = random.Random(seed)  # noqa: S311 - seeded synthetic labels, not a secret

    def review(
        self, escalation: Mapping[str, Any], truth: Truth | None, now: float
    ) -> PendingLabel | None:
        """One escalation (SPEC §4) read from the escalations topic, with the truth of its
        event (None: unknown to the demo, e.g. forgotten): the team's label, if it reviews
        this model and knows the answer."""
        if truth is None or escalation.get("model_id") not in self.models:
            return None
        label: dict[str, Any] = {
            "event_id": escalation["event_id"],
            "model_id": escalation["model_id"],
            "ts": datetime.now(UTC).isoformat(),
            "label": truth.label,
            "source": "human",
            "reviewer": self._rng.choice(self.reviewers),
            "escalation_id": escalation["escalation_id"],
        }
        # Copied, not assumed: the worker weighs the label by its inverse (an escalation
        # from a worker without audit sampling has none; vigil's own record decides then).
        inclusion = escalation.get("inclusion_probability")
        if inclusion is not None:
            label["inclusion_probability"] = inclusion
        return PendingLabel(now + _delay(self._rng, self.delay_s), label, truth)


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

    def push(self, pending: PendingLabel | None) -> None:
        """Queue ``pending`` (None: nothing to queue)."""
        if pending is not None:
            # The counter breaks ties of ``due`` before the dicts would be compared.
            heapq.heappush(self._heap, (pending.due, self._pushed, pending))
            self._pushed += 1

    def due(self, now: float) -> list[PendingLabel]:
        """The labels due at ``now``, earliest first, taken off the queue."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            out.append(heapq.heappop(self._heap)[2])
        return out
