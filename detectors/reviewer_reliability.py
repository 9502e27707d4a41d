"""How often each reviewer is right: a one-coin model per reviewer, learned online.

**The model.** Reviewer ``r`` gives the true class with probability ``p_r`` and
otherwise one of the other ``K - 1`` classes, evenly (the "one-coin" special
case of Dawid and Skene 1979). Full Dawid-Skene keeps a ``K x K`` confusion
matrix per reviewer: ``K**2 - K`` free parameters where one-coin has one. A
reviewer here gives a few hundred labels, of which only the 2 % gold and the
overlapped 10 % say anything about them, ``K`` may be in the dozens, and state
must stay bounded: a confusion matrix would be mostly prior, cost ``O(K**2)``
per reviewer, and be unknown for class pairs never seen. One number per reviewer
is estimable from tens of items and is exactly what the log-odds vote of
:mod:`detectors.adjudication` needs. What is lost: a reviewer who confuses two
particular classes looks like one who errs at random.

**The estimate** ``p_r`` is the mean of a Beta posterior: a
``Beta(prior_correct, prior_wrong)`` prior, plus

* gold items (known truth): one success or failure each
  (:meth:`ReviewerReliability.observe_gold`);
* adjudicated events with two labels or more: the posterior probability that the
  reviewer's label is right given all the event's labels and the adjudicator's
  class prior (its :attr:`~detectors.adjudication.Decision.posterior`, the
  posterior the adjudicator's vote maximises) counts as a fractional
  success and its complement as a fractional failure, each weighted by
  ``agreement_weight``. That is the E-step of EM for the one-coin model, taken
  online with the current estimates (one pass, as in online EM; Cappé and
  Moulines 2009); against an outcome label the posterior is 1 or 0.

**Gold accuracy** is reported from gold items alone, with a two-sided Wilson score
interval at level ``confidence`` (Wilson 1927; near-nominal coverage down to
small ``n``, unlike the Wald interval). A reviewer is *flagged* (an edge-triggered
alert ``reviewer:<id>:gold_accuracy``, SPEC §5) when the interval's upper end
falls below ``min_gold_accuracy`` once the reviewer has at least ``min_gold``
gold items: the data then exclude, at that level, that the reviewer meets the
bar. It recovers once the upper end is back at ``min_gold_accuracy + hysteresis``.
The bound is checked after every gold item, so the chance of a false flag over a
reviewer's career exceeds the 2.5 % of one look; ``min_gold`` keeps it small,
since the Wilson interval is too narrow on one to three items (one wrong answer
out of one gives an upper end of 0.79). Measured (2000 simulated careers of 200
gold items, bar 0.8): a reviewer right 90 % of the time is ever flagged in 12.6 %
of careers with ``min_gold=1``, 1.6 % with 5, 0.3 % with 10; one right 85 % of
the time in 19 %, 5 %, 3 %; one right 55 % of the time is flagged after a median
of 3, 8, 11 gold items. Clopper-Pearson would give 0.2 % and 12 items.

:attr:`ReviewerStats.upper` is the upper end of the same interval over gold and
adjudicated labels together (the soft successes over the items), for callers
who prefer flagging on more evidence (it rests on the one-coin model and on the
other reviewers).

**Bounds.** At most ``max_reviewers`` reviewers are tracked by name, in order of
first appearance; every later one shares one estimate under ``_other`` (which
also bounds the Prometheus label values). Each reviewer is a handful of counts:
memory does not grow with the stream. Counts never decay: the estimates describe
each reviewer over all their labels since the start (or since a restore).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

from detectors.adjudication import Decision
from detectors.base import (
    Detector,
    check_bool,
    check_in_range,
    check_positive,
    check_probability,
)
from detectors.errors import InvalidObservationError, SettingsError
from detectors.signals import SignalChange, SignalState

__all__ = ["OTHER", "ReviewerReliability", "ReviewerStats", "wilson_interval"]

OTHER = "_other"
_ID_MAX = 128
# Per reviewer: labels, gold items, gold right, soft items, soft right, hard agreement
# items, hard agreements, flagged (1/0). A list, not a dataclass: cheap to snapshot.
_LABELS, _GOLD, _GOLD_RIGHT, _SOFT, _SOFT_RIGHT, _AGREE_N, _AGREE, _FLAGGED = range(8)


def wilson_interval(successes: float, n: float, z: float) -> tuple[float, float]:
    """The Wilson score interval for a proportion (no continuity correction).

    >>> lo, hi = wilson_interval(3, 6, 1.959963984540054)
    >>> round(lo, 3), round(hi, 3)
    (0.188, 0.812)
    >>> wilson_interval(0, 0, 1.96)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class ReviewerStats:
    """One reviewer's numbers (``reviewer`` is the tracked name or ``_other``).

    ``gold_accuracy`` is NaN without gold items; ``agreement`` (share of labels
    equal to the adjudicated one, on events with two labels or more) is NaN
    without such events; ``reliability`` is the Beta posterior mean ``p_r``;
    ``upper`` the Wilson upper end over gold and adjudicated labels together.
    """

    reviewer: str
    labels: int
    gold: int
    gold_correct: int
    gold_accuracy: float
    gold_lower: float
    gold_upper: float
    agreement: float
    adjudicated: int
    reliability: float
    upper: float
    flagged: bool


