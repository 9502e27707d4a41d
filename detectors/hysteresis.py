"""Edge-triggered drift state with a recovery rule (hysteresis)."""

from __future__ import annotations

from typing import Literal

__all__ = ["DriftLatch"]


class DriftLatch:
    """Turn per-check test outcomes into one ``"drift"`` and one ``"recovered"`` edge.

    Rule: a signal *enters* drift on the first check where any of its tests fires
    (at the alarm level). It *recovers* after ``calm_checks`` consecutive checks in
    which no test fired and every windowed statistic stayed below its recovery
    threshold (:data:`~detectors.sensitivity.RECOVERY_ALPHA`, far looser than the
    alarm level). Detectors set ``calm_checks`` so the calm checks cover one whole
    window of fresh data: a signal recovers only once a window that never saw the
    shift looks like the reference. The gap between the two levels stops a
    statistic hovering near the threshold from flapping.

    Examples
    --------
    >>> latch = DriftLatch(calm_checks=2)
    >>> [latch.observe(fired, calm) for fired, calm in
    ...  [(False, True), (True, False), (True, False), (False, True), (False, False),
    ...   (False, True), (False, True), (False, True)]]
    [None, 'drift', None, None, None, None, 'recovered', None]
    """

    __slots__ = ("calm", "calm_checks", "drifting")

    def __init__(self, calm_checks: int) -> None:
        self.calm_checks = calm_checks
        self.drifting = False
        self.calm = 0

    def observe(self, fired: bool, calm: bool) -> Literal["drift", "recovered"] | None:
        """Record one check; return the edge it causes, if any."""
        if fired:
            self.calm = 0
            if not self.drifting:
                self.drifting = True
                return "drift"
            return None
        if not self.drifting:
            return None
        if not calm:
            self.calm = 0
            return None
        self.calm += 1
        if self.calm >= self.calm_checks:
            self.drifting = False
            self.calm = 0
            return "recovered"
        return None

    def state(self) -> list[int]:
        return [int(self.drifting), self.calm]

    def load(self, state: list[int]) -> None:
        self.drifting = bool(state[0])
        self.calm = int(state[1])
