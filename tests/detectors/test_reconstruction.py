"""Multivariate drift and outlier scores (``detectors.reconstruction``) beyond the contract."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from detectors.errors import InvalidObservationError, SettingsError
from detectors.numeric_drift import NumericDrift
from detectors.reconstruction import (
    ReconstructionDrift,
    fit_reconstruction,
    outlier_threshold,
    rows_of,
    window_critical,
)
from detectors.reference import numeric_reference

D = 8
NAMES = [f"x{j}" for j in range(D)]


def correlation(seed: int) -> np.ndarray:
    """A random correlation over x2.. (3 factors) and the pair x0, x1 at +0.8."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(D - 2, 3))
    cov = a @ a.T + np.diag(rng.uniform(0.2, 1.0, D - 2))
    sd = np.sqrt(np.diag(cov))
    corr = np.eye(D)
    corr[2:, 2:] = cov / np.outer(sd, sd)
    corr[0, 1] = corr[1, 0] = 0.8
    return corr


def sample(rng: np.random.Generator, n: int, corr: np.ndarray, *, flip: bool = False) -> np.ndarray:
    z = rng.normal(size=(n, D)) @ np.linalg.cholesky(corr).T
    if flip:
        z[:, 1] = -z[:, 1]
    return 100.0 + 5.0 * z


def as_events(x: np.ndarray) -> list[dict[str, Any]]:
    return [dict(zip(NAMES, row, strict=True)) for row in x.tolist()]


@pytest.fixture(scope="module")
def corr() -> np.ndarray:
    return correlation(0)


@pytest.fixture(scope="module")
def reference(corr: np.ndarray) -> dict[str, Any]:
    return fit_reconstruction(sample(np.random.default_rng(1), 4000, corr), NAMES)


def _mean_spe(ref: dict[str, Any], x: np.ndarray) -> float:
    det = ReconstructionDrift(reference=ref)
    t = det._centred(x) @ det._w.T
    return float(np.minimum((t[:, ref["k"] :] ** 2).sum(axis=1), ref["spe"]["cap"]).mean())


@pytest.mark.parametrize("normal_scores", [False, True])
def test_held_out_errors_match_fresh_data_and_fitting_errors_are_lower(
    corr: np.ndarray, normal_scores: bool
) -> None:
    """Small references (60 rows, 8 features), where the bias of in-sample errors is
    large: over 30 of them, held-out errors are on average what new rows get."""
    held, in_sample = [], []
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        x = sample(rng, 60, corr)
        ref = fit_reconstruction(x, NAMES, variance=0.7, normal_scores=normal_scores)
        fresh = _mean_spe(ref, sample(rng, 20_000, corr))
        held.append(ref["spe"]["mean"] / fresh)
        in_sample.append(_mean_spe(ref, x[0::2]) / fresh)
    assert 0.85 < float(np.mean(held)) < 1.15, np.mean(held)
    assert float(np.mean(in_sample)) < 0.8, np.mean(in_sample)


def test_components_explain_the_requested_variance(corr: np.ndarray) -> None:
    x = sample(np.random.default_rng(3), 4000, corr)
    for variance in (0.6, 0.9, 0.99):
        ref = fit_reconstruction(x, NAMES, variance=variance)
        assert ref["explained"] >= variance or ref["k"] == D - 1
        assert 1 <= ref["k"] <= D - 1


def test_correlation_flip_fires_where_per_feature_drift_stays_quiet(
    corr: np.ndarray, reference: dict[str, Any]
) -> None:
    rng = np.random.default_rng(4)
    det = ReconstructionDrift(sensitivity=4.3e7, reference=reference)
    x = np.vstack([sample(rng, 2000, corr), sample(rng, 3000, corr, flip=True)])
    changes, _ = det.update_rows(x)
    assert [c.state for c in changes] == ["drift"]
    assert 2000 < changes[0].events_seen <= 3000
    assert changes[0].signal == "multivariate" and changes[0].detector == "spe"
    # The marginals did not move: vigil's per-feature test does not see it.
    ref_rows = sample(np.random.default_rng(1), 4000, corr)
    for j in (0, 1):
        nd = NumericDrift(sensitivity=4.3e7, reference=numeric_reference(ref_rows[:, j]))
        assert not [c for c in nd.update_many(x[:, j].tolist()) if c.state == "drift"]


