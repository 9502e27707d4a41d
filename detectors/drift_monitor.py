"""All drift and data-quality signals of one model, fed one event at a time."""

from __future__ import annotations

import dataclasses
import math
import operator
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Self

import msgspec
import numpy as np

from detectors._native import RowBlock
from detectors.base import BivariateDetector, as_bool, as_real, check_positive
from detectors.categorical_drift import CategoricalDrift
from detectors.data_quality import DataQualityDrift
from detectors.errors import InvalidObservationError, SettingsError, SnapshotError
from detectors.feature_matrix import float_column, gather_clean
from detectors.numeric_drift import NumericDrift
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
from detectors.reconstruction import DEFAULT_OUTLIER_QUANTILE, ReconstructionDrift, rows_of
from detectors.reference import ReferenceProfile
from detectors.sensitivity import (
    DATA_QUALITY_WEIGHT,
    DEFAULT_SENSITIVITY,
    FEATURE_DRIFT_WEIGHT,
    default_step,
)
from detectors.signals import SignalChange, SignalState

__all__ = ["DriftMonitor", "EventQuality", "Outlier", "default_step"]

_KINDS = ("numeric", "categorical")

Features = Mapping[str, float | int | str | bool | None]
"""One event's features as :meth:`DriftMonitor.update` takes them."""


@dataclass(frozen=True, slots=True)
class EventQuality:
    """Data-quality findings for one event (feature names, in first-seen order).

    ``out_of_range``: numeric values outside the configured (else reference)
    ``[min, max]``, and values of the wrong type for their feature; ``unseen``:
    categorical values the reference never saw; ``missing``: monitored features
    absent or null.

    >>> EventQuality(missing=("age",)).ok
    False
    """

    out_of_range: tuple[str, ...] = ()
    unseen: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.out_of_range or self.unseen or self.missing)


_CLEAN = EventQuality()


@dataclass(frozen=True, slots=True)
class Outlier:
    """An event beyond the reference's ``outlier_quantile`` (escalation reason
    ``outlier``): its outlier score, the threshold it crossed and the features that
    make most of the score, each with its share
    (:meth:`~detectors.reconstruction.ReconstructionDrift.contributions`).

    >>> Outlier(80.2, 59.0, (("a", 0.61), ("b", 0.3))).detail
    'score 80.2 > 59.0; a 61%, b 30%'
    """

    score: float
    threshold: float
    features: tuple[tuple[str, float], ...] = ()

    @property
    def detail(self) -> str:
        """``score S > T; feature share, ...``: the escalation reason's ``detail``."""
        tops = ", ".join(f"{name} {share:.0%}" for name, share in self.features)
        head = f"score {self.score:.1f} > {self.threshold:.1f}"
        return f"{head}; {tops}" if tops else head


class _Slot:
    """One monitored feature: its type, bounds and two detectors."""

    __slots__ = (
        "configured_bounds",
        "created",
        "dq",
        "drift",
        "hi",
        "kind",
        "lo",
        "name",
        "numeric",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        created: int,
        drift: NumericDrift | CategoricalDrift,
        dq: DataQualityDrift,
        lo: float | None,
        hi: float | None,
        configured_bounds: bool,
    ) -> None:
        self.name = name
        self.kind = kind
        self.numeric = kind == "numeric"  # read per event: a flag, not a string comparison
        self.created = created
        self.drift = drift
        self.dq = dq
        self.lo = lo
        self.hi = hi
        self.configured_bounds = configured_bounds


