"""CBPE accuracy per window, with and without the held-out check; prints ONE JSON object.

A model's confidences on labelled reference data (``0.5 + 0.5 * Beta(4, 1.5)``) and on
unlabelled production data whose inputs moved to where the model is less sure
(``0.5 + 0.5 * Beta(2, 2)``: covariate shift, ``P(correct | confidence)`` unchanged),
as in ``escalation_quality.py``'s CBPE scenario. Models (``P(correct | c)``):

* ``calibrated``: ``c``. The map has nothing to correct: applying it only adds noise.
* ``miscalibrated``: ``c ** 1.5`` (overconfident; ``escalation_quality.py``'s
  miscalibrated model): the map must be learned from the labels.
* ``slightly_miscalibrated``: ``c - 0.03``: a correction about as large as the map's
  own noise with a few thousand labels (reported, no target).

For each model and each number of reference labels, ``references`` independent
reference samples; after each, ``windows`` consecutive production windows of
``WINDOW`` events. Three estimators see the same data: ``auto`` (the default: the map
applied when its cross-fitted Brier score beats the raw confidences', when all the
labels reject "calibrated" at 5 %, or when the window's correction is significant
under calibration, ``|z| > 2``),
``always`` (vigil before the check: the map always applied) and ``never`` (the mean
raw confidence). Per window, the absolute error of the estimate against the window's
realised accuracy (``mae``) and against its expected accuracy, the mean of
``P(correct | c)`` over the window (``mae_vs_expected``: what CBPE estimates; the
difference is the window's own Bernoulli noise, ``floor`` = mean |expected - realised|,
which no estimator can remove). ``map_applied``: share of windows that ``auto``
corrected with the map.

Targets (issue 17), labels = the default ``calibration_window`` (5,000):
``calibrated`` ``auto`` mae <= 0.01; ``miscalibrated`` ``auto`` mae <= ``always`` mae
(today's estimator, same run), with the default labels and with 1,000.

``python benchmarks/cbpe_quality.py [--quick] [--seed N]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.performance import PerformanceEstimator

WINDOW = 2_000
MODES = ("auto", "always", "never")
MODELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "calibrated": lambda c: c,
    "miscalibrated": lambda c: c**1.5,
    "slightly_miscalibrated": lambda c: np.clip(c - 0.03, 0.0, 1.0),
}
DEFAULT_LABELS = PerformanceEstimator().calibration_window


def run(
    link: Callable[[np.ndarray], np.ndarray],
    labels: int,
    references: int,
    windows: int,
    seed: int,
) -> dict[str, Any]:
    err: dict[str, list[float]] = {m: [] for m in MODES}
    err_expected: dict[str, list[float]] = {m: [] for m in MODES}
    floor: list[float] = []
    applied = 0
    for r in range(references):
        rng = np.random.default_rng([seed, labels, r])
        ests = {
            m: PerformanceEstimator(window=WINDOW, calibration_window=labels, calibration_map=m)
            for m in MODES
        }
        c_ref = 0.5 + 0.5 * rng.beta(4.0, 1.5, labels)
        y_ref = rng.random(labels) < link(c_ref)
        for c, y in zip(c_ref.tolist(), y_ref.tolist(), strict=True):
            for est in ests.values():
                est.observe_label(c, y)
        for _ in range(windows):
            c_prod = 0.5 + 0.5 * rng.beta(2.0, 2.0, WINDOW)
            p = link(c_prod)
            realised = float(np.mean(rng.random(WINDOW) < p))
            expected = float(np.mean(p))
            floor.append(abs(expected - realised))
            values = c_prod.tolist()
            for m, est in ests.items():
                for c in values:
                    est.update(c)
                err[m].append(abs(est.estimated_accuracy - realised))
                err_expected[m].append(abs(est.estimated_accuracy - expected))
            applied += ests["auto"].calibration_info["method"] == "binned"
    out: dict[str, Any] = {
        m: {
            "mae": round(float(np.mean(err[m])), 5),
            "mae_vs_expected": round(float(np.mean(err_expected[m])), 5),
            "p90_abs_error": round(float(np.percentile(err[m], 90)), 5),
        }
        for m in MODES
    }
    out["floor"] = round(float(np.mean(floor)), 5)
    out["map_applied"] = round(applied / (references * windows), 4)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer references (under a minute)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    references, windows = (20, 5) if args.quick else (100, 10)
    label_counts = (DEFAULT_LABELS,) if args.quick else (1_000, DEFAULT_LABELS)
    started = time.perf_counter()
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full", "seed": args.seed}
    for name, link in MODELS.items():
        for labels in label_counts:
            key = name if labels == DEFAULT_LABELS else f"{name}_{labels}_labels"
            result[key] = run(link, labels, references, windows, args.seed)
    cal, mis = result["calibrated"], result["miscalibrated"]
    result["targets"] = {
        "calibrated_auto_mae_le_0.01": cal["auto"]["mae"] <= 0.01,
        "miscalibrated_auto_mae_le_always": mis["auto"]["mae"] <= mis["always"]["mae"],
    }
    few = result.get("miscalibrated_1000_labels")
    if few is not None:
        result["targets"]["miscalibrated_1000_labels_auto_mae_le_always"] = (
            few["auto"]["mae"] <= few["always"]["mae"]
        )
    result["settings"] = {
        "window": WINDOW,
        "references": references,
        "windows_per_reference": windows,
        "labels": list(label_counts),
        "reference_confidence": "0.5 + 0.5 * Beta(4, 1.5)",
        "production_confidence": "0.5 + 0.5 * Beta(2, 2)",
        "bins": PerformanceEstimator().bins,
        "prior_strength": PerformanceEstimator().prior_strength,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
