"""The demo's correlation-only shift: marginals unchanged, the correlation flips."""

from __future__ import annotations

import statistics

from streams.dev.demo import demo_models
from streams.dev.traffic import CorrelationSchedule, SyntheticModel


def _pairs(model: SyntheticModel, n: int) -> tuple[list[float], list[float]]:
    rows = [model.event()[0]["features"] for _ in range(n)]
    return [r["x0"] for r in rows], [r["x1"] for r in rows]


def test_the_correlation_flips_and_each_feature_keeps_its_distribution() -> None:
    model = SyntheticModel(
        "m", n_numeric=3, seed=4, correlation=CorrelationSchedule("x0", "x1", start=5000)
    )
    before = _pairs(model, 5000)
    after = _pairs(model, 5000)
    assert statistics.correlation(*before) > 0.75
    assert statistics.correlation(*after) < -0.75
    for xs in (*before, *after):
        assert abs(statistics.fmean(xs)) < 0.05 and abs(statistics.stdev(xs) - 1.0) < 0.05


def test_the_demo_schedules_it_on_fraud_detector() -> None:
    (fraud,) = [m for m in demo_models(300.0) if m.model_id == "fraud-detector"]
    assert fraud.correlation is not None and fraud.correlation.start == 180 * 100


def test_the_demo_flip_raises_multivariate_and_no_feature_signal() -> None:
    from detectors.drift_monitor import DriftMonitor
    from detectors.prediction import ClassPrediction

    (fraud,) = [m for m in demo_models(60.0) if m.model_id == "fraud-detector"]
    flip = fraud.correlation.start if fraud.correlation else 0  # 3600 at this rate
    # The segment-only shift of x2 before the flip is another test's (test_traffic_segments).
    fraud.drift = []
    monitor = DriftMonitor()
    drifts = []
    for i in range(flip + 1000):
        event = fraud.event()[0]
        p = event["prediction"]
        pred = ClassPrediction(p["label"], max(p["scores"].values()))
        drifts += [(i, c.signal) for c in monitor.update(event["features"], pred)]
    signals = {s for _, s in drifts}
    assert "multivariate" in signals and not any(s.startswith("feature:") for s in signals)
    assert min(i for i, s in drifts if s == "multivariate") < flip + 500