class DriftMonitor(BivariateDetector[Features, Prediction, list[SignalChange]]):
    """Feature, confidence, prediction and data-quality drift of ONE model.

    Signals (SPEC §5): ``feature:<name>`` (a
    :class:`~detectors.numeric_drift.NumericDrift` or
    :class:`~detectors.categorical_drift.CategoricalDrift`),
    ``data_quality:<name>`` (:class:`~detectors.data_quality.DataQualityDrift`),
    ``confidence`` (numeric drift of the classifier's confidence) and
    ``prediction`` (categorical drift of predicted labels; numeric drift of the
    predicted value for regression) and ``multivariate``
    (:class:`~detectors.reconstruction.ReconstructionDrift` on the numeric features:
    a change in how they move together, with ``multivariate=True`` and at least 2
    numeric features). Each emits one ``"drift"`` change when it enters drift and
    one ``"recovered"`` when it leaves.

    **False alarms.** ``sensitivity`` is the expected number of stationary events
    between false alerts for the whole model, as for every detector here. It is
    split over ``2 F + 3`` signals (``2 F + 2`` without ``multivariate``;
    :class:`~detectors.sensitivity.SensitivityBudget`; each detector gets
    ``sensitivity``, ``n_signals`` and a ``budget_weight``, and shows its share as
    ``signal_sensitivity``): each feature has two even shares, 1.8 for
    ``feature:<name>`` and 0.2 for ``data_quality:<name>``
    (:data:`~detectors.sensitivity.FEATURE_DRIFT_WEIGHT`: the exact rate tests are
    discrete and realise little of any level), the confidence, the prediction and
    ``multivariate`` one each; ``F`` is the number of features known at the first
    event (configured, in the reference, or in that event; at most
    ``max_features``); a feature first seen later takes a share computed with the
    count at that time (earlier shares are not revised). ``multivariate`` counts
    when at least 2 numeric features are known at the first event (or the
    reference has a multivariate fit), and gets the same share: its one window
    test every ``step`` events runs at ``step / signal_sensitivity``. The
    guarantee, and what it assumes, is in :mod:`detectors.sensitivity` and
    :mod:`detectors.reconstruction`.

    **Outliers.** With ``outlier_quantile`` set, every event is scored (the
    Mahalanobis score of :mod:`detectors.reconstruction`) and :attr:`last_outlier`
    says whether it is beyond that quantile of the reference's score distribution
    (the caller escalates it, reason ``outlier``). The quantile is the expected
    share of *clean* events flagged: ``1 - outlier_quantile``. At the default,
    0.99999, that is one clean event in 100,000, so that an outlier flag is right
    most of the time even when real outliers are rare: at a 0.1 % outlier rate,
    precision is ``0.001 R / (0.001 R + 1e-5)``, 0.99 for recall ``R`` near 1,
    where 0.999 would cap it at 0.5 whatever the score (as many clean events flagged
    as outliers exist); measured in ``benchmarks/detector_quality.py``. ``None``:
    no per-event scoring (the ``multivariate`` window test then runs per block,
    about a fifth of the cost).

    **Alarms latch**: a signal in drift stays in drift (it is not re-armed and
    raises no second ``drift``) until it recovers.

    **Reference.** A :meth:`ReferenceProfile.to_dict()
    <detectors.reference.ReferenceProfile.to_dict>` dict, or none: then every
    detector learns its reference from its first ``reference_size`` values and
    tests only after that.

    **Speed.** ``update`` only files each value in a per-feature buffer; every
    ``step`` events the buffers go to the detectors in one batch, which run their
    window tests then. Out-of-range and missing counts are taken per batch too;
    the per-event :attr:`last_quality` is computed only when read. A caller that
    holds a batch of events (the worker does) calls :meth:`prepare` first: the
    batch's numeric values are then range-checked and outlier-scored as one matrix
    in numpy instead of one event at a time, with the same results bit for bit.

    **Types.** Feature types come from ``features``, else the reference, else the
    first non-null value (number: numeric; string or bool: categorical). A value
    of the wrong type later (a string in a numeric feature, a float in a
    categorical one) is not an error: it counts as out of range for
    ``data_quality:<name>``. Non-finite numbers count the same way. Features
    beyond ``max_features`` are ignored (counted in :attr:`ignored_features`), and
    categorical values map onto a bounded vocabulary, so state stays bounded.

    Parameters
    ----------
    features
        ``name -> {"type": "numeric"|"categorical", "min"?, "max"?}``.
    sensitivity
        Expected stationary events between false alerts for the model.
    reference
        A reference profile dict, or ``None``.
    reference_size
        Values each detector learns from when there is no reference.
    max_features
        Features monitored at most (first seen first).
    window, step
        Window tests cover the last ``window`` values, every ``step`` events
        (default :func:`~detectors.sensitivity.default_step`: half the window, or
        all of it when odd; the same default as every detector).
    top_k
        Categories with their own bin, for learned categorical references.
    bins
        Quantile bins of learned numeric references.
    multivariate
        Run the ``multivariate`` signal (and outlier scores) on the numeric features.
    outlier_quantile
        Flag events beyond this quantile of the reference's outlier-score
        distribution (:attr:`last_outlier`); ``None``: no outlier flags.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(0)
    >>> monitor = DriftMonitor({"age": {"type": "numeric", "min": 0, "max": 120}})
    >>> def event(i):
    ...     age = rng.gauss(40 if i < 4000 else 48, 10)  # the age mix shifts at 4000
    ...     plan = rng.choice(["basic", "basic", "pro"])
    ...     return {"age": age, "plan": plan}, ClassPrediction("stay", rng.uniform(0.5, 1))
    >>> for i in range(6000):
    ...     for change in monitor.update(*event(i)):
    ...         print(i, change.signal, change.state, change.detector)
    4124 feature:age drift cusum_mean
    >>> monitor.drift_active, monitor.events_seen
    (True, 6000)
    >>> monitor.update({"age": 130, "plan": "gold"}, ClassPrediction("stay", 0.9))
    []
    >>> monitor.last_quality
    EventQuality(out_of_range=('age',), unseen=('plan',), missing=())
    """

    _settings = (
        "features",
        "sensitivity",
        "reference",
        "reference_size",
        "max_features",
        "window",
        "step",
        "top_k",
        "bins",
        "multivariate",
        "outlier_quantile",
    )
    _snapshot_version = 3

    def __init__(
        self,
        features: dict[str, dict[str, Any]] | None = None,
        sensitivity: float = DEFAULT_SENSITIVITY,
        reference: dict[str, Any] | None = None,
        reference_size: int = 1000,
        max_features: int = 64,
        window: int = 250,
        step: int | None = None,
        top_k: int = 20,
        bins: int = 20,
        multivariate: bool = True,
        outlier_quantile: float | None = DEFAULT_OUTLIER_QUANTILE,
    ) -> None:
        self.features = features
        self.sensitivity = sensitivity
        self.reference = reference
        self.reference_size = reference_size
        self.max_features = max_features
        self.window = window
        self.step = step = default_step(window) if step is None else step
        self.top_k = top_k
        self.bins = bins
        self.multivariate = multivariate
        self.outlier_quantile = outlier_quantile
        check_positive("sensitivity", sensitivity)
        if not isinstance(multivariate, bool):
            raise SettingsError(f"'multivariate' must be a bool; got {multivariate!r}")
        if outlier_quantile is not None and (
            isinstance(outlier_quantile, bool)
            or not isinstance(outlier_quantile, int | float)
            or not 0.5 <= outlier_quantile < 1.0
        ):
            raise SettingsError(
                f"'outlier_quantile' must be in [0.5, 1) or None; got {outlier_quantile!r}"
            )
        for name in ("reference_size", "max_features", "window", "step", "top_k", "bins"):
            check_positive(name, getattr(self, name), integer=True)
        if window % step:
            raise SettingsError(f"'window' must be a multiple of 'step'; got {window} and {step}")
        for name, cfg in (features or {}).items():
            if not isinstance(cfg, dict):
                raise SettingsError(f"feature {name!r} settings must be a dict; got {cfg!r}")
            if "type" in cfg and cfg["type"] not in _KINDS:
                raise SettingsError(
                    f"feature {name!r} type must be one of {_KINDS}; got {cfg['type']!r}"
                )
            imp = cfg.get("importance")
            if imp is not None and (
                isinstance(imp, bool)
                or not isinstance(imp, int | float)
                or not (math.isfinite(imp) and imp >= 0)
            ):
                raise SettingsError(
                    f"feature {name!r} importance must be a finite number >= 0; got {imp!r}"
                )
            for bound in ("min", "max"):
                if bound in cfg and (
                    isinstance(cfg[bound], bool)
                    or not isinstance(cfg[bound], int | float)
                    or not math.isfinite(cfg[bound])
                ):
                    raise SettingsError(
                        f"feature {name!r} {bound} must be a finite number; got {cfg[bound]!r}"
                    )
        self._profile: ReferenceProfile | None = None
        if reference is not None:
            try:
                self._profile = ReferenceProfile.from_dict(reference)
            except SnapshotError as exc:
                raise SettingsError(f"'reference' is not a reference profile: {exc}") from exc
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {}
        yield {
            "features": {
                "n0": {"type": "numeric", "min": -3.0, "max": 3.0},
                "c": {"type": "categorical"},
            },
            "window": 100,
            "max_features": 4,
            "outlier_quantile": None,
        }
        yield {
            "features": {
                "n0": {"type": "numeric", "importance": 2.0},
                "n1": {"type": "numeric"},
            },
            "window": 100,
            "reference_size": 300,
            "outlier_quantile": 0.99,
        }

    # -- state ---------------------------------------------------------------
    def _reset(self) -> None:
        self._n = 0
        self._kind: str | None = None  # "class" | "regression", fixed by the first prediction
        self._budget_features = 0
        self._block_start = 0
        self._ignored = 0
        self._slots: dict[str, _Slot] = {}
        # Raw values of the current block, per feature (the same list objects in
        # _order_bufs, in the row block's key order), and the row block: the values of
        # the events since the last _spill that had its keys in its order (not yet in
        # _bufs; None before the first such event).
        self._bufs: dict[str, list[Any]] = {}
        self._order_bufs: list[list[Any]] = []
        self._rows: RowBlock | None = None
        self._out: list[float | str] = []  # the prediction signal's values
        self._conf: list[float] = []
        self._conf_det: NumericDrift | None = None
        self._pred_det: NumericDrift | CategoricalDrift | None = None
        self._active = 0
        self._last: Mapping[str, Any] | None = None
        self._quality: EventQuality | None = _CLEAN
        self._mv: ReconstructionDrift | None = None
        self._mv_signals = 0  # 1 when multivariate counts in the budget
        # The block's rows for the multivariate test (when events are not scored one
        # by one): each event's values of the detector's features, in order.
        self._mv_rows: list[tuple[Any, ...]] = []
        self._mv_names: list[str] | None = None
        self._outlier = False
        # A batch's columnar work done in advance (:meth:`prepare`), valid while no slot
        # is added (_gen counts additions).
        self._pre: _Prepared | None = None
        self._gen = 0
        # What prepare reads of the slots (which are numeric, their ranges, the known
        # categories), kept from one batch to the next: it changes only at the end of a
        # block (_flush: references learned, ranges set) or when a slot is added.
        self._plan: _Plan | None = None

    def _state(self) -> dict[str, Any]:
        self._spill()
        return {
            "n": self._n,
            "kind": self._kind,
            "budget_features": self._budget_features,
            "block_start": self._block_start,
            "ignored": self._ignored,
            "slots": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "created": s.created,
                    "lo": s.lo,
                    "hi": s.hi,
                    "configured_bounds": s.configured_bounds,
                    "drift": s.drift.snapshot(),
                    "dq": s.dq.snapshot(),
                }
                for s in self._slots.values()
            ],
            "bufs": {k: list(v) for k, v in self._bufs.items()},
            "out": list(self._out),
            "conf": list(self._conf),
            "conf_det": None if self._conf_det is None else self._conf_det.snapshot(),
            "pred_det": None if self._pred_det is None else self._pred_det.snapshot(),
            "mv": None if self._mv is None else self._mv.snapshot(),
            "mv_signals": self._mv_signals,
            "mv_rows": [list(r) for r in self._mv_rows],
            "outlier": self._outlier,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._kind = state["kind"]
        self._budget_features = int(state["budget_features"])
        self._block_start = int(state["block_start"])
        self._ignored = int(state["ignored"])
        for s in state["slots"]:
            numeric = s["kind"] == "numeric"
            drift: NumericDrift | CategoricalDrift = (
                _in_step(NumericDrift.restore(s["drift"]))
                if numeric
                else CategoricalDrift.restore(s["drift"])
            )
            slot = _Slot(
                s["name"],
                s["kind"],
                int(s["created"]),
                drift,
                DataQualityDrift.restore(s["dq"]),
                s["lo"],
                s["hi"],
                bool(s["configured_bounds"]),
            )
            self._slots[slot.name] = slot
        self._bufs = {k: list(v) for k, v in state["bufs"].items()}
        self._out = list(state["out"])
        self._conf = list(state["conf"])
        if state["conf_det"] is not None:
            self._conf_det = _in_step(NumericDrift.restore(state["conf_det"]))
        if state["pred_det"] is not None:
            cls = NumericDrift if self._kind == "regression" else CategoricalDrift
            self._pred_det = cls.restore(state["pred_det"])
            if isinstance(self._pred_det, NumericDrift):
                _in_step(self._pred_det)
        if state.get("mv") is not None:
            self._mv = ReconstructionDrift.restore(state["mv"])
            self._mv.defer_fit = True
        self._mv_signals = int(state.get("mv_signals", 0))
        self._mv_rows = [tuple(r) for r in state.get("mv_rows", [])]
        self._outlier = bool(state.get("outlier", False))
        self._active = sum(1 for det in self._detectors() if det.drifting) + int(
            self._mv is not None and self._mv.drifting
        )

    # -- results -------------------------------------------------------------
    @property
    def events_seen(self) -> int:
        return self._n

    @property
    def ignored_features(self) -> int:
        """Feature values skipped because their feature is beyond ``max_features``."""
        return self._ignored

    @property
    def monitored_features(self) -> tuple[str, ...]:
        return tuple(self._slots)

    @property
    def drift_active(self) -> bool:
        """Whether any signal of this model is in drift now."""
        return self._active > 0

    @property
    def last_quality(self) -> EventQuality:
        """Findings for the event passed to the last :meth:`update` (computed on read)."""
        if self._quality is None:
            self._quality = self._assess(self._last or {})
        return self._quality

    @property
    def last_outlier(self) -> Outlier | None:
        """The last event as an :class:`Outlier` when its score is beyond the
        ``outlier_quantile`` threshold, else ``None`` (the features' shares are
        computed on read)."""
        mv = self._mv
        if not self._outlier or mv is None:
            return None
        tops = mv.contributions(self._last or {})
        return Outlier(mv.last_score, mv.outlier_threshold, tuple(tops))

    @property
    def multivariate_detector(self) -> ReconstructionDrift | None:
        """The ``multivariate`` signal's detector (``None`` when off or not started)."""
        return self._mv

    def importance(self, name: str) -> float:
        """The feature's configured ``importance`` (1 when not set)."""
        cfg = (self.features or {}).get(name, {})
        imp = cfg.get("importance")
        return 1.0 if imp is None else float(imp)

    def impacts(self) -> list[tuple[str, float]]:
        """Drift impact of every ``feature:<name>`` signal: ``importance x statistic /
        threshold`` (at least ``importance`` while the signal is beyond its threshold),
        for ranking drifting features by what they move."""
        out = []
        for slot in self._slots.values():
            for st in slot.drift.states():
                out.append((st.signal, _impact(self.importance(slot.name), st)))
        return out

    def states(self) -> list[SignalState]:
        """Statistic, threshold and drift flag of every signal (for scrape-time gauges)."""
        out: list[SignalState] = []
        for det in self._detectors():
            out.extend(det.states())
        if self._mv is not None:
            out.extend(self._mv.states())
        return out

    def _detectors(self) -> list[NumericDrift | CategoricalDrift | DataQualityDrift]:
        dets: list[NumericDrift | CategoricalDrift | DataQualityDrift] = []
        for slot in self._slots.values():
            dets.append(slot.drift)
            dets.append(slot.dq)
        if self._conf_det is not None:
            dets.append(self._conf_det)
        if self._pred_det is not None:
            dets.append(self._pred_det)
        return dets

    # -- updates -------------------------------------------------------------
    def update(
        self,
        features: Features,
        prediction: Prediction,
    ) -> list[SignalChange]:
        """Take one event; return the signals that entered or left drift (usually none)."""
        # Validate everything first: a rejected event leaves no trace.
        kind, out, conf = self._checked(features, prediction)
        return self._update(features, kind, out, conf)

    def _checked(
        self, features: Features, prediction: Prediction
    ) -> tuple[str, float | str, float]:
        """What :meth:`update` takes of an event, ``(kind, out, conf)`` as
        :meth:`_update` wants them, if it would take it; else
        :class:`~detectors.errors.InvalidObservationError`. Changes nothing."""
        ptype = type(prediction)
        if ptype is ClassPrediction:
            conf = prediction.confidence  # type: ignore[union-attr]
            if type(conf) is not float and type(conf) is not int:
                conf = as_real(conf)  # a numpy scalar; None for anything else
            if conf is None or not 0.0 <= conf <= 1.0:
                raise InvalidObservationError(
                    f"'confidence' must be a number in [0, 1]; got {prediction.confidence!r}"  # type: ignore[union-attr]
                )
            out: float | str = prediction.label  # type: ignore[union-attr]
            if type(out) is not str:
                raise InvalidObservationError(f"'label' must be a string; got {out!r}")
            kind = "class"
        elif ptype is RegressionPrediction:
            value = prediction.value  # type: ignore[union-attr]
            real = value if type(value) is float or type(value) is int else as_real(value)
            if real is None or not _finite(real):
                raise InvalidObservationError(f"'value' must be a finite number; got {value!r}")
            out = real
            conf = 0.0
            kind = "regression"
        else:
            raise InvalidObservationError(
                f"prediction must be a ClassPrediction or RegressionPrediction; got {prediction!r}"
            )
        if kind != self._kind and self._kind is not None:
            raise InvalidObservationError(
                f"this model's predictions are {self._kind}; got a {kind} prediction"
            )
        if type(features) is not dict and not isinstance(features, Mapping):
            raise InvalidObservationError(f"'features' must be a mapping; got {features!r}")
        return kind, out, conf

    def _update(
        self, features: Features, kind: str, out: float | str, conf: float
    ) -> list[SignalChange]:
        """:meth:`update` of an event already checked: ``kind`` (``"class"`` or
        ``"regression"``, this monitor's kind once it has one), ``out`` (the label, or
        the value as a finite float) and ``conf`` (the confidence in [0, 1]; 0.0 for a
        regression). For a caller whose events are valid by construction (the
        processor's, decoded and validated at its edge; ``ModelMonitor``), without the
        checks per event."""
        if self._kind is None:
            self._start(features, kind)
        self._n += 1
        self._last = features
        self._quality = None
        # Hot path: file raw values; types are checked per batch in _flush. When the
        # event has the same keys in the same order as the last one (the usual case),
        # its values go to the row block (in Rust: a float column stays plain numbers,
        # read by _flush as they are), spread over the buffers only when needed (_spill).
        rows = self._rows
        if rows is None or not rows.push(features if type(features) is dict else dict(features)):
            self._spill()
            bufs = self._bufs
            regular = True
            for name, value in features.items():
                buf = bufs.get(name)
                if buf is None:
                    regular = self._new_feature(name, value) and regular
                else:
                    buf.append(value)
            if regular:
                keys = tuple(features)
                self._rows = RowBlock(keys)
                self._order_bufs = [bufs[k] for k in keys]
        self._out.append(out)
        if kind == "class":
            self._conf.append(conf)
        hint = None
        pre = self._pre
        if pre is not None:
            i: int | None
            at = pre.next  # pre.find(features): its common case inlined (per event)
            if at < len(pre.events) and pre.events[at] is features:
                pre.next = at + 1
                i = at
            else:
                i = pre.find(features)
            if i is not None and pre.gen == self._gen:
                hint = i
                if pre.clean[i]:
                    self._quality = _CLEAN
        mv = self._mv
        more: list[SignalChange] = []
        if mv is not None:
            names = self._mv_names
            if names is not None:  # active, the block's rows are scored at the flush
                self._mv_rows.append(tuple(map(features.get, names)))
            else:
                scored = None if hint is None or pre.scores is None else pre.scores[hint]  # type: ignore[union-attr]
                if scored is not None:
                    # Scored in the batch (outlier scoring on): its SPE and score counted
                    # as they are; what _mv_event does after its update, for such an event
                    spe, score = scored
                    more = mv._take(spe, score)
                    self._outlier = mv._last_outlier
                    if more:
                        more = self._mv_edges(more)
                else:
                    more = self._mv_event(mv, features)
        if self._n - self._block_start >= self.step:
            changes = self._flush()
            return changes + more if more else changes
        return more

    def update_many(
        self, events: Sequence[Features], predictions: Sequence[Prediction]
    ) -> list[tuple[int, list[SignalChange]]]:
        """Take events in order: the same state, and the same changes, as :meth:`update`
        of each in turn (tested bit for bit), returned as ``(position, changes)`` for the
        events that changed something. An invalid event raises as :meth:`update` does,
        with the events before it taken.

        Faster for runs of events whose features are a plain ``dict`` with exactly the
        features monitored so far, with a float confidence (a float value) and without
        the multivariate detector: their values go to the block buffers a feature at a
        time, in C. Any other event (the first, a new or missing feature, an int) takes
        the per-event path, as does every event once the multivariate detector runs.

        >>> m = DriftMonitor({"a": {"type": "numeric"}}, window=20, reference_size=40,
        ...                  multivariate=False)
        >>> events = [{"a": float(i % 7)} for i in range(100)]
        >>> found = m.update_many(events, [ClassPrediction("y", 0.9)] * 100)
        >>> m.events_seen, found
        (100, [])
        """
        n = len(events)
        if len(predictions) != n:
            raise InvalidObservationError(
                f"{n} events but {len(predictions)} predictions: one prediction per event"
            )
        out: list[tuple[int, list[SignalChange]]] = []
        first = 0
        if self._kind is None and n:  # the first event starts the monitor
            changes = self.update(events[0], predictions[0])
            if changes:
                out.append((0, changes))
            first = 1
        if self._mv is not None:  # scored event by event
            for i in range(first, n):
                changes = self.update(events[i], predictions[i])
                if changes:
                    out.append((i, changes))
            return out
        keys = self._bufs.keys()  # a live view: follows slots added on the way
        kind = self._kind
        i = first
        while i < n:
            end = min(n, i + self.step - (self._n - self._block_start))
            outs: list[float | str] = []
            confs: list[float] = []
            j = i
            while j < end:  # the run of plain events up to the next flush
                f = events[j]
                if type(f) is not dict or f.keys() != keys:
                    break
                p = predictions[j]
                if kind == "class":
                    if type(p) is not ClassPrediction:
                        break
                    conf = p.confidence
                    label = p.label
                    if type(conf) is not float or not 0.0 <= conf <= 1.0 or type(label) is not str:
                        break
                    confs.append(conf)
                    outs.append(label)
                else:
                    if type(p) is not RegressionPrediction:
                        break
                    value = p.value
                    if type(value) is not float or not _finite(value):
                        break
                    outs.append(value)
                j += 1
            if j > i:
                run = events[i:j]
                self._spill()  # what update() kept: before these, in order
                for name, buf in self._bufs.items():
                    buf.extend(map(operator.itemgetter(name), run))
                self._out.extend(outs)
                if kind == "class":
                    self._conf.extend(confs)
                self._n += j - i
                self._last = run[-1]
                self._quality = None
                if self._n - self._block_start >= self.step:
                    changes = self._flush()
                    if changes:
                        out.append((j - 1, changes))
            if j < end:  # not a plain event: the per-event path
                changes = self.update(events[j], predictions[j])
                if changes:
                    out.append((j, changes))
                j += 1
            i = j
        return out

    def prepare(self, events: Sequence[Features]) -> None:
        """Do the columnar part of the next events' work now, for the whole batch: their
        numeric values gathered into one matrix, range-checked and (with per-event
        outlier scoring) scored in numpy, categorical values checked against the
        reference's. :meth:`update` of these same mapping objects, in any order, then
        uses the results instead of computing them one event at a time; the state and
        every result are the same bit for bit as without ``prepare`` (tested). Nothing
        changes here: an event that is never passed to :meth:`update` costs nothing, and
        a call replaces the previous batch's results.

        Only once every reference is in use (before that the per-event work is the
        learning itself) and only for events whose values are all of the plain types
        (float numbers, known strings): anything else (a missing or null value, an
        int, a new feature) takes the per-event path, as does every event after a
        feature is added.

        >>> m = DriftMonitor({"a": {"type": "numeric", "min": 0, "max": 1}})
        >>> batch = [{"a": 0.5}, {"a": 2.0}]
        >>> m.prepare(batch)  # not started yet: nothing prepared
        >>> _ = m.update(batch[0], ClassPrediction("y", 0.9))
        >>> m.prepare(batch[1:])
        >>> _ = m.update(batch[1], ClassPrediction("y", 0.9))
        >>> m.last_quality.out_of_range
        ('a',)
        """
        self._pre = None
        if self._kind is None or not events:
            return
        plan = self._plan
        if plan is None:
            plan = self._plan = self._prepare_plan()
        if not plan.ready:
            return
        mv = self._mv
        score = mv is not None and self._mv_names is None and self.outlier_quantile is not None
        if score and not mv.active:  # type: ignore[union-attr]
            if mv._learn is not None:  # type: ignore[union-attr]
                return  # still learning its reference
            score = False  # inert: nothing to score
        n = len(events)
        numeric, names = plan.numeric, plan.names
        # Every event a dict and every numeric value a float (the usual case): the matrix
        # read and every event found clean or not in one pass, in Rust
        # (detectors.feature_matrix); a feature without a range takes the finite floats.
        out = np.empty((n, len(names)))
        clean = gather_clean(
            events if type(events) is list else list(events),
            names,
            plan.lo,
            plan.hi,
            plan.categories,
            out,
        )
        matrix: np.ndarray | None = out
        if clean is None:
            matrix = None
            clean = [True] * n
            if numeric:
                try:  # each event's values in one C call (a missing one: per value below)
                    pick = operator.itemgetter(*names)
                    one = len(names) == 1
                    rows = [(pick(e),) for e in events] if one else [pick(e) for e in events]
                except KeyError:
                    rows = [tuple(map(e.get, names)) for e in events]
                clean = [_plain_in_range(numeric, r) for r in rows]
            for name, known in plan.categories:
                clean = [
                    c and type(v := e.get(name)) is str and v in known
                    for c, e in zip(clean, events, strict=True)
                ]
        scores: list[tuple[float, float] | None] | None = None
        if score:
            # NaN for anything but a finite number: such rows are scored per event.
            take = None if matrix is None else plan.columns_of(mv._names)  # type: ignore[union-attr]
            if take is not None:  # the matrix's columns, mapped and projected in Rust
                scores = mv.score_rows(matrix, None if type(take) is slice else take)  # type: ignore[union-attr, arg-type]
            if scores is None:
                x = rows_of(events, mv.feature_names) if take is None else matrix[:, take]  # type: ignore[union-attr, index]
                spe, sc = mv.project(x)  # type: ignore[union-attr]
                found = sc.tolist()
                scores = list(zip(spe.tolist(), found, strict=True))
                if not mv.all_usable(found):  # type: ignore[union-attr]  # NaN too
                    scores = [
                        p if mv.usable(p[1]) else None  # type: ignore[union-attr, index]
                        for p in scores
                    ]
        self._pre = _Prepared(self._gen, list(events), clean, scores)

    def _prepare_plan(self) -> _Plan:
        """What :meth:`prepare` reads of the slots now: not ready while a range or the
        categories of a slot are still being learned."""
        numeric: list[_Slot] = []
        categorical: list[_Slot] = []
        for slot in self._slots.values():
            if slot.numeric:
                if slot.lo is None and not slot.drift.has_reference:
                    return _Plan(False)  # its range is still being learned
                numeric.append(slot)
            else:
                if not slot.drift.has_reference:
                    return _Plan(False)  # its categories are still being learned
                categorical.append(slot)
        return _Plan(
            True,
            numeric,
            [s.name for s in numeric],
            [-_LARGEST if s.lo is None else s.lo for s in numeric],
            [_LARGEST if s.hi is None else s.hi for s in numeric],
            [(s.name, s.drift.known_values) for s in categorical],  # type: ignore[union-attr]
        )

    def _mv_event(self, mv: ReconstructionDrift, features: Mapping[str, Any]) -> list[SignalChange]:
        """Feed one event to the multivariate detector itself: while it learns, or when
        every event is scored for outliers and :meth:`prepare` did not score this one
        (:meth:`update` hands the detector an event it did, ``ReconstructionDrift._take``)."""
        changes = mv.update(features)
        self._outlier = mv._last_outlier
        if self.outlier_quantile is None and mv.active:
            self._mv_names = mv.feature_names  # from now on, per block
        return self._mv_edges(changes) if changes else changes

    def _mv_edges(self, changes: list[SignalChange]) -> list[SignalChange]:
        """The multivariate detector's edges as returned: counted in the active signals,
        at the monitor's event count."""
        for change in changes:
            self._active += 1 if change.state == "drift" else -1
        return [dataclasses.replace(c, events_seen=self._n) for c in changes]

    def _start(self, features: Mapping[str, Any], kind: str) -> None:
        """First event: fix the prediction kind, the budget and the known features."""
        self._kind = kind
        names: list[str] = list(self.features or {})
        if self._profile is not None:
            names += [n for n in self._profile.features if n not in names]
        typed = [n for n in names if self._kind_of(n, None) is not None]
        known = set(names)
        extra = [n for n in features if n not in known and isinstance(n, str)]
        self._budget_features = min(self.max_features, len(typed) + len(extra))
        if self.multivariate:
            self._start_multivariate(features, typed, extra)
        for name in typed[: self.max_features]:
            self._add_slot(name, self._kind_of(name, None), created=0)  # type: ignore[arg-type]
        sens, n_signals = self.sensitivity, self._n_signals()
        prof = self._profile
        if kind == "class":
            self._conf_det = _in_step(
                NumericDrift(
                    sens,
                    n_signals=n_signals,
                    reference=prof.confidence if prof is not None else None,
                    reference_size=self.reference_size,
                    bins=self.bins,
                    window=self.window,
                    step=self.step,
                    signal="confidence",
                )
            )
            pref = prof.prediction if prof is not None else None
            self._pred_det = CategoricalDrift(
                sens,
                n_signals=n_signals,
                reference=pref if pref and pref.get("type") == "categorical" else None,
                reference_size=self.reference_size,
                top_k=self.top_k,
                window=self.window,
                step=self.step,
                signal="prediction",
            )
        else:
            pref = prof.prediction if prof is not None else None
            self._pred_det = _in_step(
                NumericDrift(
                    sens,
                    n_signals=n_signals,
                    reference=pref if pref and pref.get("type") == "numeric" else None,
                    reference_size=self.reference_size,
                    bins=self.bins,
                    window=self.window,
                    step=self.step,
                    signal="prediction",
                )
            )

    def _start_multivariate(
        self, features: Mapping[str, Any], typed: list[str], extra: list[str]
    ) -> None:
        """The ``multivariate`` detector: on the reference profile's fit when it has one,
        else learned from the first events over the numeric features known at the first
        event (configured or in the reference, then those of that event)."""
        prof = self._profile
        mref = prof.multivariate if prof is not None else None
        numeric = [n for n in typed if self._kind_of(n, None) == "numeric"]
        seen = [n for n in extra if self._kind_of(n, features.get(n)) == "numeric"]
        known = (numeric + seen)[: self.max_features]
        if mref is None and len(known) < 2:
            return
        self._mv_signals = 1
        q = self.outlier_quantile
        self._mv = ReconstructionDrift(
            sensitivity=float(self.sensitivity) * self._n_signals(),
            outlier_quantile=DEFAULT_OUTLIER_QUANTILE if q is None else q,
            reference=mref,
            features=None if mref is not None else known,
            reference_size=max(self.reference_size, 2 * (len(known) + 1), 20),
            max_features=self.max_features,
            window=self.window,
            step=self.step,
        )
        self._mv.defer_fit = True  # fitted in a block of its own (_flush)
        if q is None and self._mv.active:
            self._mv_names = self._mv.feature_names

    def _n_signals(self) -> int:
        """Signals sharing the budget, as counted now."""
        return 2 * max(self._budget_features, len(self._slots)) + 2 + self._mv_signals

    @property
    def signal_sensitivity(self) -> float:
        """Expected stationary events between false alerts of one signal, for a
        signal created now (``sensitivity`` times the number of signals)."""
        return float(self.sensitivity) * self._n_signals()

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        """As :meth:`Detector.restore`; also loads version-1 snapshots (whose
        settings had ADWIN's ``clock``: dropped; their detectors migrate themselves) and
        version-2 ones (before ``multivariate``: restored with it and outlier flags off)."""
        if (
            isinstance(snapshot, dict)
            and snapshot.get("class") == cls.__qualname__
            and snapshot.get("version") == 1
        ):
            settings = {k: v for k, v in snapshot["settings"].items() if k != "clock"}
            snapshot = {**snapshot, "version": 2, "settings": settings}
        if (
            isinstance(snapshot, dict)
            and snapshot.get("class") == cls.__qualname__
            and snapshot.get("version") == 2
        ):
            # Before the multivariate signal: the model goes on without it (its budget
            # was split over the signals it had), until its state is rebuilt.
            settings = {**snapshot["settings"], "multivariate": False, "outlier_quantile": None}
            snapshot = {**snapshot, "version": 3, "settings": settings}
        return super().restore(snapshot)

    def _kind_of(self, name: str, value: object) -> str | None:
        cfg = (self.features or {}).get(name, {})
        if "type" in cfg:
            return str(cfg["type"])
        if self._profile is not None and name in self._profile.features:
            return str(self._profile.features[name]["type"])
        if isinstance(value, bool | str) or as_bool(value) is not None:
            return "categorical"
        if isinstance(value, int | float) or as_real(value) is not None:
            return "numeric"
        return None

    def _new_feature(self, name: object, value: object) -> bool:
        """Slow path: a name without a slot (new, untyped so far, or over the cap).

        Returns whether the name now has a buffer.
        """
        if len(self._slots) >= self.max_features or not isinstance(name, str):
            self._ignored += 1
            return False
        kind = self._kind_of(name, value)
        if kind is None:  # null: typed by its first non-null value
            return False
        self._add_slot(name, kind, created=self._n - 1)
        self._bufs[name].append(value)
        return True

    def _add_slot(self, name: str, kind: str, created: int) -> None:
        cfg = (self.features or {}).get(name, {})
        ref = None
        if self._profile is not None:
            entry = self._profile.features.get(name)
            if entry is not None and entry.get("type") == kind:
                ref = entry
        sens, n_signals = self.sensitivity, self._n_signals()
        drift: NumericDrift | CategoricalDrift
        if kind == "numeric":
            drift = _in_step(
                NumericDrift(
                    sens,
                    n_signals=n_signals,
                    reference=ref,
                    reference_size=self.reference_size,
                    bins=self.bins,
                    window=self.window,
                    step=self.step,
                    signal=f"feature:{name}",
                    budget_weight=FEATURE_DRIFT_WEIGHT,
                )
            )
        else:
            drift = CategoricalDrift(
                sens,
                n_signals=n_signals,
                reference=ref,
                reference_size=self.reference_size,
                top_k=self.top_k,
                window=self.window,
                step=self.step,
                signal=f"feature:{name}",
                budget_weight=FEATURE_DRIFT_WEIGHT,
            )
        self._bufs[name] = []
        dq_ref = None
        if ref is not None:
            dq_ref = {
                "events": ref["events"],
                "missing": ref["missing"],
                "out_of_range": ref.get("out_of_range", 0) + ref.get("invalid", 0),
            }
        dq = DataQualityDrift(
            sens,
            n_signals=n_signals,
            reference=dq_ref,
            reference_size=self.reference_size,
            window=self.window,
            step=self.step,
            signal=f"data_quality:{name}",
            budget_weight=DATA_QUALITY_WEIGHT,
            range_from_reference=kind == "numeric" and not ("min" in cfg or "max" in cfg),
        )
        configured = "min" in cfg or "max" in cfg
        lo = hi = None
        if configured:
            lo = float(cfg.get("min", -math.inf))
            hi = float(cfg.get("max", math.inf))
        elif ref is not None and kind == "numeric" and ref.get("min") is not None:
            lo, hi = float(ref["min"]), float(ref["max"])
        self._slots[name] = _Slot(name, kind, created, drift, dq, lo, hi, configured)
        self._gen += 1
        self._plan = None

    def _spill(self) -> None:
        """Spread the row block's values over the buffers, a feature at a time."""
        rows = self._rows
        if rows is not None and len(rows):
            rows.spill(self._order_bufs)

    def _settle(self) -> dict[str, int]:
        """Before a flush: the numeric features whose values of the block are all in the
        row block as floats, by their column there (read as they are); every other
        column spread over its buffer, after the values already there."""
        rows = self._rows
        direct: dict[str, int] = {}
        if rows is None or not len(rows):
            return direct
        slots = self._slots
        for j, (name, buf) in enumerate(zip(rows.keys, self._order_bufs, strict=True)):
            if not buf and slots[name].numeric and rows.floats(j):
                direct[name] = j
            else:
                rows.spill_column(j, buf)
        return direct

    def _flush(self) -> list[SignalChange]:
        """End of a block of ``step`` events: hand every buffer to its detectors."""
        self._plan = None  # references learned, ranges set: read again by prepare
        direct = self._settle()
        rows = self._rows
        changes: list[SignalChange] = []
        start = self._block_start
        n = self._n
        learned = False  # a numeric reference learned in this block
        for slot in self._slots.values():
            buf = self._bufs[slot.name]
            events = n - max(start, slot.created)
            oor = 0
            count = len(buf)  # the block's values of this feature
            if slot.kind == "numeric":
                learning = not slot.drift.has_reference
                lo, hi = slot.lo, slot.hi
                bounds = (lo, hi) if lo is not None and hi is not None else _UNBOUNDED
                # One pass, in Rust: the block is clean when every value is a finite
                # float (the usual case), and counted out of range on the way; else (a
                # null, an int, a bool, a string, ...) sort it out value by value.
                j = direct.get(slot.name)
                if j is not None:  # the row block's floats, as they are
                    count = len(rows)  # type: ignore[arg-type]
                    column = np.empty(count)
                    oor = rows.float_column(j, *bounds, column)  # type: ignore[union-attr]
                    if oor < 0:  # a NaN or an infinity: value by value, as any other
                        rows.spill_column(j, buf)  # type: ignore[union-attr]
                if j is None or oor < 0:
                    count = len(buf)
                    column = np.empty(count)
                    oor = float_column(buf, *bounds, column)
                nums: list[float] | np.ndarray = column
                if oor < 0:
                    oor = 0
                    if buf and set(map(type, buf)) <= _NUMBER_TYPES and _finite_sum(buf):
                        nums, missing, bad = buf, 0, 0
                    else:
                        nums, missing, bad = _split_numeric(buf)
                    if bounds is not _UNBOUNDED and nums:
                        low, high = bounds
                        if min(nums) < low or max(nums) > high:
                            oor = sum(1 for v in nums if v < low or v > high)
                else:
                    missing = bad = 0
                if len(nums):
                    # Values were checked above: feed without re-validating.
                    changes += slot.drift._feed(nums)  # type: ignore[arg-type]
                    if slot.drift.has_reference:
                        learned = learned or learning
                        ref = slot.drift.learned_reference if lo is None else None
                        if ref is not None and ref["min"] is not None:
                            slot.lo, slot.hi = float(ref["min"]), float(ref["max"])
            else:
                if buf and set(map(type, buf)) == _STR_TYPE:
                    vals, missing, bad = buf, 0, 0
                else:
                    vals, missing, bad = _split_categorical(buf)
                if vals:
                    changes += slot.drift._feed(vals)
            missing += events - count  # absent from the event: missing too
            changes += slot.dq._block(events, missing, oor + bad)
            buf.clear()
        if rows is not None:  # its direct columns were read above, the rest spread
            rows.clear()
        if self._conf_det is not None and self._conf:
            changes += self._conf_det._feed(self._conf)
            self._conf.clear()
        if self._pred_det is not None and self._out:
            changes += self._pred_det._feed(self._out)  # type: ignore[arg-type]
            self._out.clear()
        mv = self._mv
        if self._mv_rows and mv is not None:
            changes += mv.update_rows(_matrix(self._mv_rows))[0]
            self._mv_rows.clear()
        # One costly step per block: the features' references (~3 ms at 20 features),
        # the multivariate reference (~4-6 ms) or a few detectors' CUSUM thresholds
        # (~1.7 ms a detector); when they fell in one block, it held up every model's
        # events behind it.
        if not learned:
            if mv is not None and mv.fit_due:
                mv.fit_learned()
                if self.outlier_quantile is None and mv.active:
                    self._mv_names = mv.feature_names  # from now on, per block
            else:
                self._refresh_some_scores()
        self._block_start = n
        if not changes:
            return changes
        for change in changes:
            self._active += 1 if change.state == "drift" else -1
        return [self._edge(c, n) for c in changes]

    def _refresh_some_scores(self) -> None:
        """Solve the CUSUM thresholds of at most :data:`SCORE_REFRESHES_PER_BLOCK` of the
        numeric detectors whose first or grown references call for them (slot order, the
        confidence's and a regression's output last): the features of a model learn and
        grow their references in the same block, and solving every threshold at once
        (~1.7 ms a detector) held up every model's events behind it."""
        budget = SCORE_REFRESHES_PER_BLOCK
        features = (slot.drift for slot in self._slots.values() if slot.numeric)
        for det in chain(features, (self._conf_det, self._pred_det)):
            # Asked by what it can do: a class prediction's detector is categorical, and
            # benchmarks/detector_quality.py stands a baseline in for NumericDrift.
            refresh = getattr(det, "refresh_scores", None)
            if refresh is not None and refresh():
                budget -= 1
                if not budget:
                    return

    def _edge(self, change: SignalChange, n: int) -> SignalChange:
        """A change as returned: at the monitor's event count, and, for a feature
        signal entering drift, with its impact (:meth:`impacts`)."""
        if change.state == "drift" and change.signal.startswith("feature:"):
            imp = self.importance(change.signal[8:])
            ratio = change.statistic / change.threshold if change.threshold > 0 else 1.0
            return dataclasses.replace(change, events_seen=n, impact=round(imp * ratio, 6))
        return dataclasses.replace(change, events_seen=n)

    def _assess(self, features: Mapping[str, Any]) -> EventQuality:
        # Runs per event when data reasons are on: one pass, the common cases (a finite
        # number inside its bounds, a known string) decided with the fewest operations.
        out_of_range: list[str] = []
        unseen: list[str] = []
        missing: list[str] = []
        get = features.get
        n = self._n
        for name, slot in self._slots.items():
            value: Any = get(name)
            t = type(value)
            if t is float and slot.numeric:  # the commonest case first
                lo = slot.lo
                if lo is None:
                    if value - value:  # NaN or infinite (a finite float gives 0.0)
                        out_of_range.append(name)
                # NaN fails every comparison.
                elif not lo <= value <= slot.hi:
                    out_of_range.append(name)
                continue
            if value is None:
                if slot.created < n:
                    missing.append(name)
                continue
            if slot.numeric:
                if t is not int:  # a numpy number counts as the number it is
                    value = None if t is bool else as_real(value)
                    if value is None:
                        out_of_range.append(name)
                        continue
                lo = slot.lo
                # An int too large for a float is out of range too.
                if not _finite(value) or (lo is not None and not lo <= value <= slot.hi):
                    out_of_range.append(name)
            elif t is str:
                if not slot.drift.known(value):  # type: ignore[union-attr]
                    unseen.append(name)
            else:
                cat = _category(value)
                if cat is None:
                    out_of_range.append(name)
                elif not slot.drift.known(cat):  # type: ignore[union-attr]
                    unseen.append(name)
        if not (out_of_range or unseen or missing):
            return _CLEAN
        return EventQuality(tuple(out_of_range), tuple(unseen), tuple(missing))