def _check_reviewer(reviewer: object) -> str:
    if type(reviewer) is not str or not 1 <= len(reviewer) <= _ID_MAX:
        raise InvalidObservationError(
            f"'reviewer' must be a string of 1-{_ID_MAX} characters; got {reviewer!r}"
        )
    return reviewer


class ReviewerReliability(Detector):
    """Per-reviewer reliability (one-coin), gold accuracy with a Wilson interval, and
    an alert for a reviewer whose gold accuracy is shown below the bar.

    Parameters
    ----------
    max_reviewers
        Reviewers tracked by name; later ones share ``_other``.
    prior_correct, prior_wrong
        The Beta prior of ``p_r``, in items (default mean 0.8 worth 5 items).
    min_gold_accuracy
        A reviewer is flagged when the gold-accuracy upper bound is below this
        (``review.min_gold_accuracy``).
    confidence
        Level of the two-sided gold-accuracy interval.
    hysteresis
        A flagged reviewer recovers once the upper bound reaches
        ``min_gold_accuracy + hysteresis``.
    min_gold
        Gold items a reviewer needs before they can be flagged (with
        ``flag_on="all"``: items of evidence, gold and adjudicated).
    agreement_weight
        Weight of one adjudicated label against one gold item in ``p_r``
        (soft evidence rests on the model and the other reviewers; gold does not).
    flag_on
        ``"gold"``: flag on the gold-accuracy interval (signal
        ``reviewer:<id>:gold_accuracy``); ``"all"``: on the interval over gold and
        adjudicated labels (:attr:`ReviewerStats.upper`; signal
        ``reviewer:<id>:accuracy``), which sees about ten times the evidence at 2 %
        gold and 10 % overlap at k = 3, but rests on the one-coin model and on the
        other reviewers (see ``benchmarks/review_quality.py`` for both).

    Examples
    --------
    A reviewer right 55 % of the time on gold is flagged as soon as ten gold items
    or more exclude 80 % at the 95 % level; a good one is not:

    >>> import random
    >>> rng = random.Random(1)
    >>> rel = ReviewerReliability(min_gold_accuracy=0.8)
    >>> alerts = []
    >>> for i in range(100):
    ...     alerts += rel.observe_gold("careless", rng.random() < 0.55)
    ...     alerts += rel.observe_gold("careful", rng.random() < 0.97)
    >>> [(a.signal, a.state, a.events_seen) for a in alerts]
    [('reviewer:careless:gold_accuracy', 'drift', 10)]
    >>> s = rel.stats("careless")
    >>> s.gold, round(s.gold_accuracy, 2), round(s.gold_upper, 2), s.flagged
    (100, 0.59, 0.68, True)
    >>> round(rel.reliability("careful"), 3), round(rel.reliability("someone new"), 3)
    (0.962, 0.8)

    Beyond ``max_reviewers`` reviewers, the rest share ``_other``:

    >>> small = ReviewerReliability(max_reviewers=2)
    >>> for r in ["a", "b", "c", "d"]:
    ...     _ = small.observe_gold(r, True)
    >>> small.reviewers, small.key("d"), small.stats("c").gold
    (('a', 'b', '_other'), '_other', 2)
    """

    _settings = (
        "max_reviewers",
        "prior_correct",
        "prior_wrong",
        "min_gold_accuracy",
        "confidence",
        "hysteresis",
        "min_gold",
        "agreement_weight",
        "flag_on",
    )

    def __init__(
        self,
        max_reviewers: int = 200,
        prior_correct: float = 4.0,
        prior_wrong: float = 1.0,
        min_gold_accuracy: float = 0.8,
        confidence: float = 0.95,
        hysteresis: float = 0.05,
        min_gold: int = 10,
        agreement_weight: float = 1.0,
        flag_on: Literal["gold", "all"] = "gold",
    ) -> None:
        self.max_reviewers = max_reviewers
        self.prior_correct = prior_correct
        self.prior_wrong = prior_wrong
        self.min_gold_accuracy = min_gold_accuracy
        self.confidence = confidence
        self.hysteresis = hysteresis
        self.min_gold = min_gold
        self.agreement_weight = agreement_weight
        self.flag_on = flag_on
        check_positive("max_reviewers", max_reviewers, integer=True)
        check_positive("prior_correct", prior_correct)
        check_positive("prior_wrong", prior_wrong)
        check_in_range("min_gold_accuracy", min_gold_accuracy, 0.0, 1.0)
        check_in_range("confidence", confidence, 0.0, 1.0)
        if not 0.5 <= confidence < 1.0:
            raise SettingsError(f"'confidence' must be in [0.5, 1); got {confidence!r}")
        check_in_range("hysteresis", hysteresis, 0.0, 1.0)
        check_positive("min_gold", min_gold, integer=True)
        check_in_range("agreement_weight", agreement_weight, 0.0, 1e6)
        if flag_on not in ("gold", "all"):
            raise SettingsError(f"'flag_on' must be 'gold' or 'all'; got {flag_on!r}")
        self._signal = "gold_accuracy" if flag_on == "gold" else "accuracy"
        self._z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"max_reviewers": 5}
        yield {
            "max_reviewers": 3,
            "prior_correct": 1.0,
            "prior_wrong": 1.0,
            "min_gold_accuracy": 0.7,
            "confidence": 0.9,
            "hysteresis": 0.0,
            "min_gold": 1,
            "agreement_weight": 0.5,
            "flag_on": "all",
        }

    def _reset(self) -> None:
        self._reviewers: dict[str, list[float]] = {}
        self._events = 0  # gold items and adjudicated labels seen, for alerts' events_seen

    def _state(self) -> dict[str, Any]:
        return {
            "reviewers": {k: list(v) for k, v in self._reviewers.items()},
            "events": self._events,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._reviewers = {str(k): [float(x) for x in v] for k, v in state["reviewers"].items()}
        self._events = int(state["events"])

    # -- input -------------------------------------------------------------------------

    def key(self, reviewer: str) -> str:
        """The name ``reviewer`` is tracked under: itself, or ``_other`` beyond the cap."""
        if reviewer in self._reviewers:
            return reviewer
        named = len(self._reviewers) - (OTHER in self._reviewers)
        return reviewer if named < self.max_reviewers else OTHER

    def _slot(self, reviewer: str) -> tuple[str, list[float]]:
        k = self.key(reviewer)
        row = self._reviewers.get(k)
        if row is None:
            row = self._reviewers[k] = [0.0] * 8
        return k, row

    def observe_gold(self, reviewer: str, correct: bool) -> list[SignalChange]:
        """Score one label on a gold item; return the alerts it triggers (0 or 1)."""
        _check_reviewer(reviewer)
        correct = check_bool("correct", correct)
        k, row = self._slot(reviewer)
        self._events += 1
        row[_LABELS] += 1
        row[_GOLD] += 1
        row[_GOLD_RIGHT] += correct
        return self._edge(k, row)

    def _evidence(self, row: list[float]) -> tuple[float, float]:
        """(successes, items) the flag is decided on: gold alone, or gold and the
        adjudicated labels weighted by ``agreement_weight`` (``flag_on="all"``)."""
        if self.flag_on == "gold":
            return row[_GOLD_RIGHT], row[_GOLD]
        return self._combined(row)

    def _combined(self, row: list[float]) -> tuple[float, float]:
        """(successes, items) over gold and adjudicated labels, the latter weighted by
        ``agreement_weight`` as in ``p_r``: what ``flag_on="all"`` and
        :attr:`ReviewerStats.upper` rest on."""
        w = self.agreement_weight
        return row[_GOLD_RIGHT] + w * row[_SOFT_RIGHT], row[_GOLD] + w * row[_SOFT]

    def _edge(self, k: str, row: list[float]) -> list[SignalChange]:
        right, n = self._evidence(row)
        upper = wilson_interval(right, n, self._z)[1]
        if not row[_FLAGGED] and upper < self.min_gold_accuracy and n >= self.min_gold:
            row[_FLAGGED] = 1.0
            return [self._change(k, row, "drift", upper, n)]
        if row[_FLAGGED] and upper >= self.min_gold_accuracy + self.hysteresis:
            row[_FLAGGED] = 0.0
            return [self._change(k, row, "recovered", upper, n)]
        return []

    def observe_agreement(
        self, reviewer: str, p_right: float, agreed: bool | None
    ) -> list[SignalChange]:
        """Credit one adjudicated label: ``p_right``, the posterior probability that it
        is right; ``agreed``, whether it equals the final label (``None``: not scored).
        Returns the alerts it triggers (only with ``flag_on="all"``)."""
        _check_reviewer(reviewer)
        p = check_probability("p_right", p_right)
        if agreed is not None:
            agreed = check_bool("agreed", agreed)
        k, row = self._slot(reviewer)
        self._events += 1
        row[_SOFT] += 1
        row[_SOFT_RIGHT] += p
        if agreed is not None:
            row[_AGREE_N] += 1
            row[_AGREE] += agreed
        return self._edge(k, row) if self.flag_on == "all" else []

    def observe_decision(self, decision: Decision) -> list[SignalChange]:
        """Count the labels of one adjudicated event and learn from them; return the
        alerts (only with ``flag_on="all"``).

        Every reviewer's label counts toward their ``labels``. Events with two
        labels or more (or an outcome) also update each reviewer's reliability by
        the label's posterior (:attr:`Decision.posterior`) and their agreement
        with the final label; a lone review says nothing about its reviewer.
        """
        if not isinstance(decision, Decision):
            raise InvalidObservationError(f"'decision' must be a Decision; got {decision!r}")
        scored = decision.method == "outcome" or decision.human_labels >= 2
        alerts: list[SignalChange] = []
        for i, review in enumerate(decision.labels):
            if review.reviewer is None or review.source == "outcome":
                continue
            k, row = self._slot(review.reviewer)
            row[_LABELS] += 1
            if not scored:
                continue
            if decision.posterior is not None:
                self._events += 1
                row[_SOFT] += 1
                row[_SOFT_RIGHT] += decision.posterior[i]
                if self.flag_on == "all":
                    alerts += self._edge(k, row)
            if isinstance(decision.final, str):
                row[_AGREE_N] += 1
                row[_AGREE] += review.label == decision.final
        return alerts

    def _change(
        self,
        key: str,
        row: list[float],
        state: Literal["drift", "recovered"],
        upper: float,
        n: float,
    ) -> SignalChange:
        return SignalChange(
            signal=f"reviewer:{key}:{self._signal}",
            detector=type(self).__name__,
            state=state,
            events_seen=int(row[_LABELS]),
            statistic=upper,
            threshold=self.min_gold_accuracy,
            reference=None,
            current={
                "gold": int(row[_GOLD]),
                "gold_accuracy": row[_GOLD_RIGHT] / row[_GOLD] if row[_GOLD] else None,
                "evidence": n,
                "reliability": self.reliability(key),
            },
        )

    # -- results -----------------------------------------------------------------------

    def reliability(self, reviewer: str) -> float:
        """``p_r``: the posterior mean probability that ``reviewer`` is right (the prior
        mean for a reviewer never seen). Pass this method to the adjudicator."""
        row = self._reviewers.get(self.key(reviewer))
        a, b = self.prior_correct, self.prior_wrong
        if row is None:
            return a / (a + b)
        w = self.agreement_weight
        right = a + row[_GOLD_RIGHT] + w * row[_SOFT_RIGHT]
        return right / (a + b + row[_GOLD] + w * row[_SOFT])

    def stats(self, reviewer: str) -> ReviewerStats:
        """All numbers of one reviewer (zeros and NaN for one never seen)."""
        k = self.key(reviewer)
        row = self._reviewers.get(k, [0.0] * 8)
        gold, right = row[_GOLD], row[_GOLD_RIGHT]
        lo, hi = wilson_interval(right, gold, self._z)
        return ReviewerStats(
            reviewer=k,
            labels=int(row[_LABELS]),
            gold=int(gold),
            gold_correct=int(right),
            gold_accuracy=right / gold if gold else math.nan,
            gold_lower=lo,
            gold_upper=hi,
            agreement=row[_AGREE] / row[_AGREE_N] if row[_AGREE_N] else math.nan,
            adjudicated=int(row[_AGREE_N]),
            reliability=self.reliability(k),
            upper=wilson_interval(*self._combined(row), self._z)[1],
            flagged=bool(row[_FLAGGED]),
        )

    def states(self) -> list[SignalState]:
        """``reviewer:<id>:gold_accuracy`` (``:accuracy`` with ``flag_on="all"``) of
        every tracked reviewer with evidence: the upper end of the interval the flag
        is decided on, against ``min_gold_accuracy``, for gauges."""
        out = []
        for k, row in self._reviewers.items():
            right, n = self._evidence(row)
            if n:
                upper = wilson_interval(right, n, self._z)[1]
                out.append(
                    SignalState(
                        f"reviewer:{k}:{self._signal}",
                        type(self).__name__,
                        upper,
                        self.min_gold_accuracy,
                        bool(row[_FLAGGED]),
                    )
                )
        return out

    @property
    def reviewers(self) -> tuple[str, ...]:
        """Tracked names in order of first appearance (``_other`` once the cap is hit)."""
        return tuple(self._reviewers)

    @property
    def flagged(self) -> tuple[str, ...]:
        """Reviewers flagged now."""
        return tuple(k for k, row in self._reviewers.items() if row[_FLAGGED])
