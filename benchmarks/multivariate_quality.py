"""Multivariate drift and outlier quality of ``ReconstructionDrift``; prints ONE JSON object.

Each synthetic model has 20 numeric features drawn through a Gaussian copula: a
random correlation structure (4 latent factors) over features 2-19, and a pair
``x0, x1`` correlated +0.8, independent of the rest. Two marginal families:

* ``gaussian``: every feature normal, with its own mean and scale;
* ``mixed``: the marginals of ``benchmarks/detector_quality.py`` (normal,
  lognormal, uniform, Poisson by ``j % 4``), ``x0`` and ``x1`` kept normal.

Each stream gets its own reference of ``REFERENCE_EVENTS`` events
(:func:`~detectors.reconstruction.fit_reconstruction`) and a detector with the
worker's window (250) and step (125), at the per-signal sensitivity a model with
these 20 numeric features would hand it: ``1,000,000 x 43`` signals (``2 F + 2``
per-feature and model signals plus ``multivariate``, :mod:`detectors.sensitivity`).

* stationary: drift alerts per million events (every one false), with a 95 %
  Poisson upper bound; the window test's calibration: how often a check's
  statistic exceeds the critical value at ``alpha`` = 1e-2, 1e-3, 1e-4 (should be
  about ``alpha``); outlier flag rate vs ``1 - q``.
* correlation flip: ``x1 -> -x1`` (its correlation with ``x0`` goes 0.8 -> -0.8,
  every marginal unchanged) at a random point; delay = events from the flip to the
  ``multivariate`` drift alert. Meanwhile vigil's per-feature drift
  (``NumericDrift``, KS + ADWIN, at the same per-signal sensitivity) runs on all
  20 features: its alerts are counted.
* outliers: 0.1 % of stationary events moved 6 standard deviations in a random
  direction (a random unit vector in standardised feature space, times 6):
  precision and recall of the outlier flag at q = 0.99 to 0.99999 (the default); recall of
  absurd events (20 sd in a random direction; one feature at +10 sd).
* cost: ``update`` of one event (a dict) and ``update_rows`` per event, best of 3,
  with and without the normal-scores map (``fit_reconstruction(normal_scores=)``).

``python benchmarks/multivariate_quality.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.numeric_drift import NumericDrift
from detectors.reconstruction import ReconstructionDrift, fit_reconstruction, window_critical
from detectors.reference import numeric_reference

D = 20
NAMES = [f"x{j}" for j in range(D)]
RHO = 0.8
REFERENCE_EVENTS = 5_000
MODEL_SENSITIVITY = 1_000_000.0
N_SIGNALS = 2 * D + 2 + 1
SIGNAL_SENSITIVITY = MODEL_SENSITIVITY * N_SIGNALS
WINDOW, STEP = 250, 125
MAX_DELAY = 5_000
OUTLIER_RATE = 0.001
QUANTILES = (0.99, 0.999, 0.9999, 0.99999)
ALPHAS = (1e-2, 1e-3, 1e-4)


class Model:
    """A random correlation structure and marginals; ``sample`` draws rows."""

    def __init__(self, seed: int, marginals: str) -> None:
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(D - 2, 4)) * rng.uniform(0.3, 1.2, (D - 2, 1))
        cov = a @ a.T + np.diag(rng.uniform(0.2, 1.0, D - 2))
        sd = np.sqrt(np.diag(cov))
        corr = np.eye(D)
        corr[2:, 2:] = cov / np.outer(sd, sd)
        corr[0, 1] = corr[1, 0] = RHO
        self.chol = np.linalg.cholesky(corr)
        self.loc = rng.uniform(-50, 50, D)
        self.scale = rng.lognormal(0.0, 1.0, D)
        self.marginals = marginals

    def sample(self, rng: np.random.Generator, n: int, *, flip: bool = False) -> np.ndarray:
        z = rng.normal(size=(n, D)) @ self.chol.T
        if flip:
            z[:, 1] = -z[:, 1]  # corr(x0, x1): +0.8 -> -0.8; x1's marginal is symmetric
        x = self.loc + self.scale * z
        if self.marginals == "mixed":
            u = special.ndtr(z)
            for j in range(2, D):
                kind = j % 4
                if kind == 1:
                    x[:, j] = np.exp(0.5 * z[:, j])
                elif kind == 2:
                    x[:, j] = 6.0 * u[:, j] - 3.0
                elif kind == 3:
                    x[:, j] = stats.poisson.ppf(u[:, j], 4.0)
        return x


def _poisson_upper(k: int) -> float:
    return float(stats.chi2.ppf(0.95, 2 * (k + 1)) / 2)


def detector(ref: dict[str, Any], q: float = 0.999) -> ReconstructionDrift:
    return ReconstructionDrift(
        sensitivity=SIGNAL_SENSITIVITY,
        outlier_quantile=q,
        reference=ref,
        window=WINDOW,
        step=STEP,
    )


def stationary(marginals: str, streams: int, events: int) -> dict[str, Any]:
    alerts = 0
    flags = dict.fromkeys(QUANTILES, 0)
    exceed = dict.fromkeys(ALPHAS, 0)
    checks = 0
    ks: list[int] = []
    chunk = 100 * STEP
    for s in range(streams):
        model = Model(s, marginals)
        rng = np.random.default_rng(50_000 + s)
        ref = fit_reconstruction(model.sample(rng, REFERENCE_EVENTS), NAMES)
        ks.append(ref["k"])
        det = detector(ref)
        crit = {a: window_critical(a, WINDOW, ref["spe"]["h"]) for a in ALPHAS}
        thresholds = {q: detector(ref, q).outlier_threshold for q in QUANTILES}
        done = 0
        while done < events:
            x = model.sample(rng, min(chunk, events - done))
            for i in range(0, len(x), STEP):
                changes, scores = det.update_rows(x[i : i + STEP])
                alerts += sum(c.state == "drift" for c in changes)
                if det.events_seen >= WINDOW:
                    checks += 1
                    for a in ALPHAS:
                        exceed[a] += det.statistic > crit[a]
                for q in QUANTILES:
                    flags[q] += int((scores > thresholds[q]).sum())
            done += len(x)
    total = streams * events
    return {
        "events": total,
        "streams": streams,
        "components_kept": ks,
        "false_alerts": alerts,
        "false_alerts_per_million": alerts / total * 1e6,
        "false_alerts_per_million_upper95": round(_poisson_upper(alerts) / total * 1e6, 4),
        "budget_per_million_this_signal": round(1e6 / SIGNAL_SENSITIVITY, 5),
        "window_checks": checks,
        "window_exceedance_rate": {str(a): round(exceed[a] / checks, 6) for a in ALPHAS},
        "outlier_flag_rate": {str(q): round(flags[q] / total, 6) for q in QUANTILES},
    }


def flip_runs(marginals: str, runs: int) -> dict[str, Any]:
    delays: list[int | None] = []
    early = 0
    univariate: list[dict[str, Any]] = []
    for r in range(runs):
        model = Model(1_000 + r, marginals)
        rng = np.random.default_rng(2_000 + r)
        ref_rows = model.sample(rng, REFERENCE_EVENTS)
        det = detector(fit_reconstruction(ref_rows, NAMES))
        per_feature = [
            NumericDrift(
                sensitivity=SIGNAL_SENSITIVITY,
                reference=numeric_reference(ref_rows[:, j]),
                window=WINDOW,
                step=STEP,
                signal=f"feature:{NAMES[j]}",
            )
            for j in range(D)
        ]
        warm = int(rng.integers(1_000, 3_000))
        x = np.vstack([model.sample(rng, warm), model.sample(rng, MAX_DELAY, flip=True)])
        changes, _ = det.update_rows(x)
        drift = [c.events_seen for c in changes if c.state == "drift"]
        early += sum(at <= warm for at in drift)
        late = [at - warm for at in drift if at > warm]
        delays.append(late[0] if late else None)
        for j, nd in enumerate(per_feature):
            for c in nd.update_many(x[:, j].tolist()):
                if c.state == "drift":
                    univariate.append({"run": r, "signal": c.signal, "at": c.events_seen - warm})
    found = [d for d in delays if d is not None]
    vals = sorted(MAX_DELAY if d is None else d for d in delays)
    return {
        "runs": runs,
        "detected": len(found),
        "median_delay": float(statistics.median(vals)),
        "p90_delay": float(vals[min(len(vals) - 1, math.ceil(0.9 * len(vals)) - 1)]),
        "max_delay": max(vals),
        "false_alerts_before_flip": early,
        "univariate_alerts": len(univariate),
        "univariate_alert_examples": univariate[:5],
    }


def _random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    u = rng.normal(size=(n, D))
    out: np.ndarray = u / np.linalg.norm(u, axis=1, keepdims=True)
    return out


def outliers(marginals: str, streams: int, events: int) -> dict[str, Any]:
    tp = dict.fromkeys(QUANTILES, 0)
    fp = dict.fromkeys(QUANTILES, 0)
    injected = 0
    absurd = {"20sd_random_direction": [0, 0], "one_feature_10sd": [0, 0]}
    for s in range(streams):
        model = Model(3_000 + s, marginals)
        rng = np.random.default_rng(4_000 + s)
        ref_rows = model.sample(rng, REFERENCE_EVENTS)
        ref = fit_reconstruction(ref_rows, NAMES)
        sd = ref_rows.std(axis=0)
        x = model.sample(rng, events)
        hit = rng.random(events) < OUTLIER_RATE
        n_hit = int(hit.sum())
        injected += n_hit
        x[hit] += 6.0 * sd * _random_directions(rng, n_hit)
        scores = detector(ref).update_rows(x)[1]
        for q in QUANTILES:
            flagged = scores > detector(ref, q).outlier_threshold
            tp[q] += int((flagged & hit).sum())
            fp[q] += int((flagged & ~hit).sum())
        base = model.sample(rng, 1_000)
        far = base + 20.0 * sd * _random_directions(rng, 1_000)
        one = base.copy()
        cols = rng.integers(0, D, 1_000)
        one[np.arange(1_000), cols] += 10.0 * sd[cols]
        for name, rows in (("20sd_random_direction", far), ("one_feature_10sd", one)):
            s_abs = detector(ref).update_rows(rows)[1]
            absurd[name][0] += int((s_abs > detector(ref).outlier_threshold).sum())
            absurd[name][1] += len(rows)
    return {
        "events": streams * events,
        "injected": injected,
        "precision": {str(q): round(tp[q] / max(1, tp[q] + fp[q]), 4) for q in QUANTILES},
        "recall": {str(q): round(tp[q] / max(1, injected), 4) for q in QUANTILES},
        "absurd_recall_at_0.999": {k: round(v[0] / v[1], 4) for k, v in absurd.items()},
    }


def cost(n: int, *, normal_scores: bool = True) -> dict[str, float]:
    model = Model(99, "gaussian")
    rng = np.random.default_rng(99)
    ref_rows = model.sample(rng, REFERENCE_EVENTS)
    t0 = time.perf_counter()
    ref = fit_reconstruction(ref_rows, NAMES, normal_scores=normal_scores)
    fit_ms = (time.perf_counter() - t0) * 1e3
    x = model.sample(rng, n)
    events = [dict(zip(NAMES, row, strict=True)) for row in x.tolist()]
    best = math.inf
    for _ in range(3):  # best of 3: the machine is shared
        det = detector(ref)
        t0 = time.perf_counter()
        for e in events:
            det.update(e)
        best = min(best, (time.perf_counter() - t0) / n)
    rows = math.inf
    for _ in range(3):
        det = detector(ref)
        t0 = time.perf_counter()
        for i in range(0, n, 1_000):
            det.update_rows(x[i : i + 1_000])
        rows = min(rows, (time.perf_counter() - t0) / n)
    return {
        "us_per_event_update": round(best * 1e6, 3),
        "us_per_event_update_rows_batch_1000": round(rows * 1e6, 3),
        "fit_ms_reference_5000x20": round(fit_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    args = parser.parse_args()
    if args.quick:
        streams, events, runs, out_events, cost_n = 2, 500_000, 8, 200_000, 20_000
    else:
        streams, events, runs, out_events, cost_n = 4, 1_000_000, 20, 500_000, 50_000
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "multivariate_quality",
        "mode": "quick" if args.quick else "full",
        "features": D,
        "reference_events": REFERENCE_EVENTS,
        "window": WINDOW,
        "step": STEP,
        "signal_sensitivity": SIGNAL_SENSITIVITY,
        "outlier_rate_injected": OUTLIER_RATE,
    }
    for marginals in ("gaussian", "mixed"):
        result[marginals] = {
            "stationary": stationary(marginals, streams, events),
            "correlation_flip": flip_runs(marginals, runs),
            "outliers": outliers(marginals, streams, out_events),
        }
    result["cost"] = cost(cost_n)
    result["cost_without_normal_scores"] = cost(cost_n, normal_scores=False)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
