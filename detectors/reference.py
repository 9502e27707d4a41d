"""Reference profiles: what a model's inputs and outputs looked like when it was healthy.

A :class:`ReferenceProfile` summarises historical events per feature - quantile
bin edges and bin counts for numeric features, top-K counts for categorical ones,
missing / wrong-type / out-of-range counts - plus the model's confidence and
predicted labels. Drift detectors compare live windows against it. It is plain
data: ``to_dict()`` gives a versioned JSON-able dict (``"vigil.reference/1"``).

:class:`ReferenceBuilder` makes one from a stream of events in bounded memory:
exact counters per feature (at most ``max_features``) and a reservoir sample of
``sample_size`` events for the distributions.

The per-feature entries are built by :func:`numeric_reference` and
:func:`categorical_reference`; detectors that learn their own reference from the
first values of a stream call the same functions.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import check_positive
from detectors.errors import SnapshotError
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
from detectors.reconstruction import fit_reconstruction, rows_of

__all__ = [
    "FORMAT",
    "OTHER",
    "ReferenceBuilder",
    "ReferenceProfile",
    "categorical_reference",
    "numeric_reference",
]

FORMAT = "vigil.reference/1"
OTHER = "__other__"
"""Vocabulary bucket for every category outside the reference's top-K."""


def numeric_reference(
    values: Sequence[float] | np.ndarray,
    bins: int = 20,
    *,
    events: int | None = None,
    missing: int = 0,
    invalid: int = 0,
    out_of_range: int = 0,
    minimum: float | None = None,
    maximum: float | None = None,
) -> dict[str, Any]:
    """Reference entry of a numeric feature: ``bins`` quantile bins of ``values``.

    Bin ``i`` holds ``edges[i-1] <= x < edges[i]``; equal quantiles (discrete
    features) collapse, so ``counts`` are measured, not assumed equal.

    >>> ref = numeric_reference([1.0, 2.0, 2.0, 3.0, 4.0, 5.0], bins=3)
    >>> ref["edges"], ref["counts"], ref["min"], ref["max"]
    ([2.0, 3.333333333333333], [1, 3, 2], 1.0, 5.0)
    """
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        edges: list[float] = []
        counts = [0]
    else:
        qs = np.quantile(arr, np.arange(1, bins) / bins)
        edges = [float(e) for e in np.unique(qs)]
        idx = np.searchsorted(np.asarray(edges), arr, side="right")
        counts = [int(c) for c in np.bincount(idx, minlength=len(edges) + 1)]
    lo = float(arr.min()) if minimum is None and arr.size else minimum
    hi = float(arr.max()) if maximum is None and arr.size else maximum
    return {
        "type": "numeric",
        "n": int(arr.size),
        "events": int(arr.size + missing + invalid) if events is None else int(events),
        "missing": int(missing),
        "invalid": int(invalid),
        "out_of_range": int(out_of_range),
        "edges": edges,
        "counts": counts,
        "min": lo,
        "max": hi,
    }


def categorical_reference(
    counts: Mapping[str, int],
    top_k: int = 20,
    *,
    max_known: int = 1000,
    events: int | None = None,
    missing: int = 0,
    invalid: int = 0,
) -> dict[str, Any]:
    """Reference entry of a categorical feature from category counts.

    ``top`` keeps the ``top_k`` most frequent categories (ties broken by name, so
    the result is deterministic); the rest are counted in ``other``. ``known``
    lists up to ``max_known`` categories: a live value outside it is *unseen*.
    ``unseen`` is the reference's own count of unseen-like values: the Good-Turing
    estimate (categories seen once) plus values whose category did not fit in
    ``known``, so ``unseen / n`` estimates how often a healthy stream shows a new
    category.

    >>> ref = categorical_reference({"a": 5, "b": 3, "c": 1, "d": 1}, top_k=2)
    >>> ref["top"], ref["other"], ref["unseen"], ref["known"]
    ({'a': 5, 'b': 3}, 2, 2, ['a', 'b', 'c', 'd'])
    """
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    n = sum(c for _, c in ranked)
    top = dict(ranked[:top_k])
    known = ranked[:max_known]
    singletons = sum(1 for _, c in known if c == 1)
    beyond = sum(c for _, c in ranked[max_known:])
    return {
        "type": "categorical",
        "n": int(n),
        "events": int(n + missing + invalid) if events is None else int(events),
        "missing": int(missing),
        "invalid": int(invalid),
        "top": {k: int(v) for k, v in top.items()},
        "other": int(n - sum(top.values())),
        "unseen": int(singletons + beyond),
        "known": sorted(k for k, _ in known),
    }


def _kind_of(value: object) -> str | None:
    if isinstance(value, bool | str):
        return "categorical"
    if isinstance(value, int | float):
        return "numeric"
    return None