def test_recovers_when_the_correlation_returns(corr: np.ndarray, reference: dict[str, Any]) -> None:
    rng = np.random.default_rng(5)
    det = ReconstructionDrift(sensitivity=4.3e7, reference=reference)
    x = np.vstack([sample(rng, 1000, corr, flip=True), sample(rng, 3000, corr)])
    changes, _ = det.update_rows(x)
    assert [c.state for c in changes] == ["drift", "recovered"]
    assert changes[1].events_seen > 1000 + det.window
    assert not det.drifting


def test_window_test_is_calibrated_on_stationary_data(
    corr: np.ndarray, reference: dict[str, Any]
) -> None:
    """At a loose level the share of windows over the threshold is about ``alpha``
    (the alarm level itself is too rare to measure in a unit test)."""
    rng = np.random.default_rng(6)
    det = ReconstructionDrift(sensitivity=125 / 0.02, reference=reference)
    assert det.alpha_window == pytest.approx(0.02)
    over = checks = 0
    for _ in range(1600):
        det.update_rows(sample(rng, det.step, corr))
        if det.events_seen >= det.window:
            checks += 1
            over += det.statistic > det.threshold
    assert 0.2 * 0.02 < over / checks < 2.5 * 0.02, over / checks


def test_outlier_flag_rate_and_recall(corr: np.ndarray, reference: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    det = ReconstructionDrift(outlier_quantile=0.99, reference=reference)
    _, scores = det.update_rows(sample(rng, 50_000, corr))
    rate = float((scores > det.outlier_threshold).mean())
    assert 0.004 < rate < 0.015, rate
    # 6 sd in a random direction of standardised feature space: flagged.
    base = sample(rng, 1000, corr)
    u = rng.normal(size=(1000, D))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    _, far = det.update_rows(base + 6.0 * 5.0 * u)
    assert float((far > det.outlier_threshold).mean()) > 0.95


def test_along_the_structure_is_not_an_outlier_against_it_is(reference: dict[str, Any]) -> None:
    det = ReconstructionDrift(reference=reference)
    centre = dict.fromkeys(NAMES, 100.0)
    along = {**centre, "x0": 112.0, "x1": 112.0}  # 2.4 sd each, as x0 and x1 move
    against = {**centre, "x0": 112.0, "x1": 88.0}
    det.update(along)
    assert not det.last_outlier
    det.update(against)
    assert det.last_outlier and det.is_outlier(det.last_score)
    assert det.score(against) == pytest.approx(det.last_score)
    assert det.score(along) < det.score(against)


def test_update_and_update_rows_agree(corr: np.ndarray, reference: dict[str, Any]) -> None:
    x = sample(np.random.default_rng(8), 3000, corr, flip=True)
    one = ReconstructionDrift(sensitivity=1e7, reference=reference)
    per_event = [c for e in as_events(x) for c in one.update(e)]
    scores_one = one.score_many(as_events(x))
    batch = ReconstructionDrift(sensitivity=1e7, reference=reference)
    changes, scores = batch.update_rows(x)
    assert [(c.state, c.events_seen) for c in changes] == [
        (c.state, c.events_seen) for c in per_event
    ]
    np.testing.assert_allclose(scores, scores_one, rtol=1e-9)
    assert batch.statistic == pytest.approx(one.statistic, rel=1e-9)
    assert batch.events_seen == one.events_seen == 3000


def test_missing_and_wrong_type_values_are_imputed_and_counted(reference: dict[str, Any]) -> None:
    det = ReconstructionDrift(reference=reference)
    centre = dict.fromkeys(NAMES, 100.0)
    det.update(centre)
    assert det.imputed == 0
    det.update({**centre, "x0": None, "x1": "oops", "x2": True, "x3": math.inf})
    det.update({k: v for k, v in centre.items() if k != "x4"})
    assert det.imputed == 5
    # Every value imputed: the event sits at the reference mean.
    _, scores = det.update_rows(np.array([[math.nan] * D]))
    assert det.imputed == 5 + D and scores[0] < 1e-9
    assert det.score({}) < 1e-9


def test_learns_the_numeric_features_most_often_present() -> None:
    rng = np.random.default_rng(9)
    det = ReconstructionDrift(reference_size=400)
    for i in range(400):
        a = float(rng.normal())
        event: dict[str, Any] = {"a": a, "b": a + float(rng.normal()), "c": float(rng.normal())}
        event["plan"] = "pro"
        event["flag"] = True
        if i == 0:
            del event["b"]  # the first event lacks a feature the rest have
        if i % 3 == 0:
            event["rare"] = 1.0
        assert det.update(event) == []
        assert det.last_score == 0.0
    assert det.active
    assert det.feature_names == ["a", "b", "c", "rare"]
    assert det.learned_reference is not None


def test_inert_without_two_numeric_features() -> None:
    det = ReconstructionDrift(reference_size=50)
    for i in range(200):
        assert det.update({"only": float(i), "cat": "x"}) == []
    assert not det.active and det.states() == [] and det.last_score == 0.0
    assert not det.is_outlier(1e9)


def test_rejects_bad_input_without_changing_state(reference: dict[str, Any]) -> None:
    det = ReconstructionDrift(reference=reference)
    before = det.snapshot()
    for bad in (None, "x0", [("x0", 1.0)], 3.0):
        with pytest.raises(InvalidObservationError, match="mapping"):
            det.update(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidObservationError, match="columns"):
        det.update_rows(np.zeros((3, D + 1)))
    assert det.snapshot() == before
    with pytest.raises(InvalidObservationError, match="active"):
        ReconstructionDrift().update_rows(np.zeros((1, D)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"outlier_quantile": 1.0}, "outlier_quantile"),
        ({"outlier_quantile": 0.2}, "outlier_quantile"),
        ({"variance": 1.0}, "variance"),
        ({"window": 100, "step": 30}, "multiple"),
        ({"sensitivity": 0}, "sensitivity"),
        ({"features": ["a"]}, "features"),
        ({"features": ["a", "a"]}, "features"),
        ({"reference": {"type": "numeric"}}, "reference"),
        ({"signal": ""}, "signal"),
    ],
)
def test_settings_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        ReconstructionDrift(**kwargs)


