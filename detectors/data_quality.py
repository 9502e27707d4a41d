"""Data quality of one feature: missing rate and out-of-range rate, as drift signals.

A feature's values can go bad without its distribution test noticing: an
upstream join starts dropping a column (missing), a unit changes or a sensor
saturates (out of range), a producer sends a string where a number belongs
(wrong type, counted as out of range). Each rate is compared with the
reference's rate by an exact test (:func:`~detectors.sensitivity.rate_pvalue`)
over a sliding window, and the two make one signal ``data_quality:<feature>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

from detectors.base import UnivariateDetector, check_count, check_positive
from detectors.errors import InvalidObservationError, SettingsError
from detectors.hysteresis import DriftLatch
from detectors.sensitivity import (
    DEFAULT_SENSITIVITY,
    RECOVERY_ALPHA,
    SensitivityBudget,
    default_step,
    rate_pvalue,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["DataQualityDrift", "RateWindow"]

Status = Literal["ok", "missing", "out_of_range"]
_STATUSES = ("ok", "missing", "out_of_range")

PSEUDO_COUNT = 1.0
"""Added to each reference count (Laplace's rule of succession): a reference that
never saw a problem still allows for one, so a single bad value in a huge window
is not an alarm."""


class RateWindow:
    """Events and hits over the last ``blocks`` blocks, tested against a reference rate.

    Examples
    --------
    >>> w = RateWindow(blocks=2)
    >>> w.push(100, 1); w.push(100, 9)
    >>> w.events, w.hits, w.full
    (200, 10, True)
    >>> w.pvalue(ref_hits=2, ref_events=1000) < 1e-4
    True
    >>> w.push(100, 0); w.hits
    9
    """

    __slots__ = ("_events", "_hits", "_pos", "blocks", "events", "filled", "hits")

    def __init__(self, blocks: int) -> None:
        self.blocks = blocks
        self._events = [0] * blocks
        self._hits = [0] * blocks
        self._pos = 0
        self.filled = 0
        self.events = 0
        self.hits = 0

    @property
    def full(self) -> bool:
        return self.filled >= self.blocks

    def push(self, events: int, hits: int) -> None:
        pos = self._pos
        self.events += events - self._events[pos]
        self.hits += hits - self._hits[pos]
        self._events[pos] = events
        self._hits[pos] = hits
        self._pos = (pos + 1) % self.blocks
        if self.filled < self.blocks:
            self.filled += 1

    def pvalue(self, ref_hits: float, ref_events: float) -> float:
        """One-sided p-value that the window's rate exceeds the reference's."""
        if self.events == 0:
            return 1.0
        if self.hits * ref_events <= ref_hits * self.events:  # not above the reference
            return 1.0
        return rate_pvalue(self.hits, self.events, ref_hits, ref_events)

    def state(self) -> list[Any]:
        return [list(self._events), list(self._hits), self._pos, self.filled]

    def load(self, state: list[Any]) -> None:
        self._events = [int(v) for v in state[0]]
        self._hits = [int(v) for v in state[1]]
        self._pos = int(state[2])
        self.filled = int(state[3])
        self.events = sum(self._events)
        self.hits = sum(self._hits)


class DataQualityDrift(UnivariateDetector[Status, list[SignalChange]]):
    """Missing and out-of-range rates of one feature against its reference.

    Each event is ``"ok"``, ``"missing"`` (absent or null) or ``"out_of_range"``
    (outside the configured or reference ``[min, max]``, not finite, or of the
    wrong type). Every ``step`` events, each rate over the last ``window`` events
    is tested one-sided against the reference rate (plus :data:`PSEUDO_COUNT`)
    with the exact conditional binomial test; each test gets half the signal's
    budget (:mod:`detectors.sensitivity`): it fires when ``p < step *
    alpha_event``. Edges come from :class:`~detectors.hysteresis.DriftLatch`:
    recovery after ``window / step`` calm checks (both p-values above
    ``RECOVERY_ALPHA``).

    ``statistic`` is ``-log10`` of the smaller p-value; ``threshold`` is
    ``-log10`` of the alarm level.

    Parameters
    ----------
    sensitivity, n_signals
        Expected stationary events between false alerts of the *model*, and the
        signals sharing that budget (``1`` alone): as in
        :class:`~detectors.numeric_drift.NumericDrift`.
    budget_weight
        This signal's share of the model's budget in units of an even split
        (:class:`~detectors.sensitivity.SensitivityBudget`; ``1.0``).
    reference
        ``{"events", "missing", "out_of_range"}`` counts (a reference profile's
        feature entry works; ``invalid`` is added to ``out_of_range``), or ``None``
        to learn the rates from the first ``reference_size`` events.
    reference_size, window, step, signal
        As in :class:`~detectors.numeric_drift.NumericDrift`.
    range_from_reference
        Whether ``[min, max]`` is the reference sample's own range rather than a
        configured one. A new value falls outside the range of ``n`` exchangeable
        values with probability ``2 / (n + 1)``, so two more out-of-range values
        are added to the reference count.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(4)
    >>> det = DataQualityDrift(signal="data_quality:age")
    >>> rates = [0.01] * 5000 + [0.10] * 1000 + [0.01] * 2000  # a join drops 10% of rows
    >>> for i, p in enumerate(rates):
    ...     for change in det.update("missing" if rng.random() < p else "ok"):
    ...         print(i, change.state, round(change.current["missing"], 3))
    5124 drift 0.068
    6374 recovered 0.016
    """

    _settings = (
        "sensitivity",
        "n_signals",
        "reference",
        "reference_size",
        "window",
        "step",
        "signal",
        "budget_weight",
        "range_from_reference",
    )

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        n_signals: int = 1,
        reference: dict[str, Any] | None = None,
        reference_size: int = 1000,
        window: int = 250,
        step: int | None = None,
        signal: str = "data_quality",
        budget_weight: float = 1.0,
        range_from_reference: bool = False,
    ) -> None:
        self.sensitivity = sensitivity
        self.n_signals = n_signals
        self.budget_weight = budget_weight
        self.range_from_reference = range_from_reference
        self.reference = reference
        self.reference_size = reference_size
        self.window = window
        check_positive("window", window, integer=True)
        self.step = step = default_step(window) if step is None else step
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("n_signals", n_signals, integer=True)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("window", window, integer=True)
        check_positive("step", step, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if reference is not None and (
            not isinstance(reference, dict) or not {"events", "missing"} <= reference.keys()
        ):
            raise SettingsError(
                f"'reference' must have 'events' and 'missing' counts; got {reference!r}"
            )
        budget = SensitivityBudget(
            sensitivity, n_signals=n_signals, tests_per_signal=2, weight=budget_weight
        )
        self.signal_sensitivity = budget.signal_sensitivity
        self._alpha = budget.window_alpha(step)
        self.threshold = -math.log10(self._alpha)
        self._blocks = window // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {
            "reference": {"events": 1000, "missing": 10, "out_of_range": 2},
            "window": 100,
            "budget_weight": 0.2,
        }

    def _reset(self) -> None:
        self._events = 0
        # Reference counts [events, missing, out_of_range]; learned while _learning.
        self._learning = self.reference is None
        if self.reference is None:
            self._ref = [0, 0, 0]
        else:
            r = self.reference
            oor = int(r.get("out_of_range", 0)) + int(r.get("invalid", 0))
            self._ref = [int(r["events"]), int(r["missing"]), oor]
        self._pending = [0, 0, 0]
        self._missing = RateWindow(self._blocks)
        self._oor = RateWindow(self._blocks)
        self._latch = DriftLatch(self._blocks)
        self._stat = 0.0

    def _state(self) -> dict[str, Any]:
        return {
            "events": self._events,
            "learning": self._learning,
            "ref": list(self._ref),
            "pending": list(self._pending),
            "missing": self._missing.state(),
            "oor": self._oor.state(),
            "latch": self._latch.state(),
            "stat": self._stat,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._events = int(state["events"])
        self._learning = bool(state["learning"])
        self._ref = [int(v) for v in state["ref"]]
        self._pending = [int(v) for v in state["pending"]]
        self._missing.load(state["missing"])
        self._oor.load(state["oor"])
        self._latch.load(state["latch"])
        self._stat = float(state["stat"])

    @property
    def drifting(self) -> bool:
        return self._latch.drifting

    @property
    def events_seen(self) -> int:
        return self._events

    @property
    def statistic(self) -> float:
        """``-log10`` of the smaller of the last two p-values (0 before the first window)."""
        return self._stat

    def states(self) -> list[SignalState]:
        return [SignalState(self.signal, "rate", self._stat, self.threshold, self.drifting)]

    def update(self, x: Status) -> list[SignalChange]:
        """Take one event's status: ``"ok"``, ``"missing"`` or ``"out_of_range"``."""
        if x not in _STATUSES or not isinstance(x, str):
            raise InvalidObservationError(
                f"{self.signal!r} status must be one of {_STATUSES}; got {x!r}"
            )
        p = self._pending
        p[0] += 1
        if x == "missing":
            p[1] += 1
        elif x == "out_of_range":
            p[2] += 1
        if p[0] < self.step:
            return []
        self._pending = [0, 0, 0]
        return self._block(p[0], p[1], p[2])

    def update_block(self, events: int, missing: int, out_of_range: int) -> list[SignalChange]:
        """Take the counts of a block of ``events`` events (the monitor's path).

        Blocks are windowed as given; pass ``step`` events for windows of ``window``.
        """
        # Numpy integers too (check_count); bools and floats are refused.
        counts = (("events", events), ("missing", missing), ("out_of_range", out_of_range))
        events, missing, out_of_range = (check_count(f"{self.signal} {k}", v) for k, v in counts)
        if missing + out_of_range > events:
            raise InvalidObservationError(
                f"{self.signal!r} missing + out_of_range must be <= events; "
                f"got {missing} + {out_of_range} > {events}"
            )
        if events == 0:
            return []
        return self._block(events, missing, out_of_range)

    def _block(self, events: int, missing: int, oor: int) -> list[SignalChange]:
        self._events += events
        if self._learning:
            ref = self._ref
            ref[0] += events
            ref[1] += missing
            ref[2] += oor
            if ref[0] >= self.reference_size:
                self._learning = False
            return []
        self._missing.push(events, missing)
        self._oor.push(events, oor)
        if not self._missing.full:
            return []
        ref_events = self._ref[0] + PSEUDO_COUNT
        p_missing = self._missing.pvalue(self._ref[1] + PSEUDO_COUNT, ref_events)
        oor_extra = PSEUDO_COUNT + (2.0 if self.range_from_reference else 0.0)
        p_oor = self._oor.pvalue(self._ref[2] + oor_extra, ref_events)
        p = min(p_missing, p_oor)
        self._stat = -math.log10(p) if p > 0.0 else math.inf
        fired = p < self._alpha
        calm = p > RECOVERY_ALPHA
        edge = self._latch.observe(fired, calm)
        if edge is None:
            return []
        w_events = self._missing.events
        return [
            SignalChange(
                self.signal,
                "missing_rate" if p_missing <= p_oor else "out_of_range_rate",
                edge,
                self._events,
                statistic=self._stat,
                threshold=self.threshold if edge == "drift" else -math.log10(RECOVERY_ALPHA),
                reference={
                    "missing": self._ref[1] / max(1, self._ref[0]),
                    "out_of_range": self._ref[2] / max(1, self._ref[0]),
                },
                current={
                    "missing": self._missing.hits / w_events,
                    "out_of_range": self._oor.hits / w_events,
                },
            )
        ]
