import math
import random
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from detectors.adjudication import MAX_CLASSES, Adjudicator, log_odds_weight, weighted_median
from detectors.errors import InvalidObservationError, SettingsError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reviews_wanted": 0},
        {"reviews_wanted": 17},
        {"timeout_s": 0},
        {"max_pending": 0},
        {"num_classes": 1},
        {"max_decided": 0},
        {"value_tolerance": -1.0},
        {"value_tolerance": math.nan},
    ],
)
def test_settings_are_checked(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        Adjudicator(**kwargs)


def test_a_second_label_from_the_same_reviewer_replaces_the_first() -> None:
    adj = Adjudicator(reviews_wanted=2)
    assert adj.add_label("e", "a", reviewer="ann", now=T0).status == "pending"
    assert adj.add_label("e", "b", reviewer="ann", now=T0).status == "replaced"
    assert adj.pending == 1  # still one reviewer: not complete
    result = adj.add_label("e", "b", reviewer="bob", now=T0)
    (d,) = result.decisions
    assert result.status == "decided"
    assert [(r.reviewer, r.label) for r in d.labels] == [("ann", "b"), ("bob", "b")]
    assert (d.final, d.method, d.agreement, d.reason) == ("b", "majority", 1.0, "complete")


def test_labels_after_the_decision_are_late_until_forgotten() -> None:
    adj = Adjudicator(max_decided=2)
    for e in ("e1", "e2"):
        assert adj.add_label(e, "a", reviewer="ann", now=T0).status == "decided"
    assert adj.add_label("e1", "b", reviewer="bob", now=T0).status == "late"
    assert adj.add_label("e1", "b", source="outcome", now=T0).status == "late"
    adj.add_label("e3", "a", reviewer="ann", now=T0)  # e1 is forgotten now
    assert adj.add_label("e1", "b", reviewer="bob", now=T0).status == "decided"
    assert adj.counts["late"] == 2


def test_when_full_the_oldest_event_is_decided_first() -> None:
    adj = Adjudicator(reviews_wanted=3, max_pending=2)
    adj.add_label("e1", "a", reviewer="ann", now=T0)
    adj.add_label("e2", "b", reviewer="ann", now=T0)
    adj.add_label("e1", "c", reviewer="bob", now=T0)
    result = adj.add_label("e3", "c", reviewer="ann", now=T0)
    assert result.status == "pending"
    assert [(d.event_id, d.reason, d.final) for d in result.decisions] == [("e1", "evicted", "a")]
    assert adj.pending == 2


def test_timeouts_decide_in_order_and_time_never_runs_backwards() -> None:
    adj = Adjudicator(reviews_wanted=2, timeout_s=60)
    adj.add_label("e1", "a", reviewer="ann", now=T0)
    adj.add_label("e2", "a", reviewer="ann", now=T0 + timedelta(seconds=30))
    assert adj.expire(T0 + timedelta(seconds=59)) == []
    assert [d.event_id for d in adj.expire(T0 + timedelta(seconds=60))] == ["e1"]
    # A label stamped in the past counts at the latest time seen.
    adj.add_label("e3", "a", reviewer="ann", now=T0)
    decided = adj.expire(T0 + timedelta(seconds=90))
    assert [(d.event_id, d.method, d.reason) for d in decided] == [("e2", "single", "timeout")]
    assert adj.pending == 1


def test_an_outcome_overrides_the_reviews() -> None:
    adj = Adjudicator(reviews_wanted=3)
    adj.add_label("e", "a", reviewer="ann", now=T0)
    adj.add_label("e", "a", reviewer="bob", now=T0)
    (d,) = adj.add_label("e", "b", source="outcome", now=T0).decisions
    assert (d.final, d.method, d.reason, d.posterior, d.confidence) == (
        "b",
        "outcome",
        "outcome",
        (0.0, 0.0, 1.0),
        1.0,
    )
    assert d.agreement == pytest.approx(1 / 3)
    assert d.human_labels == 2


def test_weighted_vote_overrides_a_plurality_of_weak_reviewers() -> None:
    rel = {"ann": 0.7, "bob": 0.7, "eve": 0.98}.get
    adj = Adjudicator(reviews_wanted=3, num_classes=5)
    for r, x in (("ann", "cat"), ("bob", "cat"), ("eve", "dog")):
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    (d,) = result.decisions
    assert (d.final, d.method) == ("dog", "weighted")
    # With two classes too: 2 log(0.7 / 0.3) = 1.69 < log(0.98 / 0.02) = 3.89.
    adj2 = Adjudicator(reviews_wanted=3, num_classes=2)
    for r, x in (("ann", "cat"), ("bob", "cat"), ("eve", "dog")):
        result = adj2.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    assert result.decisions[0].final == "dog"


def test_without_num_classes_k_is_the_number_of_classes_seen() -> None:
    # 2 log(0.8 (K-1) / 0.2) against log(0.95 (K-1) / 0.05): with K = 5, 5.55 > 4.33 and the
    # two agreeing reviewers win; with K = 2 (this event's own distinct labels), 2.77 < 2.94.
    rel = {"ann": 0.8, "bob": 0.8, "eve": 0.95}.get
    split = (("ann", "cat"), ("bob", "cat"), ("eve", "dog"))
    fresh = Adjudicator(reviews_wanted=3)
    for r, x in split:
        result = fresh.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    assert (result.decisions[0].final, result.decisions[0].num_classes) == ("dog", 2)
    seen = Adjudicator(reviews_wanted=3)
    for i, x in enumerate(["cat", "dog", "cow", "pig", "owl", "cat"]):
        seen.add_label(f"single-{i}", x, reviewer="ann", now=T0, reviews_wanted=1)
    for r, x in split:
        result = seen.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    assert (result.decisions[0].final, result.decisions[0].num_classes) == ("cat", 5)
    # The classes seen survive a snapshot; a snapshot from before they were kept loads.
    snap = seen.snapshot()
    assert snap["state"]["classes"] == ["cat", "cow", "dog", "owl", "pig"]
    del snap["state"]["classes"]
    old = Adjudicator.restore(snap)
    (d,) = old.add_label("f", "x", now=T0, reviews_wanted=1).decisions
    assert d.num_classes == 2
    assert old.snapshot()["state"]["classes"] == ["x"]


def test_the_classes_remembered_are_capped() -> None:
    adj = Adjudicator(max_decided=10)
    for i in range(MAX_CLASSES + 50):
        adj.add_label(f"e{i}", f"class-{i}", reviewer="ann", now=T0)
    state = adj.snapshot()["state"]
    assert len(state["classes"]) == MAX_CLASSES
    assert set(state["class_counts"]) == set(state["classes"])  # a count per name kept, no more


@pytest.mark.parametrize(
    "reliability",
    [None, {"ann": 0.8, "bob": 0.8, "cy": 0.8}.get, {"ann": 0.99, "bob": 0.6}.get],
    ids=["none", "equal", "one-unknown"],
)
def test_unknown_or_equal_reliabilities_fall_back_to_the_plurality(reliability) -> None:
    adj = Adjudicator(reviews_wanted=3, num_classes=3)
    for r, x in (("ann", "x"), ("bob", "y"), ("cy", "y")):
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=reliability)
    (d,) = result.decisions
    assert (d.final, d.method) == ("y", "majority")
    assert d.agreement == pytest.approx(2 / 3)


