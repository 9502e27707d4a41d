from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from detectors.signals import SignalState
from streams.processing.metrics import ModelReading, VigilMetrics


def test_model_label_is_capped() -> None:
    reg = CollectorRegistry()
    m = VigilMetrics(reg, max_models=3)
    for i in range(10):
        m.model(f"m{i}").processed.inc()
    assert reg.get_sample_value("vigil_events_total", {"model": "m2", "outcome": "processed"}) == 1
    assert (
        reg.get_sample_value("vigil_events_total", {"model": "m3", "outcome": "processed"}) is None
    )
    assert (
        reg.get_sample_value("vigil_events_total", {"model": "_other", "outcome": "processed"}) == 7
    )


def test_forget_model_removes_its_series_and_frees_the_slot() -> None:
    reg = CollectorRegistry()
    m = VigilMetrics(reg, max_models=1)
    m.model("a").processed.inc()
    m.model("a").escalation("low_confidence").inc()
    m.model("a").alert("confidence", "drift").inc()
    m.forget_model("a")
    text = generate_latest(reg).decode()
    assert 'model="a"' not in text
    m.model("b").processed.inc()
    assert reg.get_sample_value("vigil_events_total", {"model": "b", "outcome": "processed"}) == 1


def test_gauges_come_from_readings_at_scrape_time() -> None:
    reg = CollectorRegistry()
    state = {"ece": 0.1}
    readings = lambda: [  # noqa: E731
        ModelReading(
            "a",
            signals=[SignalState("feature:x", "adwin", 3.5, 2.0, True)],
            ece=state["ece"],
            reliability=[(0, 0.1, 0.05)],
        )
    ]
    VigilMetrics(reg, max_models=5, readings=readings)
    assert reg.get_sample_value("vigil_calibration_ece", {"model": "a"}) == 0.1
    state["ece"] = 0.3
    assert reg.get_sample_value("vigil_calibration_ece", {"model": "a"}) == 0.3
    assert reg.get_sample_value("vigil_drift_active", {"model": "a", "signal": "feature:x"}) == 1
    assert reg.get_sample_value("vigil_reliability_bin_accuracy", {"model": "a", "bin": "0"}) == 0.1
