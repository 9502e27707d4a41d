"""Per-segment monitors of one model: see what the aggregate hides.

A shift confined to one region or tenant is diluted in the model's aggregate
signals (a 0.5 sigma shift in 10 % of the traffic moves the aggregate mean by
0.05 sigma). :class:`SegmentMonitor` gives each frequent value of each
configured segment key (``region``, ``tenant``, ...) monitors of its own, built
from the same detectors as the model's:

* a :class:`~detectors.drift_monitor.DriftMonitor` over the segment's events:
  ``confidence`` and ``prediction`` drift, and ``feature:<name>`` and
  ``data_quality:<name>`` for the features in ``features``;
* ``escalation_rate``: the share of the segment's events escalated, tested
  one-sided against the segment's own reference rate by
  :class:`~detectors.data_quality.DataQualityDrift`'s exact rate test (the escalated
  count in its first count; its second test sees none, so half the signal's share is
  left unused: conservative). Escalation follows the model's policy, so a policy that
  adapts (conformal, ``drift_boost``) moves every segment's rate with it;
* ``calibration`` and ``accuracy`` from labels (weighed by ``1 / inclusion
  probability``) by a :class:`~detectors.calibration.CalibrationMonitor`.

Every signal is reported as ``segment:<key>=<value>:<signal>``. ``<value>`` is
the segment value with ``%``, ``:``, ``=``, whitespace and control characters
percent-encoded (and a leading ``_``, so that no real value reads as the pool
``_other``).

**Which values get monitors.** Per key, a :class:`~detectors.heavy_hitters.HeavyHitters`
summary (Space-Saving, ``4 top_k`` counters, halved every ``horizon`` events)
counts the values in bounded memory. Every ``window`` events of the key, a value
whose guaranteed share of the recent traffic is at least ``1 / (2 top_k)`` is a
candidate; a candidate at two checks in a row (stable) gets monitors if fewer than
``top_k`` values have them, or replaces the monitored value with the smallest
count if its guaranteed count is at least twice that value's upper bound (so the
top-k does not flap). All other values share the pool ``_other``. When the
monitored set changes, the replaced value's monitors are dropped, the new one's
start fresh (learning their reference from their first ``reference_size``
events), and ``_other``'s monitors restart too: its mix has changed, and a
reference learned on the old mix would see that as drift. Events without the key
in their ``segment`` are in no segment of that key. At most ``top_k + 1`` monitored
values per key: state and metric series stay bounded whatever the number of
distinct values.

**False alarms.** The model's budget (``sensitivity``: expected stationary events
between false alerts of the *model*, SPEC §8) is split once: a share ``share``
(default :data:`SEGMENT_SHARE`, one half) of the false-alarm rate goes to all
segment signals together, and the rest to the aggregate signals (whose monitor
then runs at ``sensitivity / (1 - share)``, see :func:`split_budget`). The segment
share is split evenly over the keys. Within a key, every model event falls in
*one* segment value, so if each value's detectors run at the per-event rate
``r`` *in that value's own events*, the key's false alerts come at rate
``sum_v f_v r = r`` per model event, whatever the traffic shares ``f_v`` are: a
value carrying 10 % of the traffic is tested at the key's full rate in its own
events (ten times the per-model-event rate a naive even split would give it), and
the number of values does not enter. Per value, that rate is split evenly over
its ``2 F + 3`` event signals (``F = len(features)``: the ``2 F + 2`` of its
``DriftMonitor`` plus ``escalation_rate``). So each value's detectors get
``sensitivity * n_keys / share`` expected events *of that value* between false
alerts, and the segment signals of the model together stay below ``share /
sensitivity`` per model event. This assumes what :mod:`detectors.sensitivity`
assumes (independent, stationary events, learned references a sample of the same
law), per segment value. A restarted monitor (new top-k member, ``_other``)
learns a new reference: the guarantee is per reference, averaged over its draw,
as everywhere. ``calibration`` and ``accuracy`` are thresholds on labelled
windows (``ece_threshold``, ``accuracy_drop``), as the model's own: not part of
the events budget, and noisier per segment, which sees fewer labels.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from detectors.base import (
    Detector,
    as_bool,
    as_real,
    check_bool,
    check_in_range,
    check_positive,
    check_probability,
    check_weight,
)
from detectors.calibration import CalibrationMonitor
from detectors.data_quality import DataQualityDrift
from detectors.drift_monitor import DriftMonitor
from detectors.errors import InvalidObservationError, SettingsError
from detectors.escalation import check_prediction
from detectors.heavy_hitters import HeavyHitters
from detectors.prediction import Prediction
from detectors.sensitivity import DEFAULT_SENSITIVITY, default_step
from detectors.signals import SignalChange, SignalState

__all__ = [
    "OTHER_SEGMENT",
    "SEGMENT_SHARE",
    "SegmentMonitor",
    "SegmentReading",
    "segment_name",
    "split_budget",
]

OTHER_SEGMENT = "_other"
"""The pooled value of each key: every value without monitors of its own."""

SEGMENT_SHARE = 0.5
"""Share of the model's false-alarm rate given to all its segment signals."""

