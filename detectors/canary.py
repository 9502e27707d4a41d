"""A rollout's canary: the new model version's predictions against the old one's.

When a new version of a model starts serving next to the old one, the question
on-call asks is not "has the traffic drifted" (both versions see the same traffic)
but "does the new version *answer differently*". :class:`VersionCanary` compares
the prediction distribution of the new version with the old version's **over the
same stretch of time**, so that whatever moves the traffic (time of day, a feature
shift) moves both samples alike and only a difference between the versions remains.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from typing import Any, Literal

from detectors.base import BivariateDetector, check_bool, check_finite, check_positive
from detectors.categorical_drift import MIN_EXPECTED
from detectors.errors import InvalidObservationError, SettingsError
from detectors.hysteresis import DriftLatch
from detectors.reference import OTHER
from detectors.sensitivity import (
    DEFAULT_SENSITIVITY,
    RECOVERY_ALPHA,
    SensitivityBudget,
    chi2_critical,
    default_step,
    ks_critical,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["VersionCanary"]


class VersionCanary(BivariateDetector[bool, "str | float", list[SignalChange]]):
    """Two-sample test of a new version's predictions against the old version's.

    ``update(is_new, prediction)`` takes one prediction of either version, in
    arrival order: ``is_new`` says which version made it, ``prediction`` is the
    predicted class (a string) or the regression value (a number); one detector
    takes one kind, fixed by its first value.

    **Aligned windows.** Time is cut into blocks of ``step`` *new-version*
    predictions; the old version's predictions that arrive meanwhile go into the
    same block. Every ``step`` new predictions, the last ``window / step`` blocks
    are tested: two samples taken over exactly the same time span, whatever the
    traffic split between the versions. No clock is needed: arrival order is the
    alignment (a replay gives the same result). With ``max_window``, the tested
    span grows from ``window`` to ``max_window`` new predictions before it slides:
    a canary is a comparison *since the rollout*, and the more of it a test sees,
    the smaller the difference it finds (recovery then needs ``window / step``
    calm checks, as without).

    **The tests.** Regression values are binned by the quantiles of the first
    ``reference_size`` values of both versions pooled (``bins`` bins) and tested
    with the two-sample Kolmogorov-Smirnov statistic at the bin edges,
    ``sqrt(N M / (N + M)) max |F_new - F_old|`` (DKW's bound, conservative when
    read at edges only), ``N`` and ``M`` the two samples' sizes. Classes are
    binned by name (the first ``top_k`` seen get a bin, later ones share
    ``__other__``) and tested with the two-sample chi-squared of the window's bin
    counts ``a`` (new) and ``r`` (old), ``sum (a sqrt(M/N) - r sqrt(N/M))**2 / (a
    + r)`` (Press et al., *Numerical Recipes*, chstwo) with ``df = bins - 1``. A
    bin enters only if both samples expect at least
    :data:`~detectors.categorical_drift.MIN_EXPECTED` of it under the null (its
    pooled count shared by ``N : M``); small bins are pooled, and a pool still
    too small is left out (the test then compares the versions' distributions
    over the kept bins, still a valid homogeneity test given the pooled counts).
    A window whose old-version sample is smaller than ``min_old`` is not tested
    (the old version has stopped serving).

    **False alarms.** Under the null (both versions predict alike and their
    predictions are independent), each test fires with probability ``alpha =
    step / (sensitivity * n_signals)`` (:class:`~detectors.sensitivity.SensitivityBudget`,
    one test per signal): one run every ``step`` new-version predictions, so the
    expected number of stationary predictions of the new version between false
    alarms is at least ``sensitivity * n_signals``; counted in events of the model
    (both versions) it is more. The chi-squared approximation with expected
    counts of at least 20 per bin keeps the real tail near nominal
    (``benchmarks/detector_quality.py``, ``canary``). Alerts are edges
    (:class:`~detectors.hysteresis.DriftLatch`): recovery after a window of checks
    below the :data:`~detectors.sensitivity.RECOVERY_ALPHA` quantile.

    Parameters
    ----------
    sensitivity, n_signals
        Expected stationary events between false alerts of the *model*, and the
        signals sharing that budget.
    window
        New-version predictions in the first test window.
    max_window
        New-version predictions the test window grows to (``None``: ``window``, a
        fixed sliding window).
    step
        New-version predictions between tests (a divisor of ``window``).
    top_k
        Classes with a bin of their own.
    bins
        Bins of a regression value.
    reference_size
        Values (both versions) from which the regression bins are learned.
    min_old
        Fewest old-version predictions a window needs to be tested.
    signal
        The signal name the alerts carry (``version:<new>:prediction`` in vigil).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> canary = VersionCanary(signal="version:v2:prediction")
    >>> old, new = ["a"] * 6 + ["b"] * 3 + ["c"], ["a"] * 4 + ["b"] * 3 + ["c"] * 3
    >>> for i in range(3000):  # 20 % of the traffic goes to the new version
    ...     is_new = rng.random() < 0.2
    ...     for change in canary.update(is_new, rng.choice(new if is_new else old)):
    ...         print(canary.new_seen, change.state, change.current["c"])
    250 drift 0.324
    """

    _settings = (
        "sensitivity",
        "n_signals",
        "window",
        "step",
        "max_window",
        "top_k",
        "bins",
        "reference_size",
        "min_old",
        "signal",
    )

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        n_signals: int = 1,
        window: int = 250,
        step: int | None = None,
        max_window: int | None = None,
        top_k: int = 20,
        bins: int = 20,
        reference_size: int = 500,
        min_old: int = 100,
        signal: str = "prediction",
    ) -> None:
        self.sensitivity = sensitivity
        self.n_signals = n_signals
        self.window = window
        check_positive("window", window, integer=True)
        self.step = step = default_step(window) if step is None else step
        self.max_window = max_window
        self.top_k = top_k
        self.bins = bins
        self.reference_size = reference_size
        self.min_old = min_old
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("n_signals", n_signals, integer=True)
        check_positive("step", step, integer=True)
        check_positive("top_k", top_k, integer=True)
        check_positive("bins", bins, integer=True)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("min_old", min_old, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if max_window is not None:
            check_positive("max_window", max_window, integer=True)
            if max_window < window or max_window % step:
                raise SettingsError(
                    f"'max_window' must be a multiple of 'step' ({step}) and at least 'window' "
                    f"({window}); got {max_window}"
                )
        if bins < 2:
            raise SettingsError(f"'bins' must be at least 2; got {bins!r}")
        if not isinstance(signal, str):
            raise SettingsError(f"'signal' must be a string; got {signal!r}")
        budget = SensitivityBudget(sensitivity, n_signals=n_signals, tests_per_signal=1)
        self.signal_sensitivity = budget.signal_sensitivity
        self._alpha = budget.window_alpha(step)
        self._blocks = window // step
        self._max_blocks = (window if max_window is None else max_window) // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 100, "step": 50, "min_old": 30}
        yield {"window": 100, "step": 25, "max_window": 300, "min_old": 30}
        yield {"window": 60, "step": 20, "top_k": 2, "bins": 4, "reference_size": 100}

    # -- state ---------------------------------------------------------------
    def _reset(self) -> None:
        self._kind: str | None = None  # "class" | "value", fixed by the first value
        self._vocab: dict[str, int] = {}
        self._edges: list[float] | None = None
        self._learn: list[float] = []  # regression values until the bins are learned
        self._new_seen = 0
        self._old_seen = 0
        self._new_block: dict[int, int] = {}
        self._old_block: dict[int, int] = {}
        self._in_block = 0
        self._ring: list[tuple[dict[int, int], dict[int, int]]] = []
        self._chi2 = 0.0
        self._df = 0
        self._tested = False
        self._latch = DriftLatch(self._blocks)
        self._last: tuple[dict[str, float], dict[str, float]] = ({}, {})

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self._kind,
            "vocab": dict(self._vocab),
            "edges": None if self._edges is None else list(self._edges),
            "learn": list(self._learn),
            "new_seen": self._new_seen,
            "old_seen": self._old_seen,
            "new_block": sorted(self._new_block.items()),
            "old_block": sorted(self._old_block.items()),
            "in_block": self._in_block,
            "ring": [[sorted(a.items()), sorted(r.items())] for a, r in self._ring],
            "chi2": self._chi2,
            "df": self._df,
            "tested": self._tested,
            "latch": self._latch.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._kind = state["kind"]
        self._vocab = {str(k): int(v) for k, v in state["vocab"].items()}
        self._edges = None if state["edges"] is None else [float(e) for e in state["edges"]]
        self._learn = [float(v) for v in state["learn"]]
        self._new_seen = int(state["new_seen"])
        self._old_seen = int(state["old_seen"])
        self._new_block = {int(k): int(v) for k, v in state["new_block"]}
        self._old_block = {int(k): int(v) for k, v in state["old_block"]}
        self._in_block = int(state["in_block"])
        self._ring = [
            ({int(k): int(v) for k, v in a}, {int(k): int(v) for k, v in r})
            for a, r in state["ring"]
        ]
        self._chi2 = float(state["chi2"])
        self._df = int(state["df"])
        self._tested = bool(state["tested"])
        self._latch.load(state["latch"])

    # -- results -------------------------------------------------------------
    @property
    def drifting(self) -> bool:
        return self._latch.drifting

    @property
    def new_seen(self) -> int:
        """Predictions of the new version seen."""
        return self._new_seen

    @property
    def old_seen(self) -> int:
        """Predictions of the old version seen."""
        return self._old_seen

    @property
    def statistic(self) -> float:
        """The last two-sample chi-squared statistic (0 before the first test)."""
        return self._chi2

    @property
    def threshold(self) -> float:
        """Alarm level of the statistic (chi-squared for the last test's degrees of
        freedom; the KS level for regression values)."""
        if self._kind == "value":
            return ks_critical(self._alpha)
        return chi2_critical(max(1, self._df), self._alpha)

    def state(self) -> SignalState:
        detector = "ks" if self._kind == "value" else "chi2"
        return SignalState(self.signal, detector, self._chi2, self.threshold, self.drifting)

    # -- updates -------------------------------------------------------------
    def update(self, is_new: bool, prediction: str | float) -> list[SignalChange]:
        """One prediction: ``is_new`` (a bool) says whether the new version made it."""
        if is_new is not True and is_new is not False:
            is_new = check_bool("is_new", is_new)  # numpy's bool too
        kind = self._kind
        if isinstance(prediction, str):
            prediction = str(prediction)  # numpy's str too
            if kind == "value":
                raise InvalidObservationError(
                    f"{self.signal!r} takes regression values; got the class {prediction!r}"
                )
            b = self._vocab.get(prediction)
            if b is None:
                b = len(self._vocab) if len(self._vocab) < self.top_k else self.top_k
                if b < self.top_k:
                    self._vocab[prediction] = b
            self._kind = "class"
        else:
            if kind == "class":
                raise InvalidObservationError(
                    f"{self.signal!r} takes class labels; got {prediction!r}"
                )
            v = check_finite(self.signal, prediction)
            self._kind = "value"
            if self._edges is None:
                self._learn.append(v)
                if len(self._learn) < self.reference_size:
                    self._count(is_new, -1)
                    return []
                self._learn_edges()
            b = bisect_right(self._edges, v)  # type: ignore[arg-type]  # learned just above
        return self._count(is_new, b)

    def _learn_edges(self) -> None:
        values = sorted(self._learn)
        n = len(values)
        edges: list[float] = []
        for j in range(1, self.bins):
            e = values[min(n - 1, (j * n) // self.bins)]
            if not edges or e > edges[-1]:
                edges.append(e)
        self._edges = edges
        self._learn = []

    def _count(self, is_new: bool, b: int) -> list[SignalChange]:
        """Count a prediction in bin ``b`` of the open block (``-1``: not binned yet)."""
        if not is_new:
            self._old_seen += 1
            if b >= 0:
                self._old_block[b] = self._old_block.get(b, 0) + 1
            return []
        self._new_seen += 1
        if b < 0:
            return []
        self._new_block[b] = self._new_block.get(b, 0) + 1
        self._in_block += 1
        if self._in_block < self.step:
            return []
        self._ring.append((self._new_block, self._old_block))
        if len(self._ring) > self._max_blocks:
            del self._ring[0]
        self._new_block, self._old_block, self._in_block = {}, {}, 0
        if len(self._ring) < self._blocks:
            return []
        change = self._test()
        return [] if change is None else [change]

    def _window(self) -> tuple[dict[int, int], dict[int, int]]:
        a: dict[int, int] = {}
        r: dict[int, int] = {}
        for na, nr in self._ring:
            for k, c in na.items():
                a[k] = a.get(k, 0) + c
            for k, c in nr.items():
                r[k] = r.get(k, 0) + c
        return a, r

    def _test(self) -> SignalChange | None:
        a, r = self._window()
        n, m = sum(a.values()), sum(r.values())
        if m < self.min_old:
            return None
        if self._kind == "value":
            return self._ks(a, r, n, m)
        # Bins whose pooled count gives each sample at least MIN_EXPECTED under the null;
        # the rest pooled, and the pool kept only if it passes too.
        small = min(n, m) / (n + m)
        kept: list[tuple[int, int]] = []
        pool_a = pool_r = 0
        for k in sorted(set(a) | set(r)):
            ak, rk = a.get(k, 0), r.get(k, 0)
            if (ak + rk) * small >= MIN_EXPECTED:
                kept.append((ak, rk))
            else:
                pool_a += ak
                pool_r += rk
        if (pool_a + pool_r) * small >= MIN_EXPECTED:
            kept.append((pool_a, pool_r))
        if len(kept) < 2:
            return None
        n = sum(x for x, _ in kept)
        m = sum(y for _, y in kept)
        wa, wr = math.sqrt(m / n), math.sqrt(n / m)
        chi2 = 0.0
        for ak, rk in kept:
            d = ak * wa - rk * wr
            chi2 += d * d / (ak + rk)
        df = len(kept) - 1
        self._chi2, self._df, self._tested = chi2, df, True
        fired = chi2 > chi2_critical(df, self._alpha)
        calm = chi2 < chi2_critical(df, RECOVERY_ALPHA)
        edge = self._latch.observe(fired, calm)
        if edge is None:
            return None
        level = chi2_critical(df, self._alpha if edge == "drift" else RECOVERY_ALPHA)
        return self._change(edge, "chi2", chi2, level, a, r)

    def _ks(self, a: dict[int, int], r: dict[int, int], n: int, m: int) -> SignalChange | None:
        """Binned two-sample KS: the largest gap of the two CDFs at the bin edges, scaled
        by ``sqrt(n m / (n + m))`` (:func:`~detectors.sensitivity.ks_critical`; at the
        edges only, so conservative)."""
        ca = cr = 0
        gap = 0.0
        for k in range(len(self._edges or ()) + 1):
            ca += a.get(k, 0)
            cr += r.get(k, 0)
            gap = max(gap, abs(ca / n - cr / m))
        stat = math.sqrt(n * m / (n + m)) * gap
        self._chi2, self._df, self._tested = stat, 1, True
        fired = stat > ks_critical(self._alpha)
        edge = self._latch.observe(fired, stat < ks_critical(RECOVERY_ALPHA))
        if edge is None:
            return None
        level = ks_critical(self._alpha if edge == "drift" else RECOVERY_ALPHA)
        return self._change(edge, "ks", stat, level, a, r)

    def _change(
        self,
        edge: Literal["drift", "recovered"],
        detector: str,
        stat: float,
        level: float,
        a: dict[int, int],
        r: dict[int, int],
    ) -> SignalChange:
        names = self._bin_names()
        current = {names(k): round(c / max(1, sum(a.values())), 4) for k, c in sorted(a.items())}
        reference = {names(k): round(c / max(1, sum(r.values())), 4) for k, c in sorted(r.items())}
        return SignalChange(
            self.signal,
            detector,
            edge,
            self._new_seen,
            statistic=stat,
            threshold=level,
            reference=reference,
            current=current,
        )

    def _bin_names(self) -> Any:
        if self._kind == "class":
            labels = {b: name for name, b in self._vocab.items()}
            return lambda k: labels.get(k, OTHER)
        edges = self._edges or []

        def name(k: int) -> str:
            lo = "-inf" if k == 0 else f"{edges[k - 1]:.4g}"
            hi = "inf" if k >= len(edges) else f"{edges[k]:.4g}"
            return f"[{lo}, {hi})"

        return name
