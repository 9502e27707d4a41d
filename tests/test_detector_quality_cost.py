"""``benchmarks/detector_quality.py``'s cost part: the current detector and the
pre-issue-17 baseline, each inside a ``DriftMonitor`` (the baseline swapped in for
``NumericDrift``), must both run: a monitor hook the baseline lacked broke the part."""

from __future__ import annotations

import math

from benchmarks.detector_quality import cost
from detectors import drift_monitor
from detectors.numeric_drift import NumericDrift


def test_the_cost_part_runs_both_detectors_and_restores_the_monitor() -> None:
    result = cost(2_000)
    times = [v for k, v in result.items() if "us" in k and isinstance(v, float)]
    assert times and all(math.isfinite(t) and t > 0 for t in times)
    assert drift_monitor.NumericDrift is NumericDrift
