"""Multivariate drift and per-event outliers from a PCA fitted on the reference.

A change in how features move *together* (a correlation that flips sign, two
features rotated into each other) leaves every marginal distribution as it was,
so per-feature tests (:mod:`detectors.numeric_drift`) cannot see it. As NannyML's
*data reconstruction drift* does in batch, this module fits a principal component
analysis on the reference and watches how well it reconstructs live events; it
does so streaming, in bounded memory, under vigil's false-alarm budget.

**The fitted reference** (:func:`fit_reconstruction`, plain data). Each numeric
feature is first mapped to *normal scores* ``ndtri(F(x))`` through its reference
quantiles (``normal_scores=True``, the default; a Gaussian copula): PCA and the
chi-square approximations below are exact for Gaussian rows, and real features are
skewed (lognormal amounts), bounded (uniform shares) or discrete (counts); without
the map a 6 sd move is ordinary in a lognormal feature's tail and the outlier score
misses it (``benchmarks/multivariate_quality.py``, ``mixed``). Values beyond the
reference's range continue linearly in units of the feature's sd. Then features
are standardised by the reference's mean and standard deviation; a missing or
non-numeric value is imputed with the reference mean (``z = 0``) and counted. The
reference rows are split in two interleaved halves (even rows fit, odd rows held
out: a time-ordered reference gives both halves the same periods; the quantile
tables come from the fit half):

* on the *fit* half: mean, sd and the eigen-decomposition of the correlation
  matrix, fitted twice: the second time without the rows whose outlier score
  (below) is beyond the ``chi2_d`` quantile at :data:`TRIM_ALPHA`, so that a few
  absurd rows in the reference do not inflate the sds and blur the correlations;
  the ``k`` leading components explain at least ``variance`` of the total
  (default 90 %), ``1 <= k <= d - 1``;
* on the *held-out* half: each row's squared prediction error (SPE, the Q
  statistic: squared distance between the standardised row and its projection on
  the ``k`` components) and its outlier score. Errors on the fitting rows are
  biased low (the components were chosen to make them small); on held-out rows
  they are what a live event from the same distribution gets.

**Drift test.** Every ``step`` events the mean SPE of the last ``window`` events is
compared with the held-out errors' mean ``m`` and variance ``v``:
``Z = (mean_w - m+) / sqrt(v+ / w)``, and the test fires when ``Z`` exceeds the
``alpha_window`` quantile of the standardised window mean. ``m+`` and ``v+`` are
one-sided 95 % upper bounds (``m + 1.64 sqrt(v / n)`` and
``v (1 + 1.64 sqrt((kurtosis - 1) / n))``, ``n`` held-out rows): the reference is a
sample too, and the false-alarm rate a user lives with is the one *given* that
sample, for as long as the reference is in use; with plain estimates a reference
whose errors came out one standard error low multiplies it (by about 50 at
``alpha = 1e-6`` with ``n = 2500`` and ``w = 250``). With the bounds the rate
given the reference is at most ``alpha_window`` for 95 % of references. The
window mean is modelled as a scaled chi-square with ``w h`` degrees of freedom,
``h = 8 / skew**2`` matched on the held-out errors' skewness: for Gaussian rows
``SPE`` is a weighted sum of chi-squares over the discarded components, which Box
(1954) and Jackson & Mudholkar (1979) approximate by ``g * chi2_h``; the skewness
match keeps that shape where rows are not Gaussian, and the critical value tends
to the normal one as ``w h`` grows. The test is one-sided: a rise in
reconstruction error means live rows leave the structure of the reference; a fall
(rows more regular than before) is not alarmed. Assumed: events are independent
(the windows overlap, so checks are not); the window mean is near its matched
chi-square (the central limit theorem, whatever the marginals: measured in
``benchmarks/multivariate_quality.py``). Not assumed: Gaussian features.

**Outliers in the window.** An outlier's SPE can be hundreds of times the typical
one: a few in the held-out rows would inflate the variance the test divides by, and
one in a window would move its mean as much as a real drift. So every SPE is
clipped at ``cap``, the held-out 99th percentile, in the reference moments and in
the window alike (a fixed function of i.i.d. errors, so the test stays valid; a
correlation change moves the bulk of the errors, which the clip keeps): outliers
are left to the per-event score, the window test watches the bulk.

**Budget.** ``sensitivity`` is the expected number of stationary events between
false alerts *of this signal* (:mod:`detectors.sensitivity`: the model's
sensitivity times its number of signals; the worker counts ``multivariate`` as one
more signal). The detector runs one test, every ``step`` events, so
``alpha_window = step / sensitivity`` (the union bound over time of
``SensitivityBudget.window_alpha`` with one test per signal).

**Outlier score.** Hotelling's ``T2`` on the ``k`` retained components plus the
discarded components each divided by its own eigenvalue, floored at
``EIGEN_FLOOR`` (1 % of a standardised feature's variance): the Mahalanobis
distance of the event in the reference's PCA basis, without dividing by the
near-zero eigenvalues of redundant features (a copy, a sum of others), where the
plain Mahalanobis distance is numerically unstable. SPE alone misses an event that
is extreme *along* the reference's structure (every feature 6 sd high when they
all move together); ``T2`` alone misses one that breaks it; SPE weighs all
discarded directions alike, so its tail is set by the largest discarded eigenvalue
and the two-moment ``g * chi2_h`` fit underestimates it (measured: 2x the nominal
flag rate at 0.999), while this score is ``chi2_d`` for a Gaussian reference.
The outlier threshold estimates the ``outlier_quantile`` of the score from the
held-out scores (an empirical quantile of a thousand values cannot resolve 0.999),
as the larger of two fits: a scaled chi-square ``c * chi2_nu`` moment-matched on
them (``c`` near 1 and ``nu`` near ``d`` for Gaussian rows; the match absorbs the
estimation error of the fitted mean and covariance), and a generalised Pareto tail
fitted to the scores above their 95th percentile (peaks over threshold, Hosking &
Wallis 1987 probability-weighted moments, shape clipped to [0, 0.5]). The first is
right for Gaussian rows and the second for heavier tails (without the normal-score
map, lognormal features gave the score a tail the chi-square missed by a factor of
5-10 in flag rate; with it, the tail fit guards against what the map leaves, such
as dependence that is not Gaussian); the larger keeps the flag rate near or below
``1 - outlier_quantile``, at some cost in recall (measured in
``benchmarks/multivariate_quality.py``). Scores above
twice their 99th percentile are clipped before the chi-square moments, so a few
outliers in the reference do not inflate them.

Why not River's ``HalfSpaceTrees`` (the alternative the issue names): its score is
a mass over random half-spaces with no fitted null distribution, so its 0.999
threshold would be an empirical quantile again; it costs tens of microseconds per
event in Python (the worker has about 33 per event in total); and its trees adapt
to the live stream, so a slow drift teaches it that outliers are normal. The PCA
score is calibrated from the reference alone and costs a few microseconds per event
(the normal-score map is one ``np.interp`` over every feature's table, about a dozen
numpy calls per event in all: ~10 µs at 20 features on a loaded 2-core machine; a
microsecond or two per event through :meth:`ReconstructionDrift.update_rows` batches).
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
from scipy import special

from detectors._native import RowScorer, normal_scores
from detectors._native import project as _project
from detectors.base import UnivariateDetector, as_real, check_in_range, check_positive
from detectors.errors import InvalidObservationError, SettingsError
from detectors.hysteresis import DriftLatch
from detectors.sensitivity import DEFAULT_SENSITIVITY, RECOVERY_ALPHA
from detectors.signals import SignalChange, SignalState

__all__ = [
    "DEFAULT_OUTLIER_QUANTILE",
    "ReconstructionDrift",
    "fit_reconstruction",
    "outlier_threshold",
    "rows_of",
    "window_critical",
]

DEFAULT_OUTLIER_QUANTILE = 0.99999
"""``escalation.outlier_quantile``: an event is an outlier beyond this quantile of the
reference's score distribution, so ``1 - q`` of clean events are flagged. 0.99999,
not 0.999: at a 0.1 % outlier rate, 0.999 flags as many clean events as there are
outliers (precision at most 0.5, whatever the score); one clean event in 100,000
keeps precision near 0.99 at recall near 1 (``benchmarks/detector_quality.py``,
:class:`~detectors.drift_monitor.DriftMonitor`)."""

FORMAT = "vigil.reconstruction/1"
GRID = 101
"""Quantiles per feature in the marginal table of :func:`fit_reconstruction`."""
TAIL_FROM = 0.95
"""The outlier score's tail is fitted to held-out scores above this quantile."""
TRIM_ALPHA = 1e-3
"""Fitting rows whose score is beyond this upper quantile of ``chi2_d`` are dropped
before the final fit (0.1 % of Gaussian rows)."""
EIGEN_FLOOR = 0.01
"""Smallest eigenvalue (of the correlation matrix) the outlier score divides by."""
_REACH = 1e6
"""Reference ranges beyond which the normal-score map holds a value (still absurd)."""
_SUSPECT = 1e10
"""A per-event score this large is re-checked for infinite values (imputed, counted)."""
_EPS = 1e-12

