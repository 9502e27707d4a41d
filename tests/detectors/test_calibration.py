import math

import numpy as np
import pytest

from detectors.calibration import CalibrationMonitor, reliability_edges
from detectors.errors import InvalidObservationError, SettingsError


def offline(
    conf: np.ndarray,
    correct: np.ndarray,
    bins: int,
    eps: float = 1e-15,
    weight: np.ndarray | None = None,
) -> dict:
    """The statistics recomputed from scratch, binned as sklearn's calibration_curve,
    each item weighted by ``weight`` (default 1) and self-normalised."""
    w = np.ones(len(conf)) if weight is None else weight
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], conf)
    y = correct.astype(float)
    n_b = np.bincount(ids, minlength=bins)
    w_b = np.bincount(ids, weights=w, minlength=bins)
    s_b = np.bincount(ids, weights=w * conf, minlength=bins)
    h_b = np.bincount(ids, weights=w * y, minlength=bins)
    total = w.sum()
    nz = n_b > 0
    gaps = np.abs(h_b[nz] - s_b[nz]) / w_b[nz]
    acc = float(np.sum(w * y) / total)
    p_true = np.clip(np.where(correct, conf, 1.0 - conf), eps, 1 - eps)
    return {
        "ece": float(np.sum(np.abs(h_b - s_b)) / total),
        "mce": float(gaps.max()),
        "brier": float(np.sum(w * (conf - y) ** 2) / total),
        "accuracy": acc,
        "reliability": float(np.sum(w_b[nz] * (s_b[nz] / w_b[nz] - h_b[nz] / w_b[nz]) ** 2))
        / total,
        "resolution": float(np.sum(w_b[nz] * (h_b[nz] / w_b[nz] - acc) ** 2)) / total,
        "uncertainty": acc * (1 - acc),
        "log_loss": float(np.sum(w * -np.log(p_true)) / total),
        "table": [
            (int(b), s_b[b] / w_b[b], h_b[b] / w_b[b], int(n_b[b])) for b in np.flatnonzero(nz)
        ],
    }


@pytest.mark.parametrize("bins", [1, 2, 7, 10, 15, 20, 100, 200])
def test_edges_are_numpy_linspace(bins: int) -> None:
    assert reliability_edges(bins) == list(np.linspace(0.0, 1.0, bins + 1)[1:-1])


def test_values_on_edges_go_to_the_lower_bin_like_sklearn() -> None:
    mon = CalibrationMonitor(bins=10, window=10)
    for c in (0.1, 0.5, 0.0, 1.0):
        mon.update(c, True)
    assert [row[0] for row in mon.bins_table] == [0, 4, 9]


