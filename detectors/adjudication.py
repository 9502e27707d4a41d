"""Adjudication: one final label per reviewed event, from the labels of several reviewers.

:class:`Adjudicator` keeps the labels of events still open (one per reviewer: a
second label from the same reviewer replaces the first, SPEC §3) and decides an
event when it has the ``reviews_wanted`` labels it asked for, when
``timeout_s`` has passed since its first label (:meth:`Adjudicator.expire`), or
when an outcome label arrives. A label for an event already decided is
reported ``late`` and changes nothing.

**The rule.** An outcome label (``source="outcome"``) overrides every review
(method ``"outcome"``). A single review stands (``"single"``). With several,
under the one-coin model of :mod:`detectors.reviewer_reliability` (reviewer
``r`` is right with probability ``p_r``, its errors spread evenly over the
other ``K - 1`` classes, reviewers independent given the true class) the
posterior of each class ``c`` is

    ``P(c | labels)  ~  pi_c * prod_r (p_r if r said c else (1 - p_r) / (K - 1))
                     ~  pi_c * exp(sum of w_r over reviewers who said c)``

(``~``: proportional)

with the log-odds weight

    ``w_r = log(p_r (K - 1) / (1 - p_r))``

and ``pi_c`` the share of class ``c`` among the reviewed events (the class
marginals of Dawid and Skene 1979, with one parameter per reviewer rather than
a confusion matrix; see also Nitzan and Paroush 1982, the optimal weights of a
weighted majority). The final label is the label given with the largest
``log pi_c + sum of w_r`` (``"weighted"``): a class no reviewer gave is never
chosen, though its probability counts in the posteriors (choosing it would be
the Bayes rule when every reviewer dissents from a common class; in
``benchmarks/review_quality.py`` that costs under 1e-6 of accuracy, and a final
label nobody gave cannot be explained to the team). A reviewer no better than
chance (``p_r <= 1 / K``) gets weight 0: ignored, not inverted. ``K`` is the
model's class count (``num_classes``) or, when not given, the number of class
names seen so far (on any event). It matters: two agreeing labels outweigh a
dissenter by ``log(K - 1)`` plus their reviewers' log-odds, so taking ``K`` as
the event's own distinct labels (2 for a two-to-one split) lets one strong
dissenter overturn two agreeing reviewers far too easily; in
``benchmarks/review_quality.py`` (K = 5) that kept a quarter of the gain over
majority vote. When a reviewer's reliability is unknown (the ``reliability``
callable returns ``None`` or no probability, a label has no reviewer, or no
callable is given) or all weights are equal, the plurality of labels decides
(``"majority"``; the class prior does not break its ties: with equal weights
nothing is known yet that should overrule the reviewers' count). Ties go to the
larger weighted vote, then to the label given first.

**The class prior** ``pi`` is learned online from this adjudicator's own
decisions: the final label of every decided event with at least one human
label is counted (at most :data:`MAX_CLASSES` class names; events with an
outcome label alone are not counted, since the outcome source labels traffic
that reviewers never see, and it is the mix of *reviewed* events that the vote
needs). ``pi_c`` is the mean of the Dirichlet posterior from a symmetric
``Dirichlet(class_prior_strength)`` prior,

    ``pi_c = (n_c + a) / (N + K a)``,  ``a = class_prior_strength``,

so it starts uniform (the rule above is then exactly the uniform-prior vote)
and moves only as decisions accumulate: after ``N`` decisions no class's prior
exceeds another's by more than a factor ``(N + a) / a``, i.e. by
``log((N + a) / a)`` in vote units. With the default ``a = 20`` the prior can
outweigh no reviewer right at least half the time at ``K = 5`` (weight
``log 4 = 1.39``) before 60 decisions, and it is within a few points of the
counts' shares after a few hundred per class. Most decided events have a single
review, whose label is a reviewer's and so errs by about the team's error rate:
the counts are a mix of the true shares and the uniform ``1 / K`` (rare classes
look more common than they are), an understatement of the imbalance. In the
benchmark (true mix 0.57/0.20/0.11/0.07/0.05 at ``K = 5``) the learned prior is
0.49/0.20/0.13/0.10/0.08, and the adjudicator still gains +2.5 points over
majority vote, the exact ceiling of the Bayes rule with the true error rates and
the true mix (+1.46 without the prior); with uniform classes the prior moves
accuracy by 0.02 points or less per seed, either way. What is assumed: one-coin
errors (a reviewer who mislabels rare items as the common class, a common
confusion, is not modelled, and the prior then adds to that bias), reviewers
independent given the true class, and the class mix of reviewed events stable
(counts never decay: after a shift the prior follows at the rate of ``1 / N``).
``learn_class_prior=False`` keeps ``pi`` uniform.

Regression values (numbers rather than class names) are decided by the
reliability-weighted *median* (weights ``p_r``; the lower weighted median),
robust to one wild value where a weighted mean is not; ``"majority"`` names
the plain median when reliabilities are unknown or equal.

Each :class:`Decision` carries, per label, the posterior probability that the
label is right given all labels of the event and the class prior (``posterior``,
the same posterior the vote maximises, including for a single review and for the
plurality): the E-step of an
online EM for the reviewers' reliabilities, which
:meth:`detectors.reviewer_reliability.ReviewerReliability.observe_decision`
consumes.

**Bounds.** At most ``max_pending`` events are open (when full, the oldest is
decided first, as ``"evicted"``); an event holds at most ``reviews_wanted``
human labels (at most :data:`MAX_REVIEWS_WANTED`); the ids of the last
``max_decided`` decided events are remembered to report late labels, older
ones are forgotten (a label for them opens a new event); at most
:data:`MAX_CLASSES` class names are remembered to learn ``K``, each with its
count of final labels for the class prior.

**Time** is injected: every call takes ``now``, a timezone-aware datetime. A
``now`` earlier than one already seen counts as the latest seen (time never
runs backwards here), so timeouts are decided in order of first label.

**Wiring** (one adjudicator and one agreement monitor per model, one reliability
tracker shared by the models a worker owns, since reviewers label across
models)::

    # per label that is not on a gold item (gold: rel.observe_gold(reviewer, right))
    result = adjudicator.add_label(event_id, label, now=now, reviewer=reviewer,
                                   source=source, ts=label_ts,
                                   reviews_wanted=escalation_reviews_wanted,
                                   reliability=rel.reliability)
    # result.status == "late": count it; then, as for every batch's
    # adjudicator.expire(now, reliability=rel.reliability):
    for decision in result.decisions:
        rel.observe_decision(decision)
        if decision.human_labels >= 2 and isinstance(decision.final, str):
            agreement.update([r.label for r in decision.labels if r.source != "outcome"])
        ...  # decision.final feeds the model's statistics and the reviewed record
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from detectors.base import Detector, check_finite, check_positive
from detectors.budget import check_aware
from detectors.errors import InvalidObservationError, SettingsError

__all__ = [
    "MAX_CLASSES",
    "MAX_REVIEWS_WANTED",
    "Adjudicator",
    "Decision",
    "LabelResult",
    "Review",
    "log_odds_weight",
    "weighted_median",
]

# Reviews one event may ask for: an overlap sample asks for 2-5; this caps the labels an
# event holds (and so the state) whatever the input says.
MAX_REVIEWS_WANTED = 16
# Class names remembered to learn K when num_classes is not given (bounds the state: at most
# 256 names of at most 256 characters). Past it K stays at the cap, an understatement only
# for models with more classes, which should pass num_classes.
MAX_CLASSES = 256
# Reliabilities are clipped into [_P_MIN, 1 - _P_MIN] so a weight stays finite.
_P_MIN = 1e-4
_ID_MAX = 128  # event ids and reviewer ids, as SPEC §2

Method = Literal["single", "majority", "weighted", "outcome"]
Reason = Literal["complete", "timeout", "evicted", "outcome"]
Value = str | float
Reliability = Callable[[str], float | None]


def log_odds_weight(p: float, num_classes: int) -> float:
    """The one-coin vote weight ``log(p (K - 1) / (1 - p))``, floored at 0.

    >>> round(log_odds_weight(0.9, 2), 3), round(log_odds_weight(0.9, 5), 3)
    (2.197, 3.584)
    >>> log_odds_weight(0.2, 5)  # chance level for K = 5: no say
    0.0
    """
    p = min(max(p, _P_MIN), 1.0 - _P_MIN)
    return max(0.0, math.log(p * (num_classes - 1) / (1.0 - p)))


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The lower weighted median: the smallest value whose cumulative weight reaches half.

    >>> weighted_median([1.0, 2.0, 10.0], [1.0, 1.0, 1.0])
    2.0
    >>> weighted_median([1.0, 2.0, 10.0], [0.2, 0.2, 0.9])
    10.0
    >>> weighted_median([1.0, 3.0], [1.0, 1.0])
    1.0
    """
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    if total <= 0.0:
        pairs = [(v, 1.0) for v, _ in pairs]
        total = float(len(pairs))
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= total / 2.0:
            return v
    return pairs[-1][0]


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class Review:
    """One label of an event: ``label`` is a class name (str) or a regression value."""

    label: Value
    reviewer: str | None
    source: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The final label of one event and how it was reached (SPEC §12 ``final``).

    ``agreement`` is the share of ``labels`` equal to ``final`` (for values:
    within ``value_tolerance``). ``posterior[i]`` is the probability that
    ``labels[i]`` is right given all the labels under the one-coin model
    (1 or 0 against an outcome), ``None`` for values or when a reliability is
    unknown. ``confidence`` is that probability for ``final``.
    """

    event_id: str
    final: Value
    method: Method
    agreement: float
    labels: tuple[Review, ...]
    posterior: tuple[float, ...] | None
    confidence: float | None
    reason: Reason
    decided_at: datetime
    num_classes: int | None

    @property
    def human_labels(self) -> int:
        """Labels from reviewers (not the outcome)."""
        return sum(r.source != "outcome" for r in self.labels)


@dataclass(frozen=True, slots=True)
class LabelResult:
    """What one label did: ``status`` and the decisions it caused.

    ``status``: ``"pending"`` (kept, the event waits for more), ``"replaced"``
    (the reviewer's earlier label for the event was replaced), ``"decided"``
    (the event was decided now: its decision is last in ``decisions``) or
    ``"late"`` (the event was already decided: nothing changed). ``decisions``
    may also hold the oldest open events decided to make room (``"evicted"``).
    """

    status: Literal["pending", "replaced", "decided", "late"]
    decisions: tuple[Decision, ...] = ()


def _check_id(name: str, value: object) -> str:
    if type(value) is not str or not 1 <= len(value) <= _ID_MAX:
        raise InvalidObservationError(
            f"{name!r} must be a string of 1-{_ID_MAX} characters; got {value!r}"
        )
    return value


def _check_value(value: object) -> Value:
    if type(value) is str:
        if not 1 <= len(value) <= 256:
            raise InvalidObservationError(f"'label' must be 1-256 characters; got {value!r}")
        return value
    try:
        return check_finite("label", value)  # numpy's numbers too, never a bool
    except InvalidObservationError:
        raise InvalidObservationError(
            f"'label' must be a class name (str) or a finite number; got {value!r}"
        ) from None


class Adjudicator(Detector):
    """Keep the labels of open events and decide each one's final label.

    Parameters
    ----------
    reviews_wanted
        Labels an event waits for unless :meth:`add_label` says otherwise
        (an escalation's ``reviews_wanted``), 1-16.
    timeout_s
        Seconds after its first label at which :meth:`expire` decides an event
        with the labels it has (``review.adjudication_timeout_s``).
    max_pending
        Open events kept at most; when full, the oldest is decided first.
    num_classes
        ``K`` of the one-coin weights; ``None``: the number of distinct class
        names this adjudicator has been given on any event (at most
        :data:`MAX_CLASSES`), at least 2. Pass the model's class count when it is
        known: until every class has been seen, the learned ``K`` is too small.
    max_decided
        Decided event ids remembered to report late labels.
    value_tolerance
        Regression values within this of the final one count as agreeing.
    learn_class_prior
        Weigh the vote by the class prior learned from the decisions (``True``), or
        keep the prior uniform (``False``: the rule of one-coin Dawid-Skene without
        class marginals).
    class_prior_strength
        ``a``, the pseudo-decisions per class of the symmetric Dirichlet prior on
        the class marginals: how many decisions it takes for the prior to move away
        from uniform (see the module docstring).

    Examples
    --------
    Three reviews of an event: two reviewers known to be mediocre say ``cat``,
    one known to be excellent says ``dog``. The plurality says ``cat``; the
    weighted vote (with ``K = 5``: 2.23 + 2.23 < 5.28) says ``dog``:

    >>> from datetime import UTC, datetime
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> known = {"ann": 0.7, "bob": 0.7, "eve": 0.98}.get
    >>> adj = Adjudicator(reviews_wanted=3, num_classes=5)
    >>> adj.add_label("e-1", "cat", reviewer="ann", now=t0, reliability=known).status
    'pending'
    >>> _ = adj.add_label("e-1", "cat", reviewer="bob", now=t0, reliability=known)
    >>> result = adj.add_label("e-1", "dog", reviewer="eve", now=t0, reliability=known)
    >>> d = result.decisions[-1]
    >>> result.status, d.final, d.method, round(d.agreement, 3), round(d.confidence, 2)
    ('decided', 'dog', 'weighted', 0.333, 0.69)

    Without reliabilities the plurality decides; a label after the decision is late:

    >>> d = [adj.add_label("e-2", x, reviewer=r, now=t0) for r, x in zip("abc", "xxy")][-1]
    >>> d.decisions[-1].final, d.decisions[-1].method
    ('x', 'majority')
    >>> adj.add_label("e-2", "y", reviewer="d", now=t0).status
    'late'

    An event short of reviews is decided on timeout, and an outcome overrides:

    >>> from datetime import timedelta
    >>> _ = adj.add_label("e-3", "x", reviewer="a", now=t0)
    >>> [(d.final, d.method, d.reason) for d in adj.expire(t0 + timedelta(hours=2))]
    [('x', 'single', 'timeout')]
    >>> _ = adj.add_label("e-4", "x", reviewer="a", now=t0)
    >>> d = adj.add_label("e-4", "y", source="outcome", now=t0).decisions[-1]
    >>> d.final, d.method, d.agreement, d.posterior
    ('y', 'outcome', 0.5, (0.0, 1.0))
    """

    _settings = (
        "reviews_wanted",
        "timeout_s",
        "max_pending",
        "num_classes",
        "max_decided",
        "value_tolerance",
        "learn_class_prior",
        "class_prior_strength",
    )

    def __init__(
        self,
        reviews_wanted: int = 1,
        timeout_s: float = 3600.0,
        max_pending: int = 10_000,
        num_classes: int | None = None,
        max_decided: int = 10_000,
        value_tolerance: float = 0.0,
        learn_class_prior: bool = True,
        class_prior_strength: float = 20.0,
    ) -> None:
        self.reviews_wanted = reviews_wanted
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.num_classes = num_classes
        self.max_decided = max_decided
        self.value_tolerance = value_tolerance
        self.learn_class_prior = learn_class_prior
        self.class_prior_strength = class_prior_strength
        check_positive("reviews_wanted", reviews_wanted, integer=True)
        if reviews_wanted > MAX_REVIEWS_WANTED:
            raise SettingsError(
                f"'reviews_wanted' must be at most {MAX_REVIEWS_WANTED}; got {reviews_wanted!r}"
            )
        check_positive("timeout_s", timeout_s)
        check_positive("max_pending", max_pending, integer=True)
        if num_classes is not None:
            check_positive("num_classes", num_classes, integer=True)
            if num_classes < 2:
                raise SettingsError(f"'num_classes' must be at least 2; got {num_classes!r}")
        check_positive("max_decided", max_decided, integer=True)
        if (
            isinstance(value_tolerance, bool)
            or not isinstance(value_tolerance, int | float)
            or not math.isfinite(value_tolerance)
            or value_tolerance < 0
        ):
            raise SettingsError(
                f"'value_tolerance' must be a finite number >= 0; got {value_tolerance!r}"
            )
        if not isinstance(learn_class_prior, bool):
            raise SettingsError(f"'learn_class_prior' must be a bool; got {learn_class_prior!r}")
        check_positive("class_prior_strength", class_prior_strength)
        if not math.isfinite(class_prior_strength):
            raise SettingsError(
                f"'class_prior_strength' must be finite; got {class_prior_strength!r}"
            )
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"reviews_wanted": 3, "timeout_s": 60.0, "max_pending": 50, "max_decided": 200}
        yield {
            "reviews_wanted": 2,
            "timeout_s": 5,
            "max_pending": 8,
            "num_classes": 4,
            "max_decided": 30,
            "value_tolerance": 0.5,
            "class_prior_strength": 1.0,
        }
        yield {
            "reviews_wanted": 3,
            "max_pending": 20,
            "max_decided": 100,
            "learn_class_prior": False,
        }

    # -- state ---------------------------------------------------------------------

    def _reset(self) -> None:
        # event id -> [first label time, reviews wanted, labels as [label, reviewer, source, ts]],
        # in order of first label (dicts keep insertion order).
        self._pending: dict[str, list[Any]] = {}
        self._decided: deque[str] = deque()
        self._decided_set: set[str] = set()
        self._clock = -math.inf
        self._counts = {"decided": 0, "late": 0, "replaced": 0, "evicted": 0, "timeout": 0}
        self._classes: set[str] = set()  # class names seen, for K when num_classes is None
        # class name (one of _classes) -> final labels of decided events with a human label
        self._class_counts: dict[str, int] = {}

    def _state(self) -> dict[str, Any]:
        return {
            "pending": [
                [eid, first, wanted, [list(lab) for lab in labels]]
                for eid, (first, wanted, labels) in self._pending.items()
            ],
            "decided": list(self._decided),
            "clock": self._clock,
            "counts": dict(self._counts),
            "classes": sorted(self._classes),
            "class_counts": dict(sorted(self._class_counts.items())),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._pending = {
            str(eid): [float(first), int(wanted), [list(lab) for lab in labels]]
            for eid, first, wanted, labels in state["pending"]
        }
        self._decided = deque(str(e) for e in state["decided"])
        self._decided_set = set(self._decided)
        self._clock = float(state["clock"])
        self._counts = {str(k): int(v) for k, v in state["counts"].items()}
        # Absent in snapshots taken before K was learned.
        self._classes = {str(c) for c in state.get("classes", ())}
        # Absent in snapshots taken before the class prior: it starts uniform again.
        self._class_counts = {str(c): int(n) for c, n in state.get("class_counts", {}).items()}

    # -- input -----------------------------------------------------------------------

    def add_label(
        self,
        event_id: str,
        label: Value,
        *,
        now: datetime,
        reviewer: str | None = None,
        source: str = "human",
        ts: datetime | None = None,
        reviews_wanted: int | None = None,
        reliability: Reliability | None = None,
    ) -> LabelResult:
        """Add one label of ``event_id``; decide the event if it is now complete.

        ``label`` is a class name (str) or a regression value (a finite number);
        one event's labels are all of one kind. ``reviewer`` identifies a human
        reviewer (labels without one never replace each other);
        ``source="outcome"`` marks a ground-truth outcome, which decides at once.
        ``ts`` is the label's own time (default ``now``). ``reviews_wanted``, read
        from the event's first label only, overrides the setting.
        ``reliability(reviewer)`` gives a reviewer's probability of being right
        (:meth:`ReviewerReliability.reliability
        <detectors.reviewer_reliability.ReviewerReliability.reliability>`), or
        ``None`` when unknown.
        """
        _check_id("event_id", event_id)
        value = _check_value(label)
        if reviewer is not None:
            _check_id("reviewer", reviewer)
        if type(source) is not str or not 1 <= len(source) <= 64:
            raise InvalidObservationError(f"'source' must be 1-64 characters; got {source!r}")
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_aware("now", now)
        if ts is not None and (type(ts) is not datetime or ts.tzinfo is not UTC):
            check_aware("ts", ts)
        if isinstance(reviews_wanted, numbers.Integral) and type(reviews_wanted) is not bool:
            reviews_wanted = int(reviews_wanted)  # a numpy integer; a bool or float fails below
        if reviews_wanted is not None and (
            type(reviews_wanted) is not int or not 1 <= reviews_wanted <= MAX_REVIEWS_WANTED
        ):
            raise InvalidObservationError(
                f"'reviews_wanted' must be an integer in [1, {MAX_REVIEWS_WANTED}]; "
                f"got {reviews_wanted!r}"
            )
        open_event = self._pending.get(event_id)
        if open_event is not None and open_event[2]:
            kind = type(open_event[2][0][0])
            if type(value) is not kind:
                raise InvalidObservationError(
                    f"event {event_id!r} has {kind.__name__} labels; got {label!r}"
                )
        # Checked: from here on the state changes.
        self._tick(now)
        if event_id in self._decided_set:
            self._counts["late"] += 1
            return LabelResult("late")
        if type(value) is str and len(self._classes) < MAX_CLASSES:
            self._classes.add(value)
        label_ts = self._clock if ts is None else ts.timestamp()
        decisions: list[Decision] = []
        if open_event is None:
            while len(self._pending) >= self.max_pending:
                oldest = next(iter(self._pending))
                self._counts["evicted"] += 1
                decisions.append(self._decide(oldest, "evicted", reliability))
            wanted = self.reviews_wanted if reviews_wanted is None else reviews_wanted
            open_event = [self._clock, wanted, []]
            self._pending[event_id] = open_event
        labels: list[list[Any]] = open_event[2]
        if source == "outcome":
            labels.append([value, reviewer, source, label_ts])
            decisions.append(self._decide(event_id, "outcome", reliability))
            return LabelResult("decided", tuple(decisions))
        status: Literal["pending", "replaced"] = "pending"
        if reviewer is not None:
            for i, old in enumerate(labels):
                if old[1] == reviewer and old[2] != "outcome":
                    del labels[i]
                    status = "replaced"
                    self._counts["replaced"] += 1
                    break
        labels.append([value, reviewer, source, label_ts])
        if len(labels) >= open_event[1]:
            decisions.append(self._decide(event_id, "complete", reliability))
            return LabelResult("decided", tuple(decisions))
        return LabelResult(status, tuple(decisions))

    def expire(self, now: datetime, reliability: Reliability | None = None) -> list[Decision]:
        """Decide every open event whose first label is ``timeout_s`` or more old.

        Call it periodically (each batch): nothing is decided on timeout otherwise.
        """
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_aware("now", now)
        self._tick(now)
        cutoff = self._clock - self.timeout_s
        out: list[Decision] = []
        while self._pending:
            eid, (first, _, _) = next(iter(self._pending.items()))
            if first > cutoff:
                break
            self._counts["timeout"] += 1
            out.append(self._decide(eid, "timeout", reliability))
        return out

    def _tick(self, now: datetime) -> None:
        t = now.timestamp()
        if t > self._clock:
            self._clock = t

    # -- the decision -------------------------------------------------------------

    def _decide(self, event_id: str, reason: Reason, reliability: Reliability | None) -> Decision:
        _, _, raw = self._pending.pop(event_id)
        self._decided.append(event_id)
        self._decided_set.add(event_id)
        if len(self._decided) > self.max_decided:
            self._decided_set.discard(self._decided.popleft())
        self._counts["decided"] += 1
        labels = tuple(Review(lab[0], lab[1], lab[2], _ts(lab[3])) for lab in raw)
        values = [r.label for r in labels]
        decided_at = _ts(self._clock)
        outcome = [r.label for r in labels if r.source == "outcome"]
        if outcome:
            final = outcome[-1]
            post = tuple(1.0 if v == final else 0.0 for v in values)
            if isinstance(final, str) and len(outcome) < len(values):  # reviewed as well
                self._count(final)
            return Decision(
                event_id,
                final,
                "outcome",
                self._agreement(values, final),
                labels,
                post,
                1.0,
                reason,
                decided_at,
                self.num_classes,
            )
        probs: list[float] | None = None
        if reliability is not None:
            found = [None if r.reviewer is None else reliability(r.reviewer) for r in labels]
            # Anything but a probability (None, NaN, out of range) counts as unknown; a
            # numpy number is one.
            known = [
                float(p)  # type: ignore[arg-type]  # a numbers.Real
                for p in found
                if isinstance(p, numbers.Real) and not isinstance(p, bool) and 0.0 <= p <= 1.0
            ]
            if len(known) == len(found):
                probs = known
        if isinstance(values[0], str):
            return self._vote(event_id, labels, probs, reason, decided_at)
        nums = [float(v) for v in values]
        if len(nums) == 1:
            final_v, method = nums[0], "single"
        elif probs is None or len(set(probs)) == 1:
            final_v, method = weighted_median(nums, [1.0] * len(nums)), "majority"
        else:
            final_v, method = weighted_median(nums, probs), "weighted"
        return Decision(
            event_id,
            final_v,
            method,  # type: ignore[arg-type]  # one of the literals above
            self._agreement(values, final_v),
            labels,
            None,
            None,
            reason,
            decided_at,
            None,
        )

    def _vote(
        self,
        event_id: str,
        labels: tuple[Review, ...],
        probs: list[float] | None,
        reason: Reason,
        decided_at: datetime,
    ) -> Decision:
        values = [str(r.label) for r in labels]
        distinct = list(dict.fromkeys(values))  # in order of first appearance
        k = max(self.num_classes or len(self._classes), 2, len(distinct))
        weights = [1.0] * len(values) if probs is None else [log_odds_weight(p, k) for p in probs]
        score = dict.fromkeys(distinct, 0.0)
        count = dict.fromkeys(distinct, 0)
        for v, w in zip(values, weights, strict=True):
            score[v] += w
            count[v] += 1
        # log pi_c + the weighted vote, and the prior mass of the classes nobody gave.
        prior = self._prior(distinct, k)
        total = {c: score[c] + math.log(prior[c]) for c in distinct}
        rest = max(0.0, 1.0 - sum(prior.values()))
        if len(values) == 1:
            method: Method = "single"
            final = values[0]
        elif probs is None or len(set(weights)) == 1:
            method = "majority"
            final = max(distinct, key=lambda c: (count[c], score[c]))  # first wins ties
        else:
            method = "weighted"
            final = max(distinct, key=lambda c: (total[c], count[c]))
        posterior: tuple[float, ...] | None = None
        confidence: float | None = None
        if probs is not None:
            top = max(total.values())
            norm = sum(math.exp(t - top) for t in total.values()) + rest * math.exp(-top)
            posterior = tuple(math.exp(total[v] - top) / norm for v in values)
            confidence = math.exp(total[final] - top) / norm
        self._count(final)
        return Decision(
            event_id,
            final,
            method,
            self._agreement(values, final),
            labels,
            posterior,
            confidence,
            reason,
            decided_at,
            k,
        )

    def _prior(self, classes: Sequence[str], k: int) -> dict[str, float]:
        """``pi_c`` of each of ``classes`` among ``k``: uniform, or the Dirichlet
        posterior mean from the counts of final labels (``learn_class_prior``)."""
        if not self.learn_class_prior:
            return dict.fromkeys(classes, 1.0 / k)
        a = self.class_prior_strength
        counts = self._class_counts
        # More classes counted than k only when num_classes understates them.
        denom = sum(counts.values()) + a * max(k, len(counts))
        return {c: (counts.get(c, 0) + a) / denom for c in classes}

    def _count(self, final: str) -> None:
        if final in self._classes:  # bounded: at most MAX_CLASSES names
            self._class_counts[final] = self._class_counts.get(final, 0) + 1

    def _agreement(self, values: Sequence[Value], final: Value) -> float:
        if isinstance(final, str):
            same = sum(v == final for v in values)
        else:
            same = sum(
                not isinstance(v, str) and abs(v - final) <= self.value_tolerance for v in values
            )
        return same / len(values)

    # -- results ------------------------------------------------------------------------

    def status(self, event_id: str) -> Literal["open", "decided"] | None:
        """``"open"`` (labels kept, waiting for more), ``"decided"`` (a later label is
        late) or ``None`` (never seen, or decided so long ago it is forgotten).

        >>> from datetime import UTC, datetime
        >>> adj = Adjudicator(reviews_wanted=2)
        >>> _ = adj.add_label("e-1", "x", reviewer="a", now=datetime(2026, 1, 1, tzinfo=UTC))
        >>> adj.status("e-1"), adj.status("e-2")
        ('open', None)
        """
        if event_id in self._pending:
            return "open"
        return "decided" if event_id in self._decided_set else None

    @property
    def pending(self) -> int:
        """Events open now (with at least one label, not yet decided)."""
        return len(self._pending)

    @property
    def class_prior(self) -> dict[str, float]:
        """``pi_c`` for every class name seen, as the next vote would use it (with
        ``K`` from ``num_classes`` or the names seen; classes never seen share the
        rest). Uniform until decisions are counted, or with ``learn_class_prior=False``.

        >>> from datetime import UTC, datetime
        >>> adj = Adjudicator(num_classes=3, class_prior_strength=1.0)
        >>> for i, x in enumerate("aaaaaaab"):
        ...     _ = adj.add_label(f"e{i}", x, reviewer="ann", now=datetime(2026, 1, 1, tzinfo=UTC))
        >>> {c: round(p, 3) for c, p in adj.class_prior.items()}
        {'a': 0.727, 'b': 0.182}
        """
        k = max(self.num_classes or len(self._classes), 2)
        return self._prior(sorted(self._classes), k)

    @property
    def counts(self) -> dict[str, int]:
        """Running totals: ``decided``, ``late``, ``replaced``, ``evicted``, ``timeout``."""
        return dict(self._counts)