def test_features_must_match_a_given_reference(reference: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="differ"):
        ReconstructionDrift(reference=reference, features=["x0", "x1"])
    assert ReconstructionDrift(reference=reference, features=list(NAMES)).feature_names == NAMES


def test_fit_rejects_what_it_cannot_fit() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit_reconstruction(np.zeros((100, 1)), ["a"])
    with pytest.raises(ValueError, match="too small"):
        fit_reconstruction(np.zeros((10, 3)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="columns"):
        fit_reconstruction(np.zeros((100, 3)), ["a", "b"])


def test_reference_outliers_do_not_blur_the_fit(corr: np.ndarray) -> None:
    clean = sample(np.random.default_rng(10), 4000, corr)
    dirty = clean.copy()
    dirty[::200, 0] += 500.0  # 0.5 % absurd rows
    a = fit_reconstruction(clean, NAMES, normal_scores=False)
    b = fit_reconstruction(dirty, NAMES, normal_scores=False)
    assert b["sd"][0] == pytest.approx(a["sd"][0], rel=0.05)
    assert b["eigenvalues"][0] == pytest.approx(a["eigenvalues"][0], rel=0.05)


def test_constant_feature_and_learned_snapshot_round_trip() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(600, 3))
    x[:, 2] = 7.0
    ref = fit_reconstruction(x, ["a", "b", "c"], normal_scores=False)
    assert ref["sd"][2] == 1.0
    det = ReconstructionDrift(reference=ref)
    det.update({"a": 0.0, "b": 0.0, "c": 7.0})
    ok = det.last_score
    det.update({"a": 0.0, "b": 0.0, "c": 9.0})
    assert det.last_score > ok
    restored = ReconstructionDrift.restore(det.snapshot())
    assert restored.snapshot() == det.snapshot()


def test_helpers() -> None:
    assert rows_of([{"a": 1}], ["a", "b"]).shape == (1, 2)
    # Skewed (small nu) window means need a larger critical value.
    assert window_critical(1e-6, 250, 0.5) > window_critical(1e-6, 250, 50.0)
    score = {"c": 1.0, "nu": 20.0, "tail_u": 31.4, "tail_p": 0.95, "tail_sigma": 2.2}
    assert outlier_threshold({**score, "tail_xi": 0.0}, 0.9) == pytest.approx(28.41, abs=0.01)
    assert outlier_threshold({**score, "tail_xi": 0.5}, 0.9999) > outlier_threshold(
        {**score, "tail_xi": 0.0}, 0.9999
    )