class _Prepared(msgspec.Struct):
    """A batch's results from :meth:`DriftMonitor.prepare`, by position: the events (kept
    so that their ids stay theirs), whether each is clean (all values plain and in
    range or known: else assessed per event) and its multivariate SPE and outlier
    score (``None``: scored per event). A msgspec Struct: built in C, where a
    dataclass's ``__init__`` is a Python call per model and batch."""

    gen: int
    events: list[Features]
    clean: list[bool]
    scores: list[tuple[float, float] | None] | None
    next: int = 0  # where the next event is expected (updates come in order)
    index: dict[int, int] | None = None  # by id, built when they do not

    def find(self, features: Features) -> int | None:
        """The position of ``features`` (the same object) in the batch, or ``None``.
        :meth:`DriftMonitor.update` runs its first case itself (per event)."""
        i = self.next
        events = self.events
        if i < len(events) and events[i] is features:
            self.next = i + 1
            return i
        if self.index is None:
            self.index = {id(e): j for j, e in enumerate(events)}
        j = self.index.get(id(features))
        if j is None or events[j] is not features:
            return None
        self.next = j + 1
        return j


@dataclass(slots=True)
class _Plan:
    """What :meth:`DriftMonitor.prepare` reads of a monitor's slots, kept between batches
    (until the end of the block, or a slot added): ``ready`` when every reference is in
    use (else nothing is prepared), the numeric slots, their names and ranges as
    :func:`~detectors.feature_matrix.gather_clean` takes them (the largest finite floats
    for a feature without one), and the categorical slots' ``(name, known values)``."""

    ready: bool
    numeric: list[_Slot] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    lo: list[float] = field(default_factory=list)
    hi: list[float] = field(default_factory=list)
    categories: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    # The multivariate features' columns in the batch's matrix, found for the list
    # ``_mv_for`` (that object: a fit makes a new one) by columns_of.
    _mv_for: list[str] | None = None
    _mv_take: slice | list[int] | None = None

    def columns_of(self, features: list[str] | None) -> slice | list[int] | None:
        """Where ``features`` are among the numeric columns (all of them, in their order:
        ``slice(None)``), to select from the batch's matrix; None if one is not there
        (``None`` for ``features``: none).

        >>> plan = _Plan(True, names=["a", "b", "c"])
        >>> plan.columns_of(["a", "b", "c"]), plan.columns_of(["c", "a"]), plan.columns_of(["z"])
        (slice(None, None, None), [2, 0], None)
        """
        if features is None:  # none named yet: no column
            features = []
        if features is not self._mv_for:
            cols = {name: j for j, name in enumerate(self.names)}
            take = [cols.get(name) for name in features]
            if None in take:
                self._mv_take = None
            elif take == list(range(len(self.names))):
                self._mv_take = slice(None)  # the whole matrix: a view, no copy
            else:
                self._mv_take = take  # type: ignore[assignment]  # no None in it
            self._mv_for = features
        return self._mv_take


