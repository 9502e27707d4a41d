"""VersionCanary: a new version's predictions against the old one's, same time span."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detectors.canary import VersionCanary
from detectors.errors import InvalidObservationError, SettingsError


def stream(canary: VersionCanary, n: int, rng: random.Random, new_share: float, old, new) -> list:  # type: ignore[no-untyped-def]
    fired = []
    for _ in range(n):
        is_new = rng.random() < new_share
        for change in canary.update(is_new, new(rng) if is_new else old(rng)):
            fired.append((canary.new_seen, change.state))
    return fired


def test_identical_versions_stay_within_the_false_alarm_rate() -> None:
    # A loose budget (one false alarm per 20,000 new-version predictions) so that the
    # rate can be seen: 400,000 new predictions expect at most 20 drift edges.
    rng = random.Random(11)
    canary = VersionCanary(sensitivity=20_000, window=100, step=50, min_old=50)
    classes = "aaaaabbbcd"
    fired = stream(
        canary, 800_000, rng, 0.5, lambda r: r.choice(classes), lambda r: r.choice(classes)
    )
    drifts = sum(1 for _, state in fired if state == "drift")
    assert canary.new_seen > 390_000
    assert drifts <= 20


def test_a_regression_version_with_a_shifted_value_fires() -> None:
    rng = random.Random(4)
    canary = VersionCanary(window=200, reference_size=400)
    fired = stream(
        canary, 5000, rng, 0.25, lambda r: r.gauss(0.0, 1.0), lambda r: r.gauss(0.5, 1.0)
    )
    assert fired and fired[0][1] == "drift" and fired[0][0] <= 600


def test_the_same_traffic_change_in_both_versions_is_not_a_canary_alert() -> None:
    # Both versions see the traffic move (the old one's distribution changes mid-window
    # as much as the new one's): aligned windows see no difference between them.
    rng = random.Random(9)
    canary = VersionCanary(window=100, step=50)
    fired = []
    for i in range(20_000):
        classes = "aaaabc" if (i // 2000) % 2 else "abbccc"
        for change in canary.update(rng.random() < 0.3, rng.choice(classes)):
            fired.append(change)
    assert fired == []


def test_without_enough_old_predictions_nothing_is_tested() -> None:
    canary = VersionCanary(window=40, step=20, min_old=100)
    for _ in range(1000):
        canary.update(True, "a")
    assert canary.statistic == 0.0 and not canary.drifting


def test_one_canary_takes_one_kind_of_prediction() -> None:
    canary = VersionCanary()
    canary.update(True, "a")
    with pytest.raises(InvalidObservationError, match="class labels"):
        canary.update(False, 1.5)
    values = VersionCanary()
    values.update(False, 1.5)
    with pytest.raises(InvalidObservationError, match="regression values"):
        values.update(True, "a")


def test_settings_are_checked() -> None:
    with pytest.raises(SettingsError, match="multiple of 'step'"):
        VersionCanary(window=100, step=30)
    with pytest.raises(SettingsError, match="'bins' must be at least 2"):
        VersionCanary(bins=1)


def test_numpy_scalars_are_the_bools_strings_and_numbers_they_are() -> None:
    classes, plain = (
        VersionCanary(window=40, step=20, min_old=20),
        VersionCanary(window=40, step=20, min_old=20),
    )
    rng = random.Random(2)
    for _ in range(400):
        is_new, label = rng.random() < 0.5, rng.choice("ab")
        assert classes.update(np.bool_(is_new), np.str_(label)) == plain.update(is_new, label)
    assert classes.snapshot() == plain.snapshot()
    values = VersionCanary()
    values.update(np.True_, np.float32(1.5))
    assert values.new_seen == 1
