import math
import random

import pytest

from detectors.agreement import AgreementMonitor, krippendorff_alpha
from detectors.errors import SettingsError


def pairwise_alpha(items: list[list[str]]) -> float:
    """Krippendorff's alpha from its definition over pairs, independently of the module:
    every ordered pair of labels within an item weighs 1 / (m_u - 1)."""
    pairs: dict[tuple[str, str], float] = {}
    for labels in items:
        m = len(labels)
        if m < 2:
            continue
        for i, a in enumerate(labels):
            for j, b in enumerate(labels):
                if i != j:
                    pairs[a, b] = pairs.get((a, b), 0.0) + 1.0 / (m - 1)
    n = sum(pairs.values())
    n_c: dict[str, float] = {}
    for (a, _), w in pairs.items():
        n_c[a] = n_c.get(a, 0.0) + w
    observed = sum(w for (a, b), w in pairs.items() if a != b) / n
    expected = sum(n_c[a] * n_c[b] for a in n_c for b in n_c if a != b) / (n * (n - 1))
    return 1.0 - observed / expected


def random_items(rng: random.Random, n: int, p: float) -> list[list[str]]:
    out = []
    for _ in range(n):
        truth = rng.choice("abcde")
        m = rng.choice((1, 2, 3, 3, 5))
        out.append([truth if rng.random() < p else rng.choice("abcde") for _ in range(m)])
    return out


def test_alpha_matches_the_pairwise_definition() -> None:
    rng = random.Random(5)
    for p in (0.2, 0.6, 0.95):
        items = random_items(rng, 300, p)
        assert krippendorff_alpha(items) == pytest.approx(pairwise_alpha(items), abs=1e-12)


def test_rolling_alpha_equals_alpha_of_the_window() -> None:
    rng = random.Random(6)
    items = random_items(rng, 2000, 0.7) + random_items(rng, 2000, 0.3)
    mon = AgreementMonitor(window=150, min_items=10)
    pairable = []
    for i, item in enumerate(items):
        mon.update(item)
        if len(item) >= 2:
            pairable.append(item)
        if i % 97 == 0 and pairable:
            assert mon.alpha == krippendorff_alpha(pairable[-150:])
    assert mon.count == 150
    assert mon.items_seen == len(pairable)


def test_undefined_and_perfect_agreement() -> None:
    mon = AgreementMonitor(window=10, min_items=1)
    assert math.isnan(mon.alpha)
    assert mon.update(["a"]) == []  # not pairable
    assert mon.count == 0
    mon.update(["a", "a"])
    assert math.isnan(mon.alpha)  # one class only: no variation to agree on
    mon.update(["b", "b", "b"])
    assert mon.alpha == 1.0
    mon.update(["a", "b"])
    assert mon.alpha < 1.0


def test_the_alert_waits_for_min_items_and_recovers() -> None:
    rng = random.Random(8)
    mon = AgreementMonitor(window=100, min_agreement=0.5, min_items=100, hysteresis=0.1)
    changes = []
    for item in random_items(rng, 99, 0.1):
        changes += mon.update(item if len(item) > 1 else item * 2)
    assert changes == []  # alpha is low, but the window is not full
    for item in random_items(rng, 600, 0.1):
        changes += mon.update(item)
    for item in random_items(rng, 600, 0.95):
        changes += mon.update(item)
    assert [c.state for c in changes] == ["drift", "recovered"]
    assert changes[1].statistic >= 0.6
    assert mon.state().drifting is False


def test_settings_are_checked() -> None:
    with pytest.raises(SettingsError):
        AgreementMonitor(window=10, min_items=11)
    with pytest.raises(SettingsError):
        AgreementMonitor(min_agreement=2.0)
