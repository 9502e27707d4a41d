import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.errors import InvalidObservationError, SettingsError
from detectors.performance import PerformanceEstimator


def fit(est: PerformanceEstimator, rng: np.random.Generator, n: int, link) -> None:
    conf = 0.5 + 0.5 * rng.beta(4.0, 1.5, n)
    for c, y in zip(conf.tolist(), (rng.random(n) < link(conf)).tolist(), strict=True):
        est.observe_label(c, y)


@pytest.mark.parametrize(
    "link", [lambda c: c, lambda c: c**1.5, lambda c: np.clip(c - 0.1, 0, 1)], ids=str
)
def test_estimate_follows_realized_accuracy_under_covariate_shift(link) -> None:
    rng = np.random.default_rng(8)
    est = PerformanceEstimator(window=20_000, calibration_window=20_000)
    fit(est, rng, 20_000, link)
    conf = 0.5 + 0.5 * rng.beta(2.0, 2.0, 20_000)  # inputs the model is less sure of
    for c in conf.tolist():
        est.update(c)
    realized = float(np.mean(rng.random(len(conf)) < link(conf)))
    assert abs(est.estimated_accuracy - realized) <= 0.015


def test_alert_is_edge_triggered_with_recovery() -> None:
    rng = np.random.default_rng(2)
    est = PerformanceEstimator(window=500, reference_accuracy=0.85, threshold=0.05)
    fit(est, rng, 5000, lambda c: c)
    events = []
    phases = [(4.0, 1.5)] * 1500 + [(1.5, 1.5)] * 1500 + [(4.0, 1.5)] * 1500
    for i, (a, b) in enumerate(phases):
        events += [(i, e.state) for e in est.update(0.5 + 0.5 * rng.beta(a, b))]
    assert [s for _, s in events] == ["drift", "recovered"]
    assert 1500 < events[0][0] < 1900 and 3000 < events[1][0] < 3500
    assert est.state().signal == "estimated_accuracy"


def test_calibration_map_shrinks_to_identity_without_labels() -> None:
    est = PerformanceEstimator(prior_strength=10)
    assert est.calibrate(0.73) == 0.73
    for _ in range(10):
        est.observe_label(0.9, False)
    # Ten wrong labels at 0.9 against a pseudo-count of 10: halfway to accuracy 0.
    assert est.calibrate(0.9) == pytest.approx(0.9 - 0.9 * 10 / 20)


def test_windows_are_bounded() -> None:
    est = PerformanceEstimator(window=50, calibration_window=70)
    for i in range(1000):
        est.update((i % 10) / 10)
        est.observe_label((i % 10) / 10, i % 3 == 0)
    assert (est.count, est.labelled) == (50, 70)


def review_only_estimate(seed: int, weighted: bool) -> tuple[float, float]:
    """(estimated, realised) accuracy when labels come from review only: every item
    with confidence < 0.7 is escalated and labelled (weight 1), 2% of the others are
    audited (weight 50, or 1 when ``weighted`` is False). The model is calibrated
    below 0.7 and overconfident by 0.25 above, so the bin [0.6, 0.8) holds two
    behaviours in proportions the labels do not reflect."""
    rng = np.random.default_rng(seed)
    n = 80_000
    conf = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < np.where(conf < 0.7, conf, conf - 0.25)
    escalated = conf < 0.7
    audited = ~escalated & (rng.random(n) < 0.02)
    est = PerformanceEstimator(bins=5, window=n, calibration_window=n)
    for c, y, e, a in zip(
        conf.tolist(), correct.tolist(), escalated.tolist(), audited.tolist(), strict=True
    ):
        est.update(c)
        if e:
            est.observe_label(c, y, 1.0)
        elif a:
            est.observe_label(c, y, 50.0 if weighted else 1.0)
    return est.estimated_accuracy, float(correct.mean())


def test_weighted_labels_recover_accuracy_from_a_review_only_sample() -> None:
    estimate, truth = review_only_estimate(1, weighted=True)
    assert abs(estimate - truth) <= 0.015
    biased, truth = review_only_estimate(1, weighted=False)
    assert biased - truth >= 0.03


def test_unit_weights_give_exactly_the_unweighted_map() -> None:
    rng = np.random.default_rng(4)
    a = PerformanceEstimator(calibration_window=100)
    b = PerformanceEstimator(calibration_window=100)
    for c in rng.random(500).tolist():
        y = bool(rng.random() < c)
        a.observe_label(c, y)
        b.observe_label(c, y, 1.0)
    assert a.snapshot() == b.snapshot()
    assert [a.calibrate(x) for x in (0.1, 0.55, 0.97)] == [
        b.calibrate(x) for x in (0.1, 0.55, 0.97)
    ]


