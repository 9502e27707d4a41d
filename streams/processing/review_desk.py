"""One model's review state: escalations waiting for labels, labels waiting for adjudication.

A worker learns from a reviewed event once, from its *final* label (SPEC §3, §12).
:class:`ReviewDesk` holds what that needs between the labels of one event:

* the escalations it sent (the record's bytes, as published, kept compressed in chunks:
  :mod:`streams.processing.record_chunks`), so the reviewed record of an adjudicated
  event carries the event, its reasons and policy without a lookup;
* the context of each open event: the prediction the label join found, whether a rule
  escalated it, its inclusion probability, when it was escalated;
* the :class:`~detectors.adjudication.Adjudicator` that keeps the labels of open
  events, the :class:`~detectors.reviewer_reliability.ReviewerReliability` whose
  estimates weight its votes (and score gold answers), and the
  :class:`~detectors.agreement.AgreementMonitor` of the model's overlapped items.

One desk per model, checkpointed with the model's state, so it moves with the model's
partition. Reviewers are tracked per model: a reviewer's reliability is learned from
that model's gold and overlapped items (skill is task-specific, and the state must
move with the partition); the worker's ``vigil_reviewer_*`` gauges pool the models it
owns.

Bounded: at most ``review.max_open`` escalations remembered (oldest forgotten first,
counted, and also forgotten after ``labels.horizon_seconds``) and at most as many
open events (the adjudicator decides the oldest first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.adjudication import Adjudicator, Decision, LabelResult
from detectors.agreement import AgreementMonitor
from detectors.errors import SnapshotError
from detectors.reviewer_reliability import ReviewerReliability
from detectors.signals import SignalChange
from streams.config import ModelSettings
from streams.processing.record_chunks import RecordChunks
from streams.processing.sealed_rows import SealedRows

__all__ = ["OpenEvent", "ReviewDesk"]

_SNAPSHOT_VERSION = 3


@dataclass(frozen=True, slots=True)
class OpenEvent:
    """What a decision of one event needs besides its labels.

    ``prediction`` as the label join keeps it (compact tuple or a Prediction);
    ``by_rule``: a rule escalated it; ``inclusion``: the probability it was labelled
    (already resolved from the first label, vigil's record and the outcome rate);
    ``escalated_at``: epoch seconds, ``None`` if vigil did not escalate it;
    ``escalation``: the escalation record's JSON, ``None`` if not remembered.
    """

    prediction: Any
    by_rule: bool
    inclusion: float
    escalated_at: float | None
    escalation: bytes | None

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.prediction, self.by_rule, self.inclusion, self.escalated_at, self.escalation)


class ReviewDesk:
    """Escalations sent, events open for review, and the model's reviewer statistics."""

    def __init__(
        self,
        adjudicator: Adjudicator,
        reliability: ReviewerReliability,
        agreement: AgreementMonitor,
        *,
        max_open: int = 10_000,
        horizon: float = 86_400.0,
    ) -> None:
        self.adjudicator = adjudicator
        self.reliability = reliability
        self.agreement = agreement
        self.max_open = max_open
        self.horizon = horizon
        # event id -> (escalated at, epoch seconds; where in _records its JSON is)
        self._sent: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._sealed_sent = SealedRows(self._sent)  # its checkpoint view
        self._records = RecordChunks()
        self._open: dict[str, OpenEvent] = {}
        self.forgotten = 0  # escalations dropped before any label came (cap or horizon)

    @classmethod
    def for_model(cls, ms: ModelSettings) -> ReviewDesk:
        """A fresh desk from a model's (merged) settings."""
        r = ms.review
        return cls(
            Adjudicator(
                reviews_wanted=1, timeout_s=r.adjudication_timeout_s, max_pending=r.max_open
            ),
            ReviewerReliability(
                min_gold_accuracy=r.min_gold_accuracy,
                min_gold=r.flag_min_items,
                flag_on=r.flag_on,
            ),
            AgreementMonitor(
                window=r.agreement_window,
                min_agreement=r.min_agreement,
                min_items=min(50, r.agreement_window),
            ),
            max_open=r.max_open,
            horizon=ms.labels.horizon_seconds,
        )

    # ------------------------------------------------------------ escalations

    def sent(self, event_id: str, escalated_at: datetime, record: bytes) -> None:
        """Remember an escalation until its first label (bounded in count and age).

        ``record`` is copied into the desk's compressed chunks (not kept: a ``bytes``
        from ``orjson.dumps`` holds orjson's whole write buffer, 16 KiB for a 1.6 KB
        escalation with orjson 3.13). Sent again (a redelivered event), the newer record
        replaces the older and counts as the newest.
        """
        t = escalated_at.timestamp()
        sent = self._sent
        records = self._records
        old = self._sealed_sent.pop(event_id)
        if old is not None:
            records.release(old[1])
        row = sent[event_id] = (t, records.add(record))
        self._sealed_sent.added(event_id, row)
        oldest = t - self.horizon
        while sent:
            first = next(iter(sent.values()))
            if first[0] >= oldest and len(sent) <= self.max_open:
                break
            _, (_, loc) = self._sealed_sent.pop_oldest()
            records.release(loc)
            self.forgotten += 1
        if records.sparse():
            self._repack()

    def _repack(self) -> None:
        """Move the remembered records into fresh chunks (see :meth:`RecordChunks.sparse`)."""
        entries = list(self._sent.items())
        self._records, locs = self._records.repacked(loc for _, (_, loc) in entries)
        self._sent = OrderedDict(
            (event_id, (t, loc)) for (event_id, (t, _)), loc in zip(entries, locs, strict=True)
        )
        self._sealed_sent = SealedRows.sealing(self._sent)

    def take_escalation(self, event_id: str) -> tuple[float, bytes] | None:
        """The escalation of ``event_id`` (time and record), no longer remembered here."""
        entry = self._sealed_sent.pop(event_id)
        if entry is None:
            return None
        t, loc = entry
        record = self._records.get(loc)
        self._records.release(loc)
        return t, record

    # ------------------------------------------------------------ labels

    def status(self, event_id: str) -> str | None:
        """``"open"``, ``"decided"`` or ``None``: see :meth:`Adjudicator.status`."""
        return self.adjudicator.status(event_id)

    def open(self, event_id: str, event: OpenEvent) -> None:
        """Start an event's review with the context its decision will need."""
        self._open[event_id] = event

    def seconds_to_label(self, event_id: str, ts: datetime) -> float | None:
        """Seconds from the open event's escalation to a label given at ``ts`` (``None``
        when vigil did not escalate it, or no longer knows when)."""
        event = self._open.get(event_id)
        if event is None or event.escalated_at is None:
            return None
        return max(0.0, ts.timestamp() - event.escalated_at)

    def add(
        self,
        event_id: str,
        label: str | float,
        *,
        now: datetime,
        reviewer: str | None,
        source: str,
        ts: datetime,
        reviews_wanted: int | None,
    ) -> LabelResult:
        """One label of an open (or about to open) event; see :meth:`Adjudicator.add_label`."""
        return self.adjudicator.add_label(
            event_id,
            label,
            now=now,
            reviewer=reviewer,
            source=source,
            ts=ts,
            reviews_wanted=reviews_wanted,
            reliability=self.reliability.reliability,
        )

    def expire(self, now: datetime) -> list[Decision]:
        """Events whose adjudication timeout has passed, decided with what they have."""
        return self.adjudicator.expire(now, self.reliability.reliability)

    def close(self, decision: Decision) -> tuple[OpenEvent | None, list[SignalChange]]:
        """The decided event's context, and what the decision teaches about reviewers:
        reliability (and agreement with the final label) and, for overlapped class
        labels, the model's agreement; returns the alerts these raise."""
        event = self._open.pop(decision.event_id, None)
        changes = self.reliability.observe_decision(decision)
        if decision.human_labels >= 2 and isinstance(decision.final, str):
            changes += self.agreement.update(
                [str(r.label) for r in decision.labels if r.source != "outcome"]
            )
        return event, changes

    def gold(self, reviewer: str, right: bool) -> list[SignalChange]:
        """Score one answer to a gold item."""
        return self.reliability.observe_gold(reviewer, right)

    # ------------------------------------------------------------ readings

    @property
    def remembered(self) -> int:
        """Escalations remembered until their first label (at most ``max_open``)."""
        return len(self._sent)

    @property
    def pending(self) -> int:
        """Events waiting for more reviews."""
        return self.adjudicator.pending

    # ------------------------------------------------------------ checkpoint

    def snapshot(self) -> dict[str, Any]:
        """Plain, picklable state, taken on the ingest thread between batches: the
        remembered escalations (up to ``max_open`` per model) as sealed chunks of rows
        pickled once (:class:`~streams.processing.sealed_rows.SealedRows`: event id,
        time, location), their records as the compressed chunks they are kept in."""
        return {
            "class": "ReviewDesk",
            "version": _SNAPSHOT_VERSION,
            "max_open": self.max_open,
            "horizon": self.horizon,
            "sent": self._sealed_sent.snapshot(),
            "records": self._records.snapshot(),
            "open": [(eid, ev.as_tuple()) for eid, ev in self._open.items()],
            "forgotten": self.forgotten,
            "adjudicator": self.adjudicator.snapshot(),
            "reliability": self.reliability.snapshot(),
            "agreement": self.agreement.snapshot(),
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> ReviewDesk:
        """A desk from :meth:`snapshot`; it continues as if never stopped."""
        if (
            not isinstance(snapshot, dict)
            or snapshot.get("class") != "ReviewDesk"
            or snapshot.get("version") not in (1, 2, _SNAPSHOT_VERSION)
        ):
            raise SnapshotError(f"not a ReviewDesk snapshot of version {_SNAPSHOT_VERSION}")
        desk = cls(
            Adjudicator.restore(snapshot["adjudicator"]),
            ReviewerReliability.restore(snapshot["reliability"]),
            AgreementMonitor.restore(snapshot["agreement"]),
            max_open=int(snapshot["max_open"]),
            horizon=float(snapshot["horizon"]),
        )
        sent = snapshot["sent"]
        if snapshot["version"] == _SNAPSHOT_VERSION:
            desk._sent, desk._sealed_sent = SealedRows.restore(sent, _sent_row)
            desk._records = RecordChunks.restore(
                snapshot["records"], (loc for _, loc in desk._sent.values())
            )
        else:  # the records themselves: version 2 as columns, version 1 an item each
            if snapshot["version"] == 2:
                sent = zip(
                    sent["event_id"], zip(sent["at"], sent["record"], strict=True), strict=True
                )
            add = desk._records.add
            desk._sent = OrderedDict((str(e), (float(t), add(bytes(r)))) for e, (t, r) in sent)
            desk._sealed_sent = SealedRows.sealing(desk._sent)
        desk._open = {str(e): OpenEvent(*item) for e, item in snapshot["open"]}
        desk.forgotten = int(snapshot["forgotten"])
        return desk


def _sent_row(event_id: Any, entry: Any) -> tuple[str, tuple[float, int]]:
    t, loc = entry
    return str(event_id), (float(t), int(loc))