Features = Mapping[str, Any]
_FLOAT = frozenset((float,))


def _number(v: object) -> float:
    """A feature value as a float (numpy scalars too), NaN when missing, a bool, a
    string or anything else that is not a real number."""
    f = as_real(v)
    return math.nan if f is None else f


def rows_of(events: Sequence[Features], features: Sequence[str]) -> np.ndarray:
    """The numeric matrix of ``events`` (one row each) over ``features``; NaN marks
    a value that is missing, null, non-numeric (a string, a bool) or not finite.

    >>> rows_of([{"a": 1, "b": 2.5}, {"a": None, "b": "x"}], ["a", "b"]).tolist()
    [[1.0, 2.5], [nan, nan]]
    """
    out = None
    if len(features) > 1:
        try:  # the usual case, every value a float: each event's row in one C call
            pick = operator.itemgetter(*features)
            rows = [pick(e) for e in events]
        except (KeyError, TypeError):  # a missing feature, an event that is no mapping
            rows = None
        if rows is not None and set(map(type, chain.from_iterable(rows))) <= _FLOAT:
            out = np.array(rows, dtype=float)
    if out is None:
        out = np.array([[_number(e.get(f)) for f in features] for e in events], dtype=float)
    out = out.reshape(len(events), len(features))
    out[~np.isfinite(out)] = math.nan
    return out


def _spe_moments(spe: np.ndarray) -> dict[str, float]:
    """Moments of held-out errors clipped at their 99th percentile (module docstring)."""
    n = len(spe)
    cap = max(float(np.quantile(spe, 0.99)), _EPS)
    c = np.minimum(spe, cap)
    m = max(float(c.mean()), _EPS)
    v = max(float(c.var(ddof=1)), _EPS * (1.0 + m * m))
    dev = (c - m) / math.sqrt(v)
    skew = max(float(np.mean(dev**3)), 1e-3)
    kurt = max(float(np.mean(dev**4)), 1.0)
    upper = v * (1.0 + 1.64 * math.sqrt((kurt - 1.0) / n))
    return {
        "n": n,
        "mean": m,
        "var": v,
        "var_upper": upper,
        "skew": skew,
        "kurtosis": kurt,
        "h": 8.0 / (skew * skew),
        "cap": cap,
    }


def _score_tail(score: np.ndarray) -> dict[str, float]:
    """A scaled chi-square and a generalised Pareto tail fitted to held-out scores."""
    cap = max(2.0 * float(np.quantile(score, 0.99)), _EPS)
    c = np.minimum(score, cap)
    m = max(float(c.mean()), _EPS)
    v = max(float(c.var(ddof=1)), _EPS * (1.0 + m * m))
    u = float(np.quantile(score, TAIL_FROM))
    y = np.sort(score[score > u] - u)
    if len(y) >= 2 and float(y.mean()) > 0.0:
        # Hosking & Wallis (1987): probability-weighted moments of the excesses.
        a0 = float(y.mean())
        a1 = float(np.mean((1.0 - (np.arange(1, len(y) + 1) - 0.35) / len(y)) * y))
        k = a0 / (a0 - 2.0 * a1) - 2.0 if a0 > 2.0 * a1 else -0.5
        xi = min(0.5, max(0.0, -k))
        sigma = a0 * (1.0 - xi)  # the mean excess of a GPD is sigma / (1 - xi)
    else:
        xi, sigma = 0.0, _EPS
    return {
        "mean": m,
        "var": v,
        "c": v / (2.0 * m),
        "nu": 2.0 * m * m / v,
        "tail_u": u,
        "tail_p": TAIL_FROM,
        "tail_sigma": sigma,
        "tail_xi": xi,
    }


