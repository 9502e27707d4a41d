"""What the contract suite feeds each class: a seeded stream, how one item is applied,
and inputs the class must reject.

Keyed by class name. ``test_contract.py`` fails for a class found in ``detectors/``
that has no entry here, so a new detector is fed before it can be merged.
Streams change regime every few hundred items, so alerts fire and recover inside
them (a contract run over a stream where nothing happens would prove little).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.adjudication import Decision, Review
from detectors.prediction import ClassPrediction, RegressionPrediction

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NAN = float("nan")
INF = float("inf")
NAIVE = datetime(2024, 1, 1)  # noqa: DTZ001 - rejected on purpose


def update(det: Any, x: Any) -> Any:
    return det.update(x)


def update_star(det: Any, x: tuple[Any, ...]) -> Any:
    return det.update(*x)


@dataclass(frozen=True)
class Inputs:
    """``make(i, rng)`` builds item ``i``; ``feed(det, item)`` applies it."""

    make: Callable[[int, random.Random], Any]
    feed: Callable[[Any, Any], Any] = update
    bad: list[Any] = field(default_factory=list)
    # Items for the bounded-memory check (default: ``make``) and how many.
    memory_make: Callable[[int, random.Random], Any] | None = None
    memory_n: int = 20_000


def _phase(i: int, length: int) -> int:
    return (i // length) % 2


def numeric_x(i: int, rng: random.Random) -> float:
    return rng.gauss(1.5 * _phase(i, 1500), 1.0)


def categorical_x(i: int, rng: random.Random) -> str:
    return rng.choice("abccc" if _phase(i, 1500) else "aaabbc")


def status_x(i: int, rng: random.Random) -> str:
    p = 0.15 if _phase(i, 1500) else 0.01
    return "missing" if rng.random() < p else ("out_of_range" if rng.random() < 0.01 else "ok")


def event_x(i: int, rng: random.Random) -> tuple[dict[str, Any], ClassPrediction]:
    mu = float(_phase(i, 1500))
    feats: dict[str, Any] = {f"n{j}": rng.gauss(mu if j == 0 else 0.0, 1) for j in range(4)}
    feats["c"] = rng.choice("abc")
    feats["maybe"] = rng.random() if rng.random() < 0.9 else None
    if i % 97 == 0:
        feats["n2"] = "oops"
    if i == 1700:
        feats["late"] = True
    return feats, ClassPrediction(rng.choice("xy"), rng.uniform(0.5, 1))


def labelled(rng: random.Random, i: int) -> tuple[float, bool]:
    # Miscalibrated in phases, so alerts fire and recover inside the streams.
    c = rng.uniform(0.5, 1.0)
    p = c if (i // 700) % 2 == 0 else c - 0.3
    return c, rng.random() < p


def label_weight(rng: random.Random) -> float:
    """``1 / inclusion probability`` of a label: mostly reviewed escalations (1), some
    2% audits (50) and an audit rate lowered by a cap (an odd value)."""
    return rng.choice((1.0, 1.0, 1.0, 50.0, 1 / 0.013))


def weighted_label(i: int, rng: random.Random) -> tuple[float, bool, float]:
    c, y = labelled(rng, i)
    return c, y, label_weight(rng)


def autoaccept_x(i: int, rng: random.Random) -> tuple[bool, float]:
    # Accepted items wrong 2% of the time, then 15% in phases: the alert fires and recovers.
    p = 0.15 if _phase(i, 700) else 0.02
    return rng.random() >= p, rng.choice((50.0, 50.0, 1.0, 1 / 0.013))


def prediction_x(i: int, rng: random.Random) -> ClassPrediction | RegressionPrediction:
    c = rng.uniform(0.5, 1.0)
    if i % 11 == 0:
        return RegressionPrediction(1.0, (0.0, rng.uniform(0, 5)))
    return ClassPrediction("a", c, {"a": c, "b": 1 - c})


def conformal_x(i: int, rng: random.Random) -> tuple[float, bool, bool, float]:
    c, y = labelled(rng, i)
    escalated = rng.random() < 0.6
    return 1.0 - c, y, escalated, 1.0 if escalated else label_weight(rng)


def performance_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    c, y = labelled(rng, i)
    if i % 3 == 0:
        return ("label", c, y, label_weight(rng))
    return ("event", c if (i // 900) % 2 == 0 else c * 0.8)


def feed_performance(det: Any, x: tuple[Any, ...]) -> Any:
    return det.observe_label(*x[1:]) if x[0] == "label" else det.update(x[1])


def policy_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    pred = prediction_x(i, rng)
    _, y = labelled(rng, i)
    if i % 2:
        escalated = rng.random() < 0.5
        return ("label", pred, y, escalated, 1.0 if escalated else label_weight(rng))
    data = {"out_of_range": ["age"]} if i % 17 == 0 else ()
    return ("decide", pred, T0 + timedelta(seconds=0.5 * i), data, (i // 500) % 2 == 1)


def feed_policy(det: Any, x: tuple[Any, ...]) -> Any:
    if x[0] == "label":
        return det.observe_label(*x[1:])
    _, pred, now, data, drift = x
    return det.decide(pred, now=now, data_reasons=data, drift_active=drift)


def monitor_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    feats, pred = event_x(i, rng)
    c, y = labelled(rng, i)
    other = "y" if pred.label == "x" else "x"
    # Every other prediction carries its scores (classwise calibration learns from them).
    pred = ClassPrediction(pred.label, c, {pred.label: c, other: 1.0 - c} if i % 2 else None)
    if i % 3 == 0:
        truth = pred.label if y else ("y" if pred.label == "x" else "x")
        escalated = rng.random() < 0.4
        inclusion = 1.0 if escalated else rng.choice([1.0, 0.2, 0.05])
        return ("label", pred, truth, escalated, inclusion, segment_x(i, rng))
    return ("event", feats, pred, T0 + timedelta(seconds=0.5 * i), f"e-{i}", segment_x(i, rng))


def segment_x(i: int, rng: random.Random) -> dict[str, str]:
    """A segment object: a few frequent regions and a long tail of tenants."""
    seg = {"region": rng.choice(["eu", "eu", "us", "apac", "latam"])}
    if i % 5:
        seg["tenant"] = f"t{rng.randrange(50 if rng.random() < 0.5 else 5)}"
    return seg


def feed_monitor(det: Any, x: tuple[Any, ...]) -> Any:
    if x[0] == "label":
        seg = x[5] if len(x) > 5 else None
        return det.observe_label(
            x[1], x[2], was_escalated=x[3], inclusion_probability=x[4], segment=seg
        )
    return det.observe(*x[1:])


def segmented_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    feats, pred = event_x(i, rng)
    seg = segment_x(i, rng)
    if i % 4 == 0:
        c, y = labelled(rng, i)
        return ("label", seg, c, y, rng.choice([1.0, 1.0, 5.0]))
    # Escalations follow the confidence; eu escalates more in the second phase.
    low = pred.confidence < (0.75 if seg["region"] == "eu" and _phase(i, 1500) else 0.6)
    return ("event", seg, feats, pred, low)


def feed_segments(det: Any, x: tuple[Any, ...]) -> Any:
    if x[0] == "label":
        return det.observe_label(*x[1:])
    return det.update(*x[1:])


def feed_heavy_hitters(det: Any, x: str) -> Any:
    det.update(x)
    return det.top(2)


def audit_x(i: int, rng: random.Random) -> tuple[str, str, datetime]:
    # Bursts every 2000 items (ten times the pace), so the cap lowers the probability.
    step = 0.05 if (i // 1000) % 2 else 0.5
    return ("fraud", f"e-{i}", T0 + timedelta(seconds=step * i))


GOOD_PRED = ClassPrediction("x", 0.7)
REVIEWERS = ("ann", "bob", "cy", "dee", "eve", "fay", "gus", None)
# Fixed reliabilities the adjudicator is fed (``gus`` unknown: the plurality decides).
RELIABILITY = {"ann": 0.95, "bob": 0.7, "cy": 0.8, "dee": 0.6, "eve": 0.9, "fay": 0.75}.get


def adjudication_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    now = T0 + timedelta(seconds=0.5 * i)
    if i % 10 == 9:
        return ("expire", now)
    # Recent event ids, so events fill up, get replaced labels, time out and get late labels.
    n = rng.randrange(max(0, i // 2 - 30), i // 2 + 1)
    label: Any = rng.uniform(0.0, 10.0) if n % 7 == 0 else rng.choice("abcd")
    source = "outcome" if rng.random() < 0.03 else "human"
    return ("label", f"e-{n}", label, rng.choice(REVIEWERS), source, now)


def feed_adjudication(det: Any, x: tuple[Any, ...]) -> Any:
    if x[0] == "expire":
        return det.expire(x[1], reliability=RELIABILITY)
    _, event_id, label, reviewer, source, now = x
    return det.add_label(
        event_id, label, reviewer=reviewer, source=source, now=now, reliability=RELIABILITY
    )


def reliability_x(i: int, rng: random.Random) -> tuple[Any, ...]:
    reviewer = rng.choice(REVIEWERS[:-1])
    # "dee" is careless in phases: flagged, then recovered.
    p = 0.4 if reviewer == "dee" and _phase(i, 1500) else 0.9
    kind = i % 3
    if kind == 0:
        return ("gold", reviewer, rng.random() < p)
    if kind == 1:
        return ("agree", reviewer, rng.random(), rng.choice((True, False, None)))
    t = T0 + timedelta(seconds=i)
    labels = tuple(Review(rng.choice("xy"), r, "human", t) for r in rng.sample(REVIEWERS[:-1], 2))
    post = tuple(rng.random() for _ in labels)
    return (
        "decision",
        Decision(f"e-{i}", "x", "weighted", 0.5, labels, post, 0.7, "complete", t, 2),
    )


def feed_reliability(det: Any, x: tuple[Any, ...]) -> Any:
    if x[0] == "gold":
        return det.observe_gold(x[1], x[2]), det.reliability(x[1])
    if x[0] == "agree":
        det.observe_agreement(*x[1:])
        return det.reliability(x[1])
    det.observe_decision(x[1])
    return [det.reliability(r.reviewer) for r in x[1].labels]


def agreement_x(i: int, rng: random.Random) -> list[str]:
    p = 0.3 if _phase(i, 700) else 0.9
    truth = rng.choice("abcd")
    return [
        truth if rng.random() < p else rng.choice("abcd")
        for _ in range(rng.choice((1, 2, 3, 3, 4)))
    ]


def correlated_x(i: int, rng: random.Random) -> dict[str, Any]:
    """Four numeric features, n0 and n1 correlated +0.8, then -0.8 in phases (the
    marginals stay the same); some values missing, null or of the wrong type."""
    rho = -0.8 if _phase(i, 1500) else 0.8
    a, b = rng.gauss(0, 1), rng.gauss(0, 1)
    feats: dict[str, Any] = {
        "n0": 10 + 2 * a,
        "n1": rho * a + 0.6 * b,
        "n2": rng.gauss(0, 1),
        "n3": rng.gauss(5, 3),
        "c": rng.choice("abc"),
    }
    if i % 53 == 0:
        feats["n2"] = None
    if i % 89 == 0:
        feats["n3"] = "oops"
    if i % 101 == 0:
        del feats["n1"]
    if i % 211 == 0:
        feats["n0"] = 40.0  # an outlier
    return feats


def feed_reconstruction(det: Any, x: Any) -> Any:
    return det.update(x), det.last_score, det.last_outlier


def classwise_x(i: int, rng: random.Random) -> tuple[dict[str, float], str, float]:
    # Four classes; the model overstates "a" in phases; now and then a rare class name
    # (pooled as _other once the cap is reached) and a truth the scores do not list.
    p = [rng.random() + 0.05 for _ in range(4)]
    total = sum(p)
    scores = {c: v / total for c, v in zip("abcd", p, strict=True)}
    if i % 13 == 0:
        scores = {**{c: v * 0.9 for c, v in scores.items()}, f"rare{i % 5}": 0.1}
    names = list(scores)
    if _phase(i, 700) and rng.random() < 0.5:
        truth = "b"
    else:
        truth = rng.choices(names, weights=list(scores.values()))[0]
    if i % 29 == 0:
        truth = "zeta"
    return scores, truth, label_weight(rng)


def classwise_memory_x(i: int, rng: random.Random) -> tuple[dict[str, float], str]:
    # Ever new class names: only max_classes of them are tracked by name.
    return {f"c{i}": 0.6, f"c{i + 1}": 0.4}, f"c{i + rng.randrange(2)}"


def regression_x(i: int, rng: random.Random) -> tuple[RegressionPrediction, float, float]:
    # Calibrated 90% intervals, then errors twice as wide in phases: coverage alerts
    # fire and recover. Some predictions carry no interval.
    sigma = 2.0 if _phase(i, 700) else 1.0
    value = rng.uniform(-5.0, 5.0)
    interval = None if i % 7 == 0 else (value - 1.645, value + 1.645)
    return RegressionPrediction(value, interval), value + rng.gauss(0.0, sigma), label_weight(rng)


GOOD_REG = RegressionPrediction(1.0, (0.0, 2.0))

# Label weights every class that takes one must reject (``check_weight``).
BAD_WEIGHTS: list[Any] = [NAN, INF, -INF, 0.0, -1.0, True, "1", None]


def canary_x(i: int, rng: random.Random) -> tuple[bool, str]:
    # 30 % of the traffic is the new version; in every other phase it predicts otherwise.
    is_new = rng.random() < 0.3
    return is_new, rng.choice("abccc" if is_new and _phase(i, 1500) else "aaabbc")


INPUTS: dict[str, Inputs] = {
    "NumericDrift": Inputs(
        numeric_x,
        bad=[NAN, INF, "1.0", None, True],
        # A slowly moving level: a million values, state must not grow with them.
        memory_make=lambda i, rng: rng.gauss(i * 1e-5, 1),
        memory_n=1_000_000,
    ),
    "CategoricalDrift": Inputs(
        categorical_x,
        bad=[1, 2.5, None, NAN, b"a"],
        # Ever more distinct values: the vocabulary must stay bounded.
        memory_make=lambda i, rng: f"v{rng.randrange(10 * i + 10)}",
        memory_n=200_000,
    ),
    "VersionCanary": Inputs(
        canary_x,
        update_star,
        bad=[(1, "a"), (None, "a"), ("yes", "a"), (True, None), (True, NAN), (False, b"a")],
        # Ever more distinct classes: the bins must stay bounded.
        memory_make=lambda i, rng: (rng.random() < 0.3, f"v{rng.randrange(10 * i + 10)}"),
        memory_n=100_000,
    ),
    "DataQualityDrift": Inputs(status_x, bad=["bad", None, NAN, 1], memory_n=500_000),
    "DriftMonitor": Inputs(
        event_x,
        update_star,
        bad=[
            ({"n0": 1.0}, ClassPrediction("x", NAN)),
            ({"n0": 1.0}, None),
            ("n0", ClassPrediction("x", 0.5)),
            ({"n0": 1.0}, RegressionPrediction(1.0)),  # a classifier's monitor
        ],
    ),
    "CalibrationMonitor": Inputs(
        weighted_label,
        update_star,
        bad=[
            (NAN, True),
            (1.01, True),
            ("0.5", True),
            (0.5, "yes"),
            (0.5, None),
            (None, True),
            *[(0.5, True, w) for w in BAD_WEIGHTS],
        ],
    ),
    "PerformanceEstimator": Inputs(
        performance_x,
        feed_performance,
        bad=[
            ("event", NAN),
            ("event", -1.0),
            ("label", 0.5, 1),
            ("label", INF, True),
            *[("label", 0.5, True, w) for w in BAD_WEIGHTS],
        ],
    ),
    "ConformalEscalation": Inputs(
        conformal_x,
        update_star,
        bad=[
            (NAN, True, False),
            ("x", True, False),
            (0.2, 0, False),
            (0.2, True, "no"),
            *[(0.2, True, False, w) for w in BAD_WEIGHTS],
            *[(0.2, True, True, w) for w in BAD_WEIGHTS],
        ],
    ),
    "AuditSampler": Inputs(
        audit_x,
        update_star,
        bad=[(1, "e", T0), ("fraud", None, T0), ("fraud", "e", NAIVE), ("fraud", "e", 0)],
    ),
    "EscalationBudget": Inputs(
        lambda i, rng: (rng.random(), T0 + timedelta(seconds=0.2 * i + rng.uniform(0, 0.1))),
        update_star,
        bad=[(NAN, T0), (2.0, T0), (0.5, NAIVE), (0.5, "2024-01-01T00:00:00Z")],
    ),
    "ThresholdEscalation": Inputs(
        prediction_x,
        bad=[ClassPrediction("a", NAN), {"label": "a"}, None, RegressionPrediction(INF)],
    ),
    "EscalationPolicy": Inputs(
        policy_x,
        feed_policy,
        bad=[
            ("decide", GOOD_PRED, NAIVE, (), False),
            ("decide", {"label": "a"}, T0, (), False),
            ("decide", GOOD_PRED, T0, {"nope": ["x"]}, False),
            ("decide", GOOD_PRED, T0, (), "on"),
            ("decide", GOOD_PRED, T0, [("out_of_range", [1])], False),
            ("label", GOOD_PRED, "yes", False),
            *[("label", GOOD_PRED, True, False, w) for w in BAD_WEIGHTS],
            # Regressions do not move the conformal threshold, but a bad weight is
            # still a bad input.
            *[("label", RegressionPrediction(1.0), True, False, w) for w in BAD_WEIGHTS],
            ("label", GOOD_PRED, True, None),
            ("label", "a", True, False),
        ],
    ),
    "AutoAcceptMonitor": Inputs(
        autoaccept_x,
        update_star,
        bad=[
            (1, 1.0),
            (None, 1.0),
            ("yes", 1.0),
            (NAN, 1.0),
            *[(True, w) for w in BAD_WEIGHTS],
        ],
        memory_n=200_000,
    ),
    "ModelMonitor": Inputs(
        monitor_x,
        feed_monitor,
        bad=[
            ("event", {"n0": 1.0}, ClassPrediction("x", NAN), T0),
            ("event", "n0", GOOD_PRED, T0),
            ("event", {"n0": 1.0}, GOOD_PRED, NAIVE),
            ("label", GOOD_PRED, 3, True, 1.0),
            ("label", GOOD_PRED, "x", "yes", 1.0),
            ("label", GOOD_PRED, "x", False, 0.0),
            ("label", GOOD_PRED, "x", False, NAN),
            ("label", GOOD_PRED, "x", False, 1.5),
            ("label", GOOD_PRED, "x", False, True),
            ("event", {"n0": 1.0}, GOOD_PRED, T0, 17),
            ("event", {"n0": 1.0}, GOOD_PRED, T0, "e-1", {"region": 7}),
            ("event", {"n0": 1.0}, GOOD_PRED, T0, "e-1", "eu"),
            ("label", GOOD_PRED, "x", False, 1.0, {"region": 7}),
        ],
        memory_n=10_000,
    ),
    "HeavyHitters": Inputs(
        lambda i, rng: (
            rng.choice(["a", "a", "b"] if _phase(i, 1500) else ["c", "b"])
            if rng.random() < 0.7
            else f"v{rng.randrange(10 * i + 10)}"
        ),
        feed_heavy_hitters,
        bad=[1, None, NAN, b"a", True],
        memory_n=200_000,
    ),
    "SegmentMonitor": Inputs(
        segmented_x,
        feed_segments,
        bad=[
            ("event", "eu", {"n0": 1.0}, GOOD_PRED, False),
            ("event", {"region": 3}, {"n0": 1.0}, GOOD_PRED, False),
            ("event", {"region": "eu"}, "n0", GOOD_PRED, False),
            ("event", {"region": "eu"}, {"n0": 1.0}, ClassPrediction("x", NAN), False),
            ("event", {"region": "eu"}, {"n0": 1.0}, GOOD_PRED, 1),
            ("label", {"region": "eu"}, NAN, True, 1.0),
            ("label", {"region": "eu"}, 0.5, "yes", 1.0),
            ("label", {"region": "eu"}, 0.5, True, 0.0),
            ("label", {"region": 5}, 0.5, True, 1.0),
        ],
        memory_n=20_000,
    ),
    "Adjudicator": Inputs(
        adjudication_x,
        feed_adjudication,
        bad=[
            ("label", "", "a", "ann", "human", T0),
            ("label", "e-1", NAN, "ann", "human", T0),
            ("label", "e-1", INF, "ann", "human", T0),
            ("label", "e-1", True, "ann", "human", T0),
            ("label", "e-1", None, "ann", "human", T0),
            ("label", "e-1", "a", 5, "human", T0),
            ("label", "e-1", "a", "ann", "", T0),
            ("label", "e-1", "a", "ann", "human", NAIVE),
            ("label", 7, "a", "ann", "human", T0),
            ("expire", NAIVE),
            ("expire", 0.0),
        ],
    ),
    "ReviewerReliability": Inputs(
        reliability_x,
        feed_reliability,
        bad=[
            ("gold", 1, True),
            ("gold", "", True),
            ("gold", "ann", 1),
            ("gold", "ann", None),
            ("agree", "ann", NAN, True),
            ("agree", "ann", 1.5, True),
            ("agree", "ann", 0.5, "yes"),
            ("agree", None, 0.5, True),
            ("decision", {"final": "x"}),
        ],
        # Ever more reviewers: only max_reviewers of them are tracked by name.
        memory_make=lambda i, rng: ("gold", f"r{i}", rng.random() < 0.8),
    ),
    "ReconstructionDrift": Inputs(
        correlated_x,
        feed_reconstruction,
        bad=[None, "n0", [("n0", 1.0)], 5, NAN],
    ),
    "AgreementMonitor": Inputs(
        agreement_x,
        bad=["ab", ["a", 1], [None, "a"], 5, ["", "a"], b"ab", None, ["a"] * 65],
    ),
    "ClasswiseCalibrationMonitor": Inputs(
        classwise_x,
        update_star,
        bad=[
            ({}, "a"),
            ({"a": 0.5, "b": 0.5}, ""),
            ({"a": 0.5, "b": 0.5}, 3),
            ({"a": 0.5, "b": 0.4}, "a"),
            ({"a": 1.5, "b": -0.5}, "a"),
            ({"a": NAN, "b": 0.5}, "a"),
            ({"a": "0.5", "b": 0.5}, "a"),
            ({"": 1.0}, "a"),
            ({1: 1.0}, "a"),
            ([("a", 1.0)], "a"),
            (None, "a"),
            *[({"a": 1.0}, "a", w) for w in BAD_WEIGHTS],
        ],
        memory_make=classwise_memory_x,
    ),
    "RegressionQualityMonitor": Inputs(
        regression_x,
        update_star,
        bad=[
            (ClassPrediction("a", 0.5), 1.0),
            (RegressionPrediction(NAN), 1.0),
            (RegressionPrediction(1.0, (2.0, 0.0)), 1.0),
            (RegressionPrediction(1.0, (0.0, INF)), 1.0),
            (GOOD_REG, NAN),
            (GOOD_REG, "1.0"),
            (GOOD_REG, True),
            (GOOD_REG, 1e300),
            *[(GOOD_REG, 1.0, w) for w in BAD_WEIGHTS],
        ],
    ),
}
