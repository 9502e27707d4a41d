"""Drift of one numeric stream (a feature, the confidence, a regression output)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any, Self

import numpy as np
from scipy import special

from detectors.base import UnivariateDetector, check_finite, check_positive
from detectors.errors import SettingsError
from detectors.hysteresis import DriftLatch
from detectors.numeric_block import advance, slide
from detectors.reference import numeric_reference
from detectors.sensitivity import (
    CUSUM_ALLOWANCE,
    DEFAULT_SENSITIVITY,
    RECOVERY_ALPHA,
    REFERENCE_GROWTH,
    SensitivityBudget,
    cusum_threshold,
    default_step,
    ks_critical,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["NumericDrift"]

log = logging.getLogger(__name__)

TESTS = 3
"""Tests sharing a numeric signal's budget: mean CUSUM, scale CUSUM, windowed KS."""

# CUSUM arithmetic runs on integers (scores times _SCALE): exact, so that update,
# update_many and a restored detector give the same result bit for bit whatever the
# chunking (detectors.numeric_block runs it, compiled).
_SCALE = 1 << 20
# A calm block joins a learned reference this many windows after it was tested.
_LAG_WINDOWS = 4
_BATCH = 8
# Siegmund's approximation runs a few per cent anti-conservative on these bounded
# scores (benchmarks/detector_quality.py): aim the CUSUMs at this part of their share.
_CUSUM_MARGIN = 0.9
_NAMES = ("cusum_mean", "cusum_mean", "cusum_scale", "cusum_scale")
_NEVER = 1 << 62
# Bump when cusum_threshold's answer for the same inputs changes: snapshots keep the
# solved thresholds (restoring re-solves them only when this, the level or the
# allowance differ).
_LIMITS_FORMULA = 1