def outlier_threshold(score: Mapping[str, float], q: float) -> float:
    """The ``q`` quantile of the outlier score: the larger of the chi-square and the
    tail estimates of :func:`fit_reconstruction`'s ``score`` entry.

    >>> tail = {"c": 1.0, "nu": 20.0, "tail_u": 31.4, "tail_p": 0.95,
    ...         "tail_sigma": 2.2, "tail_xi": 0.0}
    >>> round(outlier_threshold(tail, 0.999), 2)  # chi2_20: 45.31
    45.31
    >>> round(outlier_threshold({**tail, "tail_xi": 0.3}, 0.999), 2)  # a heavier tail
    47.78
    """
    chi2 = float(score["c"]) * float(special.chdtri(float(score["nu"]), 1.0 - q))
    u, p = float(score["tail_u"]), float(score["tail_p"])
    sigma, xi = float(score["tail_sigma"]), float(score["tail_xi"])
    if q <= p:
        return chi2
    r = (1.0 - q) / (1.0 - p)
    gpd = u + (sigma * math.log(1.0 / r) if xi < 1e-9 else sigma / xi * (r**-xi - 1.0))
    return max(chi2, gpd)


def _marginal_table(fit: np.ndarray) -> dict[str, Any]:
    """Per feature: :data:`GRID` quantiles of the finite values and their sd."""
    qs, sds = [], []
    grid = np.linspace(0.0, 1.0, GRID)
    finite = np.isfinite(fit)
    # Every value finite (the usual case): all columns' quantiles in one call, the same
    # numbers as column by column (~2 ms less of a model's learning for 20 features).
    every = np.quantile(fit, grid, axis=0).T.tolist() if fit.size and finite.all() else None
    for j, col in enumerate(fit.T):
        if every is not None:
            v = col
            qs.append(every[j])
        else:
            v = col[finite[:, j]]
            if v.size == 0:
                v = np.zeros(1)
            qs.append(np.quantile(v, grid).tolist())
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit
            sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
            mean = float(v.mean())
        # A constant feature, or one whose spread overflows a float: unit sd (it only
        # sets how far the map reaches beyond the reference's range).
        ok = math.isfinite(sd) and sd > _EPS * (1.0 + abs(mean))
        sds.append(sd if ok else 1.0)
    return {"quantiles": qs, "sd": sds, "n": len(fit)}


class _NormalScores:
    """Map raw values to normal scores ``ndtri(F(x))`` through a marginal table.

    ``F`` is piecewise linear between the table's quantiles (a value equal to a run
    of tied quantiles, as discrete features give, gets the middle of the run); it is
    kept inside ``[1 / (2 n), 1 - 1 / (2 n)]`` and continued beyond the reference's
    range linearly, in units of the feature's sd, so a value far outside stays far
    outside (up to :data:`_REACH` ranges out, beyond which it is held there: still
    absurd). Vectorised over rows and features (NaN stays NaN): every feature's
    table sits in its own stretch of one axis, so one ``np.interp`` call maps all of
    them (a handful of numpy calls per event, whatever the number of features).
    ``center`` (the fitted mean of each feature's scores) is subtracted in the
    table, so a caller that centres gets it for free.

    The map runs in Rust (``detectors._native.normal_scores``: numpy's ``interp``
    searched all features' knots for every value; each value is looked up in its own
    feature's stretch here), with numpy's arithmetic step by step, so the same floats
    bit for bit (``tests/detectors/test_reconstruction_kernels.py``)."""

    def __init__(self, table: Mapping[str, Any], center: np.ndarray | None = None) -> None:
        q = np.asarray(table["quantiles"], dtype=float)
        d, grid = q.shape
        lo, hi = q[:, 0], q[:, -1]
        span = np.maximum(hi - lo, _EPS * (1.0 + np.abs(lo)))
        pmin = 0.5 / max(1, int(table["n"]))
        zg = special.ndtri(np.clip(np.linspace(0.0, 1.0, grid), pmin, 1.0 - pmin))
        sd = np.asarray(table["sd"], dtype=float)
        mid = np.zeros(d) if center is None else np.asarray(center, dtype=float)
        width = 2.0 * _REACH + 3.0
        xs: list[np.ndarray] = []
        zs: list[np.ndarray] = []
        for j in range(d):
            u = (q[j] - lo[j]) / span[j]
            # Runs of tied quantiles collapse to one point at the run's middle score.
            values, first, counts = np.unique(u, return_index=True, return_counts=True)
            z = (zg[first] + zg[first + counts - 1]) / 2.0
            reach = _REACH * span[j] / sd[j]  # _REACH ranges, in sds
            off = j * width
            xs.append(np.concatenate([[-_REACH], values, [1.0 + _REACH]]) + off)
            zs.append(np.concatenate([[z[0] - reach], z, [z[-1] + reach]]) - mid[j])
        self.xp = np.concatenate(xs)
        self.fp = np.concatenate(zs)
        # Where each feature's stretch of knots starts (and the last one ends).
        self.starts = np.cumsum([0, *(len(x) for x in xs)], dtype=np.int64)
        self.scale = 1.0 / span
        self.shift = np.arange(d) * width - lo / span
        self.low = np.arange(d) * width - _REACH
        self.high = self.low + 2.0 * _REACH + 1.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The scores of ``x`` (any shape whose last axis is the features); NaN stays
        NaN. What ``np.interp(np.clip(x * scale + shift, low, high), xp, fp)`` gives."""
        x = np.ascontiguousarray(x, dtype=float)
        z = np.empty_like(x)
        normal_scores(
            x,
            self.scale,
            self.shift,
            self.low,
            self.high,
            self.xp,
            self.fp,
            self.starts,
            z,
        )
        return z

    def scorer(self, wt: np.ndarray, sums: np.ndarray) -> RowScorer:
        """This map and the projection ``wt``, ``sums`` (as
        :meth:`ReconstructionDrift.project` passes them) in one Rust object that holds
        them: a batch's rows scored in one call, the same floats."""
        return RowScorer(
            self.scale.tolist(),
            self.shift.tolist(),
            self.low.tolist(),
            self.high.tolist(),
            self.xp.tolist(),
            self.fp.tolist(),
            self.starts.tolist(),
            wt.ravel().tolist(),
            sums.ravel().tolist(),
            _SUSPECT,
        )