def test_ties_go_to_the_larger_weighted_vote_then_to_the_first_label() -> None:
    adj = Adjudicator(reviews_wanted=2, num_classes=3)
    adj.add_label("e", "x", reviewer="ann", now=T0)
    (d,) = adj.add_label("e", "y", reviewer="bob", now=T0).decisions
    assert (d.final, d.method) == ("x", "majority")
    rel = {"ann": 0.6, "bob": 0.9}.get
    adj.add_label("f", "x", reviewer="ann", now=T0, reliability=rel)
    (d,) = adj.add_label("f", "y", reviewer="bob", now=T0, reliability=rel).decisions
    assert (d.final, d.method) == ("y", "weighted")


def test_posterior_is_bayes_under_the_one_coin_model() -> None:
    """Against brute force: P(truth = c | labels) with a uniform prior over K classes."""
    k = 4
    probs = {"a": 0.9, "b": 0.65, "c": 0.5, "d": 0.3}
    labels = [("a", "x"), ("b", "y"), ("c", "y"), ("d", "z")]
    adj = Adjudicator(reviews_wanted=4, num_classes=k)
    for r, x in labels:
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=probs.get)
    (d,) = result.decisions
    classes = ["x", "y", "z", "w"]

    def likelihood(truth: str) -> float:
        out = 1.0
        for r, x in labels:
            p = probs[r]
            # A reviewer at or below chance (d: 0.3 < 1 - 1/K... p (K-1)/(1-p) < 1) gets weight
            # 0, i.e. its label is treated as uninformative: drop it from the product.
            if log_odds_weight(p, k) == 0.0:
                continue
            out *= p if x == truth else (1 - p) / (k - 1)
        return out

    total = sum(likelihood(c) for c in classes)
    assert d.posterior == pytest.approx([likelihood(x) / total for _, x in labels])
    assert d.confidence == pytest.approx(max(likelihood(c) for c in classes) / total)
    assert d.final == max(classes, key=likelihood)


