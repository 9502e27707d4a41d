import math
import random
from datetime import UTC, datetime

import pytest

from detectors.adjudication import Adjudicator
from detectors.errors import InvalidObservationError, SettingsError
from detectors.reviewer_reliability import OTHER, ReviewerReliability, wilson_interval

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Z95 = 1.959963984540054


@pytest.mark.parametrize(
    ("successes", "n", "lower", "upper"),
    # Newcombe (1998), Table I, method 3 (Wilson score interval, no continuity correction).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611)],
)
def test_wilson_interval_matches_newcombe(
    successes: int, n: int, lower: float, upper: float
) -> None:
    lo, hi = wilson_interval(successes, n, Z95)
    assert (round(lo, 4), round(hi, 4)) == (lower, upper)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_reviewers": 0},
        {"prior_correct": 0},
        {"prior_wrong": -1},
        {"min_gold_accuracy": 1.5},
        {"confidence": 0.3},
        {"confidence": 1.0},
        {"min_gold": 0},
        {"agreement_weight": -1},
    ],
)
def test_settings_are_checked(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        ReviewerReliability(**kwargs)


def test_reviewers_beyond_the_cap_share_other() -> None:
    rel = ReviewerReliability(max_reviewers=2)
    for r in ("a", "b", "c", "d"):
        rel.observe_gold(r, r != "d")
    assert rel.reviewers == ("a", "b", OTHER)
    assert rel.key("c") == rel.key("d") == OTHER
    s = rel.stats("zzz")
    assert (s.reviewer, s.gold, s.gold_correct, s.labels) == (OTHER, 2, 1, 2)
    assert rel.reliability("c") == rel.reliability("d") == rel.reliability(OTHER)
    for i in range(1000):
        rel.observe_gold(f"new-{i}", True)
    assert len(rel.reviewers) == 3


def test_gold_statistics_and_the_flag() -> None:
    rel = ReviewerReliability(min_gold_accuracy=0.8, min_gold=5, hysteresis=0.05)
    changes = []
    for _ in range(4):
        changes += rel.observe_gold("r", False)
    assert changes == []  # clearly bad, but fewer than min_gold items
    changes += rel.observe_gold("r", False)
    assert [(c.signal, c.state, c.events_seen) for c in changes] == [
        ("reviewer:r:gold_accuracy", "drift", 5)
    ]
    assert changes[0].statistic == pytest.approx(wilson_interval(0, 5, Z95)[1])
    assert rel.flagged == ("r",)
    recovered = []
    n = 5
    while not recovered:
        recovered = rel.observe_gold("r", True)
        n += 1
    s = rel.stats("r")
    assert recovered[0].state == "recovered"
    assert s.gold_upper >= 0.85 > wilson_interval(s.gold_correct - 1, s.gold - 1, Z95)[1]
    assert not s.flagged and rel.flagged == ()
    assert (s.gold, s.gold_accuracy) == (n, (n - 5) / n)
    assert [st.drifting for st in rel.states()] == [False]


def test_reliability_is_the_beta_posterior_mean() -> None:
    rel = ReviewerReliability(prior_correct=4, prior_wrong=1, agreement_weight=0.5)
    assert rel.reliability("new") == 0.8
    rel.observe_gold("r", True)
    rel.observe_gold("r", False)
    rel.observe_agreement("r", 0.9, True)
    rel.observe_agreement("r", 0.2, False)
    assert rel.reliability("r") == pytest.approx((4 + 1 + 0.5 * 1.1) / (5 + 2 + 0.5 * 2))
    s = rel.stats("r")
    assert (s.agreement, s.adjudicated, s.labels) == (0.5, 2, 2)
    # The bound over all evidence weighs adjudicated labels as p_r does (and as the flag
    # with flag_on="all" does).
    assert s.upper == pytest.approx(wilson_interval(1 + 0.5 * 1.1, 2 + 0.5 * 2, 1.959964)[1])
    assert s.upper != pytest.approx(wilson_interval(1 + 1.1, 2 + 2, 1.959964)[1])


def decide(adj: Adjudicator, rel: ReviewerReliability, event: str, labels: list[tuple[str, str]]):
    for r, x in labels:
        result = adj.add_label(event, x, reviewer=r, now=T0, reliability=rel.reliability)
    (d,) = result.decisions
    rel.observe_decision(d)
    return d


def test_decisions_count_labels_and_score_only_overlapped_events() -> None:
    rel = ReviewerReliability()
    single = Adjudicator(reviews_wanted=1, num_classes=3)
    decide(single, rel, "e1", [("ann", "x")])
    s = rel.stats("ann")
    assert (s.labels, s.adjudicated, s.reliability) == (1, 0, 0.8)
    triple = Adjudicator(reviews_wanted=3, num_classes=3)
    d = decide(triple, rel, "e2", [("ann", "x"), ("bob", "x"), ("cy", "y")])
    assert d.final == "x"
    a, c = rel.stats("ann"), rel.stats("cy")
    assert (a.labels, a.adjudicated, a.agreement, c.agreement) == (2, 1, 1.0, 0.0)
    assert a.reliability == pytest.approx((4 + d.posterior[0]) / 6)
    assert c.reliability == pytest.approx((4 + d.posterior[2]) / 6)
    assert a.reliability > 0.8 > c.reliability
    # An outcome: the reviewers are scored against it with certainty.
    d = single.add_label("e3", "y", source="outcome", now=T0).decisions[0]
    assert d.human_labels == 0
    rel.observe_decision(d)
    assert rel.stats("ann").labels == 2


def test_online_em_recovers_reliabilities_without_gold() -> None:
    """No gold at all: three labels per item, reliabilities from agreement alone."""
    rng = random.Random(11)
    k = 4
    accuracy = {f"r{j}": 0.6 + 0.035 * j for j in range(10)}
    rel = ReviewerReliability()
    adj = Adjudicator(reviews_wanted=3, num_classes=k)
    for i in range(6000):
        truth = rng.randrange(k)
        labels = [
            (r, str(truth if rng.random() < accuracy[r] else (truth + rng.randrange(1, k)) % k))
            for r in rng.sample(list(accuracy), 3)
        ]
        decide(adj, rel, f"e{i}", labels)
    errors = [abs(rel.reliability(r) - p) for r, p in accuracy.items()]
    assert max(errors) < 0.05, errors


def test_bad_input_is_rejected() -> None:
    rel = ReviewerReliability()
    with pytest.raises(InvalidObservationError):
        rel.observe_gold("r" * 129, True)
    with pytest.raises(InvalidObservationError):
        rel.observe_agreement("r", math.inf, None)
    assert rel.snapshot()["state"]["reviewers"] == {}


def test_flag_on_all_flags_from_adjudicated_labels_without_gold() -> None:
    rel = ReviewerReliability(flag_on="all", min_gold=10)
    adj = Adjudicator(reviews_wanted=3, num_classes=4)
    alerts = []
    for i in range(40):
        for r, x in (("ann", "x"), ("bob", "x"), ("bad", "y" if i % 4 else "x")):
            result = adj.add_label(f"e{i}", x, reviewer=r, now=T0, reliability=rel.reliability)
        alerts += rel.observe_decision(result.decisions[0])
    assert [(a.signal, a.state) for a in alerts] == [("reviewer:bad:accuracy", "drift")]
    assert alerts[0].current["gold"] == 0 and alerts[0].current["gold_accuracy"] is None
    assert rel.flagged == ("bad",)
    assert [s.signal for s in rel.states() if s.drifting] == ["reviewer:bad:accuracy"]
    # The default flags on gold only: the same evidence raises nothing.
    gold_only = ReviewerReliability()
    assert gold_only.observe_decision(result.decisions[0]) == []


def test_flag_on_is_checked() -> None:
    with pytest.raises(SettingsError):
        ReviewerReliability(flag_on="soft")
