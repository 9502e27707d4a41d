"""The numeric drift detector vigil shipped before issue 17 (ADWIN + windowed KS).

Kept for ``benchmarks/detector_quality.py`` only, as the "today" baseline of the
cost and delay comparisons in the same run; nothing in ``detectors/`` or
``streams/`` imports it. Its ``sensitivity`` is the *signal's* share (the old
meaning). Unchanged from detectors/numeric_drift.py at commit 2ff3948 except for
the class name and the ADWIN delta, computed here (``clock * alpha_event``) since
``SensitivityBudget.adwin_delta`` is gone.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from river._river_rust.drift import AdaptiveWindowing

from detectors.base import UnivariateDetector, check_finite, check_positive
from detectors.errors import SettingsError
from detectors.hysteresis import DriftLatch
from detectors.reference import numeric_reference
from detectors.sensitivity import (
    DEFAULT_SENSITIVITY,
    RECOVERY_ALPHA,
    SensitivityBudget,
    ks_critical,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["LegacyNumericDrift"]

# River's ADWIN defaults (river.drift.ADWIN), kept: they set how fine the
# exponential histogram is and how soon after a start/cut a change can be found.
_ADWIN_MAX_BUCKETS = 5
_ADWIN_MIN_WINDOW = 5
_ADWIN_GRACE = 10


class LegacyNumericDrift(UnivariateDetector[float, list[SignalChange]]):
    """Level shifts and distribution changes of a numeric stream against a reference.

    Two tests, each given half of the signal's false-alarm budget
    (:mod:`detectors.sensitivity`):

    * **ADWIN** (River's Rust implementation) on each value's *reference mid-rank*
      ``u`` - the reference CDF at the middle of the value's quantile bin, in
      [0, 1]. Under no drift ``E[u] = 0.5`` whatever the feature's scale or tails;
      a level shift moves it. ADWIN's bound assumes values in [0, 1], which ``u``
      satisfies, and outliers cannot trigger it. ``delta = clock * alpha_event``.
    * a **binned two-sample Kolmogorov-Smirnov** test of the last ``window`` values
      against the reference, run every ``step`` values, on the reference's
      quantile bins: ``sqrt(n m / (n + m)) * max |F_window - F_ref|`` over the bin
      edges, against the DKW critical value at ``alpha_window = step *
      alpha_event``. Tests run per window, not per value, to keep the hot path
      cheap.

    Edges (:class:`~detectors.hysteresis.DriftLatch`): ``"drift"`` when either test
    fires; ``"recovered"`` after ``window / step`` consecutive checks with no ADWIN
    cut and the KS statistic below its ``RECOVERY_ALPHA`` critical value. On
    recovery ADWIN restarts, so the return to normal is not itself reported.

    The reference is a :func:`~detectors.reference.numeric_reference` entry (from a
    :class:`~detectors.reference.ReferenceProfile`); without one, the first
    ``reference_size`` values become the reference and are not tested.

    Parameters
    ----------
    sensitivity
        Expected stationary values between false alerts *of this signal*.
    reference
        A numeric reference entry, or ``None`` to learn one.
    reference_size
        Values learned when ``reference`` is ``None``.
    bins
        Quantile bins of a learned reference.
    window, step
        The KS test covers the last ``window`` values and runs every ``step``
        values (``window`` must be a multiple of ``step``).
    clock
        ADWIN checks for a cut every ``clock`` values.
    signal
        Signal name put on changes (SPEC §5), e.g. ``"feature:age"``.

    """

    _settings = (
        "sensitivity",
        "reference",
        "reference_size",
        "bins",
        "window",
        "step",
        "clock",
        "signal",
    )

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        reference: dict[str, Any] | None = None,
        reference_size: int = 1000,
        bins: int = 20,
        window: int = 250,
        step: int = 50,
        clock: int = 32,
        signal: str = "feature",
    ) -> None:
        self.sensitivity = sensitivity
        self.reference = reference
        self.reference_size = reference_size
        self.bins = bins
        self.window = window
        self.step = step
        self.clock = clock
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("bins", bins, integer=True)
        check_positive("window", window, integer=True)
        check_positive("step", step, integer=True)
        check_positive("clock", clock, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if reference is not None and (
            not isinstance(reference, dict) or reference.get("type") != "numeric"
        ):
            raise SettingsError(f"'reference' must be a numeric reference entry; got {reference!r}")
        budget = SensitivityBudget(sensitivity, n_signals=1, tests_per_signal=2)
        self._delta = min(0.5, clock * budget.alpha_event)
        self.ks_threshold = ks_critical(budget.window_alpha(step))
        self.recovery_threshold = ks_critical(RECOVERY_ALPHA)
        self._blocks = window // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"reference_size": 1000}
        yield {"reference_size": 200, "bins": 8, "window": 100, "step": 25, "clock": 8}

    # -- state ---------------------------------------------------------------
    def _reset(self) -> None:
        self._seen = 0
        self._learn: list[float] | None = [] if self.reference is None else None
        self._ref: dict[str, Any] | None = None
        self._pending: list[float] = []
        self._pos = 0
        self._filled = 0
        self._ks = 0.0
        self._latch = DriftLatch(self._blocks)
        self._adwin = self._new_adwin()
        if self.reference is not None:
            self._use_reference(self.reference)

    def _new_adwin(self) -> AdaptiveWindowing:
        return AdaptiveWindowing(
            delta=self._delta,
            clock=self.clock,
            max_buckets=_ADWIN_MAX_BUCKETS,
            min_window_length=_ADWIN_MIN_WINDOW,
            grace_period=_ADWIN_GRACE,
        )

    def _use_reference(self, ref: dict[str, Any]) -> None:
        self._ref = ref
        counts = np.asarray(ref["counts"], dtype=float)
        n = max(1.0, float(counts.sum()))
        probs = counts / n
        cdf = np.cumsum(probs)
        self._edges = np.asarray(ref["edges"], dtype=float)
        self._ref_cdf = cdf[:-1]
        self._ref_probs = probs
        # Mid-rank of each bin: the reference CDF halfway through the bin.
        self._u_table = cdf - probs / 2.0
        self._k = len(counts)
        # Window counts below each edge, and what the reference expects there.
        self._ring = np.zeros((self._blocks, self._k - 1), dtype=np.int64)
        self._below = np.zeros(self._k - 1, dtype=np.int64)
        self._expected = self.window * self._ref_cdf
        self._inv_window = 1.0 / self.window
        # sqrt(n m / (n + m)) / n: turns a count difference into the two-sample KS scale.
        self._ks_scale = math.sqrt(self.window * n / (self.window + n)) / self.window

    def _state(self) -> dict[str, Any]:
        return {
            "seen": self._seen,
            "learn": None if self._learn is None else list(self._learn),
            "learned": self._ref if self.reference is None else None,
            "pending": list(self._pending),
            "ring": self._ring.tolist() if self._ref is not None else None,
            "pos": self._pos,
            "filled": self._filled,
            "ks": self._ks,
            "latch": self._latch.state(),
            "adwin": base64.b64encode(self._adwin.__getstate__()).decode("ascii"),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._learn = None if state["learn"] is None else [float(v) for v in state["learn"]]
        if state["learned"] is not None:
            self._use_reference(state["learned"])
        if state["ring"] is not None:
            ring = np.asarray(state["ring"], dtype=np.int64)
            self._ring = ring.reshape(self._blocks, self._k - 1)
            self._below = self._ring.sum(axis=0)
        self._pending = [float(v) for v in state["pending"]]
        self._pos = int(state["pos"])
        self._filled = int(state["filled"])
        self._ks = float(state["ks"])
        self._latch.load(state["latch"])
        self._adwin.__setstate__(base64.b64decode(state["adwin"]))

    # -- results -------------------------------------------------------------
    @property
    def drifting(self) -> bool:
        """Whether the signal is in drift (between a ``drift`` and a ``recovered`` edge)."""
        return self._latch.drifting

    @property
    def values_seen(self) -> int:
        return self._seen

    @property
    def statistic(self) -> float:
        """The last windowed KS statistic ``sqrt(n_eff) * D`` (0 before the first window)."""
        return self._ks

    @property
    def has_reference(self) -> bool:
        """Whether a reference is in use (asked by the monitor per block)."""
        return self._ref is not None

    @property
    def learned_reference(self) -> dict[str, Any] | None:
        """The reference in use (given or learned), ``None`` while still learning."""
        return self._ref

    def states(self) -> list[SignalState]:
        """The current KS reading of this signal."""
        return [SignalState(self.signal, "ks", self._ks, self.ks_threshold, self.drifting)]

    def refresh_scores(self) -> bool:
        """Nothing waits to be solved here (a :class:`~detectors.drift_monitor.DriftMonitor`
        asks its numeric detectors every block; see ``NumericDrift.defer_scores``)."""
        return False

    # -- updates -------------------------------------------------------------
    def update(self, x: float) -> list[SignalChange]:
        """Take one value; return the edges it causes (usually none)."""
        v = check_finite(self.signal, x)
        return self._feed([v])

    def update_many(self, values: Sequence[float]) -> list[SignalChange]:
        """Take values in order; same result as calling :meth:`update` on each.

        All values are validated before any is used. For speed the check is one
        ``sum``: values must be ints or floats.
        """
        try:
            total = math.fsum(values) if len(values) < 4 else sum(values)
            ok = math.isfinite(total)
        except TypeError:
            ok = False
        if not ok:
            for v in values:
                check_finite(self.signal, v)
        return self._feed(values)

    def _feed(self, values: Sequence[float]) -> list[SignalChange]:
        changes: list[SignalChange] = []
        i = 0
        n = len(values)
        self._seen += n
        if self._learn is not None:
            i = self.reference_size - len(self._learn)
            self._learn.extend(values[:i])
            if len(self._learn) < self.reference_size:
                return changes
            self._use_reference(numeric_reference(self._learn, self.bins))
            self._learn = None
        pending = self._pending
        step = self.step
        while i < n:
            take = step - len(pending)
            pending.extend(values[i : i + take])
            i += take
            if len(pending) == step:
                change = self._block(pending, self._seen - (n - min(i, n)))
                pending.clear()
                if change is not None:
                    changes.append(change)
        return changes

    def _block(self, block: list[float], seen: int) -> SignalChange | None:
        idx = self._edges.searchsorted(np.fromiter(block, float, len(block)), side="right")
        # Cumulative counts below each edge: the block's contribution to the window CDF.
        below = np.bincount(idx, minlength=self._k).cumsum()[:-1]
        upd = self._adwin.update
        cut = False
        for u in self._u_table.take(idx).tolist():
            if upd(u):
                cut = True
        ring = self._ring
        pos = self._pos
        # Integer counts keep the sliding window exact, so a restored detector
        # (which re-sums the ring) continues bit for bit.
        self._below += below
        self._below -= ring[pos]
        ring[pos] = below
        self._pos = (pos + 1) % self._blocks
        calm = False
        ks_fired = False
        if self._filled < self._blocks:
            self._filled += 1
        if self._filled == self._blocks:
            if self._k > 1:
                self._ks = float(np.abs(self._below - self._expected).max()) * self._ks_scale
                ks_fired = self._ks > self.ks_threshold
            calm = not cut and self._ks < self.recovery_threshold
        edge = self._latch.observe(ks_fired or cut, calm)
        if edge is None:
            return None
        if edge == "recovered":
            # The stream looks like the reference again; without a fresh window
            # ADWIN would report the return itself as a new change.
            self._adwin = self._new_adwin()
        if edge == "drift" and not ks_fired:
            width = max(2.0, self._adwin.get_width())
            level = self._adwin.get_total() / width
            # ADWIN's own Bernstein bound (Bifet & Gavaldà 2007, as in River) for a
            # window of this width against the reference level 0.5, so the reported
            # statistic and threshold are on the same scale.
            log_term = math.log(2.0 * math.log(width) / self._delta)
            var = self._adwin.get_variance()
            eps = math.sqrt(2.0 * var * log_term / width) + 2.0 / 3.0 * log_term / width
            return SignalChange(
                self.signal,
                "adwin",
                edge,
                seen,
                statistic=abs(level - 0.5),
                threshold=eps,
                reference=0.5,
                current=round(level, 4),
            )
        return SignalChange(
            self.signal,
            "ks",
            edge,
            seen,
            statistic=self._ks,
            threshold=self.ks_threshold if edge == "drift" else self.recovery_threshold,
            reference=[round(float(p), 4) for p in self._ref_cdf],
            current=[round(float(c) * self._inv_window, 4) for c in self._below],
        )