def _plain_in_range(slots: list[_Slot], values: tuple[Any, ...]) -> bool:
    """Whether every value is a float inside its slot's range (finite without one): what
    :meth:`DriftMonitor._assess` finds clean for a float."""
    for slot, v in zip(slots, values, strict=True):
        if type(v) is not float:
            return False
        lo = slot.lo
        if lo is None:
            if not math.isfinite(v):
                return False
        elif not lo <= v <= slot.hi:  # type: ignore[operator]
            return False
    return True


def _impact(importance: float, st: SignalState) -> float:
    """``importance x statistic / threshold`` (``importance`` with no threshold)."""
    ratio = st.statistic / st.threshold if st.threshold > 0 else 1.0
    return importance * ratio if math.isfinite(ratio) else importance


def _matrix(rows: list[tuple[Any, ...]]) -> Any:
    """The block's multivariate rows as a float matrix; NaN for a value that is missing
    or not a number (a string, a bool: :func:`~detectors.reconstruction.rows_of`)."""
    types = set(map(type, [v for r in rows for v in r]))
    if types <= _MATRIX_TYPES:
        try:
            return np.array(rows, dtype=float)  # None -> NaN
        except OverflowError:  # an int too large for a float
            pass
    width = len(rows[0])
    names = [str(i) for i in range(width)]
    return rows_of([dict(zip(names, r, strict=True)) for r in rows], names)


