"""Quality of calibration monitoring, escalation policies, budget and CBPE on synthetic streams.

Prints ONE JSON object. Targets (issue 4):

* ``ece_abs_diff_vs_offline`` <= 1e-9: rolling ECE of :class:`CalibrationMonitor`
  against a numpy recomputation on the same window (sklearn's uniform binning);
* ``conformal_autoaccept_error`` and ``conformal_autoaccept_error_after_shift``
  in [0.04, 0.06]: error rate among auto-accepted items, target 0.05, over each
  half of a 100k-event stream after a burn-in of ``BURN_IN`` events;
* ``conformal_escalation_rate_vs_best_fixed`` <= 1.2: conformal escalation rate
  over that of the best fixed confidence threshold in hindsight meeting the
  target on the same stationary stretch;
* ``budget_max_overshoot`` <= 0.05 and ``budget_topk_overlap`` >= 0.8: the worst
  minute's escalations over budget (as a fraction of it) and the mean share of a
  minute's budget-many most uncertain candidates that were escalated;
* ``cbpe_abs_error`` <= 0.02: |estimated - realized accuracy| after a covariate
  shift, calibrated model.

Review-only labels (issue 13), ``review_*``: labels come only from reviewers
(every escalation, plus a 2 % audit sample of what the conformal policy
auto-accepts), ground truth is known for every event, and the model shifts
abruptly halfway. The same stream runs three times: weighted (labels weighed by
1 / inclusion probability), unweighted (the same labels, weights ignored) and
without audit (what vigil did before: no label ever covers an accepted item).
Targets, weighted, full mode: ``review_accuracy_abs_error``,
``review_ece_abs_error`` and ``review_autoaccept_error_abs_error`` <= 0.01 (mean
absolute error against the truth over the events the estimator's window
covers, at evaluation points every ``REVIEW_EVAL_EVERY`` events);
``review_autoaccept_upper_coverage`` >= 0.93 (share of evaluation points where
the true auto-accept error is at or under the 95 % upper bound);
``review_cbpe_abs_error`` <= 0.02 (against the accuracy of the unlabelled window,
outside the ``REVIEW_BURN_IN`` events after the start and after the shift,
while the map relearns); ``review_conformal_autoaccept_error`` and ``..._after_shift``
within ``TARGET_ERROR`` +- 0.01 (true error among accepted events, each half after
``REVIEW_BURN_IN``).

Usage: ``python benchmarks/escalation_quality.py [--quick] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.audit import AuditSampler
from detectors.autoaccept import AutoAcceptMonitor
from detectors.budget import EscalationBudget
from detectors.calibration import CalibrationMonitor
from detectors.escalation_policy import EscalationPolicy
from detectors.model_monitor import ModelMonitor
from detectors.performance import PerformanceEstimator
from detectors.prediction import ClassPrediction

TARGET_ERROR = 0.05
BURN_IN = 5_000  # labelled events skipped at the start of each half


def offline_ece(conf: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """ECE with scikit-learn ``calibration_curve(strategy="uniform")`` binning."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], conf)
    s = np.bincount(ids, weights=conf, minlength=bins)
    h = np.bincount(ids, weights=correct.astype(float), minlength=bins)
    return float(np.sum(np.abs(h - s)) / len(conf))


def bench_ece(rng: np.random.Generator, n: int, window: int, bins: int = 10) -> dict:
    conf = rng.beta(4.0, 1.5, n)
    # Slowly drifting miscalibration so the window's ECE keeps changing.
    p = np.clip(conf - 0.1 * np.sin(np.arange(n) / 3000.0), 0.0, 1.0)
    correct = rng.random(n) < p
    mon = CalibrationMonitor(bins=bins, window=window)
    worst = 0.0
    checks = set(np.linspace(window, n - 1, 50).astype(int).tolist())
    for i, (c, y) in enumerate(zip(conf.tolist(), correct.tolist(), strict=True)):
        mon.update(c, y)
        if i in checks:
            lo = i + 1 - window
            worst = max(
                worst, abs(mon.ece - offline_ece(conf[lo : i + 1], correct[lo : i + 1], bins))
            )
    return {"ece_abs_diff_vs_offline": worst, "ece_checks": len(checks), "ece_window": window}


