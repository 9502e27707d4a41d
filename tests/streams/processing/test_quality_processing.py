"""Classwise calibration and regression quality through the worker's core: scores and
intervals survive the label join (and its checkpoints), the figures reach /metrics, the
coverage alert reaches the alerts topic, and bad ``regression`` settings are explained."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streams.cli.config import check_config_file
from streams.config import settings_from_dict
from streams.errors import ConfigError
from streams.events.dead_letters import MessageSource
from streams.processing.fleet import Fleet, ModelState
from streams.processing.label_join import LabelJoin
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def item_snapshot(join: LabelJoin) -> dict[str, Any]:
    """``join``'s snapshot as version 3 wrote it: an item tuple per pending prediction and
    per joined id (today's are columns)."""
    snap = join.snapshot()
    state = {
        **snap["state"],
        "pending": join.pending_items(),
        "joined": join.joined_items(),
    }
    return {**snap, "version": 3, "state": state}


def setup(**raw: object) -> tuple[Processor, CollectorRegistry]:
    reg = CollectorRegistry()
    s = settings_from_dict(raw)
    fleet = Fleet(s)
    metrics = VigilMetrics(reg, s.worker.max_models, readings=fleet.readings)
    return Processor(s, metrics, fleet, clock=None), reg


def inference(n: int, prediction: dict[str, Any], model_id: str) -> bytes:
    return orjson.dumps(
        {"event_id": f"e{n}", "model_id": model_id, "ts": T0 + n, "prediction": prediction}
    )


def label(n: int, truth: str | float, model_id: str) -> bytes:
    key = "label" if isinstance(truth, str) else "value"
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "model_id": model_id,
            "ts": T0 + n + 1,
            key: truth,
            "source": "outcome",
        }
    )


def feed(proc: Processor, events: list[tuple[bytes, bytes]], out: Outgoing) -> None:
    for offset, (event, lab) in enumerate(events):
        proc.inference(event, MessageSource("inference", 0, offset, b"m"), out)
        proc.label(lab, MessageSource("labels", 0, offset, b"m"), out)


def gauge(reg: CollectorRegistry, name: str, model: str) -> float | None:
    return reg.get_sample_value(name, {"model": model})


def test_scores_reach_classwise_calibration_and_metrics() -> None:
    proc, reg = setup()
    rng = random.Random(0)
    events = []
    for n in range(300):
        truth = "eel" if rng.random() < 0.5 else rng.choice(("cat", "dog"))
        pred = {"label": "cat", "scores": {"cat": 0.6, "dog": 0.3, "eel": 0.1}}
        events.append((inference(n, pred, "multi"), label(n, truth, "multi")))
    feed(proc, events, Outgoing())
    cw = proc.fleet.get("multi").monitor.classwise
    assert cw is not None and cw.count == 300
    assert cw.class_ece["eel"] > 0.3  # said 0.1, the answer about half the time
    assert gauge(reg, "vigil_classwise_ece", "multi") == pytest.approx(cw.ece)
    assert gauge(reg, "vigil_multiclass_brier", "multi") == pytest.approx(cw.brier)
    # The top-label figures are served next to them, unchanged.
    assert gauge(reg, "vigil_calibration_ece", "multi") is not None
    assert gauge(reg, "vigil_regression_mae", "multi") is None


def test_without_scores_or_with_classwise_off_no_classwise_series() -> None:
    proc, reg = setup(models={"off": {"calibration": {"classwise": False}}})
    events = [
        (inference(n, {"label": "a", "confidence": 0.7}, "plain"), label(n, "a", "plain"))
        for n in range(20)
    ]
    scored = {"label": "a", "scores": {"a": 0.7, "b": 0.3}}
    events += [(inference(n, scored, "off"), label(n, "b", "off")) for n in range(20, 40)]
    feed(proc, events, Outgoing())
    assert gauge(reg, "vigil_classwise_ece", "plain") is None
    assert gauge(reg, "vigil_classwise_ece", "off") is None
    assert proc.fleet.get("off").monitor.classwise is None
    # The pending prediction of a model with classwise off keeps no scores.
    proc.inference(
        inference(99, scored, "off"), MessageSource("inference", 0, 99, b"m"), Outgoing()
    )
    pending = [prediction for _, (prediction, *_) in proc.fleet.get("off").join.pending_items()]
    assert [p[:4] for p in pending] == [("c", "a", 0.7, None)]