class NumericDrift(UnivariateDetector[float, list[SignalChange]]):
    """Level, spread and shape changes of a numeric stream against a reference.

    Every value is mapped to its bin of the reference's quantile bins, and that
    bin to a *score* (the normal score of the bin's mid-rank, standardised to mean
    0 and variance 1 under the reference). Scores are scale-free and bounded:
    outliers cannot trigger anything, any monotone transform of the feature gives
    the same alerts. Three tests share the signal's budget
    (:mod:`detectors.sensitivity`, ``tests_per_signal = 3``):

    * **mean CUSUM**: a two-sided Page CUSUM on the scores, reference value
      :data:`~detectors.sensitivity.CUSUM_ALLOWANCE` (tuned to half a standard
      deviation), run on every value: level shifts;
    * **scale CUSUM**: the same on the squared scores (standardised): spread
      changes with the level unchanged;
    * a **binned two-sample Kolmogorov-Smirnov** test of the last ``window``
      values against the reference every ``step`` values:
      ``sqrt(n m / (n + m)) * max |F_window - F_ref|`` over the bin edges against
      the DKW critical value at ``alpha_window = step * alpha_event``: any other
      change of shape, and the recovery criterion.

    The CUSUM thresholds come from :func:`~detectors.sensitivity.cusum_threshold`,
    which accounts for the reference being a sample of ``m`` values. A CUSUM fires
    on the value that crosses its threshold (``events_seen`` of the change is that
    value), so :meth:`update` reports it at once; :meth:`update_many` reports it at
    the end of the chunk.

    **Edges latch** (:class:`~detectors.hysteresis.DriftLatch`): ``"drift"`` when
    any test fires; the signal then stays in drift, not re-armed, until
    ``"recovered"``: ``window / step`` consecutive checks with no CUSUM alarm and
    the KS statistic below its ``RECOVERY_ALPHA`` critical value. The CUSUMs
    restart from zero after each alarm and on recovery.

    **Reference.** A :func:`~detectors.reference.numeric_reference` entry (from a
    :class:`~detectors.reference.ReferenceProfile`), used as given; without one,
    the first ``reference_size`` values become the reference (not tested). A
    learned reference keeps learning: calm blocks join its bin counts at least
    ``4 * window`` values after they were tested, eight blocks at a time (never
    while in drift, and a drift edge discards the blocks still waiting) until it
    holds :data:`~detectors.sensitivity.REFERENCE_GROWTH` ``* reference_size``
    values; the KS test follows every addition, the CUSUMs each time the count
    doubles.
    Memory stays bounded: counts per bin.

    Parameters
    ----------
    sensitivity
        Expected stationary events between false alerts *of the model*.
    n_signals
        Signals sharing that budget; this signal's share is
        :attr:`signal_sensitivity` ``= sensitivity * n_signals / budget_weight``.
        Alone, ``1``.
    budget_weight
        This signal's share of the model's budget in units of an even split
        (:class:`~detectors.sensitivity.SensitivityBudget`; ``1.0``).
    reference
        A numeric reference entry, or ``None`` to learn one.
    reference_size
        Values learned first when ``reference`` is ``None``.
    bins
        Quantile bins of a learned reference.
    window, step
        The KS test covers the last ``window`` values and runs every ``step``
        values (``window`` must be a multiple of ``step``; default
        :func:`~detectors.sensitivity.default_step`, as everywhere).
    signal
        Signal name put on changes (SPEC §5), e.g. ``"feature:age"``.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(1)
    >>> det = NumericDrift(reference_size=1000, signal="feature:age")
    >>> det.signal_sensitivity
    1000000.0
    >>> stream = [rng.gauss(40, 10) for _ in range(6000)] + [rng.gauss(45, 10) for _ in range(2000)]
    >>> stream += [rng.gauss(40, 10) for _ in range(3000)]
    >>> for i, x in enumerate(stream):
    ...     for change in det.update(x):
    ...         print(i, change.state, change.detector)
    6096 drift cusum_mean
    8374 recovered ks
    """

    _settings = (
        "sensitivity",
        "n_signals",
        "reference",
        "reference_size",
        "bins",
        "window",
        "step",
        "signal",
        "budget_weight",
    )
    _snapshot_version = 2

    #: Set by an owner that feeds many detectors in step (a
    #: :class:`~detectors.drift_monitor.DriftMonitor` sets it on its own): when a
    #: reference is first learned, or has grown enough for new CUSUM tables, the
    #: thresholds are marked due (:attr:`scores_due`) instead of solved at once, and the
    #: owner computes a few per block (:meth:`refresh_scores`), so that the features of
    #: a model, whose references are learned and grow in the same block, do not all
    #: solve their thresholds at once (~1.7 ms a detector). Until then a grown reference's
    #: CUSUMs keep the tables of the smaller one, whose thresholds allow for its larger
    #: sampling error; a first reference's CUSUMs run on its score tables from the start
    #: but cannot fire before their thresholds are solved (a shift meanwhile is summed,
    #: and fires at the first value after). Not a setting: not kept in snapshots (a
    #: restored detector has it off until its owner sets it again).
    defer_scores = False

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        n_signals: int = 1,
        reference: dict[str, Any] | None = None,
        reference_size: int = 1000,
        bins: int = 20,
        window: int = 250,
        step: int | None = None,
        signal: str = "feature",
        budget_weight: float = 1.0,
    ) -> None:
        self.sensitivity = sensitivity
        self.n_signals = n_signals
        self.budget_weight = budget_weight
        self.reference = reference
        self.reference_size = reference_size
        self.bins = bins
        self.window = window
        check_positive("window", window, integer=True)
        self.step = step = default_step(window) if step is None else step
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("n_signals", n_signals, integer=True)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("bins", bins, integer=True)
        check_positive("step", step, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if reference is not None and (
            not isinstance(reference, dict) or reference.get("type") != "numeric"
        ):
            raise SettingsError(f"'reference' must be a numeric reference entry; got {reference!r}")
        self._budget = SensitivityBudget(
            sensitivity, n_signals=n_signals, tests_per_signal=TESTS, weight=budget_weight
        )
        self.ks_threshold = ks_critical(self._budget.window_alpha(step))
        self.recovery_threshold = ks_critical(RECOVERY_ALPHA)
        self._blocks = window // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"reference_size": 1000}
        yield {
            "reference_size": 200,
            "bins": 8,
            "window": 100,
            "step": 25,
            "n_signals": 4,
            "budget_weight": 1.5,
        }

    @property
    def signal_sensitivity(self) -> float:
        """Expected stationary values between false alerts of this signal (its share)."""
        return self._budget.signal_sensitivity

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
        # Mean up, mean down, scale up, scale down (times _SCALE).
        self._cusum = np.zeros(4, dtype=np.int64)
        self._fired = False  # a CUSUM fired since the last KS check
        self._delay: list[np.ndarray] = []  # calm blocks' bin counts waiting to join
        self._score_counts: list[int] | None = None
        self._scores_due = False  # new CUSUM tables waiting (defer_scores)
        # advance's crossing rows, one per value of a block (step is fixed at construction).
        self._crossed = np.empty((self.step, 3), dtype=np.int64)
        if self.reference is not None:
            self._use_reference(self.reference)

    def _use_reference(
        self,
        ref: dict[str, Any],
        score_counts: list[int] | None = None,
        limits: list[int] | None = None,
        unsolved: bool = False,
    ) -> None:
        self._ref = ref
        self._edges = np.asarray(ref["edges"], dtype=float)
        self._k = len(ref["counts"])
        self._counts = np.asarray(ref["counts"], dtype=np.int64)
        self._m = int(self._counts.sum())
        # Window counts below each edge, per block (a ring over the window).
        self._ring = np.zeros((self._blocks, self._k - 1), dtype=np.int64)
        self._below = np.zeros(self._k - 1, dtype=np.int64)
        self._refresh_ks()
        counts = list(ref["counts"]) if score_counts is None else score_counts
        self._refresh_scores(counts, limits, unsolved)

    def _refresh_ks(self) -> None:
        """KS reference CDF and scale from the current bin counts."""
        n = max(1.0, float(self._counts.sum()))
        probs = self._counts / n
        self._ref_cdf = np.cumsum(probs)[:-1]
        self._expected = self.window * self._ref_cdf
        self._inv_window = 1.0 / self.window
        # sqrt(n m / (n + m)) / n: turns a count difference into the two-sample KS scale.
        self._ks_scale = math.sqrt(self.window * n / (self.window + n)) / self.window

    def _refresh_scores(
        self, counts: list[int], solved: list[int] | None = None, unsolved: bool = False
    ) -> None:
        """CUSUM score tables and thresholds from the bin counts ``counts``; ``solved``:
        the four thresholds as a snapshot kept them for these counts (checked by
        :meth:`_known_limits`), taken instead of solving for them again (the
        root-finding is most of a restore's time); ``unsolved``: thresholds left
        unreachable, marked due (:attr:`defer_scores`)."""
        self._score_counts = [int(c) for c in counts]
        c = np.asarray(counts, dtype=float)
        m = max(1.0, float(c.sum()))
        p = c / m
        # Mid-rank of each bin (the reference CDF halfway through it), as a normal score.
        u = np.clip(np.cumsum(p) - p / 2.0, 1e-6, 1.0 - 1e-6)
        z = special.ndtri(u)
        tables: list[list[int]] = []
        limits: list[int] = []
        self._score_probs = p
        self._scores: list[np.ndarray | None] = []
        for raw in (z, z * z):
            s = raw - float((p * raw).sum())
            sd = math.sqrt(float((p * s * s).sum()))
            if sd < 1e-9 or (p > 0).sum() < 2:  # a constant score cannot drift
                self._scores.append(None)
                tables += [[-1] * len(p)] * 2  # always falls back to 0: never fires
                limits += [_NEVER] * 2
                continue
            s = s / sd
            self._scores.append(s)
            if solved is not None:
                limit = solved[len(limits)]
            elif unsolved:
                limit = _NEVER
            else:
                h = cusum_threshold(_CUSUM_MARGIN * self._budget.alpha_event, s, p, m)
                limit = round(h * _SCALE)
            k = round(CUSUM_ALLOWANCE * _SCALE)
            scaled = np.rint(s * _SCALE).astype(np.int64)
            tables += [(scaled - k).tolist(), (-scaled - k).tolist()]
            limits += [limit] * 2
        self._matrix = np.asarray(tables, dtype=np.int64)  # 4 x bins
        self._limits = limits
        self._limit_arr = np.asarray(limits, dtype=np.int64)
        self.cusum_thresholds = (limits[0] / _SCALE, limits[2] / _SCALE)
        if unsolved:
            self._scores_due = True

    def _limits_of(self) -> dict[str, Any]:
        """The CUSUM thresholds for the snapshot, with what they were solved for: the
        test's level and allowance and :data:`_LIMITS_FORMULA`. A restore takes them
        only if all three are today's (the score counts they belong to are the
        snapshot's own ``score_counts``)."""
        return {"key": self._limits_key(), "values": list(self._limits)}

    def _limits_key(self) -> list[float]:
        return [_CUSUM_MARGIN * self._budget.alpha_event, CUSUM_ALLOWANCE, _LIMITS_FORMULA]

    def _known_limits(self, kept: Any) -> list[int] | None:
        """Thresholds from a snapshot's ``limits`` if they were solved as today's code
        would (else None: solve again; so does a snapshot written before they were
        kept)."""
        if not isinstance(kept, dict) or kept.get("key") != self._limits_key():
            return None
        values = kept.get("values")
        if not isinstance(values, list) or len(values) != 4:
            return None
        return [int(v) for v in values]

    def _state(self) -> dict[str, Any]:
        return {
            "seen": self._seen,
            "learn": None if self._learn is None else list(self._learn),
            "learned": self.learned_reference if self.reference is None else None,
            "score_counts": self._score_counts,
            "limits": None if self._score_counts is None else self._limits_of(),
            "pending": list(self._pending),
            "ring": self._ring.tolist() if self._ref is not None else None,
            "pos": self._pos,
            "filled": self._filled,
            "ks": self._ks,
            "latch": self._latch.state(),
            "cusum": self._cusum.tolist(),
            "fired": self._fired,
            "delay": [b.tolist() for b in self._delay],
            "scores_due": self._scores_due,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._learn = None if state["learn"] is None else [float(v) for v in state["learn"]]
        limits = self._known_limits(state.get("limits"))
        if state["learned"] is not None:
            self._use_reference(state["learned"], state["score_counts"], limits)
        elif self._ref is not None and state["score_counts"] is not None:
            self._refresh_scores(state["score_counts"], limits)
        if state["ring"] is not None:
            ring = np.asarray(state["ring"], dtype=np.int64)
            self._ring = ring.reshape(self._blocks, self._k - 1)
            self._below = self._ring.sum(axis=0)
        self._pending = [float(v) for v in state["pending"]]
        self._pos = int(state["pos"])
        self._filled = int(state["filled"])
        self._ks = float(state["ks"])
        self._latch.load(state["latch"])
        self._cusum = np.asarray(state["cusum"], dtype=np.int64)
        self._fired = bool(state["fired"])
        self._delay = [np.asarray(b, dtype=np.int64) for b in state["delay"]]
        self._scores_due = bool(state.get("scores_due", False))  # absent before

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        """As :meth:`Detector.restore`; also loads version-1 snapshots (ADWIN + KS).

        A version-1 snapshot keeps its reference, KS window, latch and settings
        (its ``sensitivity`` was this signal's share: ``n_signals=1`` keeps that
        meaning); ADWIN's state is dropped and the CUSUMs start from zero (logged).
        """
        if (
            isinstance(snapshot, dict)
            and snapshot.get("class") == cls.__qualname__
            and snapshot.get("version") == 1
        ):
            snapshot = _migrate_v1(snapshot)
        return super().restore(snapshot)

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
    def reference_values(self) -> int:
        """Values the reference in use rests on (grows while a learned one keeps learning)."""
        return 0 if self._ref is None else int(self._counts.sum())

    @property
    def has_reference(self) -> bool:
        """Whether a reference is in use (given, or learned): ``learned_reference is not
        None`` without building it (which copies the counts; the monitor asks per block).

        >>> det = NumericDrift(reference_size=20, window=10, step=5)
        >>> det.has_reference, det.update_many([float(i) for i in range(20)])
        (False, [])
        >>> det.has_reference
        True
        """
        return self._ref is not None

    @property
    def learned_reference(self) -> dict[str, Any] | None:
        """The reference in use (given, or learned with the counts it has now), ``None``
        while still learning (:attr:`has_reference` asks without building it)."""
        if self._ref is None or self.reference is not None:
            return self._ref
        return dict(self._ref, counts=self._counts.tolist(), n=int(self._counts.sum()))

    def states(self) -> list[SignalState]:
        """The current KS reading of this signal."""
        return [SignalState(self.signal, "ks", self._ks, self.ks_threshold, self.drifting)]

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

    def _feed(self, values: Sequence[float] | np.ndarray) -> list[SignalChange]:
        """Take checked values: a sequence of numbers, or a float64 array (a monitor's
        block, read in Rust: :func:`~detectors.feature_matrix.float_column`)."""
        changes: list[SignalChange] = []
        array = type(values) is np.ndarray
        i = 0
        n = len(values)
        start = self._seen
        self._seen += n
        if self._learn is not None:
            i = self.reference_size - len(self._learn)
            head = values[:i]
            self._learn.extend(head.tolist() if array else head)  # type: ignore[union-attr]
            if len(self._learn) < self.reference_size:
                return changes
            ref = numeric_reference(self._learn, self.bins)
            self._use_reference(ref, unsolved=self.defer_scores)
            self._learn = None
        pending = self._pending
        step = self.step
        run = self._k > 1  # one bin: nothing to test
        while i < n:
            whole = not pending and n - i >= step  # a whole block (the monitor's case)
            if whole:
                seg = values[i : i + step]
            else:
                seg = values[i : i + step - len(pending)]
                pending.extend(seg.tolist() if array else seg)  # type: ignore[union-attr]
            size = len(seg)
            bins = np.empty(self._k, dtype=np.int64)  # a new one: _learn_more may keep it
            crossed = self._crossed  # scratch, a row per value (size <= step): [:found] read
            x = seg if isinstance(seg, np.ndarray) else np.fromiter(seg, float, size)
            found = advance(
                x, self._edges, self._matrix, self._cusum, self._limit_arr, run, crossed, bins
            )
            if found:
                for at, which, value in crossed[:found].tolist():
                    self._alarm(which, value, start + i + at + 1, changes)
            i += size
            if whole or len(pending) == step:
                if not whole:  # the block's bins, from all its values
                    x = np.fromiter(pending, float, step)
                    edges, table, limit = self._edges, self._matrix, self._limit_arr
                    advance(x, edges, table, self._cusum, limit, False, crossed, bins)
                    pending.clear()
                change = self._block(bins, start + i)
                if change is not None:
                    changes.append(change)
        return changes

    def _alarm(self, which: int, value: int, seen: int, out: list[SignalChange]) -> None:
        """CUSUM ``which`` crossed at value ``seen`` (they all restarted): maybe raise an
        edge."""
        self._fired = True
        self._delay.clear()
        if self._latch.observe(True, False) == "drift":
            scores = self._scores[which // 2]
            current = 0.0
            if scores is not None and self._filled:
                counts = np.diff(np.r_[0, self._below, self._filled * self.step])
                current = round(float(counts @ scores) / (self._filled * self.step), 4)
            out.append(
                SignalChange(
                    self.signal,
                    _NAMES[which],
                    "drift",
                    seen,
                    statistic=value / _SCALE,
                    threshold=self._limits[which] / _SCALE,
                    reference=0.0,
                    current=current,
                )
            )

    def _block(self, bins: np.ndarray, seen: int) -> SignalChange | None:
        """End of a block with bin counts ``bins``: slide the KS window, test, learn."""
        # Integer counts keep the sliding window exact, so a restored detector
        # (which re-sums the ring) continues bit for bit.
        gap = slide(bins, self._ring, self._pos, self._below, self._expected)
        self._pos = (self._pos + 1) % self._blocks
        calm = False
        ks_fired = False
        if self._filled < self._blocks:
            self._filled += 1
        if self._filled == self._blocks:
            if self._k > 1:
                self._ks = gap * self._ks_scale
                ks_fired = self._ks > self.ks_threshold
            calm = not self._fired and self._ks < self.recovery_threshold
        fired = ks_fired or self._fired
        self._fired = False
        edge = self._latch.observe(fired, calm)
        if edge == "recovered":
            # A fresh start: what the CUSUMs summed during the drift is not evidence now.
            self._cusum = np.zeros(4, dtype=np.int64)
        if self.reference is None:
            self._learn_more(bins, fired)
        if edge is None or (edge == "drift" and not ks_fired):
            return None
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

    def _learn_more(self, bins: np.ndarray, fired: bool) -> None:
        """A learned reference takes in calm blocks, ``_LAG_WINDOWS`` windows late
        (``_BATCH`` blocks at a time, to refresh the tests less often)."""
        if self._latch.drifting or fired:
            self._delay.clear()
            return
        cap = REFERENCE_GROWTH * self.reference_size
        if self._m >= cap:
            return
        self._delay.append(bins)
        if len(self._delay) < _LAG_WINDOWS * self._blocks + _BATCH:
            return
        for _ in range(_BATCH):
            if self._m >= cap:
                break
            block = self._delay.pop(0)
            self._counts += block
            self._m += int(block.sum())
        self._refresh_ks()
        # The CUSUMs follow when the reference has doubled since their tables (or is full).
        if self._score_counts is not None and (
            self._m >= 2 * sum(self._score_counts) or self._m >= cap
        ):
            if self.defer_scores:
                self._scores_due = True
            else:
                self._refresh_scores(self._counts.tolist())

    @property
    def scores_due(self) -> bool:
        """Whether new CUSUM tables are waiting to be computed (:attr:`defer_scores`)."""
        return self._scores_due

    def refresh_scores(self) -> bool:
        """Compute the CUSUM tables marked due (:attr:`defer_scores`) from the reference
        as it is now; whether any were due."""
        if not self._scores_due:
            return False
        self._scores_due = False
        self._refresh_scores(self._counts.tolist())
        return True


def _migrate_v1(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A version-1 (ADWIN + KS) snapshot as version 2: see :meth:`NumericDrift.restore`."""
    settings = {k: v for k, v in snapshot["settings"].items() if k != "clock"}
    old = snapshot["state"]
    ref = old["learned"] if old["learned"] is not None else settings.get("reference")
    counts = None if ref is None or old["learn"] is not None else list(ref["counts"])
    state = {
        "seen": old["seen"],
        "learn": old["learn"],
        "learned": old["learned"],
        "score_counts": counts,
        "pending": old["pending"],
        "ring": old["ring"],
        "pos": old["pos"],
        "filled": old["filled"],
        "ks": old["ks"],
        "latch": old["latch"],
        "cusum": [0, 0, 0, 0],
        "fired": False,
        "delay": [],
    }
    log.info(
        "%s: version-1 NumericDrift snapshot migrated: ADWIN state dropped, CUSUMs start at 0",
        settings.get("signal"),
    )
    return {**snapshot, "version": 2, "settings": settings, "state": state}
