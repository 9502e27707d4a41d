"""The interval-coverage alert: false alarms and delay; prints ONE JSON object.

:class:`~detectors.regression_quality.RegressionQualityMonitor` with its defaults (window
1,000 labels, nominal level 0.9, tolerance 0.05, so the floor is 0.85; 99 % upper bound;
at least 100 labels) is fed labelled predictions whose truth falls inside the interval
with probability ``p`` (independent draws: the assumption the alert's guarantee rests
on). Scenarios:

* ``calibrated``: ``p = 0.9`` for ``labels`` labels per run: every ``drift`` edge is a
  false alarm (``false_alerts_per_million`` labels, over all runs).
* ``calibrated_weighted``: the same with review-style weights: 80 % of the labels from
  escalations (weight 1), 20 % from a 2 % audit (weight 50); coverage is the same in both
  groups, so the weighted coverage is still 0.9.
* ``at_floor``: ``p = 0.85``, the worst case the guarantee covers: the share of checks
  (one per label, once ``min_labelled`` are in) whose upper bound is below the floor
  (``check_exceedance``, to compare with ``1 - confidence`` = 0.01), and alerts per
  million labels (consecutive checks of overlapping windows are correlated: this is the
  realised rate of entering drift, not a per-check probability).
* ``first_window``: ``p = 0.9`` over the first window of many fresh monitors, where the
  checks see few labels: false alerts per start.
* ``drop``: ``p = 0.9`` for a full window, then ``p = 0.8``: labels from the change to
  the alert (median, 90th percentile, misses within ``3 * window``); ``drop_window_300``
  the same with ``regression.window: 300`` (faster, noisier).

``python benchmarks/regression_quality.py [--quick] [--seed N]``
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.prediction import RegressionPrediction
from detectors.regression_quality import RegressionQualityMonitor

PRED = RegressionPrediction(0.0, (-1.0, 1.0))
INSIDE, OUTSIDE = 0.5, 5.0


def _feed(
    mon: RegressionQualityMonitor, rng: random.Random, p: float, n: int, weighted: bool
) -> tuple[int, int, int]:
    """``n`` labels with coverage ``p``: (drift edges, checks, checks with the upper bound
    below the floor)."""
    drifts = checks = below = 0
    floor = mon.floor
    update = mon.update
    for _ in range(n):
        w = 50.0 if weighted and rng.random() < 0.2 else 1.0
        for change in update(PRED, INSIDE if rng.random() < p else OUTSIDE, w):
            if change.state == "drift":
                drifts += 1
        if mon.coverage_count >= mon.min_labelled:
            checks += 1
            if mon.coverage_upper < floor:
                below += 1
    return drifts, checks, below


def poisson_upper(k: int, level: float = 0.95) -> float:
    """Exact one-sided upper confidence bound on a Poisson mean after ``k`` events: the
    mean whose P(X <= k) is ``1 - level`` (bisection)."""

    def cdf(lam: float) -> float:
        term = total = math.exp(-lam)
        for i in range(1, k + 1):
            term *= lam / i
            total += term
        return total

    lo, hi = 0.0, k + 10.0 + 10.0 * math.sqrt(k + 1)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > 1.0 - level else (lo, mid)
    return hi


def stationary(runs: int, labels: int, p: float, weighted: bool, seed: int) -> dict[str, Any]:
    drifts = checks = below = 0
    for r in range(runs):
        rng = random.Random(seed * 1000 + r)
        mon = RegressionQualityMonitor()
        d, c, b = _feed(mon, rng, p, labels, weighted)
        drifts, checks, below = drifts + d, checks + c, below + b
    total = runs * labels
    upper = poisson_upper(drifts)
    return {
        "coverage": p,
        "weighted": weighted,
        "runs": runs,
        "labels": total,
        "alerts": drifts,
        "false_alerts_per_million": drifts / total * 1e6,
        "false_alerts_per_million_upper95": upper / total * 1e6,
        "check_exceedance": below / checks if checks else None,
    }


def drop(runs: int, before: float, after: float, seed: int, window: int = 1000) -> dict[str, Any]:
    delays: list[int] = []
    early = misses = 0
    for r in range(runs):
        rng = random.Random(seed * 7919 + r)
        mon = RegressionQualityMonitor(window=window)
        limit = 3 * mon.window
        d, _, _ = _feed(mon, rng, before, mon.window, weighted=False)
        early += d
        for i in range(1, limit + 1):
            changes = mon.update(PRED, INSIDE if rng.random() < after else OUTSIDE)
            if any(c.state == "drift" for c in changes):
                delays.append(i)
                break
        else:
            misses += 1
    delays.sort()
    return {
        "window": window,
        "coverage_before": before,
        "coverage_after": after,
        "runs": runs,
        "alerts_before_the_change": early,
        "median_delay_labels": delays[len(delays) // 2] if delays else None,
        "p90_delay_labels": delays[int(0.9 * (len(delays) - 1))] if delays else None,
        "max_delay_labels": delays[-1] if delays else None,
        "missed_within_3_windows": misses,
    }


def first_window(runs: int, seed: int) -> dict[str, Any]:
    """False alerts of a calibrated model (coverage 0.9) over its first window, where the
    checks see few labels, summed over ``runs`` fresh monitors."""
    alerts = 0
    for r in range(runs):
        rng = random.Random(seed * 104729 + r)
        mon = RegressionQualityMonitor()
        alerts += _feed(mon, rng, 0.9, mon.window, weighted=False)[0]
    return {
        "coverage": 0.9,
        "starts": runs,
        "labels_each": RegressionQualityMonitor().window,
        "alerts": alerts,
        "alerts_per_start_upper95": poisson_upper(alerts) / runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs, labels, drop_runs, starts = (
        (4, 25_000, 20, 50) if args.quick else (20, 250_000, 200, 3000)
    )
    started = time.perf_counter()
    defaults = RegressionQualityMonitor()
    out = {
        "benchmark": "regression_quality",
        "quick": args.quick,
        "settings": defaults.settings() | {"floor": defaults.floor},
        "calibrated": stationary(runs, labels, 0.9, False, args.seed),
        "calibrated_weighted": stationary(runs, labels, 0.9, True, args.seed + 1),
        "at_floor": stationary(runs, labels, defaults.floor, False, args.seed + 2),
        "first_window": first_window(starts, args.seed + 5),
        "drop": drop(drop_runs, 0.9, 0.8, args.seed + 3),
        "drop_window_300": drop(drop_runs, 0.9, 0.8, args.seed + 4, window=300),
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