DEFAULT_HORIZON = 100_000
"""Events of a key between halvings of its value counts: the top-k follows the last
few hundred thousand events."""

_PLAIN = frozenset((float, int, str, bool, type(None)))
_VALUE_TYPES = frozenset((str, type(None)))
_ABSENT = object()

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/@+,;()[]!~*'")


def segment_name(value: str) -> str:
    """A segment value as it appears in signals: ``%``, ``:``, ``=``, whitespace and
    control characters percent-encoded (UTF-8), and a leading ``_`` too, so no value
    reads as a pool such as ``_other``.

    >>> segment_name("eu-west"), segment_name("a:b=c"), segment_name("_other")
    ('eu-west', 'a%3Ab%3Dc', '%5Fother')
    """
    if value and all(c in _SAFE for c in value) and value[0] != "_":
        return value
    out = []
    for i, c in enumerate(value):
        if (c in _SAFE and not (i == 0 and c == "_")) or (c.isprintable() and ord(c) > 127):
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode())
    return "".join(out)


def split_budget(sensitivity: float, share: float = SEGMENT_SHARE) -> tuple[float, float]:
    """``(aggregate, segments)``: the sensitivities the model's aggregate monitor and
    its segment signals run at, so that their false-alarm rates add up to the model's.

    >>> split_budget(1_000_000)
    (2000000.0, 2000000.0)
    >>> split_budget(1_000_000, share=0.2)
    (1250000.0, 5000000.0)
    """
    check_positive("sensitivity", sensitivity)
    check_in_range("share", share, 0.0, 1.0)
    if not 0.0 < share < 1.0:
        raise SettingsError(f"'share' must be in (0, 1); got {share!r}")
    return float(sensitivity) / (1.0 - share), float(sensitivity) / share


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentReading:
    """One monitored segment value, for scrape-time metrics.

    ``segment`` is ``<key>=<value>`` as in signals; ``accuracy`` is ``None`` before labels.
    """

    segment: str
    events: int
    escalations: int
    labels: int
    accuracy: float | None


class _Bucket:
    """The monitors of one segment value (or of the pool)."""

    __slots__ = ("cal", "drift", "esc", "escalated", "events", "pending", "prefix")

    def __init__(
        self, prefix: str, drift: DriftMonitor, esc: DataQualityDrift, cal: CalibrationMonitor
    ) -> None:
        self.prefix = prefix
        self.drift = drift
        self.esc = esc
        self.cal = cal
        self.events = 0
        self.escalated = 0
        self.pending = 0  # escalations in the current block of esc.step events

    def state(self) -> dict[str, Any]:
        return {
            "drift": self.drift.snapshot(),
            "esc": self.esc.snapshot(),
            "cal": self.cal.snapshot(),
            "events": self.events,
            "escalated": self.escalated,
            "pending": self.pending,
        }

    @classmethod
    def load(cls, prefix: str, state: dict[str, Any]) -> _Bucket:
        b = cls(
            prefix,
            DriftMonitor.restore(state["drift"]),
            DataQualityDrift.restore(state["esc"]),
            CalibrationMonitor.restore(state["cal"]),
        )
        b.events = int(state["events"])
        b.escalated = int(state["escalated"])
        b.pending = int(state["pending"])
        return b