def test_intervals_reach_regression_quality_the_alerts_topic_and_metrics() -> None:
    proc, reg = setup(defaults={"regression": {"window": 200, "min_labelled": 50}})
    rng = random.Random(1)
    out = Outgoing()
    events = []
    for n in range(600):
        sigma = 1.0 if n < 300 else 3.0  # calibrated 90% intervals, then too narrow
        pred = {"value": 10.0, "interval": [10.0 - 1.645, 10.0 + 1.645]}
        events.append((inference(n, pred, "reg"), label(n, rng.gauss(10.0, sigma), "reg")))
    feed(proc, events, out)
    alerts = [orjson.loads(body) for _, body in out.alerts]
    coverage = [a for a in alerts if a["signal"] == "coverage"]
    assert [a["state"] for a in coverage] == ["drift"]
    assert coverage[0]["threshold"] == pytest.approx(0.85)
    assert coverage[0]["detector"] == "RegressionQualityMonitor"
    reg_mon = proc.fleet.get("reg").monitor.regression
    assert reg_mon is not None and reg_mon.count == 200
    assert gauge(reg, "vigil_interval_coverage", "reg") == pytest.approx(reg_mon.coverage)
    assert gauge(reg, "vigil_interval_coverage_nominal", "reg") == 0.9
    assert gauge(reg, "vigil_interval_coverage_floor", "reg") == pytest.approx(0.85)
    assert gauge(reg, "vigil_regression_mae", "reg") == pytest.approx(reg_mon.mae)
    assert gauge(reg, "vigil_regression_rmse", "reg") == pytest.approx(reg_mon.rmse)
    assert gauge(reg, "vigil_regression_bias", "reg") == pytest.approx(reg_mon.bias)
    assert reg.get_sample_value("vigil_drift_active", {"model": "reg", "signal": "coverage"}) == 1
    assert (
        reg.get_sample_value(
            "vigil_alerts_total", {"model": "reg", "signal": "coverage", "state": "drift"}
        )
        == 1
    )
    assert gauge(reg, "vigil_classwise_ece", "reg") is None


def segments_of_labels(proc: Processor, model_id: str, events: list[int]) -> list[Any]:
    """The segment values the model's monitor gets with the labels of ``events`` (each
    labelled "dog")."""
    monitor = proc.fleet.get(model_id).monitor
    got: list[Any] = []
    observe_label = monitor.observe_label

    def spy(*args: Any, **kwargs: Any) -> Any:
        got.append(kwargs.get("segment"))
        return observe_label(*args, **kwargs)

    monitor.observe_label = spy  # type: ignore[method-assign]
    try:
        for n in events:
            proc.label(label(n, "dog", model_id), MessageSource("labels", 0, n, b"m"), Outgoing())
    finally:
        del monitor.observe_label
    return got


def test_pending_predictions_leave_the_collectors_lists() -> None:
    """Scores and segment values are kept as JSON bytes: the collector stops tracking a
    pending prediction (a tuple holding a dict stays tracked, and at full load every full
    collection walked ~200k of them)."""
    proc, _ = setup(defaults={"segments": {"keys": ["region"]}})
    out = Outgoing()
    awkward = 0.1 + 0.2  # 0.30000000000000004: must come back as the same float
    scored = {"label": "cat", "scores": {"cat": 0.7 - awkward, "dog": awkward, "eel": 0.3}}
    for n in range(50):
        raw = orjson.loads(inference(n, scored, "multi"))
        raw["segment"] = {"region": "eu"}
        proc.inference(orjson.dumps(raw), MessageSource("inference", 0, n, b"m"), out)
    gc.collect()
    gc.collect()
    pending = [row for _, row in proc.fleet.get("multi").join.pending_items()]
    assert len(pending) == 50
    # The join holds each prediction in a column (its row tuple is built on reading).
    assert not any(gc.is_tracked(item[0]) for item in pending)
    compact = pending[0][0]
    assert compact[3] is None and compact[5] is None  # what an older release reads
    assert orjson.loads(compact[6]) == scored["scores"]
    # They join as they were: classwise calibration gets the same floats, the segment
    # its values.
    cw = proc.fleet.get("multi").monitor.classwise
    assert cw is not None
    seen: list[Any] = []
    update = cw.update
    cw.update = lambda scores, *a, **k: (seen.append(scores), update(scores, *a, **k))[1]  # type: ignore[method-assign]
    proc.label(label(0, "dog", "multi"), MessageSource("labels", 0, 0, b"m"), out)
    assert seen == [scored["scores"]]
    assert [type(v) for v in seen[0].values()] == [float] * 3
    assert seen[0]["dog"] == awkward
    assert segments_of_labels(proc, "multi", [1]) == [{"region": "eu"}]