def test_weighted_map_matches_the_formula_after_evictions() -> None:
    """offset_b = (sum w*y - sum w*c) / (sum w + m) over the last calibration_window labels."""
    rng = np.random.default_rng(6)
    est = PerformanceEstimator(bins=4, calibration_window=300, prior_strength=10.0)
    conf = rng.random(1000)
    correct = rng.random(1000) < conf**2
    weight = rng.choice([1.0, 50.0, 1 / 0.013], size=1000)
    for c, y, w in zip(conf.tolist(), correct.tolist(), weight.tolist(), strict=True):
        est.observe_label(c, y, w)
    c, y, w = conf[-300:], correct[-300:], weight[-300:]
    ids = np.searchsorted(np.linspace(0, 1, 5)[1:-1], c)
    for b, probe in enumerate((0.1, 0.3, 0.6, 0.9)):
        m = ids == b
        offset = (np.sum(w[m] * y[m]) - np.sum(w[m] * c[m])) / (np.sum(w[m]) + 10.0)
        assert est.calibrate(probe) == pytest.approx(min(1.0, max(0.0, probe + offset)), abs=1e-9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0, True, "1", None])
def test_rejects_bad_weight_with_state_unchanged(bad) -> None:
    est = PerformanceEstimator()
    est.observe_label(0.8, True, 50.0)
    before = est.snapshot()
    with pytest.raises(InvalidObservationError, match="weight"):
        est.observe_label(0.5, True, bad)
    assert est.snapshot() == before


@pytest.mark.parametrize("bad", [float("nan"), -0.1, "0.5", None, True])
def test_rejects_bad_confidence(bad) -> None:
    est = PerformanceEstimator()
    before = est.snapshot()
    with pytest.raises(InvalidObservationError):
        est.update(bad)
    with pytest.raises(InvalidObservationError):
        est.observe_label(bad, True)
    with pytest.raises(InvalidObservationError):
        est.observe_label(0.5, "yes")
    assert est.snapshot() == before


# A step of a stream: a run of unlabelled confidences, or a few labels (confidence, right).
_RUN = st.lists(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0.5, 0.95])))
_LABELS = st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=30)


def _changes(changes: list) -> list[tuple]:
    return [(c.events_seen, c.state, c.statistic, c.threshold, c.reference) for c in changes]


@settings(max_examples=150, deadline=None)
@given(
    window=st.integers(1, 30),
    min_events=st.integers(1, 20),
    steps=st.lists(st.one_of(_RUN.map(lambda r: ("run", r)), _LABELS.map(lambda x: ("labels", x)))),
)
def test_update_many_is_update_of_each_bit_for_bit(
    window: int, min_events: int, steps: list[tuple[str, list]]
) -> None:
    one = PerformanceEstimator(window=window, min_events=min_events, threshold=0.05)
    many = PerformanceEstimator(window=window, min_events=min_events, threshold=0.05)
    for what, items in steps:
        if what == "labels":
            for est in (one, many):
                for c, y in items:
                    est.observe_label(c, y)
            continue
        expected = [change for c in items for change in one.update(c)]
        assert _changes(many.update_many(items)) == _changes(expected)
        assert many.snapshot() == one.snapshot()


def test_update_many_takes_the_reference_and_raises_the_alert_where_update_does() -> None:
    rng = random.Random(3)
    one, many = PerformanceEstimator(window=200), PerformanceEstimator(window=200)
    labels = [(c, rng.random() < c) for c in (rng.uniform(0.6, 1.0) for _ in range(3000))]
    for est in (one, many):
        for c, y in labels:
            est.observe_label(c, y)
    cs = [rng.uniform(0.6, 1.0) for _ in range(1000)] + [rng.uniform(0.4, 0.7) for _ in range(700)]
    expected = [change for c in cs for change in one.update(c)]
    got = many.update_many(cs[:333]) + many.update_many(cs[333:])
    assert [c.state for c in expected] == ["drift"]  # the case under test happens
    assert _changes(got) == _changes(expected)
    assert many.reference == one.reference is not None
    assert many.snapshot() == one.snapshot()


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, "0.5", None, True])
def test_update_many_checks_every_confidence_before_it_adds_any(bad) -> None:
    est = PerformanceEstimator()
    est.update_many([0.7, 0.8])
    before = est.snapshot()
    with pytest.raises(InvalidObservationError, match="confidence"):
        est.update_many([0.9, 0.2, bad, 0.3])
    assert est.snapshot() == before