@pytest.mark.parametrize(("bins", "window"), [(10, 1000), (15, 333), (7, 50)])
def test_matches_offline_recomputation_after_many_evictions(bins: int, window: int) -> None:
    rng = np.random.default_rng(42)
    n = 30 * window
    # Drifting, adversarial-for-floats confidences: tiny, huge and edge values.
    conf = rng.beta(5, 2, n)
    conf[::17] = rng.choice([0.0, 1.0, 0.1, 0.5, 1e-300, 1 - 1e-16], size=len(conf[::17]))
    correct = rng.random(n) < np.clip(conf * 0.9 + 0.05 * np.sin(np.arange(n) / 500), 0, 1)
    mon = CalibrationMonitor(bins=bins, window=window)
    for i, (c, y) in enumerate(zip(conf.tolist(), correct.tolist(), strict=True)):
        mon.update(c, y)
        if i % (n // 7) == 0 or i == n - 1:
            lo = max(0, i + 1 - window)
            ref = offline(conf[lo : i + 1], correct[lo : i + 1], bins)
            assert abs(mon.ece - ref["ece"]) <= 1e-12
            assert mon.mce == pytest.approx(ref["mce"], abs=1e-12)
            assert mon.brier == pytest.approx(ref["brier"], abs=1e-12)
            assert mon.accuracy == pytest.approx(ref["accuracy"], abs=1e-12)
            assert mon.reliability == pytest.approx(ref["reliability"], abs=1e-12)
            assert mon.resolution == pytest.approx(ref["resolution"], abs=1e-12)
            assert mon.uncertainty == pytest.approx(ref["uncertainty"], abs=1e-12)
            assert mon.log_loss == pytest.approx(ref["log_loss"], abs=1e-9)
            got = mon.bins_table
            assert [r[0] for r in got] == [r[0] for r in ref["table"]]
            assert [r[3] for r in got] == [r[3] for r in ref["table"]]
            np.testing.assert_allclose(
                [r[1:3] for r in got], [r[1:3] for r in ref["table"]], atol=1e-15
            )


@pytest.mark.parametrize(("bins", "window"), [(10, 1000), (7, 50)])
def test_weighted_matches_offline_recomputation_after_many_evictions(
    bins: int, window: int
) -> None:
    """Review-only labels: weights 1 (escalated), 50 (2% audit) and odd values (an
    audit rate lowered by a cap), against numpy's weighted statistics on the window."""
    rng = np.random.default_rng(7)
    n = 20 * window
    conf = rng.beta(5, 2, n)
    conf[::13] = rng.choice([0.0, 1.0, 0.1, 0.5, 1 - 1e-16], size=len(conf[::13]))
    correct = rng.random(n) < conf
    weight = rng.choice([1.0, 50.0, 1 / 0.013, 3.7, 1e-3], size=n, p=[0.5, 0.3, 0.1, 0.05, 0.05])
    mon = CalibrationMonitor(bins=bins, window=window)
    for i, (c, y, w) in enumerate(
        zip(conf.tolist(), correct.tolist(), weight.tolist(), strict=True)
    ):
        mon.update(c, y, w)
        if i % (n // 7) == 0 or i == n - 1:
            lo = max(0, i + 1 - window)
            sl = slice(lo, i + 1)
            ref = offline(conf[sl], correct[sl], bins, weight=weight[sl])
            assert mon.count == i + 1 - lo
            for name in ("ece", "mce", "brier", "accuracy", "reliability", "resolution"):
                assert getattr(mon, name) == pytest.approx(ref[name], abs=1e-9), name
            assert mon.uncertainty == pytest.approx(ref["uncertainty"], abs=1e-9)
            assert mon.log_loss == pytest.approx(ref["log_loss"], abs=1e-9)
            got = mon.bins_table
            assert [(r[0], r[3]) for r in got] == [(r[0], r[3]) for r in ref["table"]]
            np.testing.assert_allclose(
                [r[1:3] for r in got], [r[1:3] for r in ref["table"]], atol=1e-9
            )


def test_unit_weights_give_exactly_the_unweighted_statistics() -> None:
    rng = np.random.default_rng(3)
    a, b = CalibrationMonitor(window=200), CalibrationMonitor(window=200)
    for c in rng.random(1000).tolist():
        y = bool(rng.random() < c)
        assert a.update(c, y) == b.update(c, y, weight=1.0)
    assert b.snapshot() == a.snapshot()


def test_weighting_removes_the_bias_of_review_only_labels() -> None:
    """Every uncertain item is reviewed, 2% of the confident ones are audited: the
    weighted accuracy is the accuracy over all events, the unweighted one is not."""
    rng = np.random.default_rng(11)
    n = 60_000
    conf = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < conf
    audited = rng.random(n) < 0.02
    reviewed = (conf < 0.7) | audited
    weighted, unweighted = CalibrationMonitor(window=25_000), CalibrationMonitor(window=25_000)
    for c, y in zip(conf[reviewed].tolist(), correct[reviewed].tolist(), strict=True):
        weighted.update(c, y, 1.0 if c < 0.7 else 50.0)
        unweighted.update(c, y)
    true_acc = float(correct.mean())
    assert abs(weighted.accuracy - true_acc) < 0.01
    assert true_acc - unweighted.accuracy > 0.1


def test_snapshot_from_before_weights_restores_and_continues() -> None:
    """A checkpoint written by the unweighted monitor (no ``weight``/``wsum``; hits as
    item counts) loads as unit weights and continues exactly."""
    rng = np.random.default_rng(5)
    mon = CalibrationMonitor(window=100, bins=5)
    for c in rng.random(250).tolist():
        mon.update(c, bool(rng.random() < c))
    snap = mon.snapshot()
    one = 1 << 80
    state = dict(snap["state"])
    state["hits"] = [h // one for h in state.pop("hits")]
    state["sq_err"] //= one
    state["logloss"] //= one
    del state["weight"], state["wsum"]
    old = CalibrationMonitor.restore({**snap, "state": state})
    assert old.snapshot() == snap


def test_murphy_decomposition_is_exact_when_bins_hold_one_confidence() -> None:
    rng = np.random.default_rng(3)
    mon = CalibrationMonitor(bins=10, window=2000)
    levels = [0.05, 0.25, 0.55, 0.75, 0.95]
    for _ in range(3000):
        c = levels[int(rng.integers(5))]
        mon.update(c, bool(rng.random() < c * 0.8))
    assert mon.brier == pytest.approx(mon.reliability - mon.resolution + mon.uncertainty)


def test_accuracy_alert_fires_once_and_recovers() -> None:
    rng = np.random.default_rng(5)
    mon = CalibrationMonitor(
        window=500, reference_accuracy=0.9, accuracy_drop=0.05, ece_threshold=1.0, min_labelled=100
    )
    events = []
    for i, p in enumerate([0.9] * 1000 + [0.7] * 1000 + [0.9] * 1500):
        events += [(i, a.signal, a.state) for a in mon.update(0.9, bool(rng.random() < p))]
    assert [e[1:] for e in events] == [("accuracy", "drift"), ("accuracy", "recovered")]
    assert 1000 < events[0][0] < 1200
    assert 2000 < events[1][0] < 2500


def test_reference_accuracy_is_learned_from_first_full_window() -> None:
    mon = CalibrationMonitor(window=4, min_labelled=1)
    for y in (True, True, False, True):
        mon.update(0.8, y)
    assert mon.reference == 0.75
    for _ in range(4):
        mon.update(0.8, True)
    assert mon.reference == 0.75


def test_no_alert_before_min_labelled() -> None:
    mon = CalibrationMonitor(window=1000, min_labelled=300, ece_threshold=0.05)
    out = [mon.update(0.99, False) for _ in range(299)]
    assert all(o == [] for o in out)
    assert [a.signal for a in mon.update(0.99, False)] == ["calibration"]


def test_states_report_both_signals() -> None:
    mon = CalibrationMonitor(window=10, reference_accuracy=0.8)
    mon.update(0.7, True)
    cal, acc = mon.states()
    assert (cal.signal, acc.signal) == ("calibration", "accuracy")
    assert math.isclose(cal.statistic, 0.3)
    assert math.isclose(acc.threshold, 0.75)


@pytest.mark.parametrize(
    "bad",
    [
        (float("nan"), True),
        (1.5, True),
        ("0.5", True),
        (0.5, 1),
        (0.5, None),
        (True, True),
        (0.5, True, float("nan")),
        (0.5, True, float("inf")),
        (0.5, True, 0.0),
        (0.5, True, -2.0),
        (0.5, True, True),
        (0.5, True, "1"),
    ],
)
def test_rejects_bad_observation(bad: tuple) -> None:
    mon = CalibrationMonitor()
    mon.update(0.7, True, 2.0)
    before = mon.snapshot()
    with pytest.raises(InvalidObservationError):
        mon.update(*bad)
    assert mon.snapshot() == before


@pytest.mark.parametrize(
    "kwargs",
    [{"bins": 0}, {"window": 1.5}, {"ece_threshold": 2}, {"eps": 0.0}, {"reference_accuracy": -1}],
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        CalibrationMonitor(**kwargs)
