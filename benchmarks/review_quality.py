"""Quality of reviewer scoring and adjudication on simulated reviewers (issue 15).

Prints ONE JSON object. Ratios and comparisons are within one run, on the same labels.

**The simulation.** ``REVIEWERS`` reviewers with one-coin error rates evenly spread
over 2-30 % plus one careless reviewer at 45 % (the issue's population). The true
class of each event is uniform over ``K`` classes (``by_classes``) or imbalanced
(``imbalanced``, below); a reviewer is right with
probability ``1 - error`` and otherwise gives one of the other ``K - 1`` classes
uniformly, independently of the item and of the other reviewers (the one-coin
model the detectors assume: the best case for them; errors concentrated on one
confusable class make two wrong labels agree more often, which the weights do not
model, and shrink the gain: not simulated here). Each event is a gold item with
probability ``GOLD_RATE`` (one reviewer, scored against the truth), an overlapped
item with probability ``OVERLAP_RATE`` (``OVERLAP_K`` distinct reviewers,
adjudicated) or else a single review; reviewers are drawn uniformly, in random
order. Everything goes through the pure detectors as the worker would:
:class:`ReviewerReliability` (gold, then each decision), :class:`Adjudicator`
(``reliability=rel.reliability``; no ``num_classes``, as
``streams/processing/review_desk.py`` builds it: ``K`` is learned from the class
names seen, the class prior from its decisions) and :class:`AgreementMonitor`. The
same labels also go to an adjudicator with ``learn_class_prior=False`` and its own
:class:`ReviewerReliability` (the pipeline as it ran before the class prior).
A run ends when every reviewer has ``gold_each`` gold items (full mode 200: about
230k events, 13k labels per reviewer).

**Class counts.** The issue does not fix ``K``; the run is repeated for each ``K`` in
``CLASS_COUNTS`` (``by_classes``). The headline is ``K = 5`` (``HEADLINE_CLASSES``):
annotation teams are paid for multi-class work (content-policy categories, intents,
document types, sentiment grades: a handful of classes, rarely 2, where an outcome
label usually exists instead); ``K = 2`` is the hard case for a weighted vote (three
labels never all differ, so it can only help when the dissenter outweighs two
agreeing reviewers) and ``K = 10`` the easier one (more three-way splits, which
plurality breaks blindly).

Figures per ``K`` (medians over seeds; per-seed values under ``per_seed``):

* ``adjudicated_accuracy`` / ``majority_accuracy`` / ``adjudication_gain`` (target
  +0.02): share of overlapped items whose final label is the truth, for the
  reliability-weighted vote vs plurality of the same labels. Plurality breaks ties
  (three different labels) by the first label, and the labels come in a uniformly
  random reviewer order: a fair random tie-break, as the adjudicator's own
  ``"majority"`` method does with unknown reliabilities. ``oracle_gain``: the vote
  weighted with the *true* reliabilities on the same labels (Bayes-optimal under the
  simulation's model: no rule does better on average); ``oracle_gain_expected``:
  its exact expectation (enumerating every triple of reviewers and every label
  pattern: no sampling noise), the ceiling for ``adjudication_gain``;
  ``share_of_oracle_gain``: how much of it the online estimates capture.
* ``uniform_prior_accuracy`` / ``uniform_prior_gain``: the adjudicator without the
  class prior on the same labels; ``prior_effect`` (and ``prior_effect_per_seed``):
  what the prior adds (``adjudicated_accuracy - uniform_prior_accuracy``); in the
  uniform scenario it should be noise around 0. ``oracle_uniform_prior_gain_expected``:
  the exact ceiling of the rule without the prior (true error rates, uniform prior),
  ``bayes_any_class_gain_expected``: the Bayes rule free to pick a class no reviewer
  gave (the adjudicator never does). ``class_prior_estimate`` (per seed) and
  ``class_prior_max_abs_error``: the adjudicator's learned prior at the end against
  the true mix.
* ``flagging``: per option of :class:`ReviewerReliability` (``FLAG_OPTIONS``, all fed
  the same evidence), ``careless_labels_to_flag`` (labels the careless reviewer gave,
  gold and other, until its first ``reviewer:<id>:...`` drift alert; target 300),
  ``careless_flagged_within_target`` (share of seeds), and flags of the other
  reviewers, ever in the run (ever: a flag that later recovers still counts):
  ``false_flags`` (true accuracy at or above the bar ``MIN_GOLD_ACCURACY``: wrong),
  ``false_flags_clear`` (at least ``CLEARLY_GOOD``: far from the bar),
  ``false_flags_within_target`` (wrong flags raised within the reviewer's first 300
  labels, the careless reviewer's deadline), ``below_bar_flagged`` (the non-careless
  reviewers truly below the bar who were flagged: right, and slow by design).
  ``false_flag_rate``: wrong flags over all careers at or above the bar (all seeds;
  a median of counts hides a rare wrong flag), ``false_flag_rate_clear`` the same
  for ``CLEARLY_GOOD``; ``false_flagged`` in ``per_seed`` names each wrongly
  flagged reviewer with its true accuracy and its labels when flagged.
* ``gold_estimate``: at the moment each reviewer reaches ``gold_each`` gold items,
  the absolute error of the gold accuracy (``gold``: gold items alone) and of the
  reliability ``p_r`` (``combined``: gold and adjudicated labels) against the
  reviewer's true accuracy: ``max``, ``median`` and ``share_within`` 5 points over
  the 20 reviewers. The Wilson half-width at n = 200 is 4-6 points for accuracies
  0.7-0.85, so a maximum over 20 reviewers within 5 points is not to be expected
  from gold alone; the target is read as a high share: ``met`` asks for at least
  ``SHARE_WITHIN_TARGET`` of the reviewers within 5 points.
* ``agreement_alpha``: Krippendorff's alpha over the last window of overlapped items.

**Class imbalance** (``imbalanced``). Real annotation tasks have a few common classes
and a tail of rare ones; the uniform draw hides what the class marginals of full
Dawid-Skene add. The imbalanced scenario draws the true class from a Zipf mix,
share of class ``c`` proportional to ``c**-ZIPF_EXPONENT``, exponent 1.5: at ``K = 5``
0.57/0.20/0.11/0.07/0.05 (about the realistic 0.55/0.2/0.12/0.08/0.05 mix the issue
discussion suggested: half the reviewed items in one class, the rarest one in 20),
0.74/0.26 at ``K = 2``, 0.50 down to 0.016 at ``K = 10``. One exponent for every ``K``,
chosen for realism and not tuned to the target; escalation picks uncertain items,
so the reviewed mix is usually *less* skewed than the traffic's, which argues
against a steeper one. Everything else is as in the uniform scenario (same seeds,
same reviewers). ``ceiling_by_zipf_exponent`` gives the exact ceiling (Bayes rule
with true error rates and true mix, and without the prior) for exponents 0-2, so
the reader can see how the conclusion depends on the choice.

``sink``: the dataset sink's throughput and exactly-once figures are measured by
``benchmarks/dataset_sink.py`` against a real broker (not repeated here).

Usage: ``python benchmarks/review_quality.py [--quick] [--seed N]`` (quick: 2 seeds,
50 gold items per reviewer, about 1 min; full: 5 seeds, 200, about 10 min on two
idle cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.adjudication import Adjudicator, Decision, log_odds_weight
from detectors.agreement import AgreementMonitor
from detectors.reviewer_reliability import ReviewerReliability
from detectors.signals import SignalChange

CLASS_COUNTS = (2, 5, 10)
HEADLINE_CLASSES = 5
# The imbalanced scenario's class mix: Zipf with this exponent (K = 5: 0.57/0.20/0.11/0.07/0.05).
ZIPF_EXPONENT = 1.5
# Exponents of the exact ceiling's sensitivity table (0: uniform).
CEILING_EXPONENTS = (0.0, 0.5, 1.0, 1.5, 2.0)
REVIEWERS = 20
CARELESS_ERROR = 0.45
GOLD_RATE = 0.02
OVERLAP_RATE = 0.10
OVERLAP_K = 3
MIN_GOLD_ACCURACY = 0.8
CLEARLY_GOOD = 0.85
SHARE_WITHIN_TARGET = 0.9
T0 = datetime(2026, 1, 1, tzinfo=UTC)

TARGETS = {
    "careless_labels_to_flag": 300,
    "adjudication_gain": 0.02,
    "gold_accuracy_abs_error": 0.05,
}

# The flagging rules compared; "default" is ReviewerReliability's defaults.
FLAG_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "gold_min_gold_5": {"flag_on": "gold", "min_gold": 5},
    "gold_min_gold_3_conf_99": {"flag_on": "gold", "min_gold": 3, "confidence": 0.99},
    "all_min_gold_10": {"flag_on": "all", "min_gold": 10},
    "all_min_gold_30": {"flag_on": "all", "min_gold": 30},
}


def error_rates() -> list[float]:
    """19 reviewers evenly from 2 % to 30 % error, then the careless one at 45 %."""
    return [*np.linspace(0.02, 0.30, REVIEWERS - 1).round(4).tolist(), CARELESS_ERROR]


def plurality(labels: list[int]) -> int:
    """The most frequent label; ties go to the first label given (with labels in random
    reviewer order, a fair random tie-break)."""
    counts: dict[int, int] = {}
    for x in labels:
        counts[x] = counts.get(x, 0) + 1
    return max(counts, key=counts.__getitem__)


def class_mix(num_classes: int, exponent: float) -> list[float]:
    """Zipf shares ``c**-exponent / sum`` of classes ``c = 1..K`` (0: uniform).

    >>> [round(x, 3) for x in class_mix(5, 1.5)]
    [0.568, 0.201, 0.109, 0.071, 0.051]
    """
    w = np.arange(1, num_classes + 1, dtype=float) ** -exponent
    return (w / w.sum()).tolist()


def expected_accuracies(
    num_classes: int, errors: list[float], mix: list[float] | None = None
) -> dict[str, float]:
    """Exact expected accuracies on one overlapped item of ``OVERLAP_K`` distinct
    reviewers drawn uniformly, the truth drawn from ``mix`` (default uniform): every
    triple of reviewers, every truth and every labelling (``K**(k+1)`` cases).

    ``majority``: plurality with a fair tie-break. ``oracle_uniform_prior``: the vote
    weighted by the true reliabilities with a uniform class prior (the adjudicator's
    rule before the class prior; fair tie-break among the labels given). ``oracle``:
    the Bayes-optimal rule, the label given with the largest ``P(truth, labels)`` under
    the true error rates and the true ``mix`` (the adjudicator's rule with both known).
    ``bayes_any_class``: the same over every class, given or not (the unrestricted
    Bayes rule; no rule does better)."""
    k = num_classes
    pi = np.full(k, 1.0 / k) if mix is None else np.asarray(mix, dtype=float)
    labs = np.array(list(itertools.product(range(k), repeat=OVERLAP_K)))  # (K**3, 3)
    said = np.zeros((k, len(labs)), dtype=bool)  # said[c, i]: class c among labelling i
    plural = np.zeros((k, len(labs)))  # plural[c, i]: share of plurality's ties that are c
    for i, row in enumerate(labs):
        count = np.bincount(row, minlength=k)
        tied = count == count.max()
        plural[:, i] = tied / tied.sum()
        said[row, i] = True
    is_label = labs.T[None, :, :] == np.arange(k)[:, None, None]  # (K, 3, K**3)
    triples = list(itertools.combinations(range(len(errors)), OVERLAP_K))
    acc = dict.fromkeys(("majority", "oracle_uniform_prior", "oracle", "bayes_any_class"), 0.0)
    for trip in triples:
        p = np.array([1.0 - errors[j] for j in trip])[None, :, None]
        w = np.array([log_odds_weight(1.0 - errors[j], k) for j in trip])[None, :, None]
        # joint[c, i] = P(truth = c, labelling i)
        joint = pi[:, None] * np.where(is_label, p, (1.0 - p) / (k - 1)).prod(axis=1)
        vote = np.where(said, np.where(is_label, w, 0.0).sum(axis=1), -np.inf)
        tied = vote >= vote.max(axis=0) - 1e-12
        acc["majority"] += float((joint * plural).sum())
        acc["oracle_uniform_prior"] += float((joint * tied / tied.sum(axis=0)).sum())
        acc["oracle"] += float(np.where(said, joint, 0.0).max(axis=0).sum())
        acc["bayes_any_class"] += float(joint.max(axis=0).sum())
    return {key: v / len(triples) for key, v in acc.items()}


def review(
    adjudicator: Adjudicator,
    reliability: Any,
    event_id: str,
    labels: list[tuple[str, str]],
    now: datetime,
) -> Decision:
    """An overlapped event's labels (reviewer, label) through one adjudicator: its decision."""
    for reviewer, label in labels:
        result = adjudicator.add_label(
            event_id,
            label,
            reviewer=reviewer,
            now=now,
            reviews_wanted=OVERLAP_K,
            reliability=reliability,
        )
    (decision,) = result.decisions
    return decision


def run_seed(
    seed: int, num_classes: int, gold_each: int, max_events: int, mix: list[float] | None = None
) -> dict[str, Any]:
    """One simulated team until every reviewer has ``gold_each`` gold items; the true
    class is uniform (``mix=None``) or drawn from ``mix``."""
    rng = np.random.default_rng(seed)
    errors = error_rates()
    names = [f"r{j:02d}" for j in range(REVIEWERS)]
    index = {n: j for j, n in enumerate(names)}
    careless = REVIEWERS - 1
    rel = ReviewerReliability(min_gold_accuracy=MIN_GOLD_ACCURACY)
    # The same evidence into each flagging rule; p_r does not depend on the rule.
    flaggers = {
        name: ReviewerReliability(min_gold_accuracy=MIN_GOLD_ACCURACY, **opts)
        for name, opts in FLAG_OPTIONS.items()
    }
    flagged_at: dict[str, dict[int, int]] = {name: {} for name in FLAG_OPTIONS}
    true_weight = [log_odds_weight(1 - e, num_classes) for e in errors]
    log_mix = [0.0] * num_classes if mix is None else [math.log(x) for x in mix]
    # As the worker builds it (streams/processing/review_desk.py): K learned from the labels,
    # the class prior learned from the decisions.
    adj = Adjudicator(reviews_wanted=1)
    # The rule without the class prior, on the same labels, with its own reliabilities fed
    # its own decisions (as it ran before the prior): what the prior adds or costs.
    flat = Adjudicator(reviews_wanted=1, learn_class_prior=False)
    rel_flat = ReviewerReliability(min_gold_accuracy=MIN_GOLD_ACCURACY)
    agree = AgreementMonitor(window=500)
    labels_given = [0] * REVIEWERS
    gold_seen = [0] * REVIEWERS
    err_gold: dict[str, float] = {}
    err_combined: dict[str, float] = {}
    adj_right = maj_right = oracle_right = flat_right = overlapped = 0

    def label_of(j: int, truth: int) -> int:
        labels_given[j] += 1
        if rng.random() >= errors[j]:
            return truth
        return int((truth + rng.integers(1, num_classes)) % num_classes)

    def note(rule: str, alerts: list[SignalChange]) -> None:
        for alert in alerts:
            j = index[alert.signal.split(":")[1]]
            if alert.state == "drift" and j not in flagged_at[rule]:
                flagged_at[rule][j] = labels_given[j]

    def decided(decision: Any) -> None:
        rel.observe_decision(decision)
        for rule, flagger in flaggers.items():
            note(rule, flagger.observe_decision(decision))

    i = 0
    for i in range(max_events):
        now = T0 + timedelta(seconds=i)
        # Uniform: the draw of the runs before the imbalanced scenario (same numbers).
        truth = int(rng.integers(num_classes) if mix is None else rng.choice(num_classes, p=mix))
        u = rng.random()
        if u < GOLD_RATE:
            j = int(rng.integers(REVIEWERS))
            right = label_of(j, truth) == truth
            rel.observe_gold(names[j], right)
            rel_flat.observe_gold(names[j], right)
            for rule, flagger in flaggers.items():
                note(rule, flagger.observe_gold(names[j], right))
            gold_seen[j] += 1
            if gold_seen[j] == gold_each:
                s = rel.stats(names[j])
                err_gold[names[j]] = abs(s.gold_accuracy - (1 - errors[j]))
                err_combined[names[j]] = abs(s.reliability - (1 - errors[j]))
                if len(err_gold) == REVIEWERS:
                    break
            continue
        if u < GOLD_RATE + OVERLAP_RATE:
            who = rng.choice(REVIEWERS, size=OVERLAP_K, replace=False).tolist()
            given = [label_of(j, truth) for j in who]

            labels = [(names[j], str(x)) for j, x in zip(who, given, strict=True)]
            decision = review(adj, rel.reliability, f"e-{i}", labels, now)
            decided(decision)
            flat_decision = review(flat, rel_flat.reliability, f"e-{i}", labels, now)
            rel_flat.observe_decision(flat_decision)
            flat_right += flat_decision.final == str(truth)
            agree.update([str(x) for x in given])
            overlapped += 1
            adj_right += decision.final == str(truth)
            maj_right += plurality(given) == truth
            score: dict[int, float] = {}
            for j, x in zip(who, given, strict=True):
                score[x] = score.get(x, log_mix[x]) + true_weight[j]
            oracle_right += max(score, key=score.__getitem__) == truth
            continue
        j = int(rng.integers(REVIEWERS))
        x = str(label_of(j, truth))
        result = adj.add_label(f"e-{i}", x, reviewer=names[j], now=now, reliability=rel.reliability)
        decided(result.decisions[0])
        result = flat.add_label(
            f"e-{i}", x, reviewer=names[j], now=now, reliability=rel_flat.reliability
        )
        rel_flat.observe_decision(result.decisions[0])

    good = [j for j in range(REVIEWERS) if 1 - errors[j] >= MIN_GOLD_ACCURACY]
    clear = [j for j in good if 1 - errors[j] >= CLEARLY_GOOD]
    below = [j for j in range(careless) if 1 - errors[j] < MIN_GOLD_ACCURACY]
    limit = TARGETS["careless_labels_to_flag"]
    flagging = {}
    for rule, at in flagged_at.items():
        flagging[rule] = {
            "careless_labels_to_flag": at.get(careless),
            "false_flags": sum(j in at for j in good),
            "false_flags_clear": sum(j in at for j in clear),
            "false_flags_within_target": sum(at.get(j, limit + 1) <= limit for j in good),
            "below_bar_flagged": sum(j in at for j in below),
            # reviewer -> (true accuracy, its labels when flagged), for the wrong flags
            "false_flagged": {names[j]: [round(1 - errors[j], 4), at[j]] for j in good if j in at},
        }
    prior = adj.class_prior
    estimate = [prior.get(str(c), 0.0) for c in range(num_classes)]
    true_mix = [1.0 / num_classes] * num_classes if mix is None else mix
    return {
        "events": i + 1,
        "labels_per_reviewer": statistics.median(labels_given),
        "overlapped_items": overlapped,
        "adjudicated_accuracy": adj_right / overlapped,
        "majority_accuracy": maj_right / overlapped,
        "adjudication_gain": (adj_right - maj_right) / overlapped,
        "oracle_accuracy": oracle_right / overlapped,
        "oracle_gain": (oracle_right - maj_right) / overlapped,
        "uniform_prior_accuracy": flat_right / overlapped,
        "uniform_prior_gain": (flat_right - maj_right) / overlapped,
        "prior_effect": (adj_right - flat_right) / overlapped,
        "class_prior_estimate": [round(x, 4) for x in estimate],
        "class_prior_max_abs_error": max(
            abs(a - b) for a, b in zip(estimate, true_mix, strict=True)
        ),
        "flagging": flagging,
        "gold_estimate": {
            kind: {
                "max": max(errs.values()),
                "median": statistics.median(errs.values()),
                "share_within": sum(e <= TARGETS["gold_accuracy_abs_error"] for e in errs.values())
                / len(errs),
            }
            if len(errs) == REVIEWERS
            else None
            for kind, errs in (("gold", err_gold), ("combined", err_combined))
        },
        "agreement_alpha": agree.alpha,
        "adjudicator_counts": adj.counts,
    }


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise(
    num_classes: int, runs: list[dict[str, Any]], mix: list[float] | None = None
) -> dict[str, Any]:
    """Medians over seeds of one class count, with the exact oracle ceiling and ``met``."""
    exp = expected_accuracies(num_classes, error_rates(), mix)
    out: dict[str, Any] = {
        key: _median([r[key] for r in runs])
        for key in (
            "adjudicated_accuracy",
            "majority_accuracy",
            "adjudication_gain",
            "oracle_accuracy",
            "oracle_gain",
            "uniform_prior_accuracy",
            "uniform_prior_gain",
            "prior_effect",
            "class_prior_max_abs_error",
            "agreement_alpha",
            "labels_per_reviewer",
        )
    }
    out["prior_effect_per_seed"] = [r["prior_effect"] for r in runs]
    out["class_mix"] = [round(x, 4) for x in (mix or [1.0 / num_classes] * num_classes)]
    out["majority_accuracy_expected"] = exp["majority"]
    out["oracle_accuracy_expected"] = exp["oracle"]
    out["oracle_gain_expected"] = exp["oracle"] - exp["majority"]
    out["oracle_uniform_prior_gain_expected"] = exp["oracle_uniform_prior"] - exp["majority"]
    out["bayes_any_class_gain_expected"] = exp["bayes_any_class"] - exp["majority"]
    out["share_of_oracle_gain"] = out["adjudication_gain"] / out["oracle_gain_expected"]
    limit = TARGETS["careless_labels_to_flag"]
    good = sum(1 - e >= MIN_GOLD_ACCURACY for e in error_rates())
    clear = sum(1 - e >= CLEARLY_GOOD for e in error_rates())
    flagging: dict[str, Any] = {}
    for rule in FLAG_OPTIONS:
        per = [r["flagging"][rule] for r in runs]
        at = [p["careless_labels_to_flag"] for p in per]
        flagging[rule] = {
            **{key: _median([p[key] for p in per]) for key in per[0] if key != "false_flagged"},
            "careless_flagged_within_target": sum(a is not None and a <= limit for a in at)
            / len(at),
            "false_flag_rate": sum(p["false_flags"] for p in per) / (good * len(per)),
            "false_flag_rate_clear": sum(p["false_flags_clear"] for p in per) / (clear * len(per)),
        }
    out["flagging"] = flagging
    out["gold_estimate"] = {
        kind: None
        if any(r["gold_estimate"][kind] is None for r in runs)
        else {
            key: _median([r["gold_estimate"][kind][key] for r in runs])
            for key in ("max", "median", "share_within")
        }
        for kind in ("gold", "combined")
    }
    est = out["gold_estimate"]
    out["met"] = {
        "adjudication_gain": out["adjudication_gain"] >= TARGETS["adjudication_gain"],
        "oracle_gain_expected": out["oracle_gain_expected"] >= TARGETS["adjudication_gain"],
        **{
            f"careless_labels_to_flag[{rule}]": f["careless_labels_to_flag"] is not None
            and f["careless_labels_to_flag"] <= limit
            for rule, f in flagging.items()
        },
        **{
            f"gold_estimate[{kind}]": est[kind] is not None
            and est[kind]["share_within"] >= SHARE_WITHIN_TARGET
            for kind in ("gold", "combined")
        },
    }
    out["per_seed"] = runs
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 50 gold items each")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    seeds = [args.seed + k for k in range(2 if args.quick else 5)]
    gold_each = 50 if args.quick else 200
    started = time.perf_counter()

    def scenario(k: int, mix: list[float] | None) -> dict[str, Any]:
        return summarise(
            k, [run_seed(s, k, gold_each, max_events=2_000_000, mix=mix) for s in seeds], mix
        )

    by_classes = {str(k): scenario(k, None) for k in CLASS_COUNTS}
    imbalanced = {str(k): scenario(k, class_mix(k, ZIPF_EXPONENT)) for k in CLASS_COUNTS}
    head = by_classes[str(HEADLINE_CLASSES)]
    head_imb = imbalanced[str(HEADLINE_CLASSES)]
    # The exact ceiling against the imbalance (no simulation): gain over majority vote of
    # the Bayes rule with true error rates and true class mix, per Zipf exponent.
    ceiling = {}
    for k in CLASS_COUNTS:
        ceiling[str(k)] = {}
        for a in CEILING_EXPONENTS:
            e = expected_accuracies(k, error_rates(), class_mix(k, a))
            ceiling[str(k)][str(a)] = {
                "oracle_gain_expected": e["oracle"] - e["majority"],
                "oracle_uniform_prior_gain_expected": e["oracle_uniform_prior"] - e["majority"],
            }
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "seeds": seeds,
        "reviewers": REVIEWERS,
        "error_rates": error_rates(),
        "gold_rate": GOLD_RATE,
        "overlap_rate": OVERLAP_RATE,
        "overlap_k": OVERLAP_K,
        "min_gold_accuracy": MIN_GOLD_ACCURACY,
        "gold_items_each": gold_each,
        "flag_options": FLAG_OPTIONS,
        "headline_classes": HEADLINE_CLASSES,
        "notes": NOTES,
        "targets": TARGETS,
        "headline": {k: v for k, v in head.items() if k != "per_seed"},
        "by_classes": by_classes,
        "imbalanced": {
            "zipf_exponent": ZIPF_EXPONENT,
            "headline": {k: v for k, v in head_imb.items() if k != "per_seed"},
            "by_classes": imbalanced,
            "ceiling_by_zipf_exponent": ceiling,
        },
        "sink": {
            "measured_by": "benchmarks/dataset_sink.py",
            "target_records_per_s": 20_000,
            "target_exactly_once_violations": 0,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


NOTES = (
    "Headline K = 5: annotation teams label multi-class tasks (policy categories, intents, "
    "document types: a handful of classes); K = 2 and K = 10 bracket it. Error model: one-coin, "
    "uniform over the other K - 1 classes, independent across reviewers and items (the model the "
    "detectors assume). Majority vote breaks ties by the first label in random reviewer order "
    "(a fair random tie-break). oracle_gain_expected is the exact Bayes-optimal ceiling of the "
    "adjudication gain for this reviewer population at k = 3. With uniform classes (by_classes, "
    "headline) it is below the +0.02 target for every K (0.0184 as K grows without bound): no "
    "adjudication rule meets the target there, and the class prior cannot help (prior_effect is "
    "noise around 0). With imbalanced classes (imbalanced: Zipf exponent 1.5, at K = 5 "
    "0.57/0.20/0.11/0.07/0.05, a realistic mix chosen before measuring, not tuned) the ceiling "
    "with the true class mix is +0.0212 (K = 2), +0.0250 (K = 5), +0.0307 (K = 10), while the "
    "rule without the class prior stays at the uniform ceiling (+0.0111, +0.0142, +0.0164); "
    "adjudication_gain there is what the adjudicator's learned prior and reliabilities reach. "
    "ceiling_by_zipf_exponent shows the ceiling for exponents 0-2. share_of_oracle_gain says how "
    "close the online estimates come. Careless flagging is reported per flagging rule "
    "(flag_options) with the wrong flags of reviewers at or above the bar. The gold-estimate "
    "target is read as at least 90 % of reviewers within 5 points (the Wilson half-width at 200 "
    "items is itself about 5 points)."
)


if __name__ == "__main__":
    main()