def test_update_many_takes_what_update_takes() -> None:
    one, many = PerformanceEstimator(), PerformanceEstimator()
    for c in (1, 0, np.float64(0.25), 0.5):
        one.update(c)
    many.update_many((1, 0, np.float64(0.25), 0.5))  # any sequence; ints and numpy floats
    assert many.snapshot() == one.snapshot()


@pytest.mark.parametrize("kwargs", [{"bins": 0}, {"prior_strength": 0}, {"threshold": 2}])
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        PerformanceEstimator(**kwargs)


def test_the_baseline_waits_for_enough_effective_labels() -> None:
    """Review labels: 190 escalations (weight 1) and 10 audits (weight 50) are 200 labels
    but weigh like 19 independent ones; the baseline waits until the map rests on
    ``min_events`` effective labels."""
    rng = random.Random(3)
    unit, review = (PerformanceEstimator(window=100, min_events=200) for _ in range(2))
    for i in range(200):
        c = rng.uniform(0.5, 1.0)
        y = rng.random() < c
        unit.observe_label(c, y)
        review.observe_label(c, y, 50.0 if i % 20 == 0 else 1.0)
    for _ in range(100):
        unit.update(0.8)
        review.update(0.8)
    assert unit.effective_labelled == 200 and unit.reference is not None
    assert review.effective_labelled == pytest.approx(690**2 / (190 + 10 * 2500))
    assert review.reference is None
    while review.effective_labelled < 200:
        review.observe_label(0.8, True)
    review.update(0.8)
    assert review.reference is not None
    # The size is part of the state: a restored estimator agrees.
    assert PerformanceEstimator.restore(review.snapshot()).effective_labelled == pytest.approx(
        review.effective_labelled
    )


def shifted_run(link, seed: int, labels: int = 5000, mode: str = "auto") -> tuple[float, float]:
    """(estimate, expected accuracy) of a 2,000-event window after covariate shift."""
    rng = np.random.default_rng(seed)
    est = PerformanceEstimator(window=2000, calibration_window=labels, calibration_map=mode)
    fit(est, rng, labels, link)
    conf = 0.5 + 0.5 * rng.beta(2.0, 2.0, 2000)
    for c in conf.tolist():
        est.update(c)
    return est.estimated_accuracy, float(np.mean(link(conf)))


def test_a_calibrated_model_keeps_its_raw_confidences_under_covariate_shift() -> None:
    """The map of a calibrated model is noise: always applied, it costs about a point
    on shifted windows; the checks leave the raw confidences, which are right."""
    errors: dict[str, list[float]] = {"auto": [], "always": [], "never": []}
    for seed in range(12):
        for mode, errs in errors.items():
            estimate, expected = shifted_run(lambda c: c, seed, mode=mode)
            errs.append(abs(estimate - expected))
    mean = {mode: float(np.mean(errs)) for mode, errs in errors.items()}
    assert mean["never"] < 1e-12  # the raw mean is exactly the expectation here
    assert mean["always"] >= 0.005
    assert mean["auto"] <= 0.5 * mean["always"]


def test_an_overconfident_model_gets_the_map_as_before() -> None:
    for seed in range(4):
        auto = shifted_run(lambda c: c**1.5, seed)
        always = shifted_run(lambda c: c**1.5, seed, mode="always")
        never = shifted_run(lambda c: c**1.5, seed, mode="never")
        assert auto == always
        assert abs(auto[0] - auto[1]) < 0.5 * abs(never[0] - never[1])


def test_the_window_test_applies_a_map_the_brier_check_rejects() -> None:
    """600 labels of an overconfident model (P(correct) = c**1.5), most of them at high
    confidence where it is nearly right: on the labels' own confidences the map's
    noise outweighs its correction (Brier check fails). A window shifted to low
    confidence, where the model is most wrong, gets a correction far beyond noise
    (seeded: one of the 8 seeds tried where the Brier check fails at 600 labels)."""
    rng = np.random.default_rng(6)
    est = PerformanceEstimator(window=2000, calibration_window=600)
    conf = 0.5 + 0.5 * rng.beta(4.0, 1.5, 600)
    for c, y in zip(conf.tolist(), (rng.random(600) < conf**1.5).tolist(), strict=True):
        est.observe_label(c, y)
    assert est.calibration_info["brier_gain"] <= 0.0
    window = 0.5 + 0.5 * rng.beta(1.0, 2.0, 2000)
    for c in window.tolist():
        est.update(c)
    info = est.calibration_info
    assert info["method"] == "binned" and info["window_z"] < -2
    truth = float(np.mean(window**1.5))
    assert abs(est.estimated_accuracy - truth) < 0.5 * abs(float(np.mean(window)) - truth)


