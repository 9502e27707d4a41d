"""Chance-corrected agreement between reviewers on overlapped items, over a rolling window.

**Krippendorff's alpha (nominal)**, not Fleiss' kappa: Fleiss' kappa assumes
every item has the same number of raters, while here an overlapped item asking
for ``k`` reviews may be decided on timeout with fewer; alpha takes any number
of labels per item (two or more) as it comes, any number of classes, and
corrects expected disagreement for the finite sample (the ``n - 1``). With a
constant number of raters and many items the two nearly coincide.

Over the items in the window, with ``m_u`` labels on item ``u`` of which
``m_uc`` say class ``c`` (Krippendorff 2011, "Computing Krippendorff's
alpha-reliability", nominal data):

    ``n = sum_u m_u``, ``n_c = sum_u m_uc``,
    ``o = sum_u sum_c m_uc (m_uc - 1) / (m_u - 1)`` (agreeing pairable values),
    ``alpha = 1 - (n - 1) (n - o) / (n**2 - sum_c n_c**2)``.

1 is perfect agreement, 0 what chance would give, below 0 systematic
disagreement. Alpha is undefined (NaN) while the window holds fewer than two
labels or a single class only. The sums are kept exactly (integers and
fractions), so a window that slides for ever drifts by no rounding.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any, Literal

from detectors.base import UnivariateDetector, check_in_range, check_positive
from detectors.errors import InvalidObservationError, SettingsError
from detectors.signals import SignalChange, SignalState

__all__ = ["AgreementMonitor", "krippendorff_alpha"]

_SIGNAL = "agreement"
_MAX_LABELS = 64  # labels of one item; overlap asks for a handful


def _item_sums(counts: Counter[str]) -> tuple[int, Fraction]:
    m = sum(counts.values())
    return m, Fraction(sum(c * (c - 1) for c in counts.values()), m - 1)


def _alpha(n: int, o: Fraction, class_sq: int) -> float:
    expected = n * n - class_sq
    if n < 2 or expected == 0:
        return math.nan
    return float(1 - Fraction((n - 1) * (n - o), expected))


def krippendorff_alpha(items: Sequence[Sequence[str]]) -> float:
    """Krippendorff's alpha (nominal) of ``items``, each the labels of one item.

    Items with fewer than two labels are not pairable and are left out.

    Krippendorff (2011), section C: 4 observers, 12 units, values 1-5 with gaps
    (a unit per string, one character per label given), alpha = 0.743:

    >>> units = ["111", "2232", "3333", "3333", "2222", "1234", "4444", "1121", "2222", "555"]
    >>> round(krippendorff_alpha([list(u) for u in [*units, "11", "3"]]), 3)
    0.743
    >>> krippendorff_alpha([["x", "x"], ["x", "x"]])  # no variation: undefined
    nan
    """
    n, o, totals = 0, Fraction(0), Counter[str]()
    for labels in items:
        if len(labels) < 2:
            continue
        counts = Counter(labels)
        m, agree = _item_sums(counts)
        n += m
        o += agree
        totals.update(counts)
    return _alpha(n, o, sum(c * c for c in totals.values()))


class AgreementMonitor(UnivariateDetector[Sequence[str], list[SignalChange]]):
    """Krippendorff's alpha over the last ``window`` overlapped items, with an alert
    when it falls below ``min_agreement``.

    Parameters
    ----------
    window
        Overlapped items (with two labels or more) the alpha covers.
    min_agreement
        The ``agreement`` signal enters drift when alpha falls below this
        (``review.min_agreement``).
    min_items
        No alert before the window holds this many items.
    hysteresis
        A drifting signal recovers once alpha reaches ``min_agreement + hysteresis``.

    Examples
    --------
    Three reviewers who label the truth (one of 4 classes) 90 % of the time and
    otherwise pick a class at random (alpha 0.81 in the long run), then a
    stretch where they do so only half the time (alpha 0.25 in the long run;
    a window of 200 items is noisy):

    >>> import random
    >>> rng = random.Random(7)
    >>> def item(p_right):
    ...     truth = rng.choice("abcd")
    ...     return [truth if rng.random() < p_right else rng.choice("abcd") for _ in range(3)]
    >>> mon = AgreementMonitor(window=200, min_agreement=0.6)
    >>> alerts = [a for _ in range(400) for a in mon.update(item(0.9))]
    >>> alerts, round(mon.alpha, 2)
    ([], 0.8)
    >>> changes = [a for _ in range(400) for a in mon.update(item(0.5))]
    >>> alerts = [(a.state, round(a.statistic, 2)) for a in changes]
    >>> alerts, round(mon.alpha, 2)
    ([('drift', 0.6)], 0.13)
    """

    _settings = ("window", "min_agreement", "min_items", "hysteresis")

    def __init__(
        self,
        window: int = 500,
        min_agreement: float = 0.6,
        min_items: int = 50,
        hysteresis: float = 0.05,
    ) -> None:
        self.window = window
        self.min_agreement = min_agreement
        self.min_items = min_items
        self.hysteresis = hysteresis
        check_positive("window", window, integer=True)
        check_in_range("min_agreement", min_agreement, -1.0, 1.0)
        check_positive("min_items", min_items, integer=True)
        if min_items > window:
            raise SettingsError(f"'min_items' must be at most 'window' ({window}); got {min_items}")
        check_in_range("hysteresis", hysteresis, 0.0, 2.0)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 100, "min_agreement": 0.6, "min_items": 20}
        yield {"window": 30, "min_agreement": 0.5, "min_items": 30, "hysteresis": 0.0}

    def _reset(self) -> None:
        # The window's items, each as its class counts; a ring with the oldest at _head.
        self._items: list[dict[str, int]] = []
        self._head = 0
        self._n = 0
        self._o = Fraction(0)
        self._classes: Counter[str] = Counter()
        self._seen = 0
        self._drift = False

    def _state(self) -> dict[str, Any]:
        return {
            "items": [dict(c) for c in self._items],
            "head": self._head,
            "n": self._n,
            "o": [self._o.numerator, self._o.denominator],
            "classes": dict(self._classes),
            "seen": self._seen,
            "drift": self._drift,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._items = [{str(k): int(v) for k, v in c.items()} for c in state["items"]]
        self._head = int(state["head"])
        self._n = int(state["n"])
        self._o = Fraction(int(state["o"][0]), int(state["o"][1]))
        self._classes = Counter({str(k): int(v) for k, v in state["classes"].items()})
        self._seen = int(state["seen"])
        self._drift = bool(state["drift"])

    def update(self, labels: Sequence[str], /) -> list[SignalChange]:
        """Add the labels (class names) of one overlapped item; return the alerts.

        An item with fewer than two labels carries no agreement and is ignored.
        """
        if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
            raise InvalidObservationError(f"'labels' must be a sequence of str; got {labels!r}")
        if len(labels) > _MAX_LABELS or not all(type(x) is str and x for x in labels):
            raise InvalidObservationError(
                f"'labels' must be at most {_MAX_LABELS} non-empty str; got {labels!r}"
            )
        if len(labels) < 2:
            return []
        counts = Counter(labels)
        if len(self._items) < self.window:
            self._items.append(dict(counts))
        else:
            old = Counter(self._items[self._head])
            self._add(old, -1)
            self._items[self._head] = dict(counts)
            self._head = (self._head + 1) % self.window
        self._add(counts, +1)
        self._seen += 1
        return self._edges()

    def _add(self, counts: Counter[str], sign: int) -> None:
        m, agree = _item_sums(counts)
        self._n += sign * m
        self._o += sign * agree
        for c, k in counts.items():
            left = self._classes[c] + sign * k
            if left:
                self._classes[c] = left
            else:
                del self._classes[c]

    def _edges(self) -> list[SignalChange]:
        alpha = self.alpha
        if len(self._items) < self.min_items or math.isnan(alpha):
            return []
        if not self._drift and alpha < self.min_agreement:
            self._drift = True
            return [self._change("drift", alpha)]
        if self._drift and alpha >= self.min_agreement + self.hysteresis:
            self._drift = False
            return [self._change("recovered", alpha)]
        return []

    def _change(self, state: Literal["drift", "recovered"], alpha: float) -> SignalChange:
        return SignalChange(
            signal=_SIGNAL,
            detector=type(self).__name__,
            state=state,
            events_seen=self._seen,
            statistic=alpha,
            threshold=self.min_agreement,
            reference=None,
            current={"alpha": alpha, "items": len(self._items), "labels": self._n},
        )

    def state(self) -> SignalState:
        """Current reading of ``agreement`` (alpha), for gauges."""
        return SignalState(
            _SIGNAL, type(self).__name__, self.alpha, self.min_agreement, self._drift
        )

    @property
    def alpha(self) -> float:
        """Krippendorff's alpha (nominal) over the window; NaN when undefined."""
        return _alpha(self._n, self._o, sum(c * c for c in self._classes.values()))

    @property
    def count(self) -> int:
        """Overlapped items in the window."""
        return len(self._items)

    @property
    def items_seen(self) -> int:
        """Overlapped items seen since the start."""
        return self._seen
