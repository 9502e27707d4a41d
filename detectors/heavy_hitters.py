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
        # value -> [count, error], and the values of each count in arrival order (the
        # "stream summary" of the paper): the smallest counter is found in O(1).
        self._counts: dict[str, list[int]] = {}
        self._by_count: dict[int, dict[str, None]] = {}
        self._min = 0
        self._n = 0  # values since the last halving (total of the counts, up to halving)
        self._seen = 0

    def _state(self) -> dict[str, Any]:
        return {
            # Count by count, each in its order: what decides the next victim.
            "counts": [
                [v, c, self._counts[v][1]]
                for c in sorted(self._by_count)
                for v in self._by_count[c]
            ],
            "n": self._n,
            "seen": self._seen,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for v, c, e in state["counts"]:
            self._counts[str(v)] = [int(c), int(e)]
            self._by_count.setdefault(int(c), {})[str(v)] = None
        self._min = min(self._by_count, default=0)
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
        counts, by = self._counts, self._by_count
        entry = counts.get(x)
        if entry is not None:
            c = entry[0]
            peers = by[c]
            del peers[x]
            if not peers:
                del by[c]
                if c == self._min:
                    self._min = c + 1
            entry[0] = c + 1
        elif len(counts) < self.capacity:
            c = 0
            counts[x] = [1, 0]
            self._min = 1
        else:
            c = self._min
            peers = by[c]
            victim = next(iter(peers))
            del peers[victim], counts[victim]
            if not peers:
                del by[c]
                self._min = c + 1
            counts[x] = [c + 1, c]
        top = by.get(c + 1)
        if top is None:
            by[c + 1] = {x: None}
        else:
            top[x] = None
        if self._n >= self.horizon:
            self._halve()

    def _halve(self) -> None:
        counts: dict[str, list[int]] = {}
        by: dict[int, dict[str, None]] = {}
        for c in sorted(self._by_count):
            if c // 2 == 0:
                continue
            for v in self._by_count[c]:
                counts[v] = [c // 2, self._counts[v][1] // 2]
                by.setdefault(c // 2, {})[v] = None
        self._counts, self._by_count = counts, by
        self._min = min(by, default=0)
        self._n //= 2

    def bounds(self, value: str) -> tuple[int, int]:
        """``(lower, upper)`` bounds of ``value``'s count; ``(0, smallest count)`` when
        it is not in the summary (``(0, 0)`` while the summary has room)."""
        entry = self._counts.get(value)
        if entry is not None:
            return entry[0] - entry[1], entry[0]
        if len(self._counts) < self.capacity:
            return 0, 0
        return 0, self._min

    def top(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` values with the largest guaranteed counts (``count - error``)."""
        ranked = sorted(self._counts.items(), key=lambda kv: (kv[1][1] - kv[1][0], kv[0]))
        return [(v, c - e) for v, (c, e) in ranked[:k]]
