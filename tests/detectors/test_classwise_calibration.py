"""Classwise ECE and multiclass Brier against a direct numpy computation, weights included."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.calibration import reliability_edges
from detectors.classwise_calibration import OTHER_CLASS, ClasswiseCalibrationMonitor
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.prediction import ClassPrediction

CLASSES = ("cat", "dog", "eel", "fox")


def _stream(n: int, seed: int) -> list[tuple[dict[str, float], str, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        raw = [rng.random() ** 2 + 0.01 for _ in CLASSES]
        total = sum(raw)
        scores = {c: v / total for c, v in zip(CLASSES, raw, strict=True)}
        # Miscalibrated: "eel" is the answer more often than its probability says.
        truth = "eel" if rng.random() < 0.3 else rng.choices(CLASSES, weights=raw)[0]
        out.append((scores, truth, rng.choice((1.0, 1.0, 50.0, 1 / 0.013))))
    return out


def _direct(items: list[tuple[dict[str, float], str, float]], bins: int) -> tuple[float, float]:
    """Kull et al.'s classwise ECE and the multiclass Brier score, weighted, with numpy."""
    classes = sorted({c for s, t, _ in items for c in (*s, t)})
    p = np.array([[s.get(c, 0.0) for c in classes] for s, _, _ in items])
    y = np.array([[float(t == c) for c in classes] for _, t, _ in items])
    w = np.array([w for _, _, w in items])
    edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    per_class = []
    for k in range(len(classes)):
        b = np.searchsorted(edges, p[:, k])
        gap = sum(
            abs(np.sum(w[b == j] * y[b == j, k]) - np.sum(w[b == j] * p[b == j, k]))
            for j in range(bins)
        )
        per_class.append(gap / w.sum())
    brier = np.sum(w * np.sum((p - y) ** 2, axis=1)) / w.sum()
    return float(np.mean(per_class)), float(brier)


@pytest.mark.parametrize(("window", "n", "bins"), [(500, 300, 10), (400, 2000, 10), (250, 900, 7)])
def test_figures_equal_a_direct_computation_on_the_window(window: int, n: int, bins: int) -> None:
    items = _stream(n, seed=window + n)
    mon = ClasswiseCalibrationMonitor(bins=bins, window=window)
    for scores, truth, w in items:
        mon.update(scores, truth, w)
    ece, brier = _direct(items[-window:], bins)
    assert mon.count == min(n, window)
    assert mon.ece == pytest.approx(ece, rel=1e-12, abs=1e-14)
    assert mon.brier == pytest.approx(brier, rel=1e-12)
    assert mon.ece > 0.02  # the stream is miscalibrated on "eel": the figure is not trivial


def test_weights_matter_and_unit_weights_equal_the_unweighted_figures() -> None:
    items = _stream(600, seed=1)
    weighted, unweighted = ClasswiseCalibrationMonitor(), ClasswiseCalibrationMonitor()
    for scores, truth, w in items:
        weighted.update(scores, truth, w)
        unweighted.update(scores, truth)
    ece, brier = _direct([(s, t, 1.0) for s, t, _ in items], 10)
    assert unweighted.ece == pytest.approx(ece, rel=1e-12)
    assert unweighted.brier == pytest.approx(brier, rel=1e-12)
    assert abs(weighted.brier - unweighted.brier) > 1e-3


def test_the_bins_are_those_of_reliability_edges() -> None:
    # 0.5 lies on an edge of 4 bins: it belongs to the lower bin, as in scikit-learn.
    assert reliability_edges(4) == [0.25, 0.5, 0.75]
    mon = ClasswiseCalibrationMonitor(bins=4)
    mon.update({"a": 0.5, "b": 0.5}, "a")
    mon.update({"a": 0.5, "b": 0.5}, "b")
    assert mon.class_ece == {"a": 0.0, "b": 0.0}
    mon.update({"a": 0.51, "b": 0.49}, "a")
    # a: bin 1 holds 0.5 twice (one hit), bin 2 holds 0.51 (a hit): |1 - 1| + |1 - 0.51|
    assert mon.class_ece["a"] == pytest.approx(0.49 / 3)


