"""Calibration of every class of a multiclass model, from its full score vectors.

:class:`~detectors.calibration.CalibrationMonitor` judges only the probability a
model gave to its *predicted* label (top-label calibration). A model can be
calibrated on its top label and still be wrong about one class: say it gives
"eel" 0.3 whenever it hesitates and "eel" is the answer half the time.
:class:`ClasswiseCalibrationMonitor` reads the whole ``scores`` vector of each
labelled prediction and reports, over the last ``window`` labels,

* the **classwise ECE** (Kull et al. 2019, "Beyond temperature scaling"): per
  class ``k``, the binned gap ``sum_b |sum w*y_k - sum w*p_k| / sum w`` between
  how often ``k`` is the answer and the probability given to ``k``, over
  equal-width bins of ``p_k``; then the mean over the classes present in the
  window;
* the **multiclass Brier score** ``sum_k (p_k - y_k)**2`` (0 to 2), averaged.

Both are weighted by ``1 / inclusion probability`` (Horvitz-Thompson) and
self-normalised, and every sum is an exact fixed-point integer, as in
:mod:`detectors.calibration` (whose helpers this module uses), so an O(1)
update per class in the item keeps the window's figures equal to an offline
recomputation. Memory is bounded: the first ``max_classes`` class names seen
(in scores or as the truth) are tracked by name, the rest pooled as ``_other``
(its probability the sum of theirs); the Brier score is computed on the raw
scores, before pooling.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

from detectors.base import BivariateDetector, check_positive, check_probability, check_weight
from detectors.calibration import _ONE, _fixed, reliability_edges
from detectors.errors import InvalidObservationError

__all__ = ["OTHER_CLASS", "ClasswiseCalibrationMonitor"]

#: The pooled class of names beyond ``max_classes``.
OTHER_CLASS = "_other"
# SPEC §2: scores sum to 1 within this.
_SUM_TOLERANCE = 0.01


class ClasswiseCalibrationMonitor(BivariateDetector[Mapping[str, float], str, float]):
    """Rolling classwise ECE and multiclass Brier score of one classifier.

    ``update(scores, truth, weight)`` takes the model's probability per class
    (a mapping summing to 1 within 0.01; a class not listed has probability 0),
    the true class, and the label's weight ``1 / inclusion probability``; it
    returns the item's own Brier score.

    Parameters
    ----------
    bins
        Equal-width bins of each class's probability on [0, 1] (the binning of
        :func:`~detectors.calibration.reliability_edges`).
    window
        Number of most recent labelled predictions the figures cover.
    max_classes
        Class names tracked by name (first seen first); the others are pooled
        as ``_other``.

    Examples
    --------
    A three-class model that says 0.3 for "eel" when eel is the answer half the
    time, and 0.05 when it never is (expected gaps: cat 0.025, dog 0.1, eel 0.125):

    >>> import random
    >>> rng = random.Random(1)
    >>> mon = ClasswiseCalibrationMonitor(window=2000)
    >>> for _ in range(2000):
    ...     if rng.random() < 0.5:
    ...         truth = "eel" if rng.random() < 0.5 else "dog"
    ...         _ = mon.update({"cat": 0.05, "dog": 0.65, "eel": 0.3}, truth)
    ...     else:
    ...         truth = "cat" if rng.random() < 0.95 else "dog"
    ...         _ = mon.update({"cat": 0.95, "dog": 0.0, "eel": 0.05}, truth)
    >>> round(mon.ece, 3), {k: round(v, 3) for k, v in mon.class_ece.items()}
    (0.076, {'cat': 0.025, 'dog': 0.09, 'eel': 0.113})
    >>> round(mon.brier, 3), mon.count
    (0.32, 2000)

    Weighted labels: an item with weight 50 (a 2 % audit) counts for 50 items.

    >>> mon = ClasswiseCalibrationMonitor(window=10)
    >>> round(mon.update({"a": 0.8, "b": 0.2}, "b", weight=50.0), 4)  # (0.8 - 0)**2 + (0.2 - 1)**2
    1.28
    >>> _ = mon.update({"a": 0.8, "b": 0.2}, "a")
    >>> round(mon.brier, 4)
    1.2565
    """

    _settings = ("bins", "window", "max_classes")

    def __init__(self, bins: int = 10, window: int = 1000, max_classes: int = 20) -> None:
        self.bins = bins
        self.window = window
        self.max_classes = max_classes
        check_positive("bins", bins, integer=True)
        check_positive("window", window, integer=True)
        check_positive("max_classes", max_classes, integer=True)
        self._edges = reliability_edges(bins)
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"window": 300}
        yield {"bins": 4, "window": 100, "max_classes": 2}

    def _reset(self) -> None:
        # Class names by index; index ``max_classes`` is the pooled ``_other``.
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        # Ring buffer: per item the pooled (class index, probability) pairs (the truth's
        # class always among them), the truth's index, the weight and the item's Brier.
        self._items: list[tuple[tuple[tuple[int, float], ...], int, float, float]] = []
        self._head = 0
        # Per class index: items in the window listing it, then per bin the fixed-point
        # sums of w * y_k and of w * p_k.
        self._present: dict[int, int] = {}
        self._hits: dict[int, list[int]] = {}
        self._conf: dict[int, list[int]] = {}
        self._w_total = 0  # fixed point
        self._brier = 0  # fixed point, scale 2**80
        self._seen = 0

    # -- state -------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "names": list(self._names),
            "items": [(list(map(list, e)), t, w, b) for e, t, w, b in self._items],
            "head": self._head,
            "present": sorted(self._present.items()),
            "hits": sorted((k, list(v)) for k, v in self._hits.items()),
            "conf": sorted((k, list(v)) for k, v in self._conf.items()),
            "w_total": self._w_total,
            "brier": self._brier,
            "seen": self._seen,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._names = [str(n) for n in state["names"]]
        self._index = {n: i for i, n in enumerate(self._names)}
        self._index.pop(OTHER_CLASS, None)
        self._items = [
            (tuple((int(k), float(p)) for k, p in e), int(t), float(w), float(b))
            for e, t, w, b in state["items"]
        ]
        self._head = int(state["head"])
        self._present = {int(k): int(n) for k, n in state["present"]}
        self._hits = {int(k): [int(x) for x in v] for k, v in state["hits"]}
        self._conf = {int(k): [int(x) for x in v] for k, v in state["conf"]}
        self._w_total = int(state["w_total"])
        self._brier = int(state["brier"])
        self._seen = int(state["seen"])

    # -- updates -----------------------------------------------------------

    def _check(self, scores: object, truth: object) -> tuple[dict[str, float], str]:
        if not isinstance(truth, str) or not truth:
            raise InvalidObservationError(f"'truth' must be a non-empty string; got {truth!r}")
        if not isinstance(scores, Mapping) or not scores:
            raise InvalidObservationError(
                f"'scores' must be a non-empty mapping of class to probability; got {scores!r}"
            )
        out: dict[str, float] = {}
        for name, p in scores.items():
            if not isinstance(name, str) or not name:
                raise InvalidObservationError(
                    f"'scores' class names must be non-empty strings; got {name!r}"
                )
            out[name] = check_probability(f"scores[{name!r}]", p)
        total = math.fsum(out.values())
        if abs(total - 1.0) > _SUM_TOLERANCE:
            raise InvalidObservationError(
                f"'scores' must sum to 1 within {_SUM_TOLERANCE}; got {total!r}"
            )
        return out, truth

    def _class(self, name: str) -> int:
        k = self._index.get(name)
        if k is not None:
            return k
        if len(self._names) < self.max_classes and name != OTHER_CLASS:
            k = len(self._names)
            self._names.append(name)
            self._index[name] = k
            return k
        return self.max_classes

    def _add(
        self,
        entries: tuple[tuple[int, float], ...],
        truth: int,
        weight: float,
        brier: float,
        sign: int,
    ) -> None:
        # The integers come from the stored floats: an evicted item subtracts exactly
        # what it added.
        w = _ONE if weight == 1.0 else _fixed(weight)
        for k, p in entries:
            hits = self._hits.get(k)
            if hits is None:
                hits = self._hits[k] = [0] * self.bins
                self._conf[k] = [0] * self.bins
            b = bisect_left(self._edges, p)
            if k == truth:
                hits[b] += sign * w
            self._conf[k][b] += sign * (_fixed(p) if weight == 1.0 else _fixed(weight * p))
            n = self._present.get(k, 0) + sign
            if n:
                self._present[k] = n
            else:
                del self._present[k]
        self._w_total += sign * w
        self._brier += sign * (_fixed(brier) if weight == 1.0 else _fixed(weight * brier))

    def update(self, scores: Mapping[str, float], truth: str, weight: float = 1.0) -> float:
        """Add one labelled prediction; return its Brier score ``sum_k (p_k - y_k)**2``.

        ``scores`` maps class names to probabilities in [0, 1] summing to 1 within
        0.01, ``truth`` is the true class (a non-empty string, listed in ``scores``
        or not) and ``weight`` (``1 / inclusion probability``) a finite number > 0.
        """
        raw, truth = self._check(scores, truth)
        w = check_weight("weight", weight)
        brier = sum((p - 1.0) ** 2 if name == truth else p * p for name, p in raw.items())
        if truth not in raw:
            brier += 1.0
        pooled: dict[int, float] = {}
        for name, p in raw.items():
            k = self._class(name)
            pooled[k] = pooled[k] + p if k in pooled else p
        t = self._class(truth)
        pooled.setdefault(t, 0.0)
        entries = tuple(pooled.items())
        item = (entries, t, w, brier)
        if len(self._items) < self.window:
            self._items.append(item)
        else:
            h = self._head
            self._add(*self._items[h], -1)
            self._items[h] = item
            self._head = (h + 1) % self.window
        self._add(entries, t, w, brier, +1)
        self._seen += 1
        return brier

    # -- results -----------------------------------------------------------

    @property
    def count(self) -> int:
        """Labelled predictions in the window (items, not weights)."""
        return len(self._items)

    @property
    def events_seen(self) -> int:
        """Labelled predictions seen since the start (not only in the window)."""
        return self._seen

    @property
    def classes(self) -> list[str]:
        """Class names tracked by name, first seen first (``_other`` not among them)."""
        return list(self._names)

    def _name(self, k: int) -> str:
        return self._names[k] if k < len(self._names) else OTHER_CLASS

    @property
    def class_ece(self) -> dict[str, float]:
        """Per class present in the window: ``sum_b |sum w*y_k - sum w*p_k| / sum w``."""
        total = self._w_total
        if not total:
            return {}
        return {
            self._name(k): sum(
                abs(h - c) for h, c in zip(self._hits[k], self._conf[k], strict=True)
            )
            / total
            for k in sorted(self._present)
        }

    @property
    def ece(self) -> float:
        """Classwise ECE: the mean of :attr:`class_ece` (0 when the window is empty)."""
        per_class = self.class_ece
        return sum(per_class.values()) / len(per_class) if per_class else 0.0

    @property
    def brier(self) -> float:
        """Weighted mean multiclass Brier score over the window (0 when empty)."""
        total = self._w_total
        return self._brier / total if total else 0.0
