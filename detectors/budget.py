"""A per-model budget of escalations per minute that keeps the most uncertain items.

Reviewers can look at ``budget_per_minute`` items a minute. When more items
want escalating, sending the first ones that arrive would spend the budget on
whatever comes early in the minute; instead each candidate meets a *priority
cut*: the ``1 - remaining / expected_rest`` quantile of recent candidate
priorities, where ``remaining`` is the budget left this minute and
``expected_rest`` the candidates still expected in it. The forecast of
candidates per minute is an exponentially weighted mean of past minutes,
updated within the minute by the count seen so far (a Gamma-Poisson update), so
a burst raises the cut within seconds. So about ``budget`` candidates a minute
clear the cut, and they are the most uncertain ones; a hard cap on the count
per minute bounds the overshoot when a minute is busier than forecast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from detectors.base import BivariateDetector, check_in_range, check_positive, check_probability
from detectors.errors import InvalidObservationError
from detectors.minute_rate import MinuteRate

__all__ = ["EscalationBudget", "check_aware"]


def check_aware(name: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise.

    >>> check_aware("now", 0)
    Traceback (most recent call last):
    ...
    detectors.errors.InvalidObservationError: 'now' must be a timezone-aware datetime; got 0
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidObservationError(f"{name!r} must be a timezone-aware datetime; got {value!r}")
    return value


class EscalationBudget(BivariateDetector[float, datetime, bool]):
    """Admit at most ``budget_per_minute`` escalations per minute, preferring
    high priority; count the rest as suppressed.

    Minutes are calendar minutes of the injected ``now`` (UTC epoch // 60). An
    item with a ``now`` earlier than the current minute (late or out of order)
    counts in the current minute.

    Parameters
    ----------
    budget_per_minute
        Escalations allowed per minute (a hard cap).
    history
        Number of recent candidate priorities the cut is learned from.
    smoothing
        Weight of the last minute in the expected number of candidates per
        minute (exponentially weighted mean); higher follows changes in
        traffic faster.

    Examples
    --------
    Ten candidates a minute with random priorities and room for three: every
    minute sends exactly three, mostly from its three most uncertain items
    (sending the first three that arrive would hit them 30% of the time).

    >>> import random
    >>> from datetime import UTC, datetime, timedelta
    >>> rng = random.Random(0)
    >>> budget = EscalationBudget(budget_per_minute=3)
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> prios = [rng.random() for _ in range(600)]
    >>> sent = [budget.update(p, t0 + timedelta(seconds=6 * i)) for i, p in enumerate(prios)]
    >>> sum(sent), budget.suppressed, {sum(sent[m : m + 10]) for m in range(0, 600, 10)}
    (180, 420, {3})
    >>> rank = prios.__getitem__
    >>> top3 = [i for m in range(0, 600, 10) for i in sorted(range(m, m + 10), key=rank)[-3:]]
    >>> round(sum(sent[i] for i in top3) / len(top3), 2)
    0.78
    """

    _settings = ("budget_per_minute", "history", "smoothing")

    def __init__(
        self, budget_per_minute: int = 60, history: int = 4096, smoothing: float = 0.3
    ) -> None:
        self.budget_per_minute = budget_per_minute
        self.history = history
        self.smoothing = smoothing
        check_positive("budget_per_minute", budget_per_minute, integer=True)
        check_positive("history", history, integer=True)
        check_in_range("smoothing", smoothing, 0.0, 1.0)
        check_positive("smoothing", smoothing)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"budget_per_minute": 20, "history": 256}
        yield {"budget_per_minute": 1, "history": 16, "smoothing": 1.0}

    def _reset(self) -> None:
        self._pace = MinuteRate(self.smoothing)  # candidates per minute
        self._sent = 0  # escalations admitted in the current minute
        self._cut = 0.0
        self._sorted: list[float] = []  # the priorities sorted at the start of the minute
        self._prios: list[float] = []  # ring buffer of recent candidate priorities
        self._head = 0
        self._admitted_total = 0
        self._suppressed_total = 0

    def _state(self) -> dict[str, Any]:
        return {
            **self._pace.state(),
            "sent": self._sent,
            "cut": self._cut,
            "sorted": list(self._sorted),
            "prios": list(self._prios),
            "head": self._head,
            "admitted_total": self._admitted_total,
            "suppressed_total": self._suppressed_total,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._pace.load(state)
        self._sent = int(state["sent"])
        self._cut = float(state["cut"])
        self._sorted = [float(p) for p in state["sorted"]]
        self._prios = [float(p) for p in state["prios"]]
        self._head = int(state["head"])
        self._admitted_total = int(state["admitted_total"])
        self._suppressed_total = int(state["suppressed_total"])

    def update(self, priority: float, now: datetime) -> bool:
        """Offer one candidate escalation; ``True`` escalates it, ``False`` suppresses it."""
        p = check_probability("priority", priority)
        pace = self._pace
        if pace.advance(check_aware("now", now).timestamp() / 60.0):
            self._sent = 0
            self._sorted = sorted(self._prios)
        self._cut = self._current_cut()
        admit = self._sent < self.budget_per_minute and p >= self._cut
        if admit:
            self._sent += 1
            self._admitted_total += 1
        else:
            self._suppressed_total += 1
        pace.count += 1
        if len(self._prios) < self.history:
            self._prios.append(p)
        else:
            self._prios[self._head] = p
            self._head = (self._head + 1) % self.history
        return admit

    def _current_cut(self) -> float:
        remaining = self.budget_per_minute - self._sent
        if remaining <= 0 or not self._sorted:
            return 0.0
        rate = self._pace.per_minute()
        if rate is None:
            return 0.0
        expected_rest = rate * (1.0 - self._pace.elapsed)
        if expected_rest <= remaining:
            return 0.0
        n = len(self._sorted)
        # About remaining/expected_rest of the candidates lie at or above sorted[j].
        j = min(n - 1, int(n * (1.0 - remaining / expected_rest)))
        return self._sorted[j]

    @property
    def cut(self) -> float:
        """Priority the last candidate needed (0 when traffic fitted the budget)."""
        return self._cut

    @property
    def expected_per_minute(self) -> float:
        """Expected number of candidates per minute (0 before a minute has passed)."""
        return self._pace.rate or 0.0

    @property
    def admitted(self) -> int:
        """Escalations admitted since the start."""
        return self._admitted_total

    @property
    def suppressed(self) -> int:
        """Candidates suppressed since the start (for ``vigil_escalations_suppressed_total``)."""
        return self._suppressed_total

    @property
    def sent_this_minute(self) -> int:
        """Escalations admitted in the current minute."""
        return self._sent