def fit_reconstruction(
    rows: np.ndarray | Sequence[Sequence[float]],
    features: Sequence[str],
    *,
    variance: float = 0.9,
    normal_scores: bool = True,
) -> dict[str, Any]:
    """Fit the reconstruction reference on ``rows`` (NaN = missing; see the module).

    Returns plain data (JSON-able): ``features``; the fit half's ``mean``, ``sd``
    (1 for a constant feature), all ``d`` eigenvectors of its correlation matrix as
    ``components`` (rows, by decreasing ``eigenvalues``) of which the first ``k``
    are retained; the held-out errors' ``spe`` moments (``n``, ``mean``, ``var``,
    ``var_upper``, ``skew``, ``kurtosis``, ``h``, taken of errors clipped at
    ``cap``) and the outlier ``score``'s fits (chi-square ``c``, ``nu``; tail
    ``tail_u``, ``tail_p``, ``tail_sigma``, ``tail_xi``);
    ``explained`` (share of variance of the ``k`` components); ``rows`` and
    ``missing`` (imputed values) of the whole reference.

    With ``normal_scores`` (default) each feature is first mapped to normal scores
    through :data:`GRID` quantiles of the fit half (``marginals``: per feature
    ``quantiles`` and ``sd``; ``None`` without); ``mean``, ``sd`` and the rest are
    then of the mapped values.

    Raises ``ValueError`` with fewer than 2 features or too few rows (each half
    needs more rows than there are features, and at least 10).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=2000)
    >>> x = np.column_stack([a, a + 0.3 * rng.normal(size=2000), rng.normal(size=2000)])
    >>> ref = fit_reconstruction(x, ["a", "b", "c"])
    >>> ref["k"], round(ref["explained"], 2), ref["spe"]["n"]
    (2, 0.99, 1000)
    """
    names = [str(f) for f in features]
    x = np.array(rows, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"rows must be a matrix with {len(names)} columns; got shape {x.shape}")
    d = len(names)
    if d < 2:
        raise ValueError(f"multivariate drift needs at least 2 numeric features; got {d}")
    if len(set(names)) != d:
        raise ValueError(f"feature names must be distinct; got {names}")
    check_in_range("variance", variance, 0.0, 1.0)
    x[~np.isfinite(x)] = math.nan
    fit, held = x[0::2], x[1::2]
    if len(held) < max(10, d + 1):
        raise ValueError(
            f"a reference of {len(x)} rows is too small for {d} features: "
            f"need at least {2 * max(10, d + 1)}"
        )
    missing = int(np.isnan(x).sum())
    table = _marginal_table(fit) if normal_scores else None
    if table is not None:
        to_scores = _NormalScores(table)
        fit, held = to_scores(fit), to_scores(held)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no value: 0 below
        col_mean = np.nanmean(fit, axis=0)
    col_mean = np.where(np.isfinite(col_mean), col_mean, 0.0)
    fit = np.where(np.isnan(fit), col_mean, fit)
    col_mean, sd, lam, vec = _pca(fit)
    # Outliers among the fitting rows would inflate the sds and blur the correlations:
    # drop rows beyond the chi2_d quantile at TRIM_ALPHA once and fit again.
    fit_z = (fit - col_mean) / sd
    score = np.square(fit_z @ vec) @ _inverse_eigenvalues(lam)
    keep = score <= float(special.chdtri(d, TRIM_ALPHA))
    if not keep.all() and keep.sum() > 2 * d:
        col_mean, sd, lam, vec = _pca(fit[keep])
    share = np.cumsum(lam) / max(float(lam.sum()), _EPS)
    k = min(d - 1, max(1, int(np.searchsorted(share, variance - 1e-12)) + 1))
    comps = vec.T
    # A component's sign is arbitrary; fix it (largest loading positive) so that two
    # fits of the same data give the same numbers.
    flip = np.sign(comps[np.arange(d), np.abs(comps).argmax(axis=1)])
    comps = comps * flip[:, None]
    ref: dict[str, Any] = {
        "type": "reconstruction",
        "format": FORMAT,
        "features": names,
        "mean": col_mean.tolist(),
        "sd": sd.tolist(),
        "components": comps.tolist(),
        "eigenvalues": lam.tolist(),
        "k": k,
        "explained": float(share[k - 1]),
        "rows": len(x),
        "missing": missing,
        "marginals": table,
    }
    held_z = np.where(np.isnan(held), 0.0, (held - col_mean) / sd)
    spe, score = _spe_score(held_z, comps, k, _inverse_eigenvalues(lam))
    ref["spe"] = _spe_moments(spe)
    ref["score"] = _score_tail(score)
    return ref