def test_normal_scores_are_monotone_continue_outside_and_split_ties() -> None:
    from detectors.reconstruction import _marginal_table, _NormalScores

    rng = np.random.default_rng(12)
    fit = np.column_stack([rng.lognormal(0.0, 1.0, 3000), rng.poisson(3.0, 3000)])
    to_z = _NormalScores(_marginal_table(fit))
    grid = np.linspace(-5.0, 60.0, 2001)
    z = to_z(np.column_stack([grid, grid]))
    assert np.all(np.diff(z[:, 0]) >= 0) and np.all(np.diff(z[:, 1]) >= 0)
    # Normal scores of the reference itself: about standard normal, skew gone.
    zf = to_z(fit)
    assert abs(float(zf[:, 0].mean())) < 0.05 and abs(float(zf[:, 0].std()) - 1) < 0.05
    assert abs(float(np.mean(zf[:, 0] ** 3))) < 0.1
    # Beyond the reference's range the map continues in units of the feature's sd.
    hi = fit[:, 0].max()
    far = to_z(np.array([[hi + 10 * fit[:, 0].std(), 3.0]]))[0, 0]
    edge = to_z(np.array([[hi, 3.0]]))[0, 0]
    assert far - edge == pytest.approx(10.0, rel=0.01)
    # A discrete value gets the middle of its run of tied quantiles: P(X <= 3) of a
    # Poisson(3) is 0.647, P(X < 3) is 0.423, the middle 0.535.
    z3 = to_z(np.array([[1.0, 3.0]]))[0, 1]
    assert float(special_ndtr(z3)) == pytest.approx(0.535, abs=0.03)
    assert math.isnan(to_z(np.array([[math.nan, 1.0]]))[0, 0])


def special_ndtr(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def test_rows_of_gives_the_same_matrix_on_its_float_fast_path_as_value_by_value() -> None:
    """All-float events take one C call per row; any other value, the per-value path:
    the matrix is the same either way (NaN for what is not a finite number)."""
    rng = np.random.default_rng(5)
    names = ["a", "b", "c"]
    plain = [dict(zip(names, map(float, rng.normal(size=3)), strict=True)) for _ in range(50)]
    plain[3]["b"] = math.inf
    plain[7]["c"] = math.nan
    fast = rows_of(plain, names)
    # The same values with one int among them: the per-value path (an int is a number).
    mixed = [dict(e) for e in plain]
    mixed[10]["a"] = 0
    slow = rows_of(mixed, names)
    expected = np.array([[e[n] for n in names] for e in plain])
    expected[~np.isfinite(expected)] = np.nan
    np.testing.assert_array_equal(fast, expected)
    expected[10, 0] = 0.0
    np.testing.assert_array_equal(slow, expected)
    # Missing features and non-numbers: NaN, as before.
    odd = [{"a": 1.5, "b": "x"}, {"a": True, "c": 2.0}, {"b": np.float32(0.5), "c": None}]
    assert np.isnan(rows_of(odd, names)).tolist() == [
        [False, True, True],
        [True, True, False],
        [True, False, True],
    ]


def test_marginal_table_is_the_same_whether_columns_are_taken_together_or_one_by_one() -> None:
    from detectors.reconstruction import GRID, _marginal_table

    rng = np.random.default_rng(4)
    fit = np.column_stack(
        [rng.normal(size=999), rng.poisson(2.0, 999).astype(float), rng.lognormal(size=999)]
    )
    together = _marginal_table(fit)  # every value finite: one quantile call
    with_gap = fit.copy()
    with_gap[0, 0] = math.nan  # one value missing: column by column
    apart = _marginal_table(with_gap)
    grid = np.linspace(0.0, 1.0, GRID)
    for j in range(fit.shape[1]):
        assert together["quantiles"][j] == np.quantile(fit[:, j], grid).tolist()
        assert together["sd"][j] == float(fit[:, j].std(ddof=1))
    assert apart["quantiles"][1:] == together["quantiles"][1:]
    assert apart["quantiles"][0] == np.quantile(fit[1:, 0], grid).tolist()