@dataclass(frozen=True)
class ReferenceProfile:
    """A model's reference: per-feature summaries plus confidence and label frequencies.

    ``features`` maps a feature name to a :func:`numeric_reference` or
    :func:`categorical_reference` entry; ``confidence`` is a numeric entry (absent
    for regression); ``prediction`` is a categorical entry of predicted labels, or
    a numeric entry of predicted values for regression; ``multivariate`` is the
    :func:`~detectors.reconstruction.fit_reconstruction` fit of the numeric features
    (for the ``multivariate`` signal and outlier scores), ``None`` with fewer than 2
    numeric features, and in profiles written before it existed (optional in the
    same format: a model whose profile lacks it learns it from its first events).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(3)
    >>> builder = ReferenceBuilder("churn", "v2", bins=4, top_k=2)
    >>> for _ in range(1000):
    ...     builder.add({"age": rng.gauss(40, 10), "plan": rng.choice("aab")},
    ...                 ClassPrediction(rng.choice(["stay", "go"]), rng.random()))
    >>> profile = builder.build(created_at=datetime(2024, 5, 1, tzinfo=UTC))
    >>> d = profile.to_dict()
    >>> d["format"], d["events"], d["created_at"]
    ('vigil.reference/1', 1000, '2024-05-01T00:00:00+00:00')
    >>> [round(e, 1) for e in d["features"]["age"]["edges"]], d["features"]["plan"]["top"]
    ([34.1, 40.1, 46.6], {'a': 708, 'b': 292})
    >>> ReferenceProfile.from_dict(d) == profile
    True
    """

    model_id: str
    model_version: str
    created_at: datetime
    events: int
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    confidence: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    multivariate: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The versioned, JSON-able form (``{"format": "vigil.reference/1", ...}``)."""
        out = {
            "format": FORMAT,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "events": self.events,
            "features": {k: dict(v) for k, v in self.features.items()},
            "confidence": self.confidence,
            "prediction": self.prediction,
        }
        if self.multivariate is not None:
            out["multivariate"] = self.multivariate
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Inverse of :meth:`to_dict`; raises :class:`SnapshotError` on another format."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise SnapshotError(f"reference format must be {FORMAT!r}; got {got!r}")
        try:
            created = datetime.fromisoformat(data["created_at"])
            if created.tzinfo is None:
                raise SnapshotError(f"'created_at' must carry a UTC offset; got {created!r}")
            features = data["features"]
            for name, entry in features.items():
                if entry.get("type") not in ("numeric", "categorical"):
                    raise SnapshotError(
                        f"feature {name!r} type must be 'numeric' or 'categorical'; "
                        f"got {entry.get('type')!r}"
                    )
            return cls(
                model_id=str(data["model_id"]),
                model_version=str(data["model_version"]),
                created_at=created.astimezone(UTC),
                events=int(data["events"]),
                features={str(k): dict(v) for k, v in features.items()},
                confidence=data.get("confidence"),
                prediction=data.get("prediction"),
                multivariate=_multivariate(data.get("multivariate")),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, SnapshotError):
                raise
            raise SnapshotError(f"malformed reference profile: {exc!r}") from exc

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


class ReferenceBuilder:
    """Build a :class:`ReferenceProfile` from a stream of events in bounded memory.

    Counters are exact per feature (events, missing, wrong type, min/max, and
    values outside configured ``min``/``max``) for at most ``max_features`` features
    (first seen first); distributions come from a uniform reservoir sample of
    ``sample_size`` events (Vitter's Algorithm R, seeded), so memory does not grow
    with the number of events.

    Parameters
    ----------
    model_id, model_version
        Copied into the profile.
    features
        Optional ``name -> {"type": "numeric"|"categorical", "min"?, "max"?}``;
        other features are typed by their first value.
    sample_size
        Reservoir size (events).
    bins, top_k
        Numeric quantile bins; categorical top-K.
    max_features
        Features beyond this many (first-seen order) are ignored.
    seed
        Seeds the reservoir.

    Examples
    --------
    See :class:`ReferenceProfile`.
    """

    def __init__(
        self,
        model_id: str,
        model_version: str = "unknown",
        *,
        features: Mapping[str, Mapping[str, Any]] | None = None,
        sample_size: int = 20_000,
        bins: int = 20,
        top_k: int = 20,
        max_features: int = 64,
        max_known: int = 1000,
        seed: int = 0,
    ) -> None:
        check_positive("sample_size", sample_size, integer=True)
        check_positive("bins", bins, integer=True)
        check_positive("top_k", top_k, integer=True)
        check_positive("max_features", max_features, integer=True)
        self.model_id = model_id
        self.model_version = model_version
        self.features = {k: dict(v) for k, v in (features or {}).items()}
        self.sample_size = sample_size
        self.bins = bins
        self.top_k = top_k
        self.max_features = max_features
        self.max_known = max_known
        self._rng = random.Random(seed)  # noqa: S311 - seeded reservoir sampling, not a secret
        self._events = 0
        self._kinds: dict[str, str] = {
            k: v["type"] for k, v in self.features.items() if "type" in v
        }
        for name in list(self._kinds)[max_features:]:
            del self._kinds[name]
        # name -> [present, invalid, out_of_range, min, max]
        self._counts: dict[str, list[Any]] = {
            k: [0, 0, 0, math.inf, -math.inf] for k in self._kinds
        }
        self._sample: list[tuple[dict[str, Any], Prediction]] = []

    @property
    def events(self) -> int:
        return self._events

    def add(self, features: Mapping[str, Any], prediction: Prediction) -> None:
        """Count one historical event."""
        self._events += 1
        row: dict[str, Any] = {}
        for name, value in features.items():
            kind = self._kinds.get(name)
            if kind is None:
                if len(self._kinds) >= self.max_features or not isinstance(name, str):
                    continue
                kind = _kind_of(value)
                if kind is None:  # None or an unusable value: type it later
                    continue
                self._kinds[name] = kind
                self._counts[name] = [0, 0, 0, math.inf, -math.inf]
            if value is None:
                continue
            c = self._counts[name]
            c[0] += 1
            if not _fits(kind, value):
                c[1] += 1
                continue
            if kind == "numeric":
                v = float(value)
                c[3] = min(c[3], v)
                c[4] = max(c[4], v)
                cfg = self.features.get(name, {})
                if ("min" in cfg and v < cfg["min"]) or ("max" in cfg and v > cfg["max"]):
                    c[2] += 1
            row[name] = value
        if len(self._sample) < self.sample_size:
            self._sample.append((row, prediction))
        else:
            j = self._rng.randrange(self._events)
            if j < self.sample_size:
                self._sample[j] = (row, prediction)

    def build(self, created_at: datetime | None = None) -> ReferenceProfile:
        """The profile of everything added so far (``created_at`` defaults to now, UTC)."""
        features: dict[str, dict[str, Any]] = {}
        for name, kind in self._kinds.items():
            present, invalid, oor, lo, hi = self._counts[name]
            missing = self._events - present
            cfg = self.features.get(name, {})
            if kind == "numeric":
                vals = [row[name] for row, _ in self._sample if name in row]
                features[name] = numeric_reference(
                    vals,
                    self.bins,
                    events=self._events,
                    missing=missing,
                    invalid=invalid,
                    out_of_range=oor,
                    minimum=cfg.get("min", lo if math.isfinite(lo) else None),
                    maximum=cfg.get("max", hi if math.isfinite(hi) else None),
                )
            else:
                counts = Counter(_category(row[name]) for row, _ in self._sample if name in row)
                features[name] = categorical_reference(
                    counts,
                    self.top_k,
                    max_known=self.max_known,
                    events=self._events,
                    missing=missing,
                    invalid=invalid,
                )
        confidence = prediction = None
        preds = [p for _, p in self._sample]
        if preds and isinstance(preds[0], ClassPrediction):
            class_preds = [p for p in preds if isinstance(p, ClassPrediction)]
            confidence = numeric_reference([p.confidence for p in class_preds], self.bins)
            prediction = categorical_reference(
                Counter(p.label for p in class_preds), self.top_k, max_known=self.max_known
            )
        elif preds:
            prediction = numeric_reference(
                [p.value for p in preds if isinstance(p, RegressionPrediction)], self.bins
            )
        return ReferenceProfile(
            model_id=self.model_id,
            model_version=self.model_version,
            created_at=(created_at or datetime.now(UTC)).astimezone(UTC),
            events=self._events,
            features=features,
            confidence=confidence,
            prediction=prediction,
            multivariate=self._multivariate(features),
        )

    def _multivariate(self, features: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
        """The reconstruction fit over the sample's numeric features (rows in sample
        order), or ``None`` with fewer than 2 of them or too few rows."""
        names = [n for n, e in features.items() if e["type"] == "numeric"]
        if len(names) < 2:
            return None
        try:
            return fit_reconstruction(rows_of([row for row, _ in self._sample], names), names)
        except ValueError:
            return None

    @classmethod
    def from_events(
        cls,
        events: Iterable[tuple[Mapping[str, Any], Prediction]],
        model_id: str,
        model_version: str = "unknown",
        **kwargs: Any,
    ) -> ReferenceProfile:
        """Build a profile from ``(features, prediction)`` pairs in one call."""
        builder = cls(model_id, model_version, **kwargs)
        for features, prediction in events:
            builder.add(features, prediction)
        return builder.build()


def _multivariate(entry: object) -> dict[str, Any] | None:
    """A profile's ``multivariate`` entry: a reconstruction fit or ``None``."""
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or entry.get("type") != "reconstruction":
        raise SnapshotError("'multivariate' must be a reconstruction fit or null")
    return dict(entry)


def _fits(kind: str, value: object) -> bool:
    """Whether ``value`` is usable for a feature of ``kind``.

    Numeric features take finite int/float (not bool); categorical features take
    str, bool and int (integer codes are common categories).
    """
    if kind == "numeric":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    return isinstance(value, str | int)  # bool is an int


def _category(value: object) -> str:
    """The category string of a categorical value (JSON spelling for booleans)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
