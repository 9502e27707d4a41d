"""Join labels to the predictions they judge, with bounded state (SPEC §3).

A label arrives minutes or days after its prediction. :class:`LabelJoin` keeps
the pending predictions of the models a worker owns, keyed by
``(model_id, event_id)``, and forgets them after ``horizon`` seconds or, when
more than ``max_pending`` are waiting, oldest first. A label finds its
prediction (``joined``), finds nothing (``unmatched``: too late, or never
predicted) or is a second label for an event already joined (``duplicate``:
the join remembers recently joined ids, bounded the same way).

Pure logic: no Kafka or Faust here. Time is event time: ``ts`` of predictions
and ``now`` of labels advance a watermark, and "older than the horizon" means
older than the watermark minus ``horizon``, so a replay gives the same result
as the live run.

A worker keeps one join per model, so the rows of the first model a join sees (its
own) are keyed by the event id alone, and only another model's by the pair: a
pending prediction is held until its label comes or the cap evicts it, ~100,000 of
them across ten models at the defaults, and a key tuple each was 64 bytes more
per row to allocate and free cold (issue 18). For the same reason the pending
predictions are held as columns (:class:`~streams.processing.pending_rows.PendingRows`),
not a tuple and a float or two per row.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from detectors.errors import SnapshotError
from streams.errors import ConfigError, InvalidEventError
from streams.processing.pending_rows import PendingRow, PendingRows
from streams.processing.sealed_rows import SealedRows

__all__ = ["JoinOutcome", "JoinResult", "LabelJoin"]

JoinOutcome = Literal["joined", "unmatched", "duplicate"]
_SNAPSHOT_VERSION = 6

Key = tuple[str, str]
#: A row's key: the event id for the join's own model, else (model id, event id).
RowKey = str | Key
#: A pending prediction: (prediction, ts, escalated by rule, inclusion probability or None)
Pending = PendingRow


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What became of one label.

    ``prediction``, ``escalated``, ``inclusion_probability`` and
    ``prediction_ts`` are those stored with the prediction (``None`` when
    unmatched, and all but ``prediction`` also when a label carried its own
    prediction that was not pending). ``inclusion_probability`` is ``None``
    for a prediction that was not sent for review. ``delay_seconds`` is the
    label's ``now`` minus the prediction's ``ts`` (for
    ``vigil_label_delay_seconds``).
    """

    outcome: JoinOutcome
    prediction: Any = None
    escalated: bool | None = None
    prediction_ts: datetime | None = None
    delay_seconds: float | None = None
    inclusion_probability: float | None = None


def _epoch(name: str, value: object) -> float:
    if type(value) is datetime and value.tzinfo is UTC:  # what the decoder gives
        return value.timestamp()
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidEventError(
            "bad_value", f"{name!r} must be a timezone-aware datetime; got {value!r}"
        )
    return value.timestamp()


def _bad_ids(model_id: object, event_id: object) -> InvalidEventError:
    return InvalidEventError(
        "bad_value", f"model_id and event_id must be strings; got {model_id!r}, {event_id!r}"
    )