def _pca(fit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd (1 for a constant column) and eigenvalues / eigenvectors (columns)
    of the correlation matrix of ``fit``, by decreasing eigenvalue."""
    col_mean = fit.mean(axis=0)
    sd = fit.std(axis=0, ddof=1)
    sd = np.where(sd > _EPS * (1.0 + np.abs(col_mean)), sd, 1.0)
    lam, vec = np.linalg.eigh(np.cov((fit - col_mean) / sd, rowvar=False))
    order = np.argsort(lam)[::-1]
    return col_mean, sd, np.clip(lam[order], 0.0, None), vec[:, order]


def _inverse_eigenvalues(lam: np.ndarray) -> np.ndarray:
    inv: np.ndarray = 1.0 / np.maximum(np.asarray(lam, dtype=float), EIGEN_FLOOR)
    return inv


def _spe_score(
    z: np.ndarray, comps: np.ndarray, k: int, inv_eig: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SPE and outlier score of standardised rows ``z`` (``comps``: all eigenvectors).

    The basis is orthonormal, so the squared residual after projecting on the first
    ``k`` components is the sum of the squared scores on the others.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit: inf
        t2 = np.square(z @ comps.T)
        spe: np.ndarray = t2[:, k:].sum(axis=1)
        score: np.ndarray = t2 @ inv_eig
    return spe, score


def window_critical(alpha: float, window: int, h: float) -> float:
    """Critical value of the standardised window mean of ``g * chi2_h`` errors.

    The mean of ``window`` such errors is ``(g / window) * chi2_(window h)``; this is
    its upper ``alpha`` quantile in standard units, ``(q - nu) / sqrt(2 nu)`` with
    ``nu = window * h``. It tends to the normal quantile as ``nu`` grows and is
    larger for a skewed (small ``nu``) mean.

    >>> round(window_critical(1e-6, 250, 2.0), 3), round(window_critical(1e-6, 10**7, 2.0), 3)
    (5.216, 4.756)
    """
    if not 0.0 < alpha < 1.0:
        raise SettingsError(f"'alpha' must be in (0, 1); got {alpha!r}")
    nu = window * h
    return (float(special.chdtri(nu, alpha)) - nu) / math.sqrt(2.0 * nu)


def _check_reference(ref: object) -> None:
    keys = ("features", "mean", "sd", "components", "eigenvalues", "k", "spe", "score")
    if (
        not isinstance(ref, dict)
        or ref.get("type") != "reconstruction"
        or any(k not in ref for k in keys)
    ):
        raise SettingsError(
            f"'reference' must be a fit_reconstruction() result; got {str(ref)[:80]!r}"
        )


class ReconstructionDrift(UnivariateDetector[Features, list[SignalChange]]):
    """Multivariate drift (signal ``multivariate``) and per-event outlier scores.

    Fed one event's features per :meth:`update` (a mapping; only the numeric
    ``features`` are read, a missing or non-numeric value is imputed with the
    reference mean and counted in :attr:`imputed`). Each update computes the event's
    SPE and outlier score (:attr:`last_score`, :attr:`last_outlier`); every
    ``step`` events the mean SPE of the last ``window`` is tested (module
    docstring). Edges as :class:`~detectors.hysteresis.DriftLatch`: ``"drift"`` on
    the first window over the threshold, ``"recovered"`` after ``window / step``
    consecutive checks below the :data:`~detectors.sensitivity.RECOVERY_ALPHA`
    threshold.

    **Reference.** A :func:`fit_reconstruction` dict, or ``None``: then the first
    ``reference_size`` events are the reference (scored 0, not tested), over
    ``features`` or, when that is ``None`` too, over the ``max_features`` numeric
    features most often present in them (a value is numeric when it is a finite
    int or float, not a bool). With fewer than two numeric features (or too few
    events for them, :func:`fit_reconstruction`) there is nothing multivariate to
    watch: the detector stays inert (:attr:`active` is ``False``, no changes,
    scores 0).

    **Memory.** The fitted reference (``d`` means and sds, ``d x d`` components,
    ``d x 101`` quantiles: about 25 KB pickled, 50 KB as JSON, at 20 features) and
    ``window / step`` block sums; while learning, ``reference_size`` rows of at most
    ``max_features`` values.

    Parameters
    ----------
    sensitivity
        Expected stationary events between false alerts *of this signal*.
    outlier_quantile
        ``escalation.outlier_quantile``: :attr:`last_outlier` when the event's score
        is beyond this quantile of the reference's fitted score distribution.
    reference
        A :func:`fit_reconstruction` result, or ``None`` to learn one.
    features
        Numeric feature names to learn over (``None``: found while learning).
    reference_size
        Events learned when ``reference`` is ``None``.
    variance
        Share of variance the retained components explain (learned reference).
    normal_scores
        Map each feature to normal scores before the PCA (learned reference; see
        :func:`fit_reconstruction`).
    max_features
        Features used at most when found while learning.
    window, step
        The test covers the last ``window`` events, every ``step`` events
        (``window`` a multiple of ``step``).
    signal
        Signal name put on changes (SPEC §5).

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> def event(rho):
    ...     a, b, c = rng.normal(size=3)
    ...     return {"a": a, "b": rho * a + math.sqrt(1 - rho * rho) * b, "c": c}
    >>> det = ReconstructionDrift(sensitivity=1e7, reference_size=2000)
    >>> for i in range(8000):  # the correlation of a and b flips at 4000
    ...     for change in det.update(event(0.8 if i < 4000 else -0.8)):
    ...         print(i, change.signal, change.state, round(change.statistic, 1))
    4124 multivariate drift 19.0
    >>> det.update({"a": 2.5, "b": 2.5, "c": 0.0}), det.last_outlier  # as a and b used to move
    ([], False)
    >>> det.update({"a": 2.5, "b": -2.5, "c": 0.0}), det.last_outlier  # against the reference
    ([], True)
    """

    _settings = (
        "sensitivity",
        "outlier_quantile",
        "reference",
        "features",
        "reference_size",
        "variance",
        "normal_scores",
        "max_features",
        "window",
        "step",
        "signal",
    )

    #: Set by an owner that learns many references in step (a
    #: :class:`~detectors.drift_monitor.DriftMonitor` sets it on its own): the event that
    #: completes the learned reference leaves it due (:attr:`fit_due`) instead of fitting
    #: it (~4-6 ms at 20 features), and the owner fits it when it says
    #: (:meth:`fit_learned`), so that the fit does not fall in the block where the
    #: model's per-feature references are learned (~3 ms). Meanwhile events are counted
    #: but neither learned from nor scored (the reference is the first
    #: ``reference_size`` events either way). Not a setting: not kept in snapshots (a
    #: restored detector has it off until its owner sets it again, and then fits a due
    #: reference at its next event).
    defer_fit = False

    def __init__(
        self,
        sensitivity: float = DEFAULT_SENSITIVITY,
        outlier_quantile: float = DEFAULT_OUTLIER_QUANTILE,
        reference: dict[str, Any] | None = None,
        features: list[str] | None = None,
        reference_size: int = 2000,
        variance: float = 0.9,
        normal_scores: bool = True,
        max_features: int = 100,
        window: int = 250,
        step: int = 125,
        signal: str = "multivariate",
    ) -> None:
        self.sensitivity = sensitivity
        self.outlier_quantile = outlier_quantile
        self.reference = reference
        self.features = features
        self.reference_size = reference_size
        self.variance = variance
        self.normal_scores = normal_scores
        self.max_features = max_features
        self.window = window
        self.step = step
        self.signal = signal
        check_positive("sensitivity", sensitivity)
        check_positive("reference_size", reference_size, integer=True)
        check_positive("max_features", max_features, integer=True)
        check_positive("window", window, integer=True)
        check_positive("step", step, integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        if not 0.5 <= check_in_range("outlier_quantile", outlier_quantile, 0.0, 1.0) < 1.0:
            raise SettingsError(f"'outlier_quantile' must be in [0.5, 1); got {outlier_quantile!r}")
        if not 0.0 < check_in_range("variance", variance, 0.0, 1.0) < 1.0:
            raise SettingsError(f"'variance' must be in (0, 1); got {variance!r}")
        if features is not None and (
            not isinstance(features, list)
            or len(features) < 2
            or not all(isinstance(f, str) for f in features)
            or len(set(features)) != len(features)
        ):
            raise SettingsError(f"'features' must be 2 or more distinct names; got {features!r}")
        if reference is not None:
            _check_reference(reference)
            if features is not None and features != reference["features"]:
                raise SettingsError(
                    f"'features' {features!r} differ from the reference's {reference['features']!r}"
                )
        if not isinstance(normal_scores, bool):
            raise SettingsError(f"'normal_scores' must be a bool; got {normal_scores!r}")
        if not isinstance(signal, str) or not signal:
            raise SettingsError(f"'signal' must be a non-empty string; got {signal!r}")
        # One test per signal, run every ``step`` events (module docstring).
        self.alpha_window = min(0.5, step / sensitivity)
        self._blocks = window // step
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"reference_size": 1000, "sensitivity": 1e6}
        yield {
            "reference_size": 300,
            "features": ["n0", "n1", "n2", "n3"],
            "window": 100,
            "step": 25,
            "variance": 0.6,
            "normal_scores": False,
            "outlier_quantile": 0.99,
        }

    # -- state ---------------------------------------------------------------
    def _reset(self) -> None:
        self._seen = 0
        self._imputed = 0
        self._names: list[str] | None = None if self.features is None else list(self.features)
        # While learning: each event's finite numeric values by name.
        self._learn: list[dict[str, float]] | None = [] if self.reference is None else None
        self._ref: dict[str, Any] | None = None
        # The map and projection in one (with the normal-score map): score_rows
        self._scorer: RowScorer | None = None
        self._inert = False
        self._block_sum = 0.0
        self._block_n = 0
        self._ring = [0.0] * self._blocks
        self._pos = 0
        self._filled = 0
        self._z = 0.0
        self._mean_w = 0.0
        self._last_score = 0.0
        self._last_outlier = False
        self._latch = DriftLatch(self._blocks)
        if self.reference is not None:
            self._use_reference(self.reference)

    def _use_reference(self, ref: dict[str, Any]) -> None:
        self._ref = ref
        self._names = list(ref["features"])
        self._mean = np.asarray(ref["mean"], dtype=float)
        self._inv_sd = 1.0 / np.asarray(ref["sd"], dtype=float)
        self._comps = np.asarray(ref["components"], dtype=float)
        self._k = int(ref["k"])
        self._inv_eig = _inverse_eigenvalues(ref["eigenvalues"])
        spe, score = ref["spe"], ref["score"]
        self._spe_cap = float(spe["cap"])
        # The reference mean and variance at their one-sided 95 % upper bounds: the
        # false-alarm rate given this reference is then at most alpha_window for 95 %
        # of references (module docstring).
        self._spe_mean = float(spe["mean"]) + 1.64 * math.sqrt(float(spe["var"]) / float(spe["n"]))
        self._scale = math.sqrt(float(spe["var_upper"]) / self.window)
        self.threshold = window_critical(self.alpha_window, self.window, float(spe["h"]))
        self.recovery_threshold = window_critical(RECOVERY_ALPHA, self.window, float(spe["h"]))
        # Scores from centred values: t = W (x - mean), W = components / sd; with the
        # normal-score map the mean is subtracted inside its table.
        self._w = self._comps * self._inv_sd
        self._wt = np.ascontiguousarray(self._w.T)
        marginals = ref.get("marginals")
        self._scores = None if marginals is None else _NormalScores(marginals, self._mean)
        d = len(self._names)
        # Row 0 sums the discarded scores, row 1 divides every score by its eigenvalue.
        self._sums = np.vstack([np.arange(d) >= self._k, self._inv_eig]).astype(float)
        to_z = self._scores
        self._scorer = None if to_z is None else to_z.scorer(self._wt, self._sums)
        self.outlier_threshold = outlier_threshold(score, self.outlier_quantile)

    def _state(self) -> dict[str, Any]:
        return {
            "seen": self._seen,
            "imputed": self._imputed,
            "names": self._names,
            "learn": None if self._learn is None else [dict(r) for r in self._learn],
            "learned": self._ref if self.reference is None else None,
            "inert": self._inert,
            "block": [self._block_sum, self._block_n],
            "ring": list(self._ring),
            "pos": self._pos,
            "filled": self._filled,
            "z": self._z,
            "mean_w": self._mean_w,
            "last": [self._last_score, self._last_outlier],
            "latch": self._latch.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._seen = int(state["seen"])
        self._imputed = int(state["imputed"])
        self._names = None if state["names"] is None else [str(n) for n in state["names"]]
        learn = state["learn"]
        self._learn = (
            None if learn is None else [{str(k): float(v) for k, v in r.items()} for r in learn]
        )
        if state["learned"] is not None:
            self._use_reference(state["learned"])
        self._inert = bool(state["inert"])
        self._block_sum = float(state["block"][0])
        self._block_n = int(state["block"][1])
        self._ring = [float(v) for v in state["ring"]]
        self._pos = int(state["pos"])
        self._filled = int(state["filled"])
        self._z = float(state["z"])
        self._mean_w = float(state["mean_w"])
        self._last_score = float(state["last"][0])
        self._last_outlier = bool(state["last"][1])
        self._latch.load(state["latch"])

    # -- results -------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether events are scored and tested (a reference is in use)."""
        return self._ref is not None and not self._inert

    @property
    def feature_names(self) -> list[str]:
        """The features scored, in the order of :meth:`update_rows` columns (empty
        while learning them)."""
        return list(self._names or [])

    @property
    def drifting(self) -> bool:
        """Whether the signal is in drift (between a ``drift`` and a ``recovered`` edge)."""
        return self._latch.drifting

    @property
    def events_seen(self) -> int:
        return self._seen

    @property
    def imputed(self) -> int:
        """Feature values imputed (missing, null, non-numeric, not finite) since start."""
        return self._imputed

    @property
    def statistic(self) -> float:
        """The last window's standardised mean SPE ``Z`` (0 before the first window)."""
        return self._z

    @property
    def last_score(self) -> float:
        """Outlier score (Mahalanobis distance, module docstring) of the last event
        (0 while not active)."""
        return self._last_score

    @property
    def last_outlier(self) -> bool:
        """Whether the last event's score is beyond the ``outlier_quantile`` threshold."""
        return self._last_outlier

    @property
    def learned_reference(self) -> dict[str, Any] | None:
        """The reference in use (given or learned), ``None`` while learning or inert."""
        return self._ref

    def states(self) -> list[SignalState]:
        """The current reading of the ``multivariate`` signal (empty while not active)."""
        if not self.active:
            return []
        return [SignalState(self.signal, "spe", self._z, self.threshold, self.drifting)]

    # -- scoring -------------------------------------------------------------
    @staticmethod
    def _check_mapping(features: object) -> None:
        if not isinstance(features, Mapping):
            raise InvalidObservationError(
                f"features must be a mapping of name to value; got {type(features).__name__}"
            )

    def score_many(self, events: Sequence[Features]) -> np.ndarray:
        """Outlier scores of ``events`` (no state change; zeros while not active)."""
        for e in events:
            self._check_mapping(e)
        if not self.active or self._names is None:
            return np.zeros(len(events))
        x = self._centred(rows_of(events, self._names))
        t = np.where(np.isnan(x), 0.0, x) @ self._wt
        scores: np.ndarray = np.square(t) @ self._inv_eig
        return scores

    def _centred(self, x: np.ndarray) -> np.ndarray:
        """Raw values minus the reference mean (after the normal-score map, if any);
        NaN stays NaN."""
        if self._scores is not None:
            return self._scores(x)
        out: np.ndarray = x - self._mean
        return out

    def contributions(self, features: Features, top: int = 3) -> list[tuple[str, float]]:
        """The features that make ``features``' outlier score, largest first, each with
        its share of the score (shares sum to 1 over all features, and may be negative
        for a feature that pulls the event back towards the reference): the score is
        ``c' W' L^-1 W c`` for the centred event ``c``, so feature ``j`` contributes
        ``c_j (W' L^-1 W c)_j``. For an escalation's detail; empty while not active."""
        self._check_mapping(features)
        if not self.active or self._names is None:
            return []
        x = self._centred(rows_of([features], self._names))[0]
        x = np.where(np.isnan(x), 0.0, x)
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit
            t = self._w @ x
            parts = x * (self._wt @ (t * self._inv_eig))
            total = float(parts.sum())
        if not total > 0.0 or not math.isfinite(total):
            return []
        order = np.argsort(-parts)[:top]
        return [(self._names[j], float(parts[j]) / total) for j in order.tolist()]

    def score(self, features: Features) -> float:
        """Outlier score of one event (no state change; 0 while not active)."""
        return float(self.score_many([features])[0])

    def is_outlier(self, score: float) -> bool:
        """Whether ``score`` is beyond the reference's ``outlier_quantile``."""
        return self.active and score > self.outlier_threshold

    # -- updates -------------------------------------------------------------
    def update(self, features: Features) -> list[SignalChange]:
        """Take one event; set :attr:`last_score` / :attr:`last_outlier`; return edges."""
        if self._learn is not None:
            self._check_mapping(features)
            self._seen += 1
            if not self.fit_due:
                return self._learn_from(self._learn, features)
            self._last_score, self._last_outlier = 0.0, False  # counted, not scored
            if not self.defer_fit:  # restored due, its owner no longer defers
                self.fit_learned()
            return []
        if type(features) is not dict:
            self._check_mapping(features)
        if self._inert or self._names is None:
            self._seen += 1
            return []
        get = features.get
        x = np.array([v if type(v) is float else _number(v) for v in map(get, self._names)])
        spes, scores = self.project(x[None, :])
        spe, score = float(spes[0]), float(scores[0])
        if not score < _SUSPECT:  # a missing value (NaN propagates) or an infinite one
            c = self._centred(np.where(np.isfinite(x), x, math.nan))
            t = self._w.dot(self._impute(c))
            with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit
                spe, score = self._sums.dot(t * t).tolist()
        return self._take(spe, score)

    def project(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The SPE and the outlier score of each row of raw values (columns in the
        order of :attr:`feature_names`), without any state change: what :meth:`update`
        computes for one event, row by row bit for bit whatever the number of rows
        (a loop in Rust, ``detectors._native.project``, that sums each row's products in
        index order; not BLAS, which blocks a batch differently from one row and rounds
        differently). A row with a missing
        or non-finite value gives a non-finite or huge score (:meth:`update` imputes
        it). Only while :attr:`active`."""
        if not self.active:
            raise InvalidObservationError("project needs an active detector (a reference)")
        to_z = self._scores
        if to_z is not None:  # mapped in Rust, a float array: no warning to silence
            c = to_z(rows)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, not usable
                c = np.ascontiguousarray(self._centred(rows), dtype=float)
        spe, score = np.empty(len(c)), np.empty(len(c))
        _project(c, self._wt, self._sums, spe, score)
        return spe, score

    def score_rows(
        self, matrix: np.ndarray, columns: list[int] | None = None
    ) -> list[tuple[float, float] | None] | None:
        """:meth:`project` of ``matrix``'s columns ``columns`` (all, in order, for
        ``None``; ``matrix`` a C-contiguous float matrix), each row's ``(spe, score)``
        where :meth:`usable`, else ``None``: one call in Rust, no array made, the same
        floats. ``None`` altogether without the normal-score map (``project`` then).
        Only while :attr:`active`.

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> det = ReconstructionDrift(features=["a", "b"], reference_size=200, window=20, step=10)
        >>> for row in rng.normal(size=(200, 2)):
        ...     _ = det.update({"a": float(row[0]), "b": float(row[1])})
        >>> m = np.array([[0.1, 0.2], [np.nan, 0.0]])
        >>> got = det.score_rows(m)
        >>> spe, score = det.project(m)
        >>> got[0] == (spe[0], score[0]), got[1]
        (True, None)
        """
        if not self.active:
            raise InvalidObservationError("score_rows needs an active detector (a reference)")
        scorer = self._scorer
        return None if scorer is None else scorer.score(matrix, columns)

    def _take(self, spe: float, score: float) -> list[SignalChange]:
        """Count one active event already scored (:meth:`update`, or a batch scored by
        :meth:`project`); return the window test's edges when a block ends."""
        self._seen += 1
        self._last_score = score
        self._last_outlier = score > self.outlier_threshold
        self._block_sum += spe if spe < self._spe_cap else self._spe_cap
        self._block_n += 1
        if self._block_n < self.step:
            return []
        return self._check()

    @staticmethod
    def usable(score: float) -> bool:
        """Whether :meth:`project`'s score for a row stands as it is (no value to impute)."""
        return score < _SUSPECT

    @staticmethod
    def all_usable(scores: list[float]) -> bool:
        """Whether every one of :meth:`project`'s scores stands as it is (NaN does not): a
        loop in C, where ``np.max`` of a few rows' scores cost more than the rows.

        >>> usable = ReconstructionDrift.all_usable
        >>> usable([0.5, 3.0]), usable([0.5, math.nan]), usable([math.inf]), usable([])
        (True, False, False, True)
        """
        return all(map(_SUSPECT.__gt__, scores))

    def update_rows(self, rows: np.ndarray) -> tuple[list[SignalChange], np.ndarray]:
        """Take a batch of events as a matrix (one row each, columns in the order of
        :attr:`feature_names`, NaN for missing); return the edges and each row's
        outlier score (the same as :meth:`update` event by event, up to rounding).
        The vectorised path: about a microsecond per event instead of several.
        Only once the reference is in use (:attr:`active`)."""
        if not self.active or self._names is None:
            raise InvalidObservationError("update_rows needs an active detector (a reference)")
        x = np.asarray(rows, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self._names):
            raise InvalidObservationError(
                f"rows must be a matrix with {len(self._names)} columns; got shape {x.shape}"
            )
        x = self._centred(np.where(np.isfinite(x), x, math.nan))
        if not np.isfinite(x).all():
            x = self._impute(x)
        with np.errstate(over="ignore", invalid="ignore"):  # values near the float limit
            t = x @ self._wt
            t2 = t * t
            spe = np.minimum(t2[:, self._k :].sum(axis=1), self._spe_cap)
            scores: np.ndarray = t2 @ self._inv_eig
        changes: list[SignalChange] = []
        base = self._seen
        for i, e in enumerate(spe.tolist()):
            self._block_sum += e
            self._block_n += 1
            if self._block_n == self.step:
                self._seen = base + i + 1
                changes.extend(self._check())
        self._seen = base + len(x)
        if len(x):
            self._last_score = float(scores[-1])
            self._last_outlier = self._last_score > self.outlier_threshold
        return changes, scores

    def _impute(self, x: np.ndarray) -> np.ndarray:
        """Centred ``x`` with each non-finite value replaced by the reference mean
        (``0``; counted)."""
        bad = ~np.isfinite(x)
        self._imputed += int(bad.sum())
        return np.where(bad, 0.0, x)

    def _learn_from(self, learn: list[dict[str, float]], features: Features) -> list[SignalChange]:
        row: dict[str, float] = {}
        names = self.features if self.features is not None else features
        for name in names:
            v = _number(features.get(name))
            if isinstance(name, str) and math.isfinite(v):
                row[name] = v
                if len(row) == self.max_features:
                    break
        learn.append(row)
        self._last_score, self._last_outlier = 0.0, False
        if len(learn) < self.reference_size or self.defer_fit:
            return []
        self.fit_learned()
        return []

    @property
    def fit_due(self) -> bool:
        """Whether the learned reference is complete and waits for :meth:`fit_learned`
        (:attr:`defer_fit`)."""
        return self._learn is not None and len(self._learn) >= self.reference_size

    def fit_learned(self) -> bool:
        """Fit the reference learned from the first ``reference_size`` events if it is
        due (:attr:`fit_due`); whether it was. Fewer than two numeric features among
        them leave the detector inert (nothing multivariate to watch)."""
        if not self.fit_due:
            return False
        learn: list[dict[str, float]] = self._learn  # type: ignore[assignment]  # fit_due
        self._learn = None
        if self.features is None:
            # The numeric features most often present while learning (ties by name).
            counts: dict[str, int] = {}
            for r in learn:
                for name in r:
                    counts[name] = counts.get(name, 0) + 1
            ranked = sorted(counts, key=lambda n: (-counts[n], n))
            self._names = sorted(ranked[: self.max_features])
        names_used = self._names or []
        try:
            ref = fit_reconstruction(
                rows_of(learn, names_used),
                names_used,
                variance=self.variance,
                normal_scores=self.normal_scores,
            )
        except ValueError:
            # Fewer than two numeric features: nothing multivariate to watch.
            self._inert = True
            return True
        self._use_reference(ref)
        return True

    def _check(self) -> list[SignalChange]:
        self._ring[self._pos] = self._block_sum
        self._pos = (self._pos + 1) % self._blocks
        self._block_sum, self._block_n = 0.0, 0
        if self._filled < self._blocks:
            self._filled += 1
            if self._filled < self._blocks:
                return []
        # Re-summed from the blocks each time, so a restored detector matches exactly.
        self._mean_w = math.fsum(self._ring) / self.window
        self._z = (self._mean_w - self._spe_mean) / self._scale
        fired = self._z > self.threshold
        edge = self._latch.observe(fired, self._z < self.recovery_threshold)
        if edge is None:
            return []
        return [
            SignalChange(
                self.signal,
                "spe",
                edge,
                self._seen,
                statistic=self._z,
                threshold=self.threshold if edge == "drift" else self.recovery_threshold,
                reference=round(self._spe_mean, 4),
                current=round(self._mean_w, 4),
            )
        ]
