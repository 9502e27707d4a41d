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


def test_inference_is_processed_and_two_observes_in_one_call() -> None:
    """``ModelMetrics.inference`` (the observes inlined, per event) counts what
    ``processed.inc()`` and ``observe`` of the two histograms count, edges included."""
    one, apart = VigilMetrics(CollectorRegistry()), VigilMetrics(CollectorRegistry())
    a, b = one.model("m"), apart.model("m")
    cases = [(0.05, 0.0), (0.5, 0.25), (None, 3.0), (1.0, 1e9), (0.0, 0.001), (0.73, 12.5)]
    for confidence, lag in cases:
        a.inference(confidence, lag)
        b.processed.inc()
        if confidence is not None:
            b.confidence.observe(confidence)
        b.event_lag.observe(lag)
    assert a.processed.value == b.processed.value == len(cases)
    for mine, theirs in ((a.confidence, b.confidence), (a.event_lag, b.event_lag)):
        assert mine.counts == theirs.counts and sum(mine.counts) > 0
        assert mine.sum == theirs.sum
    assert sum(a.confidence.counts) == 5 and sum(a.event_lag.counts) == 6