def conformal_stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and correctness: a model wrong ~15% of the time and calibrated;
    halfway, inputs move to where it is less sure and it becomes overconfident
    (errors 1.6 times as likely at every confidence, ~27% overall)."""
    half = n // 2
    conf = 0.5 + 0.5 * rng.beta(3.5, 1.5, n)
    conf[half:] = 0.5 + 0.5 * rng.beta(3.0, 1.5, n - half)
    p_err = 1.0 - conf
    p_err[half:] = np.clip(1.6 * (1.0 - conf[half:]), 0.0, 1.0)
    correct = rng.random(n) >= p_err
    return conf, correct


def best_fixed_rate(conf: np.ndarray, correct: np.ndarray, target: float) -> float:
    """Escalation rate of the best fixed confidence threshold in hindsight: accept
    the most confident items while their error rate stays within ``target``."""
    order = np.argsort(-conf, kind="stable")
    errors = np.cumsum(~correct[order])
    accepted = np.arange(1, len(conf) + 1)
    ok = np.flatnonzero(errors <= target * accepted)
    # A threshold cannot split tied confidences: keep only cut points between values.
    sorted_conf = conf[order]
    ok = ok[
        (ok == len(conf) - 1) | (sorted_conf[ok] != sorted_conf[np.minimum(ok + 1, len(conf) - 1)])
    ]
    return 1.0 - (int(ok.max()) + 1) / len(conf) if len(ok) else 1.0


def bench_conformal(rng: np.random.Generator, n: int) -> dict:
    conf, correct = conformal_stream(rng, n)
    half = n // 2
    policy = EscalationPolicy(policy="conformal", target_error=TARGET_ERROR)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    escalated = np.zeros(n, dtype=bool)
    for i, (c, y) in enumerate(zip(conf.tolist(), correct.tolist(), strict=True)):
        pred = ClassPrediction("positive", c)
        decision = policy.decide(pred, now=now)
        escalated[i] = decision.escalate
        policy.observe_label(pred, y, decision.escalate)
    out: dict = {}
    for name, lo, hi in (("", BURN_IN, half), ("_after_shift", half + BURN_IN, n)):
        acc = ~escalated[lo:hi]
        out[f"conformal_autoaccept_error{name}"] = float(np.mean(~correct[lo:hi][acc]))
        out[f"conformal_escalation_rate{name}"] = float(np.mean(escalated[lo:hi]))
    best = best_fixed_rate(conf[BURN_IN:half], correct[BURN_IN:half], TARGET_ERROR)
    out["best_fixed_escalation_rate"] = best
    out["conformal_escalation_rate_vs_best_fixed"] = out["conformal_escalation_rate"] / best
    best_after = best_fixed_rate(conf[half + BURN_IN :], correct[half + BURN_IN :], TARGET_ERROR)
    out["conformal_escalation_rate_vs_best_fixed_after_shift"] = (
        out["conformal_escalation_rate_after_shift"] / best_after
    )
    out["conformal_final_confidence_threshold"] = policy.threshold
    out["conformal_model_error"] = [
        float(np.mean(~correct[:half])),
        float(np.mean(~correct[half:])),
    ]
    return out


def bench_budget(rng: np.random.Generator, minutes: int, budget: int = 100) -> dict:
    """Candidates at ~1000 a minute, swinging +-50% over two hours, with a burst
    of 3x traffic every 37 minutes; priorities are the candidates' uncertainty."""
    t0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    ts_parts = []
    for m in range(minutes):
        lam = (
            1000.0 * (1.0 + 0.5 * np.sin(2.0 * np.pi * m / 120.0)) * (3.0 if m % 37 == 36 else 1.0)
        )
        ts_parts.append(np.sort(t0 + 60.0 * m + 60.0 * rng.random(rng.poisson(lam))))
    ts = np.concatenate(ts_parts)
    prio = rng.beta(2.0, 5.0, len(ts))
    gate = EscalationBudget(budget_per_minute=budget)
    sent = np.array(
        [
            gate.update(p, datetime.fromtimestamp(t, UTC))
            for p, t in zip(prio.tolist(), ts.tolist(), strict=True)
        ]
    )
    minute = ((ts - t0) // 60).astype(int)
    overshoot, overlap = [], []
    for m in range(1, minutes):  # minute 0 has no history; reported separately below
        idx = np.flatnonzero(minute == m)
        overshoot.append(max(0, int(sent[idx].sum()) - budget) / budget)
        top = idx[np.argsort(-prio[idx], kind="stable")[:budget]]
        overlap.append(float(sent[top].sum()) / len(top))
    first = np.flatnonzero(minute == 0)
    return {
        "budget_max_overshoot": max(overshoot),
        "budget_topk_overlap": float(np.mean(overlap)),
        "budget_topk_overlap_worst_minute": float(np.min(overlap)),
        "budget_first_minute_escalations": int(sent[first].sum()),
        "budget_utilization": float(sent.sum()) / (budget * minutes),
        "budget_minutes": minutes,
    }


def bench_cbpe(rng: np.random.Generator, n_ref: int, n_prod: int) -> dict:
    """Reference: labelled, confident inputs. Production: unlabelled inputs that
    moved to where the model is less sure (covariate shift: P(correct | confidence)
    unchanged). Also reported for an overconfident model (P(correct) = c**1.5)
    whose calibration map CBPE must learn from the reference labels."""
    out = {}
    for name, link in (("", lambda c: c), ("_miscalibrated_model", lambda c: c**1.5)):
        est = PerformanceEstimator(window=n_prod, calibration_window=n_ref)
        c_ref = 0.5 + 0.5 * rng.beta(4.0, 1.5, n_ref)
        y_ref = rng.random(n_ref) < link(c_ref)
        for c, y in zip(c_ref.tolist(), y_ref.tolist(), strict=True):
            est.observe_label(c, y)
        c_prod = 0.5 + 0.5 * rng.beta(2.0, 2.0, n_prod)
        y_prod = rng.random(n_prod) < link(c_prod)
        for c in c_prod.tolist():
            est.update(c)
        realized = float(np.mean(y_prod))
        out[f"cbpe_abs_error{name}"] = abs(est.estimated_accuracy - realized)
        out[f"cbpe_realized_accuracy{name}"] = realized
        out[f"cbpe_reference_accuracy{name}"] = float(np.mean(y_ref))
    return out


REVIEW_AUDIT_RATE = 0.02
REVIEW_LABEL_DELAY = 500  # events between a decision and its review label
REVIEW_EVAL_EVERY = 1_000
REVIEW_BURN_IN = 40_000  # events after the start and after the shift (conformal, CBPE)
REVIEW_WINDOW = 5_000  # labels per calibration estimate (the default calibration.window)
# escalation.learning_rate for audit-only labels of accepted items: 50x rarer than with
# outcome labels, so a larger step per label (0.005, the default, takes ~150k events to
# settle here; see the README).
REVIEW_LEARNING_RATE = 0.02


def review_stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated model wrong ~7 % of the time; halfway its inputs move to where it
    is less sure and it becomes overconfident (errors 1.4x as likely at every confidence)."""
    half = n // 2
    conf = 0.5 + 0.5 * rng.beta(8.0, 1.2, n)
    conf[half:] = 0.5 + 0.5 * rng.beta(6.0, 1.2, n - half)
    p_err = 1.0 - conf
    p_err[half:] = np.clip(1.4 * (1.0 - conf[half:]), 0.0, 1.0)
    return conf, rng.random(n) >= p_err


def _binned_ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    return offline_ece(conf, correct, bins) if len(conf) else 0.0


def _run_review_only(
    conf: np.ndarray, correct: np.ndarray, *, weighted: bool, audit: bool
) -> dict[str, float]:
    """One pass of the stream through a ModelMonitor fed review labels only."""
    n = len(conf)
    half = n // 2
    mon = ModelMonitor(
        "m",
        EscalationPolicy(
            policy="conformal", target_error=TARGET_ERROR, learning_rate=REVIEW_LEARNING_RATE
        ),
        calibration=CalibrationMonitor(window=REVIEW_WINDOW),
        performance=PerformanceEstimator(calibration_window=REVIEW_WINDOW),
        audit=AuditSampler(rate=REVIEW_AUDIT_RATE) if audit else None,
        autoaccept=AutoAcceptMonitor(max_error=TARGET_ERROR),
    )
    t0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    by_rule = np.zeros(n, dtype=bool)
    queue: deque[tuple[int, ClassPrediction, bool, float]] = deque()
    cal_idx: deque[int] = deque(maxlen=REVIEW_WINDOW)  # events in the calibration window
    acc_idx: deque[int] = deque(maxlen=mon.autoaccept.window)  # type: ignore[union-attr]
    errs: dict[str, list[float]] = {k: [] for k in ("accuracy", "ece", "autoaccept", "cbpe")}
    covered = checks = 0
    for i, c in enumerate(conf.tolist()):
        pred = ClassPrediction("pos", c)
        now = datetime.fromtimestamp(t0 + 0.01 * i, UTC)
        d = mon.observe({}, pred, now, f"e-{i}").decision
        rule = d.escalate and not d.audited
        by_rule[i] = rule
        if d.escalate:
            queue.append((i, pred, rule, d.inclusion_probability))
        while queue and queue[0][0] <= i - REVIEW_LABEL_DELAY:
            j, p, esc, incl = queue.popleft()
            truth = "pos" if correct[j] else "neg"
            mon.observe_label(
                p, truth, was_escalated=esc, inclusion_probability=incl if weighted else 1.0
            )
            cal_idx.append(j)
            if not esc:
                acc_idx.append(j)
        if i % REVIEW_EVAL_EVERY or len(cal_idx) < REVIEW_WINDOW:
            continue
        lo, hi = cal_idx[0], cal_idx[-1] + 1
        cal = mon.calibration
        errs["accuracy"].append(abs(cal.accuracy - float(np.mean(correct[lo:hi]))))
        errs["ece"].append(abs(cal.ece - _binned_ece(conf[lo:hi], correct[lo:hi])))
        perf = mon.performance
        assert perf is not None  # built above
        if REVIEW_BURN_IN <= i < half or i >= half + REVIEW_BURN_IN:
            window = slice(i + 1 - perf.window, i + 1)
            errs["cbpe"].append(abs(perf.estimated_accuracy - float(np.mean(correct[window]))))
        aa = mon.autoaccept
        assert aa is not None  # built above
        if len(acc_idx) < aa.min_labelled:
            continue  # without audit: never (no label ever covers an accepted item)
        lo, hi = acc_idx[0], acc_idx[-1] + 1
        true_rate = float(np.mean(~correct[lo:hi][~by_rule[lo:hi]]))
        errs["autoaccept"].append(abs(aa.error - true_rate))
        checks += 1
        covered += true_rate <= aa.upper
    out: dict[str, float | None] = {
        f"{k}_abs_error": float(np.mean(v)) if v else None for k, v in errs.items()
    }
    out["autoaccept_upper_coverage"] = covered / checks if checks else None
    out["autoaccept_checks"] = checks
    for name, lo, hi in (("", REVIEW_BURN_IN, half), ("_after_shift", half + REVIEW_BURN_IN, n)):
        acc = ~by_rule[lo:hi]
        out[f"conformal_autoaccept_error{name}"] = float(np.mean(~correct[lo:hi][acc]))
        out[f"escalation_rate{name}"] = float(np.mean(by_rule[lo:hi]))
    return out


def bench_review_only(rng: np.random.Generator, n: int) -> dict:
    conf, correct = review_stream(rng, n)
    out: dict = {
        "review_events": n,
        "review_model_error": [
            float(np.mean(~correct[: n // 2])),
            float(np.mean(~correct[n // 2 :])),
        ],
        "review_audit_rate": REVIEW_AUDIT_RATE,
    }
    runs = (
        ("", True, True),
        ("_unweighted", False, True),
        ("_without_audit", True, False),
    )
    for suffix, weighted, audit in runs:
        for key, value in _run_review_only(conf, correct, weighted=weighted, audit=audit).items():
            out[f"review_{key}{suffix}"] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller streams (under a minute)")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    result: dict = {"mode": "quick" if args.quick else "full", "seed": args.seed}
    result |= bench_ece(rng, n=30_000 if args.quick else 200_000, window=5_000)
    result |= bench_conformal(rng, n=100_000)
    result["conformal_burn_in"] = BURN_IN
    result |= bench_budget(rng, minutes=60 if args.quick else 480)
    result |= bench_cbpe(rng, n_ref=20_000, n_prod=20_000 if args.quick else 50_000)
    result |= bench_review_only(rng, n=200_000 if args.quick else 600_000)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