class _Key:
    """One segment key: its value counts and monitored values."""

    __slots__ = ("buckets", "candidates", "counts", "name", "other", "seen")

    def __init__(self, name: str, counts: HeavyHitters, other: _Bucket) -> None:
        self.name = name
        self.counts = counts
        self.buckets: dict[str, _Bucket] = {}  # monitored value -> its bucket
        self.other = other
        self.candidates: list[str] = []  # candidates at the last check (stability)
        self.seen = 0


class SegmentMonitor(Detector):
    """Monitors per frequent segment value, for the segment keys of one model.

    Parameters
    ----------
    keys
        Segment keys (names in the events' ``segment`` object), at most 8.
    top_k
        Values per key with monitors of their own; the rest pool as ``_other``.
    features
        Features whose drift (and data quality) is watched per segment value.
    feature_types
        ``name -> {"type", "min"?, "max"?}`` for those features, as
        :class:`~detectors.drift_monitor.DriftMonitor` takes them (optional).
    sensitivity
        Expected stationary events between false alerts of the whole *model*.
    share
        Share of the model's false-alarm rate that all segment signals use
        (see the module docstring); the aggregate monitor runs on the rest.
    window, step, reference_size, top_categories, bins
        As for :class:`~detectors.drift_monitor.DriftMonitor` (``top_categories`` is
        its ``top_k``); ``window`` is also the events of a key between top-k checks.
    horizon
        Events of a key between halvings of its value counts.
    calibration
        :class:`~detectors.calibration.CalibrationMonitor` settings for each value's
        labels (a dict of its arguments).

    Examples
    --------
    A 1 sigma shift of ``amount`` in the EU only, a fifth of the traffic: the EU
    segment's signal fires.

    >>> import random
    >>> from detectors.prediction import ClassPrediction
    >>> rng = random.Random(7)
    >>> mon = SegmentMonitor(["region"], features=["amount"], window=100)
    >>> fired = []
    >>> for i in range(30_000):
    ...     region = rng.choice(["eu", "us", "us", "apac", "latam"])
    ...     shift = 1.0 if region == "eu" and i >= 20_000 else 0.0
    ...     event = {"amount": rng.gauss(shift, 1)}
    ...     pred = ClassPrediction("ok", rng.uniform(0.5, 1))
    ...     for c in mon.update({"region": region}, event, pred, False):
    ...         fired.append((c.signal, c.state))
    >>> fired[0]
    ('segment:region=eu:feature:amount', 'drift')
    >>> sorted(r.segment for r in mon.readings())
    ['region=_other', 'region=apac', 'region=eu', 'region=latam', 'region=us']
    """

    _settings = (
        "keys",
        "top_k",
        "features",
        "feature_types",
        "sensitivity",
        "share",
        "window",
        "step",
        "reference_size",
        "top_categories",
        "bins",
        "horizon",
        "calibration",
    )

    def __init__(
        self,
        keys: Sequence[str],
        top_k: int = 10,
        features: Sequence[str] = (),
        feature_types: Mapping[str, Mapping[str, Any]] | None = None,
        sensitivity: float = DEFAULT_SENSITIVITY,
        share: float = SEGMENT_SHARE,
        window: int = 250,
        step: int | None = None,
        reference_size: int = 1000,
        top_categories: int = 20,
        bins: int = 20,
        horizon: int = DEFAULT_HORIZON,
        calibration: Mapping[str, Any] | None = None,
    ) -> None:
        self.keys = keys
        self.top_k = top_k
        self.features = features
        self.feature_types = feature_types
        self.sensitivity = sensitivity
        self.share = share
        self.window = window
        self.step = step
        self.reference_size = reference_size
        self.top_categories = top_categories
        self.bins = bins
        self.horizon = horizon
        self.calibration = calibration
        if isinstance(keys, str) or not isinstance(keys, Sequence):
            raise SettingsError(f"'keys' must be a list of strings; got {keys!r}")
        if not 1 <= len(keys) <= 8 or len(set(keys)) != len(keys):
            raise SettingsError(f"'keys' must be 1 to 8 distinct names; got {list(keys)!r}")
        for k in keys:
            if type(k) is not str or not k or any(c in k for c in ":=%") or len(k) > 64:
                raise SettingsError(
                    f"segment key {k!r} must be a string of 1-64 characters without ':', '=', '%'"
                )
        if isinstance(features, str) or not isinstance(features, Sequence):
            raise SettingsError(f"'features' must be a list of names; got {features!r}")
        if any(type(f) is not str or not f for f in features) or len(set(features)) != len(
            features
        ):
            raise SettingsError(f"'features' must be distinct names; got {list(features)!r}")
        check_positive("top_k", top_k, integer=True)
        check_positive("sensitivity", sensitivity)
        if not (isinstance(share, int | float) and 0.0 < share < 1.0):
            raise SettingsError(f"'share' must be a number in (0, 1); got {share!r}")
        for name in ("window", "reference_size", "top_categories", "bins", "horizon"):
            check_positive(name, getattr(self, name), integer=True)
        self._step = (
            default_step(window) if step is None else check_positive("step", step, integer=True)
        )
        cal = dict(calibration or {})
        try:
            CalibrationMonitor(**cal)
        except TypeError as exc:
            raise SettingsError(f"'calibration' has an unknown setting: {exc}") from None
        self._cal = cal
        types = dict(feature_types or {})
        self._types = {f: dict(types[f]) for f in features if f in types}
        # Each value's budget: the key's share, in the value's own events (module docstring).
        self._value_sensitivity = float(sensitivity) * len(keys) / share
        self._signals = 2 * len(features) + 3
        # Validates the drift settings once (window/step, feature types).
        self._drift()
        self._reset()
        self._names = tuple(keys)
        self.key_set = frozenset(keys)
        """The segment keys, as a set (a caller keeping an event's monitored values)."""
        self._pick = operator.itemgetter(*features) if features else None

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {
            "keys": ["region", "tenant"],
            "top_k": 3,
            "features": ["n0", "c"],
            "window": 100,
            "reference_size": 300,
            "calibration": {"window": 200, "min_labelled": 50},
        }
        yield {
            "keys": ["region"],
            "top_k": 2,
            "window": 50,
            "reference_size": 200,
            "calibration": {"window": 100, "min_labelled": 20},
        }

    # -- building ------------------------------------------------------------
    def _drift(self) -> DriftMonitor:
        return DriftMonitor(
            features=self._types or None,
            sensitivity=self._value_sensitivity * self._signals / (self._signals - 1),
            reference_size=self.reference_size,
            max_features=max(1, len(self.features)),
            window=self.window,
            step=self._step,
            top_k=self.top_categories,
            bins=self.bins,
            # Per value: the aggregate's multivariate test and outlier score are not
            # repeated (cost; and its 2 F + 2 signals are what the split above counts).
            multivariate=False,
            outlier_quantile=None,
        )

    def _bucket(self, key: str, value: str | None) -> _Bucket:
        prefix = f"segment:{key}={OTHER_SEGMENT if value is None else segment_name(value)}:"
        esc = DataQualityDrift(
            self._value_sensitivity,
            n_signals=self._signals,
            reference_size=self.reference_size,
            window=self.window,
            step=self._step,
            signal=prefix + "escalation_rate",
        )
        return _Bucket(prefix, self._drift(), esc, CalibrationMonitor(**self._cal))

    def _reset(self) -> None:
        self._n = 0
        self._keys = [
            _Key(k, HeavyHitters(4 * self.top_k, self.horizon), self._bucket(k, None))
            for k in self.keys
        ]

    def _state(self) -> dict[str, Any]:
        return {
            "n": self._n,
            "keys": [
                {
                    "counts": k.counts.snapshot(),
                    "buckets": {v: b.state() for v, b in k.buckets.items()},
                    "other": k.other.state(),
                    "candidates": list(k.candidates),
                    "seen": k.seen,
                }
                for k in self._keys
            ],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        for key, s in zip(self._keys, state["keys"], strict=True):
            key.counts = HeavyHitters.restore(s["counts"])
            key.buckets = {
                v: _Bucket.load(self._bucket(key.name, v).prefix, b)
                for v, b in s["buckets"].items()
            }
            key.other = _Bucket.load(key.other.prefix, s["other"])
            key.candidates = [str(v) for v in s["candidates"]]
            key.seen = int(s["seen"])

    # -- results -------------------------------------------------------------
    @property
    def events_seen(self) -> int:
        return self._n

    @property
    def value_sensitivity(self) -> float:
        """Expected stationary events *of one segment value* between false alerts of
        that value's event signals together."""
        return self._value_sensitivity

    def monitored(self, key: str) -> tuple[str, ...]:
        """The values of ``key`` with monitors of their own (not counting ``_other``)."""
        for k in self._keys:
            if k.name == key:
                return tuple(k.buckets)
        raise KeyError(key)

    def _all_buckets(self) -> Iterator[tuple[_Key, _Bucket]]:
        for k in self._keys:
            for b in k.buckets.values():
                yield k, b
            yield k, k.other

    def readings(self) -> list[SegmentReading]:
        """Counts and accuracy of every monitored value and pool (for metrics)."""
        out = []
        for _, b in self._all_buckets():
            out.append(
                SegmentReading(
                    b.prefix[len("segment:") : -1],
                    b.events,
                    b.escalated,
                    b.cal.count,
                    b.cal.accuracy if b.cal.count else None,
                )
            )
        return out

    def states(self) -> list[SignalState]:
        """Every segment signal's reading (for scrape-time gauges)."""
        out: list[SignalState] = []
        for _, b in self._all_buckets():
            p = b.prefix
            for s in b.drift.states():
                out.append(dataclasses.replace(s, signal=p + s.signal))
            out.extend(b.esc.states())
            if b.cal.count:
                out += [dataclasses.replace(s, signal=p + s.signal) for s in b.cal.states()]
        return out

    @property
    def drift_active(self) -> bool:
        return any(
            b.drift.drift_active or b.esc.drifting or any(s.drifting for s in b.cal.states())
            for _, b in self._all_buckets()
        )

    # -- updates -------------------------------------------------------------
    def update(
        self,
        segment: Mapping[str, str] | None,
        features: Mapping[str, Any],
        prediction: Prediction,
        escalated: bool,
    ) -> list[SignalChange]:
        """One event of the model: its ``segment`` object (or ``None``), features,
        prediction and whether it was escalated. Returns the segment signals that
        entered or left drift."""
        if not isinstance(features, Mapping):
            raise InvalidObservationError(f"'features' must be a mapping; got {features!r}")
        escalated = check_bool("escalated", escalated)
        prediction = check_prediction(prediction)
        return self._update(self.values(segment), features, prediction, escalated)

    def _update(
        self,
        values: list[str | None],
        features: Mapping[str, Any],
        prediction: Prediction,
        escalated: bool,
    ) -> list[SignalChange]:
        """``update`` with inputs checked (``values`` from :meth:`values`)."""
        watched = self._watched(features)
        changes: list[SignalChange] = []
        step, window = self._step, self.window
        for key, value in zip(self._keys, values, strict=True):
            if value is None:
                continue
            b = key.buckets.get(value) or key.other
            more = b.drift.update(watched, prediction)
            if more:
                changes += [dataclasses.replace(c, signal=b.prefix + c.signal) for c in more]
            b.events += 1
            if escalated:
                b.escalated += 1
                b.pending += 1
            if not b.events % step:
                more = b.esc.update_block(step, b.pending, 0)
                b.pending = 0
                changes += [_escalation_change(c) for c in more]
            key.counts._add(value)
            key.seen += 1
            if not key.seen % window:
                self._check(key)
        self._n += 1
        return changes

    def update_many(
        self,
        values: Sequence[list[str | None]],
        features: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction],
        escalated: Sequence[bool],
    ) -> list[list[SignalChange]]:
        """Events in order, their inputs checked as for ``_update`` (``values`` from
        :meth:`values`): the same state and the same changes as ``_update`` of each in
        turn (tested), as one list of changes per event.

        Faster: a value's drift work for the batch goes to its
        :meth:`DriftMonitor.update_many <detectors.drift_monitor.DriftMonitor.update_many>`
        at once (up to each key's next check of its frequent values, which may change
        which value has monitors).
        """
        n = len(features)
        if not len(values) == len(predictions) == len(escalated) == n:
            raise InvalidObservationError(
                "update_many needs one value list, prediction and escalation flag per event"
            )
        watched = self._watched_many(features)
        out: list[list[SignalChange]] = [[] for _ in range(n)]
        step, window = self._step, self.window
        for k, key in enumerate(self._keys):
            # Per event of this key: its value's drift changes, then its escalation one.
            drift: dict[int, list[SignalChange]] = {}
            esc: dict[int, list[SignalChange]] = {}
            pending: dict[int, tuple[_Bucket, list[int]]] = {}
            for i in range(n):
                value = values[i][k]
                if value is None:
                    continue
                b = key.buckets.get(value) or key.other
                queued = pending.get(id(b))
                if queued is None:
                    pending[id(b)] = (b, [i])
                else:
                    queued[1].append(i)
                b.events += 1
                if escalated[i]:
                    b.escalated += 1
                    b.pending += 1
                if not b.events % step:
                    more = b.esc.update_block(step, b.pending, 0)
                    b.pending = 0
                    if more:
                        esc[i] = [_escalation_change(c) for c in more]
                key.counts._add(value)
                key.seen += 1
                if not key.seen % window:  # the check may change the buckets: drift first
                    self._drift_many(pending, watched, predictions, drift)
                    pending = {}
                    self._check(key)
            self._drift_many(pending, watched, predictions, drift)
            for i in sorted(drift.keys() | esc.keys()):
                out[i] += drift.get(i, []) + esc.get(i, [])
        self._n += n
        return out

    @staticmethod
    def _drift_many(
        pending: dict[int, tuple[_Bucket, list[int]]],
        watched: list[dict[str, Any]],
        predictions: Sequence[Prediction],
        changes: dict[int, list[SignalChange]],
    ) -> None:
        """Each bucket's queued events (positions) through its drift monitor at once."""
        for b, positions in pending.values():
            found = b.drift.update_many(
                [watched[i] for i in positions], [predictions[i] for i in positions]
            )
            for j, more in found:
                changes[positions[j]] = [
                    dataclasses.replace(c, signal=b.prefix + c.signal) for c in more
                ]

    def _watched_many(self, features: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`_watched` of each event; in C when every event has every watched
        feature and every value is of a plain type (the usual case)."""
        names = self.features
        pick = self._pick
        if pick is None:
            return [{} for _ in features]
        try:
            rows = list(map(pick, features))
        except (KeyError, TypeError):  # a feature missing somewhere: per event below
            rows = None
        if rows is not None and len(names) == 1 and set(map(type, rows)) <= _PLAIN:
            return [{names[0]: v} for v in rows]
        if (
            rows is not None
            and len(names) > 1
            and set(map(type, chain.from_iterable(rows))) <= _PLAIN
        ):
            return [dict(zip(names, r, strict=True)) for r in rows]
        return [self._watched(f) for f in features]

    def _watched(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """The event's values of the watched features (those it has), numpy scalars as
        the numbers or bools they are: no numpy value sits in a segment's buffered state
        (snapshots stay plain)."""
        watched = {}
        get = features.get
        for f in self.features:
            v = get(f, _ABSENT)
            if v is _ABSENT:
                continue
            watched[f] = v if type(v) in _PLAIN else _plain(v)
        return watched

    def values(self, segment: Mapping[str, str] | None) -> list[str | None]:
        """Each key's value in ``segment`` (``None`` where absent); raises
        :class:`~detectors.errors.InvalidObservationError` for a value that is not a
        string or a ``segment`` that is not a mapping."""
        if segment is not None and not isinstance(segment, Mapping):
            raise InvalidObservationError(f"'segment' must be a mapping; got {segment!r}")
        if not segment:
            return [None] * len(self._names)
        out = list(map(segment.get, self._names))
        if set(map(type, out)) <= _VALUE_TYPES:
            return out
        for name, v in zip(self._names, out, strict=True):
            if v is not None and type(v) is not str:
                raise InvalidObservationError(f"segment {name!r} must be a string; got {v!r}")
        return out

    def _check(self, key: _Key) -> None:
        """Every ``window`` events of a key: promote stable frequent values."""
        total = key.counts.total
        floor = total / (2 * self.top_k)
        now = [v for v, low in key.counts.top(2 * self.top_k) if low >= floor]
        stable = [v for v in now if v in key.candidates and v not in key.buckets]
        key.candidates = now
        changed = False
        for v in stable:
            if len(key.buckets) < self.top_k:
                key.buckets[v] = self._bucket(key.name, v)
                changed = True
                continue
            low = key.counts.bounds(v)[0]
            weakest = min(key.buckets, key=lambda m: key.counts.bounds(m)[1])
            if low >= 2 * key.counts.bounds(weakest)[1]:
                del key.buckets[weakest]
                key.buckets[v] = self._bucket(key.name, v)
                changed = True
        if changed:  # _other's mix changed: relearn its reference
            key.other = self._bucket(key.name, None)

    def observe_label(
        self, segment: Mapping[str, str] | None, confidence: float, correct: bool, weight: float
    ) -> list[SignalChange]:
        """A labelled classification of an event with this ``segment``: each key's
        value (monitored now, else ``_other``) learns calibration and accuracy."""
        correct = check_bool("correct", correct)
        confidence = check_probability("confidence", confidence)
        weight = check_weight("weight", weight)
        values = self.values(segment)
        changes: list[SignalChange] = []
        for key, value in zip(self._keys, values, strict=True):
            if value is None:
                continue
            b = key.buckets.get(value, key.other)
            more = b.cal.update(confidence, correct, weight)
            changes += [dataclasses.replace(c, signal=b.prefix + c.signal) for c in more]
        return changes


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python bool, int or float it holds; anything else as is."""
    b = as_bool(v)
    if b is not None:
        return b
    try:
        return operator.index(v)  # numpy integers
    except TypeError:
        pass
    r = as_real(v)
    return v if r is None else r


def _escalation_change(c: SignalChange) -> SignalChange:
    """The rate test's edge, said in escalation terms (the escalated share rides in
    the test's first count)."""
    ref = c.reference or {}
    cur = c.current or {}
    return dataclasses.replace(
        c,
        detector="escalation_rate",
        reference={"escalation_rate": ref.get("missing")},
        current={"escalation_rate": cur.get("missing")},
    )
