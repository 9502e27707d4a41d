"""Quality of reviewer scoring and adjudication on simulated reviewers (issue 15).

Prints ONE JSON object. The simulation: ``REVIEWERS`` reviewers with one-coin
error rates evenly spread over 2-30 % plus one careless reviewer at 45 %
(an error is a uniformly random other class among ``NUM_CLASSES``); each event
is a gold item with probability ``GOLD_RATE`` (one reviewer, scored against the
truth), an overlapped item with probability ``OVERLAP_RATE`` (``OVERLAP_K``
distinct reviewers, adjudicated) or else a single review; reviewers are drawn
uniformly. Everything goes through the pure detectors as the worker would:
:class:`ReviewerReliability` (gold, then each decision), :class:`Adjudicator`
(``reliability=rel.reliability``) and :class:`AgreementMonitor`.

Figures (medians over seeds; per-seed values under ``per_seed``):

* ``careless_labels_to_flag``: labels the careless reviewer gave (gold and other)
  until its gold-accuracy Wilson 95 % upper bound fell below
  ``MIN_GOLD_ACCURACY`` (0.8) with at least ``min_gold`` gold items: the
  ``reviewer:<id>:gold_accuracy`` alert. Target (issue): 300. At 2 % gold, 300
  labels hold about 6 gold items, too few for any interval to exclude 0.8 with
  few false flags (see :mod:`detectors.reviewer_reliability`), so the figure
  ``careless_labels_to_flag_combined`` adds the bound over gold and adjudicated
  labels together (``ReviewerReliability(flag_on="all")``, fed the same
  evidence). ``false_flags``: reviewers flagged whose true accuracy is at least
  the bar (those at 21-30 % error are truly below it: flagging them is right);
  ``false_flag_count_all`` the same for ``flag_on="all"``.
* ``adjudicated_accuracy`` and ``majority_accuracy``: share of overlapped items
  whose final label is the truth, reliability-weighted vs plurality of the same
  labels (ties to the first label); ``adjudication_gain`` their difference.
  Target: >= 0.02. ``oracle_accuracy``/``oracle_gain``: the same vote weighted
  with the *true* reliabilities, the Bayes-optimal rule under the simulation's
  one-coin model: no rule does better on these labels, so ``oracle_gain`` is the
  ceiling for ``adjudication_gain`` (measured 2026-12-02, full mode: 0.0138, and
  adjudication 0.0137, so the +2 points of the issue are out of reach for this
  reviewer population at k = 3, whatever the estimator).
* ``gold_accuracy_max_abs_error``: over reviewers, at the moment each reaches
  ``GOLD_EACH`` gold items, max |gold accuracy - true accuracy|; ``..._reliability``
  the same for ``p_r`` (gold and adjudicated labels). Target: <= 0.05 (full mode:
  200 gold items each). From gold alone the binomial noise of 200 items
  (standard error up to 0.035) makes the maximum over 20 reviewers exceed 0.05
  about half the time; ``p_r`` has about ten times the evidence.
* ``agreement_alpha``: Krippendorff's alpha over the last window of overlapped items.
* ``sink``: the Delta Lake sink's throughput and exactly-once figures, filled in
  by :func:`bench_sink` (not measured here yet).

Usage: ``python benchmarks/review_quality.py [--quick] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.adjudication import Adjudicator, log_odds_weight
from detectors.agreement import AgreementMonitor
from detectors.reviewer_reliability import ReviewerReliability
from detectors.signals import SignalChange

NUM_CLASSES = 5
REVIEWERS = 20
CARELESS_ERROR = 0.45
GOLD_RATE = 0.02
OVERLAP_RATE = 0.10
OVERLAP_K = 3
MIN_GOLD_ACCURACY = 0.8
T0 = datetime(2026, 1, 1, tzinfo=UTC)

TARGETS = {
    "careless_labels_to_flag": 300,
    "adjudication_gain": 0.02,
    "gold_accuracy_max_abs_error": 0.05,
}


def error_rates() -> list[float]:
    """19 reviewers evenly from 2 % to 30 % error, then the careless one at 45 %."""
    return [*np.linspace(0.02, 0.30, REVIEWERS - 1).round(4).tolist(), CARELESS_ERROR]


def plurality(labels: list[int]) -> int:
    counts: dict[int, int] = {}
    for x in labels:
        counts[x] = counts.get(x, 0) + 1
    return max(counts, key=counts.__getitem__)  # the first label seen wins ties


def run_seed(seed: int, gold_each: int, max_events: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    errors = error_rates()
    names = [f"r{j:02d}" for j in range(REVIEWERS)]
    careless = names[-1]
    rel = ReviewerReliability(min_gold_accuracy=MIN_GOLD_ACCURACY)
    # The same evidence, flagging on gold and adjudicated labels together.
    rel_all = ReviewerReliability(min_gold_accuracy=MIN_GOLD_ACCURACY, flag_on="all")
    true_weight = [log_odds_weight(1 - e, NUM_CLASSES) for e in errors]
    adj = Adjudicator(reviews_wanted=1, num_classes=NUM_CLASSES)
    agree = AgreementMonitor(window=500)
    labels_given = [0] * REVIEWERS
    gold_seen = [0] * REVIEWERS
    err_gold: dict[str, float] = {}
    err_rel: dict[str, float] = {}
    flagged_at: int | None = None
    flagged_combined_at: int | None = None
    flagged: set[str] = set()
    flagged_all: set[str] = set()
    adj_right = maj_right = oracle_right = overlapped = 0

    def label_of(j: int, truth: int) -> int:
        labels_given[j] += 1
        if rng.random() >= errors[j]:
            return truth
        return int((truth + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES)

    def note_all(alerts: list[SignalChange]) -> None:
        nonlocal flagged_combined_at
        for alert in alerts:
            name = alert.signal.split(":")[1]
            if alert.state == "drift":
                flagged_all.add(name)
                if name == careless and flagged_combined_at is None:
                    flagged_combined_at = labels_given[-1]

    i = 0
    for i in range(max_events):
        now = T0 + timedelta(seconds=i)
        truth = int(rng.integers(NUM_CLASSES))
        u = rng.random()
        if u < GOLD_RATE:
            j = int(rng.integers(REVIEWERS))
            label = label_of(j, truth)
            note_all(rel_all.observe_gold(names[j], label == truth))
            for alert in rel.observe_gold(names[j], label == truth):
                if alert.state == "drift":
                    flagged.add(names[j])
                    if names[j] == careless and flagged_at is None:
                        flagged_at = labels_given[j]
            gold_seen[j] += 1
            if gold_seen[j] == gold_each:
                s = rel.stats(names[j])
                err_gold[names[j]] = abs(s.gold_accuracy - (1 - errors[j]))
                err_rel[names[j]] = abs(s.reliability - (1 - errors[j]))
                if len(err_gold) == REVIEWERS:
                    break
            continue
        if u < GOLD_RATE + OVERLAP_RATE:
            who = rng.choice(REVIEWERS, size=OVERLAP_K, replace=False).tolist()
            given = [label_of(j, truth) for j in who]
            for j, x in zip(who, given, strict=True):
                result = adj.add_label(
                    f"e-{i}",
                    str(x),
                    reviewer=names[j],
                    now=now,
                    reviews_wanted=OVERLAP_K,
                    reliability=rel.reliability,
                )
            (decision,) = result.decisions
            rel.observe_decision(decision)
            note_all(rel_all.observe_decision(decision))
            agree.update([str(x) for x in given])
            overlapped += 1
            adj_right += decision.final == str(truth)
            maj_right += plurality(given) == truth
            score: dict[int, float] = {}
            for j, x in zip(who, given, strict=True):
                score[x] = score.get(x, 0.0) + true_weight[j]
            oracle_right += max(score, key=score.__getitem__) == truth
            continue
        j = int(rng.integers(REVIEWERS))
        result = adj.add_label(
            f"e-{i}",
            str(label_of(j, truth)),
            reviewer=names[j],
            now=now,
            reliability=rel.reliability,
        )
        rel.observe_decision(result.decisions[0])
        rel_all.observe_decision(result.decisions[0])
    return {
        "events": i + 1,
        "careless_labels_to_flag": flagged_at,
        "careless_labels_to_flag_combined": flagged_combined_at,
        "flagged": sorted(flagged),
        "false_flags": sorted(
            n for n, e in zip(names, errors, strict=True) if n in flagged and 1 - e >= 0.8
        ),
        "overlapped_items": overlapped,
        "adjudicated_accuracy": adj_right / overlapped,
        "majority_accuracy": maj_right / overlapped,
        "adjudication_gain": (adj_right - maj_right) / overlapped,
        "oracle_accuracy": oracle_right / overlapped,
        "oracle_gain": (oracle_right - maj_right) / overlapped,
        "gold_accuracy_max_abs_error": max(err_gold.values()) if err_gold else None,
        "gold_accuracy_max_abs_error_reliability": max(err_rel.values()) if err_rel else None,
        "reviewers_with_gold_each": len(err_gold),
        "flagged_all": sorted(flagged_all),
        "false_flag_count_all": sum(
            1 for n, e in zip(names, errors, strict=True) if n in flagged_all and 1 - e >= 0.8
        ),
        "false_flag_count": sum(
            1 for n, e in zip(names, errors, strict=True) if n in flagged and 1 - e >= 0.8
        ),
        "agreement_alpha": agree.alpha,
        "adjudicator_counts": adj.counts,
    }


def bench_sink() -> dict[str, Any]:
    """The Delta Lake sink's figures (issue 15 targets: >= 20k reviewed records/s,
    ``exactly_once_violations`` = 0 after a kill -9). Not measured here yet: the
    dataset sink lives in ``streams/dataset`` and is benchmarked there; return its
    numbers under these keys."""
    return {"records_per_s": None, "exactly_once_violations": None, "measured": False}


def _median(values: list[Any]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and gold items")
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args(argv)
    seeds = [args.seed + k for k in range(2 if args.quick else 5)]
    gold_each = 50 if args.quick else 200
    started = time.perf_counter()
    runs = [run_seed(s, gold_each, max_events=2_000_000) for s in seeds]
    medians = {
        key: _median([r[key] for r in runs])
        for key in (
            "careless_labels_to_flag",
            "careless_labels_to_flag_combined",
            "adjudicated_accuracy",
            "majority_accuracy",
            "adjudication_gain",
            "gold_accuracy_max_abs_error",
            "gold_accuracy_max_abs_error_reliability",
            "false_flag_count",
            "false_flag_count_all",
            "oracle_accuracy",
            "oracle_gain",
            "agreement_alpha",
        )
    }
    met = {
        "careless_labels_to_flag": medians["careless_labels_to_flag"] is not None
        and medians["careless_labels_to_flag"] <= TARGETS["careless_labels_to_flag"],
        "careless_labels_to_flag_combined": (
            medians["careless_labels_to_flag_combined"] is not None
            and medians["careless_labels_to_flag_combined"] <= TARGETS["careless_labels_to_flag"]
        ),
        "adjudication_gain": (medians["adjudication_gain"] or 0.0) >= TARGETS["adjudication_gain"],
        "gold_accuracy_max_abs_error": medians["gold_accuracy_max_abs_error"] is not None
        and medians["gold_accuracy_max_abs_error"] <= TARGETS["gold_accuracy_max_abs_error"],
        "gold_accuracy_max_abs_error_reliability": (
            medians["gold_accuracy_max_abs_error_reliability"] is not None
            and medians["gold_accuracy_max_abs_error_reliability"]
            <= TARGETS["gold_accuracy_max_abs_error"]
        ),
    }
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "seeds": seeds,
        "reviewers": REVIEWERS,
        "error_rates": error_rates(),
        "num_classes": NUM_CLASSES,
        "gold_rate": GOLD_RATE,
        "overlap_rate": OVERLAP_RATE,
        "overlap_k": OVERLAP_K,
        "min_gold_accuracy": MIN_GOLD_ACCURACY,
        "gold_items_each": gold_each,
        **medians,
        "targets": TARGETS,
        "met": met,
        "per_seed": runs,
        "sink": bench_sink(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
