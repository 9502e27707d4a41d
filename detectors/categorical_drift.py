"""Drift of one categorical stream (a feature, or the predicted label)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from detectors.base import UnivariateDetector, check_positive
from detectors.data_quality import PSEUDO_COUNT, RateWindow
from detectors.errors import InvalidObservationError, SettingsError
from detectors.hysteresis import DriftLatch
from detectors.reference import OTHER, categorical_reference
from detectors.sensitivity import (
    DEFAULT_SENSITIVITY,
    RECOVERY_ALPHA,
    SensitivityBudget,
    chi2_critical,
    default_step,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["CategoricalDrift"]

MIN_EXPECTED = 20.0
"""A reference category gets its own bin only if a window expects at least this many
of it; rarer ones join ``__other__``. Cochran's usual 5 is not enough this far in
the tail: simulating 250-value windows of a 12-category Zipf stream against a
20,000-value reference, the real rate of ``chi2 > critical(1e-5)`` was 2.6-2.9x
nominal with 5, 1.4-1.6x with 20 and ~1.1x with 40 (benchmarks/detector_quality.py
saw the chi-squared tests take most of the false alerts with 5)."""


CHI2_TAIL_FACTOR = 2.0
"""The chi-squared test runs at its share's level divided by this factor. With bins
expecting at least :data:`MIN_EXPECTED` values, the two-sample statistic's far tail
is heavier than the chi-squared distribution's (a count with a small expectation
has a Poisson tail): simulating independent 250-value windows against 20,000-value
references (``benchmarks/budget_use.py``: 5 references each of 5-, 3-, 12-category
and 3-label streams, 10^8 windows each), the real rate of ``chi2 >
critical(1.3e-6)`` was 1.4-2.3 times nominal, 1.9 on average (1.4-1.6 at ``1e-5``,
1.2-1.3 at ``3e-4``, counting latched alarms of overlapping windows). The
factor is that measured excess at the default budget's level (48 signals, 10^6
events per model), so the test realises about its share there; the excess grows
slowly with the level's remoteness, and the signal's unseen-category test, whose
half of the share a closed vocabulary never uses, covers the rest. Measured per
signal family in ``benchmarks/detector_quality.py``."""


class CategoricalDrift(UnivariateDetector[str, list[SignalChange]]):
    """Frequency changes and new categories in a categorical stream.

    The vocabulary is bounded: the reference's ``top_k`` categories (those a
    window expects at least :data:`MIN_EXPECTED` times) plus ``__other__``; any
    number of distinct live values maps onto it, so state does not grow. Two tests,
    each given half the signal's budget (:mod:`detectors.sensitivity`), run on the
    last ``window`` values every ``step`` values:

    * a **two-sample chi-squared** test of the window's bin counts ``a`` against the
      reference's ``r`` (``sum (a sqrt(R/M) - r sqrt(M/R))**2 / (a + r)``, df = bins
      - 1), which accounts for the reference being a sample too;
    * an exact one-sided **unseen-category rate** test: values outside the
      reference's ``known`` categories against the reference's Good-Turing rate
      of new categories (``unseen / n``, see
      :func:`~detectors.reference.categorical_reference`).

    Edges come from :class:`~detectors.hysteresis.DriftLatch`: recovery after
    ``window / step`` checks with chi-squared below its ``RECOVERY_ALPHA``
    quantile and the unseen p-value above ``RECOVERY_ALPHA``.

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
        A :func:`~detectors.reference.categorical_reference` entry, or ``None`` to
        learn one from the first ``reference_size`` values.
    reference_size, window, step, signal
        As in :class:`~detectors.numeric_drift.NumericDrift`.
    top_k
        Categories of a learned reference that get their own bin.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(2)
    >>> det = CategoricalDrift(signal="feature:plan")
    >>> before = ["basic"] * 6 + ["pro"] * 3 + ["team"]
    >>> after = ["basic"] * 4 + ["pro"] * 3 + ["team"] * 3  # team: 10% -> 30%
    >>> stream = [rng.choice(before) for _ in range(5000)]
    >>> stream += [rng.choice(after) for _ in range(2000)]
    >>> for i, x in enumerate(stream):
    ...     for change in det.update(x):
    ...         print(i, change.state, change.detector, change.current["team"])
    5124 drift chi2 0.188
    """

    _settings = (
        "sensitivity",
        "n_signals",
        "reference",
        "reference_size",
        "top_k",
        "window",
        "step",
        "signal",
        "budget_weight",
    )

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        n_signals: int = 1,
        reference: dict[str, Any] | None = None,
        reference_size: int = 1000,
        top_k: int = 20,
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
        self.top_k = top_k
        self.window = window
        check_positive("window", window, integer=True)
        self.step = step = default_step(window) if step is None else step
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("n_signals", n_signals, integer=True)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("top_k", top_k, integer=True)
        check_positive("window", window, integer=True)
        check_positive("step", step, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if reference is not None and (
            not isinstance(reference, dict) or reference.get("type") != "categorical"
        ):
            raise SettingsError(
                f"'reference' must be a categorical reference entry; got {reference!r}"
            )
        budget = SensitivityBudget(
            sensitivity, n_signals=n_signals, tests_per_signal=2, weight=budget_weight
        )
        self.signal_sensitivity = budget.signal_sensitivity
        self._alpha = budget.window_alpha(step)
        self._chi2_alpha = self._alpha / CHI2_TAIL_FACTOR
        self._blocks = window // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {"reference_size": 300, "top_k": 3, "window": 100, "step": 50, "budget_weight": 1.8}

    # -- state ---------------------------------------------------------------
    def _reset(self) -> None:
        self._seen = 0
        self._learn: Counter[str] | None = Counter() if self.reference is None else None
        self._learn_n = 0
        self._ref: dict[str, Any] | None = None
        self._pending: list[str] = []
        self._chi2 = 0.0
        self._df = 0
        self._unseen = RateWindow(self._blocks)
        self._latch = DriftLatch(self._blocks)
        if self.reference is not None:
            self._use_reference(self.reference)

    def _use_reference(self, ref: dict[str, Any]) -> None:
        self._ref = ref
        n = max(1, int(ref["n"]))
        vocab: dict[str, int] = {}
        ref_counts: list[float] = []
        other = float(ref["other"])
        for cat, count in ref["top"].items():
            if count * self.window / n >= MIN_EXPECTED:
                vocab[cat] = len(vocab)
                ref_counts.append(float(count))
            else:
                other += count
        self._vocab = vocab
        self._labels = [*vocab, OTHER]
        self._ref_counts = [*ref_counts, other]
        self._ref_n = float(n)
        self._known = frozenset(ref["known"])
        self._ref_unseen = float(ref["unseen"])
        self._ring = [[0] * len(self._ref_counts) for _ in range(self._blocks)]
        self._win = [0] * len(self._ref_counts)
        self._pos = 0
        # Two-sample chi-squared weights sqrt(R/M) and sqrt(M/R) (Press et al.,
        # Numerical Recipes, chstwo).
        self._wa = math.sqrt(n / self.window)
        self._wr = math.sqrt(self.window / n)

    def _state(self) -> dict[str, Any]:
        return {
            "seen": self._seen,
            "learn": None if self._learn is None else dict(self._learn),
            "learn_n": self._learn_n,
            "learned": self._ref if self.reference is None else None,
            "pending": list(self._pending),
            "ring": [list(b) for b in self._ring] if self._ref is not None else None,
            "pos": self._pos if self._ref is not None else 0,
            "chi2": self._chi2,
            "df": self._df,
            "unseen": self._unseen.state(),
            "latch": self._latch.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._learn = None if state["learn"] is None else Counter(state["learn"])
        self._learn_n = int(state["learn_n"])
        if state["learned"] is not None:
            self._use_reference(state["learned"])
        if state["ring"] is not None:
            self._ring = [[int(c) for c in b] for b in state["ring"]]
            self._win = [sum(col) for col in zip(*self._ring, strict=True)]
            self._pos = int(state["pos"])
        self._pending = [str(v) for v in state["pending"]]
        self._chi2 = float(state["chi2"])
        self._df = int(state["df"])
        self._unseen.load(state["unseen"])
        self._latch.load(state["latch"])

    # -- results -------------------------------------------------------------
    @property
    def drifting(self) -> bool:
        return self._latch.drifting

    @property
    def values_seen(self) -> int:
        return self._seen

    @property
    def statistic(self) -> float:
        """The last two-sample chi-squared statistic (0 before the first window)."""
        return self._chi2

    @property
    def threshold(self) -> float:
        """Chi-squared alarm level for the current degrees of freedom."""
        return chi2_critical(max(1, self._df), self._chi2_alpha)

    @property
    def has_reference(self) -> bool:
        """Whether a reference is in use (given, or learned): as
        :attr:`NumericDrift.has_reference <detectors.numeric_drift.NumericDrift.has_reference>`."""
        return self._ref is not None

    @property
    def learned_reference(self) -> dict[str, Any] | None:
        return self._ref

    @property
    def known_values(self) -> frozenset[str]:
        """The reference's categories (empty while learning: see :meth:`known`)."""
        return self._known if self._ref is not None else frozenset()

    def known(self, value: str) -> bool:
        """Whether ``value`` is a reference category (``True`` while learning)."""
        return self._ref is None or value in self._known

    def states(self) -> list[SignalState]:
        return [SignalState(self.signal, "chi2", self._chi2, self.threshold, self.drifting)]

    # -- updates -------------------------------------------------------------
    def update(self, x: str) -> list[SignalChange]:
        """Take one category (a string)."""
        if not isinstance(x, str):
            raise InvalidObservationError(f"{self.signal!r} must be a string; got {x!r}")
        return self._feed([x])

    def update_many(self, values: Sequence[str]) -> list[SignalChange]:
        """Take categories in order; same result as :meth:`update` on each."""
        for v in values:
            if type(v) is not str:
                raise InvalidObservationError(f"{self.signal!r} must be a string; got {v!r}")
        return self._feed(values)

    def _feed(self, values: Sequence[str]) -> list[SignalChange]:
        changes: list[SignalChange] = []
        n = len(values)
        seen0 = self._seen
        self._seen += n
        i = 0
        if self._learn is not None:
            i = min(n, self.reference_size - self._learn_n)
            self._learn.update(values[:i])
            self._learn_n += i
            if self._learn_n < self.reference_size:
                return changes
            self._use_reference(categorical_reference(self._learn, self.top_k))
            self._learn = None
        pending = self._pending
        step = self.step
        while i < n:
            take = step - len(pending)
            pending.extend(values[i : i + take])
            i += take
            if len(pending) == step:
                change = self._block(pending, seen0 + min(i, n))
                pending.clear()
                if change is not None:
                    changes.append(change)
        return changes

    def _block(self, block: list[str], seen: int) -> SignalChange | None:
        vocab = self._vocab
        other = len(vocab)
        known = self._known
        counts = [0] * (other + 1)
        unseen = 0
        for v, c in Counter(block).items():
            counts[vocab.get(v, other)] += c
            if v not in known:
                unseen += c
        win = self._win
        old = self._ring[self._pos]
        for j, c in enumerate(counts):
            win[j] += c - old[j]
        self._ring[self._pos] = counts
        self._pos = (self._pos + 1) % self._blocks
        self._unseen.push(len(block), unseen)
        if not self._unseen.full:
            return None
        chi2 = 0.0
        bins = 0
        wa, wr = self._wa, self._wr
        for a, r in zip(win, self._ref_counts, strict=True):
            if a or r:
                d = a * wa - r * wr
                chi2 += d * d / (a + r)
                bins += 1
        self._chi2 = chi2
        self._df = bins - 1
        chi2_fired = self._df >= 1 and chi2 > chi2_critical(self._df, self._chi2_alpha)
        chi2_calm = self._df < 1 or chi2 < chi2_critical(self._df, RECOVERY_ALPHA)
        p_unseen = self._unseen.pvalue(self._ref_unseen + PSEUDO_COUNT, self._ref_n + PSEUDO_COUNT)
        unseen_fired = p_unseen < self._alpha
        edge = self._latch.observe(
            chi2_fired or unseen_fired, chi2_calm and p_unseen > RECOVERY_ALPHA
        )
        if edge is None:
            return None
        m = float(self._unseen.events)
        current = {lab: round(c / m, 4) for lab, c in zip(self._labels, win, strict=True)}
        reference = {
            lab: round(r / self._ref_n, 4)
            for lab, r in zip(self._labels, self._ref_counts, strict=True)
        }
        if edge == "drift" and not chi2_fired:
            current["__unseen__"] = round(self._unseen.hits / m, 4)
            reference["__unseen__"] = round(self._ref_unseen / self._ref_n, 4)
            stat = -math.log10(p_unseen) if p_unseen > 0.0 else math.inf
            return SignalChange(
                self.signal,
                "unseen_rate",
                edge,
                seen,
                statistic=stat,
                threshold=-math.log10(self._alpha),
                reference=reference,
                current=current,
            )
        df = max(1, self._df)
        return SignalChange(
            self.signal,
            "chi2",
            edge,
            seen,
            statistic=chi2,
            threshold=chi2_critical(df, self._chi2_alpha if edge == "drift" else RECOVERY_ALPHA),
            reference=reference,
            current=current,
        )
