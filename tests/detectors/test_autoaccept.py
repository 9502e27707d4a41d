import math

import numpy as np
import pytest

from detectors.autoaccept import AutoAcceptMonitor, wilson_upper
from detectors.errors import InvalidObservationError, SettingsError

Z95_TWO_SIDED = 1.959963984540054


@pytest.mark.parametrize(
    ("wrong", "n", "published"),
    # Newcombe (1998), Table II, method 4 (score interval with continuity correction).
    [(0, 20, 0.2005), (1, 29, 0.1963)],
)
def test_wilson_upper_matches_newcombe(wrong: int, n: int, published: float) -> None:
    assert round(wilson_upper(wrong / n, n, Z95_TWO_SIDED), 4) == published


def test_wilson_upper_is_above_the_plain_wilson_bound() -> None:
    for p in (0.0, 0.01, 0.05, 0.3, 0.9):
        for n in (1.0, 7.5, 50.0, 1000.0):
            z = 1.6448536269514722
            plain = (p + z * z / (2 * n) + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (
                1 + z * z / n
            )
            assert p <= plain <= wilson_upper(p, n, z) <= 1.0


def audit_labels(
    rng: np.random.Generator, n_events: int, error: float, rate: float
) -> list[tuple[bool, float]]:
    """Labels of a ``rate`` audit of ``n_events`` auto-accepted items wrong ``error``
    of the time, each with weight ``1 / rate``."""
    wrong = rng.random(n_events) < error
    audited = rng.random(n_events) < rate
    return [(not bool(w), 1.0 / rate) for w in wrong[audited]]


def test_estimate_is_near_the_truth_with_mixed_weights() -> None:
    """Outcome labels (weight 1) for one part of the traffic, a 2% audit (weight 50)
    of another part with a different error rate: the weighted estimate is the error
    over all auto-accepted items, the unweighted share is not."""
    rng = np.random.default_rng(3)
    mon = AutoAcceptMonitor(window=100_000)
    # 20,000 accepted items wrong 1% of the time, all labelled by outcomes; 200,000
    # accepted items wrong 6% of the time, audited at 2%.
    labels = [(bool(rng.random() >= 0.01), 1.0) for _ in range(20_000)]
    labels += audit_labels(rng, 200_000, 0.06, 0.02)
    order = rng.permutation(len(labels))
    for i in order.tolist():
        mon.update(*labels[i])
    truth = (20_000 * 0.01 + 200_000 * 0.06) / 220_000
    # About 4,000 audit labels: the estimate's standard error is about 0.0035.
    assert abs(mon.error - truth) < 0.012
    unweighted = sum(not y for y, _ in labels) / len(labels)
    assert truth - unweighted > 0.03
    assert mon.count == len(labels)
    assert 3000 < mon.effective_count < mon.count
    assert mon.error < mon.upper < mon.error + 0.02


@pytest.mark.parametrize("weights", ["constant", "mixed"])
def test_upper_bound_covers_the_true_rate(weights: str) -> None:
    """Over 1,000 independent windows the true rate is below the 95% bound at least
    93% of the time (nominal 95%; continuity correction makes it conservative)."""
    rng = np.random.default_rng(17 if weights == "constant" else 18)
    true_error, n_windows, size = 0.03, 1000, 150
    covered = 0
    for _ in range(n_windows):
        mon = AutoAcceptMonitor(window=size)
        wrong = rng.random(size) < true_error
        if weights == "constant":
            w = np.full(size, 50.0)
        else:  # audit rates 2% and 5% (a cap lowered it for part of the window)
            w = np.where(rng.random(size) < 0.5, 50.0, 20.0)
        for y, wi in zip((~wrong).tolist(), w.tolist(), strict=True):
            mon.update(y, wi)
        covered += true_error <= mon.upper
    assert covered / n_windows >= 0.93


def test_alert_fires_on_a_jump_and_recovers() -> None:
    """Accepted items wrong 1%, then 10% for 2,000 audit labels, then 1% again."""
    rng = np.random.default_rng(5)
    mon = AutoAcceptMonitor(window=2000, max_error=0.05, min_labelled=300)
    changes = []
    i = 0
    for error, n in [(0.01, 4000), (0.10, 2000), (0.01, 6000)]:
        for wrong in (rng.random(n) < error).tolist():
            changes += [(i, c.state, c) for c in mon.update(not wrong, 50.0)]
            i += 1
    assert [s for _, s, _ in changes] == ["drift", "recovered"]
    (t_drift, _, drift), (t_rec, _, rec) = changes
    assert 4000 < t_drift < 5000  # within half a window of the jump
    assert 6000 < t_rec < 8000  # once the bad labels have mostly left the window
    assert drift.signal == "autoaccept_error"
    assert drift.detector == "AutoAcceptMonitor"
    assert drift.statistic > 0.05 == drift.threshold
    assert drift.reference is None
    assert set(drift.current) == {"error", "upper", "count", "effective_count"}
    assert drift.current["upper"] == drift.statistic
    assert rec.statistic < 0.05 - mon.hysteresis
    state = mon.state()
    assert (state.signal, state.detector, state.drifting) == (
        "autoaccept_error",
        mon.__class__.__name__,
        False,
    )
    assert state.statistic == mon.upper and state.threshold == 0.05


def test_small_samples_start_in_drift_with_a_low_min_labelled() -> None:
    """With no error at all the 95% bound exceeds 0.05 until about 70 labels: the
    signal reads "not yet shown below ``max_error``", and recovers by itself."""
    mon = AutoAcceptMonitor(max_error=0.05, min_labelled=50)
    states = [(i, c.state) for i in range(200) for c in mon.update(True, 50.0)]
    # Recovery waits for the bound to fall below 0.05 - hysteresis: 79 labels.
    assert states == [(49, "drift"), (78, "recovered")]


def test_no_alert_before_min_labelled() -> None:
    # The default: a model without errors is not alerted while the bound is still wide.
    quiet = AutoAcceptMonitor(max_error=0.05)
    assert [c for _ in range(1000) for c in quiet.update(True, 50.0)] == []
    mon = AutoAcceptMonitor(min_labelled=50)
    for _ in range(49):
        assert mon.update(False, 50.0) == []
    assert mon.upper > 0.5
    assert [c.state for c in mon.update(False, 50.0)] == ["drift"]


def test_empty_monitor_reads_nan() -> None:
    mon = AutoAcceptMonitor()
    assert math.isnan(mon.error) and math.isnan(mon.upper) and math.isnan(mon.state().statistic)
    assert mon.count == 0 and mon.effective_count == 0.0


def test_window_evicts_the_oldest_exactly() -> None:
    mon = AutoAcceptMonitor(window=3)
    for y, w in [(False, 100.0), (True, 1.0), (True, 1 / 0.013), (True, 2.0)]:
        mon.update(y, w)
    assert mon.count == 3
    assert mon.error == 0.0
    ws = [1.0, 1 / 0.013, 2.0]
    assert mon.effective_count == pytest.approx(sum(ws) ** 2 / sum(w * w for w in ws), rel=1e-12)


@pytest.mark.parametrize(
    "bad",
    [
        (True, float("nan")),
        (True, float("inf")),
        (True, -1.0),
        (True, 0.0),
        (True, True),
        (True, "1"),
        (1, 1.0),
        (None, 1.0),
        ("no", 1.0),
    ],
)
def test_rejects_bad_labels_with_state_unchanged(bad: tuple) -> None:
    mon = AutoAcceptMonitor()
    mon.update(True, 50.0)
    before = mon.snapshot()
    with pytest.raises(InvalidObservationError, match=r"weight|correct"):
        mon.update(*bad)
    assert mon.snapshot() == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"max_error": 1.5},
        {"confidence": 1.0},
        {"confidence": 0.3},
        {"hysteresis": -0.1},
        {"min_labelled": 0},
    ],
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        AutoAcceptMonitor(**kwargs)