def test_log_odds_weight() -> None:
    assert log_odds_weight(0.5, 2) == 0.0
    assert log_odds_weight(0.25, 4) == 0.0
    assert log_odds_weight(0.8, 2) == pytest.approx(math.log(4))
    assert math.isfinite(log_odds_weight(1.0, 10))


def test_values_are_decided_by_the_weighted_median() -> None:
    # 0.95 outweighs 0.3 + 0.3: the median moves to ann's value.
    rel = {"ann": 0.95, "bob": 0.3, "cy": 0.3}.get
    adj = Adjudicator(reviews_wanted=3, value_tolerance=0.5)
    for r, x in (("ann", 10.0), ("bob", 1.0), ("cy", 1.2)):
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    (d,) = result.decisions
    assert (d.final, d.method, d.posterior, d.num_classes) == (10.0, "weighted", None, None)
    assert d.agreement == pytest.approx(1 / 3)
    for r, x in (("ann", 10.0), ("bob", 1.0), ("cy", 1.2)):
        result = adj.add_label("f", x, reviewer=r, now=T0)
    (d,) = result.decisions
    assert (d.final, d.method, d.agreement) == (1.2, "majority", pytest.approx(2 / 3))
    assert weighted_median([3.0, 1.0, 2.0], [0.0, 0.0, 0.0]) == 2.0


def test_bad_labels_are_rejected_before_any_change() -> None:
    adj = Adjudicator(reviews_wanted=3)
    adj.add_label("e", "a", reviewer="ann", now=T0)
    before = adj.snapshot()
    for call in (
        lambda: adj.add_label("e", 1.0, reviewer="bob", now=T0),  # mixed kinds
        lambda: adj.add_label("e", "a", reviewer="bob", now=T0, reviews_wanted=0),
        lambda: adj.add_label("e", "a", reviewer="bob", now=T0, ts=datetime(2026, 1, 1)),  # noqa: DTZ001
        lambda: adj.add_label("e", "", reviewer="bob", now=T0),
        lambda: adj.add_label("e" * 129, "a", reviewer="bob", now=T0),
    ):
        with pytest.raises(InvalidObservationError):
            call()
        assert adj.snapshot() == before


def test_reviews_wanted_is_read_from_the_first_label() -> None:
    adj = Adjudicator(reviews_wanted=1)
    assert adj.add_label("e", "a", reviewer="ann", now=T0, reviews_wanted=2).status == "pending"
    assert adj.add_label("e", "a", reviewer="bob", now=T0, reviews_wanted=5).status == "decided"