SCORE_REFRESHES_PER_BLOCK = 2
"""CUSUM thresholds (a first or grown learned reference's) a monitor solves per block at
most; see :attr:`~detectors.numeric_drift.NumericDrift.defer_scores`."""


def _in_step(det: NumericDrift) -> NumericDrift:
    """``det``, its CUSUM thresholds solved when this monitor says (:meth:`_flush`)."""
    det.defer_scores = True
    return det


_MATRIX_TYPES = frozenset((float, int, type(None)))
_NUMBER_TYPES = frozenset((float, int))
_UNBOUNDED = (-math.inf, math.inf)  # a feature without a range: nothing is out of it
_LARGEST = sys.float_info.max  # [-_LARGEST, _LARGEST]: the finite floats
_STR_TYPE = {str}


def _finite(value: float) -> bool:
    """``math.isfinite``, false (not OverflowError) for an int too large for a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _finite_sum(values: list[Any]) -> bool:
    """Whether the numbers sum to a finite float (so none is NaN or infinite)."""
    try:
        return math.isfinite(sum(values))
    except OverflowError:
        return False


def _split_numeric(buf: list[Any]) -> tuple[list[float], int, int]:
    """Usable values, nulls and bad values (wrong type or not finite) of a block."""
    vals: list[float] = []
    missing = bad = 0
    for v in buf:
        t = type(v)
        if (t is float or t is int) and _finite(v):
            vals.append(v)
        elif v is None:
            missing += 1
        elif t is not bool and (r := as_real(v)) is not None and _finite(r):
            vals.append(r)  # a numpy number
        else:
            bad += 1
    return vals, missing, bad


def _split_categorical(buf: list[Any]) -> tuple[list[str], int, int]:
    """Categories (bools spelt as in JSON, ints as digits), nulls and bad values."""
    vals: list[str] = []
    missing = bad = 0
    for v in buf:
        t = type(v)
        if t is str:
            vals.append(v)
        elif t is bool:
            vals.append("true" if v else "false")
        elif t is int:
            vals.append(str(v))
        elif v is None:
            missing += 1
        elif (cat := _category(v)) is not None:  # a numpy bool or integer
            vals.append(cat)
        else:
            bad += 1
    return vals, missing, bad


def _category(value: object) -> str | None:
    """A categorical value as its category (bools as in JSON, integers as digits, numpy's
    too), or ``None`` for anything that is not one."""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    b = as_bool(value)
    if b is not None:
        return "true" if b else "false"
    if t is int:
        return str(value)
    try:
        return str(operator.index(value))  # type: ignore[arg-type]  # numpy integers
    except TypeError:
        return None
