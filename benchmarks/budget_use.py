"""How much of its false-alarm share each signal family realises; prints ONE JSON object.

Standalone detectors (``n_signals=1``, ``budget_weight=1``) at a loose per-signal
budget ``SENSITIVITY`` (alarms countable), on stationary streams against references
of ``REFERENCE_VALUES`` values drawn from the same distribution (a new reference per
stream: the rates are averaged over the reference draw, as the guarantee in
``detectors/sensitivity.py`` is):

* ``numeric``: ``NumericDrift`` on normal, lognormal, uniform, Poisson(4) and
  confidence-like (``0.5 + 0.5 Beta(5, 2)``) values;
* ``categorical``: ``CategoricalDrift`` on 5-, 3-, 12-category (Zipf) and 3-label
  streams, the benchmark model's;
* ``data_quality``: ``DataQualityDrift`` with a missing rate of 0, 0.1 %, 1 % and 5 %
  and values leaving the reference's range at ``2 / (m + 1)``.

Per family: alarms over those expected at the share (``ratio``; 1.0 uses the share
exactly) and which test fired. ``chi2_tail``: independent 250-value windows
against 20,000-value references, the rate of ``chi2 > critical(alpha)`` over
``alpha`` at the default budget's level (the excess that
``detectors.categorical_drift.CHI2_TAIL_FACTOR`` corrects).

``python benchmarks/budget_use.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.categorical_drift import CategoricalDrift
from detectors.data_quality import DataQualityDrift
from detectors.numeric_drift import NumericDrift
from detectors.reference import categorical_reference, numeric_reference
from detectors.sensitivity import chi2_critical

SENSITIVITY = 50_000.0
REFERENCE_VALUES = 20_000
CHUNK = 50_000


def _zipf(k: int) -> list[float]:
    w = 1.0 / np.arange(1, k + 1)
    return (w / w.sum()).tolist()


NUMERIC: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda r, n: r.normal(0.0, 1.0, n),
    "lognormal": lambda r, n: r.lognormal(0.0, 0.5, n),
    "uniform": lambda r, n: r.uniform(-3.0, 3.0, n),
    "poisson": lambda r, n: r.poisson(4.0, n).astype(float),
    "confidence": lambda r, n: 0.5 + 0.5 * r.beta(5.0, 2.0, n),
}
CATEGORICAL: dict[str, list[float]] = {
    "c0": [0.35, 0.25, 0.2, 0.1, 0.1],
    "c1": [0.6, 0.3, 0.1],
    "c2": _zipf(12),
    "prediction": [0.5, 0.3, 0.2],
}
MISSING_RATES = (0.0, 0.001, 0.01, 0.05)


def _count(changes: list[Any], tests: Counter[str]) -> int:
    fired = [c.detector for c in changes if c.state == "drift"]
    tests.update(fired)
    return len(fired)


def numeric(name: str, streams: int, per_stream: int) -> dict[str, Any]:
    gen = NUMERIC[name]
    alarms, tests = 0, Counter[str]()
    for s in range(streams):
        rng = np.random.default_rng([1, len(name), s])
        ref = numeric_reference(gen(rng, REFERENCE_VALUES), bins=20)
        det = NumericDrift(SENSITIVITY, reference=ref)
        for _ in range(0, per_stream, CHUNK):
            alarms += _count(det.update_many(gen(rng, CHUNK).tolist()), tests)
    return _result(alarms, streams * per_stream, tests)


def categorical(name: str, streams: int, per_stream: int) -> dict[str, Any]:
    p = np.asarray(CATEGORICAL[name])
    labels = [f"k{i}" for i in range(len(p))]
    alarms, tests = 0, Counter[str]()
    for s in range(streams):
        rng = np.random.default_rng([2, len(p), s])
        hist = Counter(labels[i] for i in rng.choice(len(p), REFERENCE_VALUES, p=p).tolist())
        det = CategoricalDrift(SENSITIVITY, reference=categorical_reference(hist, 20))
        for _ in range(0, per_stream, CHUNK):
            values = [labels[i] for i in rng.choice(len(p), CHUNK, p=p).tolist()]
            alarms += _count(det.update_many(values), tests)
    return _result(alarms, streams * per_stream, tests)


def data_quality(rate: float, streams: int, per_stream: int) -> dict[str, Any]:
    alarms, tests = 0, Counter[str]()
    m = REFERENCE_VALUES
    for s in range(streams):
        rng = np.random.default_rng([3, int(rate * 1e4), s])
        ref = {"events": m, "missing": int(rng.binomial(m, rate)), "out_of_range": 0}
        det = DataQualityDrift(SENSITIVITY, reference=ref, range_from_reference=True)
        blocks = per_stream // det.step
        missing = rng.binomial(det.step, rate, blocks).tolist()
        outside = rng.binomial(det.step, 2.0 / (m + 1), blocks).tolist()
        for k, o in zip(missing, outside, strict=True):
            alarms += _count(det.update_block(det.step, k, o), tests)
    return _result(alarms, streams * per_stream, tests)


def _result(alarms: int, values: int, tests: Counter[str]) -> dict[str, Any]:
    expected = values / SENSITIVITY
    return {
        "alarms": alarms,
        "expected_at_share": expected,
        "ratio": round(alarms / expected, 3),
        "tests": dict(tests),
    }


def chi2_tail(alpha: float, windows: int, references: int) -> dict[str, float]:
    """Rate of ``chi2 > critical(alpha)`` over ``alpha``, independent windows."""
    out: dict[str, float] = {}
    for name, probs in CATEGORICAL.items():
        p = np.asarray(probs)
        labels = [f"k{i}" for i in range(len(p))]
        hits = total = 0
        for r in range(references):
            rng = np.random.default_rng([4, len(p), r])
            hist = Counter(labels[i] for i in rng.choice(len(p), REFERENCE_VALUES, p=p).tolist())
            det = CategoricalDrift(reference=categorical_reference(hist, 20))
            # The detector's bins: its vocabulary plus __other__ (empty bins dropped).
            q = np.zeros(len(det._ref_counts))
            for i, lab in enumerate(labels):
                q[det._vocab.get(lab, len(det._vocab))] += p[i]
            ref = np.asarray(det._ref_counts)
            keep = ref > 0
            crit = chi2_critical(int(keep.sum()) - 1, alpha)
            for b in range(0, windows, 1_000_000):
                a = rng.multinomial(det.window, q, size=min(1_000_000, windows - b))[:, keep]
                d = a * det._wa - ref[keep] * det._wr
                stat = (d * d / (a + ref[keep])).sum(axis=1)
                hits += int((stat > crit).sum())
                total += a.shape[0]
        out[name] = round(hits / total / alpha, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    args = parser.parse_args()
    streams, per_stream = (2, 200_000) if args.quick else (10, 1_000_000)
    windows, refs = (1_000_000, 1) if args.quick else (20_000_000, 5)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "numeric": {n: numeric(n, streams, per_stream) for n in NUMERIC},
        "categorical": {n: categorical(n, streams, per_stream) for n in CATEGORICAL},
        "data_quality": {
            f"missing_{r}": data_quality(r, streams, 2 * per_stream) for r in MISSING_RATES
        },
        # The default model's chi-squared level: 48 signals, 1e6 events, weight 1.8, half.
        "chi2_tail": chi2_tail(1.3e-6, windows, refs),
        "settings": {
            "quick": args.quick,
            "signal_sensitivity": SENSITIVITY,
            "reference_values": REFERENCE_VALUES,
            "streams": streams,
            "values_per_stream": per_stream,
            "chi2_tail_alpha": 1.3e-6,
            "chi2_tail_windows": windows * refs,
        },
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