def test_weighted_adjudication_beats_the_plurality_with_known_reliabilities() -> None:
    rng = random.Random(3)
    k = 5
    accuracy = {f"r{j}": 0.55 + 0.02 * j for j in range(20)}
    names = list(accuracy)
    adj = Adjudicator(reviews_wanted=3, num_classes=k)
    weighted = plural = 0
    n = 4000
    for i in range(n):
        truth = rng.randrange(k)
        who = rng.sample(names, 3)
        given = [
            truth if rng.random() < accuracy[r] else (truth + rng.randrange(1, k)) % k for r in who
        ]
        for r, x in zip(who, given, strict=True):
            result = adj.add_label(f"e{i}", str(x), reviewer=r, now=T0, reliability=accuracy.get)
        weighted += result.decisions[0].final == str(truth)
        counts = {x: given.count(x) for x in given}
        plural += max(counts, key=counts.__getitem__) == truth
    assert weighted / n >= plural / n + 0.02, (weighted / n, plural / n)


def test_every_combination_of_three_binary_labels_is_decided_consistently() -> None:
    rel = {"a": 0.9, "b": 0.8, "c": 0.7}.get
    for i, labels in enumerate(product("xy", repeat=3)):
        adj = Adjudicator(reviews_wanted=3, num_classes=2)
        for r, x in zip("abc", labels, strict=True):
            result = adj.add_label(f"e{i}", x, reviewer=r, now=T0, reliability=rel)
        (d,) = result.decisions
        assert sum(d.posterior[j] for j, x in enumerate(labels) if x == d.final) / max(
            1, labels.count(d.final)
        ) == pytest.approx(d.confidence)
        assert d.confidence >= 0.5


@pytest.mark.parametrize("bad", [math.nan, 1.5, -0.1, "0.9", True])
def test_a_reliability_that_is_not_a_probability_counts_as_unknown(bad) -> None:
    rel = {"ann": 0.99, "bob": 0.6, "cy": bad}.get
    adj = Adjudicator(reviews_wanted=3, num_classes=3)
    for r, x in (("ann", "x"), ("bob", "y"), ("cy", "y")):
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    (d,) = result.decisions
    assert (d.final, d.method, d.posterior) == ("y", "majority", None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"class_prior_strength": 0.0},
        {"class_prior_strength": math.inf},
        {"class_prior_strength": math.nan},
        {"learn_class_prior": "yes"},
        {"learn_class_prior": 1},
    ],
)
def test_class_prior_settings_are_checked(kwargs: dict) -> None:
    with pytest.raises(SettingsError):
        Adjudicator(**kwargs)


def _decide_singles(adj: Adjudicator, labels: str, prefix: str = "s") -> None:
    for i, x in enumerate(labels):
        adj.add_label(f"{prefix}{i}", x, reviewer="ann", now=T0, reviews_wanted=1)


def test_the_posterior_is_bayes_with_the_learned_class_prior() -> None:
    """Against brute force: P(truth = c | labels) with pi_c = (n_c + a) / (N + K a)."""
    k, a = 4, 2.0
    adj = Adjudicator(reviews_wanted=3, num_classes=k, class_prior_strength=a)
    _decide_singles(adj, "x" * 30 + "y" * 6 + "z" * 2)  # w never given
    counts = {"x": 30, "y": 6, "z": 2, "w": 0}
    pi = {c: (n + a) / (38 + k * a) for c, n in counts.items()}
    assert adj.class_prior == pytest.approx({c: pi[c] for c in "xyz"})
    probs = {"a": 0.9, "b": 0.75, "c": 0.7}
    labels = [("a", "y"), ("b", "z"), ("c", "x")]
    for r, x in labels:
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=probs.get)
    (d,) = result.decisions

    def joint(truth: str) -> float:
        out = pi[truth]
        for r, x in labels:
            p = probs[r]
            out *= p if x == truth else (1 - p) / (k - 1)
        return out

    total = sum(joint(c) for c in counts)
    assert d.method == "weighted"
    assert d.posterior == pytest.approx([joint(x) / total for _, x in labels])
    assert d.final == max("xyz", key=joint) == "x"  # the prior outweighs a's edge over c
    assert d.confidence == pytest.approx(joint("x") / total)
    # The same labels with a uniform prior: the most reliable reviewer's label.
    flat = Adjudicator(reviews_wanted=3, num_classes=k, learn_class_prior=False)
    _decide_singles(flat, "x" * 30 + "y" * 6 + "z" * 2)
    assert set(flat.class_prior.values()) == {1 / k}
    for r, x in labels:
        result = flat.add_label("e", x, reviewer=r, now=T0, reliability=probs.get)
    assert result.decisions[0].final == "y"