class LabelJoin:
    """Pending predictions waiting for their labels, bounded in time and count.

    Parameters
    ----------
    horizon
        Seconds a prediction waits for its label, and a joined id is
        remembered to catch duplicates.
    max_pending
        Most predictions kept; beyond it the oldest is forgotten.
    max_joined
        Most joined ids remembered for duplicate detection (default
        ``max_pending``).

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
    >>> join = LabelJoin(horizon=3600, max_pending=1000)
    >>> join.add_prediction("fraud", "e1", {"label": "ok"}, t0, escalated=True, inclusion=1.0)
    True
    >>> r = join.match("fraud", "e1", t0 + timedelta(minutes=5))
    >>> r.outcome, r.prediction, r.escalated, r.inclusion_probability, r.delay_seconds
    ('joined', {'label': 'ok'}, True, 1.0, 300.0)
    >>> join.match("fraud", "e1", t0 + timedelta(minutes=6)).outcome
    'duplicate'
    >>> join.match("fraud", "e2", t0 + timedelta(minutes=6)).outcome
    'unmatched'
    >>> _ = join.add_prediction("fraud", "e3", {"label": "ok"}, t0 + timedelta(minutes=6))
    >>> join.match("fraud", "e3", t0 + timedelta(hours=2)).outcome  # past the horizon
    'unmatched'
    """

    def __init__(
        self, horizon: float = 86_400.0, max_pending: int = 100_000, max_joined: int | None = None
    ) -> None:
        if (
            isinstance(horizon, bool)
            or not isinstance(horizon, int | float)
            or not math.isfinite(horizon)
            or horizon <= 0
        ):
            raise ConfigError(f"'horizon' must be a positive number of seconds; got {horizon!r}")
        for name, value in (("max_pending", max_pending), ("max_joined", max_joined)):
            if value is None and name == "max_joined":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name!r} must be a positive integer; got {value!r}")
        self.horizon = horizon
        self.max_pending = max_pending
        self.max_joined = max_joined
        self._reset()

    def _reset(self) -> None:
        # Insertion order approximates age; eviction pops from the front. Both pickled
        # once per chunk of added rows, for checkpoints (see SealedRows).
        self._pending = PendingRows()
        self._joined: OrderedDict[RowKey, float] = OrderedDict()
        self._model: str | None = None  # its own model: the first one it is asked about
        self._sealed_joined = SealedRows(self._joined)
        self._watermark = -math.inf
        self._counts = {"joined": 0, "unmatched": 0, "duplicate": 0, "expired": 0}
        # Apart from the others: once max_pending is reached, every prediction added
        # drops one (an attribute's add is cheaper per event than a dict item's).
        self._overflow = 0

    def _key(self, model_id: object, event_id: object) -> RowKey:
        """The row key of ``(model_id, event_id)`` (the first model asked about is the
        join's own)."""
        own = self._model
        if model_id is own and own is not None and type(event_id) is str:
            return event_id  # the decoder hands on one string per model id
        if not isinstance(model_id, str) or not isinstance(event_id, str):
            raise _bad_ids(model_id, event_id)
        if own is None:
            self._model = own = model_id
        return event_id if model_id == own else (model_id, event_id)

    def _pair(self, key: RowKey) -> Key:
        if isinstance(key, str):
            return (cast(str, self._model), key)
        return key

    def pending_items(self) -> list[tuple[Key, Pending]]:
        """The pending predictions, oldest first: ((model id, event id), (prediction,
        ts, escalated by rule, inclusion probability or None))."""
        pair = self._pair
        return [(pair(k), row) for k, row in self._pending.items()]

    def joined_items(self) -> list[tuple[Key, float]]:
        """The joined ids remembered for duplicates, oldest first: ((model id, event
        id), joined at)."""
        pair = self._pair
        return [(pair(k), at) for k, at in self._joined.items()]

    @property
    def _joined_cap(self) -> int:
        return self.max_pending if self.max_joined is None else self.max_joined

    def _advance(self, t: float) -> None:
        if t <= self._watermark:
            return  # nothing can expire before the watermark moves
        self._watermark = t
        oldest = self._watermark - self.horizon
        expired = self._pending.expire(oldest)
        if expired:
            self._counts["expired"] += expired
        while self._joined and next(iter(self._joined.values())) < oldest:
            self._sealed_joined.pop_oldest()

    def add_prediction(
        self,
        model_id: str,
        event_id: str,
        prediction: Any,
        ts: datetime,
        escalated: bool = False,
        inclusion: float | None = None,
    ) -> bool:
        """Keep a prediction until its label arrives; ``False`` if it is already
        pending or already joined (a replayed event), or older than the horizon.

        ``escalated``: a rule sent it to review; ``inclusion``: the probability
        with which it was sent to review (rule or audit), ``None`` if it was not.
        """
        t = _epoch("ts", ts)
        if not isinstance(escalated, bool):
            raise InvalidEventError("bad_value", f"'escalated' must be a bool; got {escalated!r}")
        if inclusion is not None and (type(inclusion) is not float or not 0.0 < inclusion <= 1.0):
            raise InvalidEventError(
                "bad_value", f"'inclusion' must be a float in (0, 1] or None; got {inclusion!r}"
            )
        if not isinstance(model_id, str) or not isinstance(event_id, str):
            raise _bad_ids(model_id, event_id)
        return self.add_checked(model_id, event_id, prediction, t, escalated, inclusion)

    def add_checked(
        self,
        model_id: str,
        event_id: str,
        prediction: Any,
        t: float,
        escalated: bool,
        inclusion: float | None,
    ) -> bool:
        """:meth:`add_prediction` of arguments already checked, not checked again: the
        ids strings, ``t`` the prediction's time in epoch seconds (``ts.timestamp()``),
        ``escalated`` a bool, ``inclusion`` a float in (0, 1] or None. The processor
        calls it once per event with what the decoder checked and what it built."""
        own = self._model  # _key's and _advance's common cases inlined (per event)
        if model_id is own and own is not None:
            key: RowKey = event_id
        else:
            key = self._key(model_id, event_id)
        if t > self._watermark:  # else nothing can expire
            self._advance(t)
        if key in self._pending.index or key in self._joined:
            return False
        if t < self._watermark - self.horizon:
            self._counts["expired"] += 1
            return False
        self._overflow += self._pending.add(
            key, prediction, t, escalated, inclusion, self.max_pending
        )
        return True

    def match(
        self, model_id: str, event_id: str, now: datetime, prediction: Any = None
    ) -> JoinResult:
        """Join one label arriving at ``now``.

        A label that carries its own ``prediction`` needs no pending one: it is
        ``joined`` unless the event was joined before (``duplicate``); a pending
        prediction of the same event is consumed, and its ``escalated`` flag
        and timestamp are returned.
        """
        t = _epoch("now", now)
        key = self._key(model_id, event_id)
        self._advance(t)
        if key in self._joined:
            self._counts["duplicate"] += 1
            return JoinResult("duplicate")
        stored = self._pending.pop(key)
        if stored is None and prediction is None:
            self._counts["unmatched"] += 1
            return JoinResult("unmatched")
        self._joined[key] = t
        self._sealed_joined.added(key, t)
        while len(self._joined) > self._joined_cap:
            self._sealed_joined.pop_oldest()
        self._counts["joined"] += 1
        if stored is None:
            return JoinResult("joined", prediction)
        pred, ts, escalated, inclusion = stored
        return JoinResult(
            "joined",
            pred if prediction is None else prediction,
            escalated,
            datetime.fromtimestamp(ts, UTC),
            t - ts,
            inclusion,
        )

    @property
    def pending(self) -> int:
        """Predictions waiting for a label."""
        return len(self._pending)

    @property
    def counts(self) -> dict[str, int]:
        """Labels ``joined``/``unmatched``/``duplicate`` and predictions ``expired``
        (past the horizon) or dropped for ``overflow`` (over ``max_pending``)."""
        return {**self._counts, "overflow": self._overflow}

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable state; predictions are stored as given.

        Pending and joined entries as :class:`~streams.processing.sealed_rows.SealedRows`
        snapshots (:class:`~streams.processing.pending_rows.PendingRows` writes the
        same): chunks of entries pickled once when full, not every entry again each
        checkpoint (a checkpoint holds up to ``max_pending`` of them per model and is
        taken on the ingest thread between batches), keyed as the join keys them: by
        event id for its own ``model`` (version 6), by (model id, event id) for any other
        (every row before version 6).
        """
        return {
            "class": "LabelJoin",
            "version": _SNAPSHOT_VERSION,
            "settings": {
                "horizon": self.horizon,
                "max_pending": self.max_pending,
                "max_joined": self.max_joined,
            },
            "state": {
                "model": self._model,
                "pending": self._pending.snapshot(),
                "joined": self._sealed_joined.snapshot(),
                "watermark": self._watermark,
                "counts": self.counts,
            },
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> LabelJoin:
        """Rebuild a join from :meth:`snapshot`; it continues as if never stopped."""
        if (
            not isinstance(snapshot, dict)
            or snapshot.get("class") != "LabelJoin"
            or snapshot.get("version") not in (2, 3, 4, 5, _SNAPSHOT_VERSION)
        ):
            raise SnapshotError(f"not a LabelJoin snapshot of version {_SNAPSHOT_VERSION}")
        join = cls(**snapshot["settings"])
        state = snapshot["state"]
        # Before version 6 every key was a pair: the first one's model is the join's own.
        model = state.get("model")
        join._model = None if model is None else str(model)
        if snapshot["version"] >= 5:
            join._pending = PendingRows.restore(state["pending"], join._pending_row)
            join._joined, join._sealed_joined = SealedRows.restore(
                state["joined"], join._joined_row
            )
        else:
            join._restore_rows(snapshot["version"], state["pending"], state["joined"])
        join._watermark = float(state["watermark"])
        counts = {k: int(v) for k, v in state["counts"].items()}
        join._overflow = counts.pop("overflow", 0)
        join._counts = counts
        return join

    def _restore_rows(self, version: int, pending: Any, joined: Any) -> None:
        """The entries of a version 2-4 snapshot: version 4 as columns, before an item
        per entry."""
        if version == 4:
            pending = zip(
                zip(pending["model_id"], pending["event_id"], strict=True),
                zip(
                    pending["prediction"],
                    pending["ts"],
                    pending["escalated"],
                    pending["inclusion"],
                    strict=True,
                ),
                strict=True,
            )
            joined = zip(
                zip(joined["model_id"], joined["event_id"], strict=True), joined["at"], strict=True
            )
        # A key twice: the later row, where the first one was (as a dict reads them).
        rows: dict[RowKey, Pending] = {}
        for k, item in pending:
            key, value = self._pending_row(k, item)
            rows[key] = value
        self._pending = PendingRows.of(rows.items())
        for k, t in joined:
            key, at = self._joined_row(k, t)
            self._joined[key] = at
        self._sealed_joined = SealedRows.sealing(self._joined)

    def _restored_key(self, key: Any) -> RowKey:
        """A key as a snapshot holds it (an event id of the join's own model, or a pair:
        every key before version 6) as this join keys its rows."""
        if isinstance(key, str):
            if self._model is None:
                raise SnapshotError("a LabelJoin snapshot keys rows by event id but names no model")
            return key
        m, e = key
        return self._key(str(m), str(e))

    def _pending_row(self, key: Any, item: Any) -> tuple[RowKey, Pending]:
        p, ts, esc = item[:3]
        # Version 2 kept no inclusion probability: everything escalated was by rule.
        inc = item[3] if len(item) > 3 else (1.0 if esc else None)
        value = (p, float(ts), bool(esc), None if inc is None else float(inc))
        return self._restored_key(key), value

    def _joined_row(self, key: Any, t: Any) -> tuple[RowKey, float]:
        return self._restored_key(key), float(t)