def test_a_checkpoint_with_dict_scores_and_segments_still_feeds_them() -> None:
    proc, _ = setup(defaults={"segments": {"keys": ["region"]}})
    out = Outgoing()
    scored = {"label": "cat", "scores": {"cat": 0.6, "dog": 0.4}}
    for n in range(3):
        raw = orjson.loads(inference(n, scored, "multi"))
        raw["segment"] = {"region": "eu"}
        proc.inference(orjson.dumps(raw), MessageSource("inference", 0, n, b"m"), out)
    state = proc.fleet.get("multi")
    snapshot = state.snapshot()
    # As the release before wrote them: 6-tuples with scores and segment as dicts (and
    # an item tuple per prediction, as before columns).
    join = item_snapshot(state.join)
    join["state"]["pending"] = [
        (key, ((*c[:3], orjson.loads(c[6]), c[4], orjson.loads(c[7])), *item[1:]))
        for key, item in join["state"]["pending"]
        for c in [item[0]]
    ]
    assert join["state"]["pending"][0][1][0][3] == {"cat": 0.6, "dog": 0.4}
    old = ModelState.restore({**snapshot, "join": join})
    proc.fleet.put("multi", old)
    assert segments_of_labels(proc, "multi", [0, 1, 2]) == [{"region": "eu"}] * 3
    cw = old.monitor.classwise
    assert cw is not None and cw.count == 3
    assert cw.class_ece["dog"] == pytest.approx(0.6)  # said 0.4, always right


def test_an_older_checkpoint_restores_and_gets_both_monitors_as_configured() -> None:
    proc, _ = setup(defaults={"regression": {"interval_level": 0.8}})
    out = Outgoing()
    for n in range(3):
        proc.inference(
            inference(n, {"value": 1.0, "interval": [0.0, 2.0]}, "reg"),
            MessageSource("inference", 0, n, b"m"),
            out,
        )
    state = proc.fleet.get("reg")
    snapshot = state.snapshot()
    # What the previous release wrote: no classwise or regression monitor, and pending
    # regressions as ("r", value, None).
    monitor = {k: v for k, v in snapshot["monitor"].items() if k not in ("classwise", "regression")}
    join = item_snapshot(state.join)
    join["state"]["pending"] = [
        (key, (("r", item[0][1], None), *item[1:])) for key, item in join["state"]["pending"]
    ]
    old = ModelState.restore({**snapshot, "monitor": monitor, "join": join})
    assert old.monitor.regression is None and old.monitor.classwise is None
    proc.fleet.put("reg", old)
    assert old.monitor.regression is not None and old.monitor.regression.interval_level == 0.8
    assert old.monitor.classwise is not None
    # An old pending prediction joins its label: counted in the errors, not in coverage.
    proc.label(label(0, 1.5, "reg"), MessageSource("labels", 0, 0, b"m"), out)
    assert old.monitor.regression.count == 1 and old.monitor.regression.coverage_count == 0
    assert old.monitor.regression.mae == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"defaults": {"regression": {"interval_level": 1.0}}},
            "defaults.regression.interval_level must be a number in (0, 1); got 1.0",
        ),
        (
            {"defaults": {"regression": {"coverage_tolerance": -0.1}}},
            "defaults.regression.coverage_tolerance must be a number in [0, 1); got -0.1",
        ),
        (
            {"models": {"m": {"regression": {"interval_level": 0.5, "coverage_tolerance": 0.6}}}},
            "models.m.regression: coverage_tolerance must be below interval_level (0.5)",
        ),
        (
            {"defaults": {"regression": {"coverage_confidence": 0.3}}},
            "defaults.regression.coverage_confidence must be a number in [0.5, 1); got 0.3",
        ),
        ({"defaults": {"regression": {"windw": 10}}}, "did you mean 'window'"),
        (
            {"defaults": {"calibration": {"max_classes": 1}}},
            "defaults.calibration.max_classes must be an integer",
        ),
    ],
)
def test_bad_regression_settings_are_explained_with_their_key_path(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw)
    assert message in str(info.value)


def test_config_check_accepts_a_regression_section(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yaml"
    path.write_text(
        "defaults:\n  regression: {interval_level: 0.95, coverage_tolerance: 0.03}\n"
        "models:\n  price:\n    regression: {window: 500}\n"
    )
    ok, lines = check_config_file(path)
    assert ok, lines