def test_a_truth_the_scores_do_not_list_has_probability_zero() -> None:
    mon = ClasswiseCalibrationMonitor()
    assert mon.update({"a": 0.7, "b": 0.3}, "c") == pytest.approx(0.49 + 0.09 + 1.0)
    assert mon.class_ece == pytest.approx({"a": 0.7, "b": 0.3, "c": 1.0})


def test_classes_beyond_the_cap_are_pooled_and_memory_stays_bounded() -> None:
    mon = ClasswiseCalibrationMonitor(window=50, max_classes=3)
    for i in range(5000):
        mon.update({f"c{i}": 0.25, "a": 0.5, f"d{i}": 0.25}, "a" if i % 2 else f"c{i}")
    assert mon.classes == ["c0", "a", "d0"]
    assert set(mon.class_ece) == {"a", OTHER_CLASS}
    # _other gets 0.5 of probability on every item and is the answer half the time.
    assert mon.class_ece[OTHER_CLASS] == pytest.approx(0.0, abs=1e-15)
    assert mon.class_ece["a"] == pytest.approx(0.0, abs=1e-15)
    # Brier on the raw scores: 0.25**2 * 2 + 0.5**2 (truth a), or 0.75**2 + 0.25**2 + 0.5**2
    assert mon.brier == pytest.approx((0.375 + 0.875) / 2)
    assert len(mon.snapshot()["state"]["items"]) == 50


def test_settings_are_checked() -> None:
    for kwargs in ({"bins": 0}, {"window": 0}, {"max_classes": 0}, {"window": 1.5}):
        with pytest.raises(SettingsError):
            ClasswiseCalibrationMonitor(**kwargs)  # type: ignore[arg-type]


def test_model_monitor_feeds_predictions_with_scores_only() -> None:
    mon = ModelMonitor("m", EscalationPolicy(), classwise=ClasswiseCalibrationMonitor())
    assert mon.classwise is not None
    mon.observe_label(ClassPrediction("a", 0.8), "a", was_escalated=False)
    assert mon.classwise.count == 0
    mon.observe_label(
        ClassPrediction("a", 0.8, {"a": 0.8, "b": 0.2}),
        "b",
        was_escalated=False,
        inclusion_probability=0.02,
    )
    mon.observe_label(ClassPrediction("a", 0.8, {"a": 0.8, "b": 0.2}), "a", was_escalated=True)
    assert mon.classwise.count == 2
    assert mon.classwise.brier == pytest.approx((50 * 1.28 + 0.08) / 51)
    assert mon.calibration.count == 3 and mon.labels_seen == 3


def test_model_monitor_refuses_bad_scores_before_changing_anything() -> None:
    mon = ModelMonitor("m", EscalationPolicy(), classwise=ClasswiseCalibrationMonitor())
    mon.observe({}, ClassPrediction("a", 0.8), datetime(2026, 1, 1, tzinfo=UTC))
    before = mon.snapshot()
    for scores in ({"a": 0.8, "b": 0.8}, {"a": 1.5, "b": -0.5}):
        with pytest.raises(InvalidObservationError):
            mon.observe_label(ClassPrediction("a", 0.8, scores), "a", was_escalated=False)
    assert mon.snapshot() == before


def test_model_monitor_clone_repr_and_snapshots_carry_it() -> None:
    mon = ModelMonitor("m", EscalationPolicy(), classwise=ClasswiseCalibrationMonitor(window=7))
    mon.observe_label(ClassPrediction("a", 0.6, {"a": 0.6, "b": 0.4}), "b", was_escalated=True)
    assert "classwise=ClasswiseCalibrationMonitor(bins=10, window=7" in repr(mon)
    clone = mon.clone()
    assert clone.classwise is not None and clone.classwise.window == 7
    assert clone.classwise.count == 0
    restored = ModelMonitor.restore(mon.snapshot())
    assert restored.snapshot() == mon.snapshot()
    assert restored.classwise is not None and restored.classwise.brier == mon.classwise.brier  # type: ignore[union-attr]
    # A snapshot written before classwise calibration restores without it.
    old = mon.snapshot()
    del old["classwise"], old["regression"]
    assert ModelMonitor.restore(old).classwise is None