def test_the_prior_starts_uniform_and_cannot_overrule_reviewers_early() -> None:
    rel = {"ann": 0.8, "bob": 0.65}.get
    adj = Adjudicator(reviews_wanted=2, num_classes=5)
    assert adj.class_prior == {}
    # 20 decisions, every one "common": pi_common / pi_rare = 40 / 20, a log-odds of 0.69,
    # less than ann's edge over bob (log(0.8 / 0.2) - log(0.65 / 0.35) = 0.77).
    _decide_singles(adj, "c" * 20)
    assert adj.class_prior["c"] == pytest.approx(40 / 120)
    adj.add_label("e", "rare", reviewer="ann", now=T0, reliability=rel)
    (d,) = adj.add_label("e", "c", reviewer="bob", now=T0, reliability=rel).decisions
    assert (d.final, d.method) == ("rare", "weighted")
    # 200 more: a factor 12 (2.48), and the common class wins the same split.
    _decide_singles(adj, "c" * 200, prefix="t")
    adj.add_label("f", "rare", reviewer="ann", now=T0, reliability=rel)
    (d,) = adj.add_label("f", "c", reviewer="bob", now=T0, reliability=rel).decisions
    assert (d.final, d.method) == ("c", "weighted")
    assert d.confidence > 0.5


def test_equal_weights_keep_the_plurality_whatever_the_prior() -> None:
    rel = {"ann": 0.8, "bob": 0.8, "cy": 0.8}.get
    adj = Adjudicator(reviews_wanted=3, num_classes=3, class_prior_strength=1.0)
    _decide_singles(adj, "c" * 500)
    for r, x in (("ann", "x"), ("bob", "x"), ("cy", "c")):
        result = adj.add_label("e", x, reviewer=r, now=T0, reliability=rel)
    (d,) = result.decisions
    # The posterior favours "c" (the prior), the decision stays the reviewers' count.
    assert (d.final, d.method) == ("x", "majority")
    assert d.posterior is not None and d.posterior[2] > d.posterior[0]


def test_decisions_with_a_human_label_count_toward_the_prior_outcomes_alone_do_not() -> None:
    adj = Adjudicator(reviews_wanted=2, num_classes=3)
    for i in range(10):
        adj.add_label(f"o{i}", "x", source="outcome", now=T0)  # traffic, not reviewed
    adj.add_label("e", "y", reviewer="ann", now=T0)
    adj.add_label("e", "z", source="outcome", now=T0)  # reviewed, then the outcome
    adj.add_label("f", "y", reviewer="ann", now=T0)
    adj.add_label("f", "y", reviewer="bob", now=T0)
    adj.add_label("g", 1.5, reviewer="ann", now=T0, reviews_wanted=1)  # values: not classes
    assert adj.snapshot()["state"]["class_counts"] == {"y": 1, "z": 1}


def test_the_class_counts_survive_a_snapshot_and_older_snapshots_start_uniform() -> None:
    adj = Adjudicator(num_classes=2)
    _decide_singles(adj, "aab")
    snap = adj.snapshot()
    assert snap["state"]["class_counts"] == {"a": 2, "b": 1}
    assert Adjudicator.restore(snap).class_prior == adj.class_prior
    del snap["state"]["class_counts"]
    del snap["settings"]["learn_class_prior"], snap["settings"]["class_prior_strength"]
    old = Adjudicator.restore(snap)
    assert old.class_prior == {"a": 0.5, "b": 0.5}
    assert old.learn_class_prior is True
