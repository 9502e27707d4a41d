"""What a monitor reports when a signal enters or leaves drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SignalChange", "SignalState"]


@dataclass(frozen=True, slots=True)
class SignalChange:
    """An edge: ``signal`` entered drift (``state="drift"``) or left it (``"recovered"``).

    ``signal`` follows SPEC §5: ``feature:<name>``, ``confidence``, ``prediction``,
    ``data_quality:<name>``, ``calibration``, ``accuracy``, ``estimated_accuracy``,
    ``autoaccept_error``, ``coverage`` (a regression's prediction intervals),
    a segment value's ``segment:<key>=<value>:<signal>``, or a version's
    ``version:<v>:prediction`` (its canary), ``version:<v>:confidence`` and
    ``version:<v>:value``; or ``multivariate``.
    ``reference`` and ``current`` are small plain summaries (numbers or dicts).
    ``impact``: for a ``feature:<name>`` entering drift, the feature's importance
    times ``statistic / threshold`` (:meth:`DriftMonitor.impacts
    <detectors.drift_monitor.DriftMonitor.impacts>`); ``None`` otherwise.
    """

    signal: str
    detector: str
    state: Literal["drift", "recovered"]
    events_seen: int
    statistic: float
    threshold: float
    reference: Any = None
    current: Any = None
    impact: float | None = None


@dataclass(frozen=True, slots=True)
class SignalState:
    """The current reading of one signal, for gauges (read at scrape time)."""

    signal: str
    detector: str
    statistic: float
    threshold: float
    drifting: bool