def test_calibration_info_says_what_the_map_rests_on() -> None:
    rng = random.Random(1)
    est = PerformanceEstimator(window=100, calibration_window=300, min_events=50)
    assert est.calibration_info == {
        "method": "identity",
        "mode": "auto",
        "labels": 0,
        "effective_labels": 0.0,
        "labels_seen": 0,
        "labels_forgotten": 0,
        "calibration_window": 300,
        "brier_gain": 0.0,
        "calibration_pvalue": 1.0,
        "window_z": None,
    }
    for _ in range(1000):  # wrong 30 points more often than it says: the map applies
        c = rng.uniform(0.6, 1.0)
        est.observe_label(c, rng.random() < c - 0.3)
    assert (est.labels, est.labels_seen, est.labelled) == (300, 1000, 300)
    alerts = []
    for i in range(400):
        alerts += est.update(0.9 if i < 200 else 0.65)
    info = est.calibration_info
    assert info["labels_forgotten"] == 700 and info["calibration_window"] == 300
    assert info["method"] == "binned" and info["brier_gain"] > 0
    assert [a.state for a in alerts] == ["drift"]
    assert alerts[0].current["calibration"]["labels"] == 300
    assert alerts[0].current["calibration"]["method"] == "binned"


def test_calibration_map_modes() -> None:
    rng = np.random.default_rng(0)
    never = PerformanceEstimator(calibration_map="never", window=500)
    always = PerformanceEstimator(calibration_map="always", window=500)
    for est in (never, always):
        fit(est, np.random.default_rng(1), 2000, lambda c: c**3)
    conf = rng.uniform(0.5, 1.0, 500)
    for c in conf.tolist():
        never.update(c)
        always.update(c)
    assert never.estimated_accuracy == pytest.approx(float(np.mean(conf)), abs=1e-12)
    assert never.calibrate(0.8) == 0.8
    assert always.estimated_accuracy < never.estimated_accuracy - 0.05
    assert always.calibration_info["brier_gain"] is None
    with pytest.raises(SettingsError, match="calibration_map"):
        PerformanceEstimator(calibration_map="sometimes")  # type: ignore[arg-type]


def test_a_snapshot_from_before_the_check_restores() -> None:
    est = PerformanceEstimator(window=100, calibration_window=200)
    fit(est, np.random.default_rng(2), 500, lambda c: c**2)
    for c in np.random.default_rng(3).uniform(0.5, 1.0, 150).tolist():
        est.update(c)
    snap = est.snapshot()
    old = {**snap, "settings": dict(snap["settings"]), "state": dict(snap["state"])}
    del old["settings"]["calibration_map"]
    del old["state"]["gain"], old["state"]["gain_at"]
    restored = PerformanceEstimator.restore(old)
    assert restored.calibration_info == est.calibration_info
    assert restored.estimated_accuracy == est.estimated_accuracy


def test_labels_that_reject_calibration_get_the_map_when_the_brier_check_fails() -> None:
    """1,000 labels of an overconfident model: the cross-fitted Brier check (each fold's
    map on 4/5 of the labels) can fail by chance (seed 42: one of 4 in 60); the
    calibration test on all the labels still rejects "calibrated", so the map applies
    to any window, not only to one whose own correction is significant."""
    rng = np.random.default_rng(42)
    est = PerformanceEstimator(window=2000, calibration_window=1000)
    conf = 0.5 + 0.5 * rng.beta(4.0, 1.5, 1000)
    for c, y in zip(conf.tolist(), (rng.random(1000) < conf**1.5).tolist(), strict=True):
        est.observe_label(c, y)
    for c in (0.5 + 0.5 * rng.beta(4.0, 1.5, 2000)).tolist():  # a window like the labels
        est.update(c)
    info = est.calibration_info
    assert info["brier_gain"] <= 0.0 and info["calibration_pvalue"] < 0.05
    assert info["method"] == "binned"


def test_calibration_test_rejects_a_calibrated_model_at_its_level() -> None:
    """Under calibration the p-value is about uniform: ~5 % of label samples reject."""
    rejected = 0
    runs = 200
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        est = PerformanceEstimator(calibration_window=1000)
        conf = 0.5 + 0.5 * rng.beta(4.0, 1.5, 1000)
        for c, y in zip(conf.tolist(), (rng.random(1000) < conf).tolist(), strict=True):
            est.observe_label(c, y)
        rejected += est.calibration_info["calibration_pvalue"] < 0.05
    assert 2 <= rejected <= 22  # Binomial(200, 0.05): mean 10
