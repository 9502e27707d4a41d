"""The most frequent values of a stream in bounded memory (Space-Saving).

:class:`HeavyHitters` is Metwally, Agrawal and El Abbadi's (2005) Space-Saving
summary: ``capacity`` counters; a value already counted adds one to its
counter; a new value takes over the smallest counter, inheriting its count as
its *error*. For every value ``count - error <= true count <= count``, and any
value whose true frequency exceeds ``n / capacity`` is in the summary. Counts
are halved every ``horizon`` values (with their errors), so the summary follows
the recent mix rather than all history, and state never grows with the stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from detectors.base import UnivariateDetector, check_positive
from detectors.errors import InvalidObservationError, SettingsError

__all__ = ["HeavyHitters"]


class HeavyHitters(UnivariateDetector[str, None]):
    """Space-Saving counts of the most frequent strings of a stream.

    Parameters
    ----------
    capacity
        Counters kept; every value more frequent than ``1 / capacity`` of the
        stream is among them.
    horizon
        Values between two halvings of every count (recency).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> hh = HeavyHitters(capacity=8)
    >>> for _ in range(5000):
    ...     hh.update(rng.choice(["eu"] * 5 + ["us"] * 3 + [f"t{rng.randrange(900)}"] * 2))
    >>> [v for v, _ in hh.top(2)]
    ['eu', 'us']
    >>> low, high = hh.bounds("eu")
    >>> low <= 0.5 * 5000 * 1.05 and high >= 0.5 * 5000 * 0.95
    True
    """

    _settings = ("capacity", "horizon")

    def __init__(self, capacity: int = 40, horizon: int = 100_000) -> None:
        self.capacity = capacity
        self.horizon = horizon
        check_positive("capacity", capacity, integer=True)
        check_positive("horizon", horizon, integer=True)
        if horizon < capacity:
            raise SettingsError(f"'horizon' must be >= 'capacity'; got {horizon} < {capacity}")
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"capacity": 4, "horizon": 500}

    def _reset(self) -> None:
        # value -> [count, error]; insertion order is kept by the dict (deterministic ties).
        self._counts: dict[str, list[int]] = {}
        self._n = 0  # values since the last halving (total of the counts, up to halving)
        self._seen = 0

    def _state(self) -> dict[str, Any]:
        return {
            "counts": [[v, c, e] for v, (c, e) in self._counts.items()],
            "n": self._n,
            "seen": self._seen,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._counts = {str(v): [int(c), int(e)] for v, c, e in state["counts"]}
        self._n = int(state["n"])
        self._seen = int(state["seen"])

    @property
    def events_seen(self) -> int:
        return self._seen

    @property
    def total(self) -> int:
        """Values the current counts cover (halved with them)."""
        return self._n

    def update(self, x: str) -> None:
        if type(x) is not str:
            raise InvalidObservationError(f"a segment value must be a string; got {x!r}")
        self._add(x)

    def _add(self, x: str) -> None:
        """``update`` without the check (the caller validated ``x``)."""
        self._seen += 1
        self._n += 1
        counts = self._counts
        entry = counts.get(x)
        if entry is not None:
            entry[0] += 1
        elif len(counts) < self.capacity:
            counts[x] = [1, 0]
        else:
            victim = min(counts, key=lambda v: counts[v][0])
            low = counts.pop(victim)[0]
            counts[x] = [low + 1, low]
        if self._n >= self.horizon:
            self._halve()

    def _halve(self) -> None:
        kept: dict[str, list[int]] = {}
        for v, (c, e) in self._counts.items():
            if c // 2 > 0:
                kept[v] = [c // 2, e // 2]
        self._counts = kept
        self._n //= 2

    def bounds(self, value: str) -> tuple[int, int]:
        """``(lower, upper)`` bounds of ``value``'s count; ``(0, smallest count)`` when
        it is not in the summary (``(0, 0)`` while the summary has room)."""
        entry = self._counts.get(value)
        if entry is not None:
            return entry[0] - entry[1], entry[0]
        if len(self._counts) < self.capacity or not self._counts:
            return 0, 0
        return 0, min(c for c, _ in self._counts.values())

    def top(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` values with the largest guaranteed counts (``count - error``)."""
        ranked = sorted(self._counts.items(), key=lambda kv: -(kv[1][0] - kv[1][1]))
        return [(v, c - e) for v, (c, e) in ranked[:k]]
