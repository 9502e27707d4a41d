"""Turn one consumed message into what vigil publishes: the worker's pure core.

Every path that consumes events calls :class:`Processor`: the batch and Faust
ingest drivers (:mod:`streams.ingest`), ``vigil replay`` and the benchmarks. It never
raises for a message: anything that goes wrong becomes a dead letter with a
reason, and the counters add up (processed + dead-lettered = consumed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from detectors.adjudication import Decision as Adjudication
from detectors.audit import reviews_wanted
from detectors.errors import InvalidObservationError
from detectors.prediction import ClassPrediction, Prediction, RegressionPrediction
from detectors.signals import SignalChange
from streams.config import ReviewSettings, Settings
from streams.errors import DeadLetterReason, InvalidEventError
from streams.events.dead_letters import DeadLetter, MessageSource
from streams.events.records import alert_record, escalation_record, reviewed_record
from streams.events.schema import InferenceEvent, LabelEvent, decode_inference, decode_label
from streams.gc_pause import gc_paused
from streams.processing.fleet import Fleet, ModelState, PredictionKind
from streams.processing.gold import GoldDesk, GoldIds, load_gold_set
from streams.processing.metrics import VigilMetrics
from streams.processing.own_size import OwnSizeJson
from streams.processing.review_desk import OpenEvent, ReviewDesk
from streams.processing.segment_batch import SegmentBatch, publish_segment_changes
from streams.processing.versions import RETIRE_EVERY, canary_signal, output_signal

__all__ = ["Outgoing", "Processor", "utc_now"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# What the label join keeps of a prediction: enough for calibration and conformal updates,
# as a plain tuple: cheap to keep and to checkpoint (a pickled dataclass costs several times
# more to write and to restore). Built in Processor.inference, one position per use:
#   ("c", label, confidence, scores, version, segment) for a classification,
#   ("r", value, interval,   None,   version, segment) for a regression,
# scores only when classwise calibration reads them (else None), interval None or (lo, hi),
# version the slot the event was counted under (VersionBook.observe), segment the event's
# values of the model's segment keys (None without segment monitors). Checkpoints written
# before these were kept hold the first three only (3-tuples): _expand, _version_of and
# _segment_of read them as None.
# Since issue 18 scores and segment are kept as JSON bytes at positions 6 and 7, and
# positions 3 and 5 hold None: ("c", label, confidence, None, version, None, scores,
# segment). Bytes are not containers, so the collector stops tracking the tuple the first
# time it looks at it (it never untracks a tuple that holds a dict). With dicts every
# pending prediction (10,000 per model by default) stayed on the collector's lists: at
# full load a full collection walked ~200k of them and took 100-250 ms, ~10 % of a
# worker's time. JSON keeps the floats exactly (shortest round-trip form) and the keys'
# order. A release before this one reads positions 3 and 5 only: after a rollback, the
# pending predictions of a newer checkpoint join without their scores and segment.
Compact = tuple[Any, ...]


def _kept(p: Compact, at: int, before: int) -> Any:
    """The mapping a compact prediction kept as JSON at position ``at``, or, in one
    checkpointed before (shorter), as a dict at position ``before``; None if neither."""
    if len(p) > at:
        return None if p[at] is None else orjson.loads(p[at])
    return p[before] if len(p) > before else None


def _wrong_kind(
    what: str, model_id: str, expected: PredictionKind, got: PredictionKind
) -> InvalidEventError:
    """SPEC §2: one model has one kind of prediction; the other kind is bad input."""
    return InvalidEventError(
        "bad_value",
        f"{what}: model {model_id!r} is a {expected} model; got a {got} {what}",
        model_id,
    )


def _expand(p: Compact | Prediction) -> Prediction:
    if not isinstance(p, tuple):
        return p
    if p[0] == "c":
        return ClassPrediction(str(p[1]), float(p[2]), _kept(p, 6, 3))
    interval = p[2]
    return RegressionPrediction(
        float(p[1]), None if interval is None else (float(interval[0]), float(interval[1]))
    )


def _version_of(p: Compact | Prediction) -> str | None:
    """The version slot a compact prediction was counted under (None before versions)."""
    return p[4] if isinstance(p, tuple) and len(p) > 4 else None


def _segment_of(p: Compact | Prediction) -> dict[str, str] | None:
    """The segment values a compact prediction kept (None before segments were kept)."""
    return _kept(p, 7, 5) if isinstance(p, tuple) else None


@dataclass(slots=True)
class Outgoing:
    """Messages to publish, as (key, JSON bytes) per destination."""

    escalations: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    reviewed: list[tuple[bytes, bytes]] = field(default_factory=list)

    def clear(self) -> None:
        self.escalations.clear()
        self.alerts.clear()
        self.dead_letters.clear()
        self.reviewed.clear()

    def __len__(self) -> int:
        return (
            len(self.escalations) + len(self.alerts) + len(self.dead_letters) + len(self.reviewed)
        )


class Processor:
    """Validates, monitors and decides, one message at a time."""

    def __init__(
        self,
        settings: Settings,
        metrics: VigilMetrics,
        fleet: Fleet | None = None,
        clock: Clock | None = utc_now,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.fleet = fleet if fleet is not None else Fleet(settings)
        # clock=None runs on event time (replay): "now" is the event's own ts, and for a
        # message that cannot be read, the last event time seen.
        self.clock = clock
        self._event_time = datetime.fromtimestamp(0, UTC)
        self.max_event_bytes = settings.worker.max_event_bytes
        # Per model: its gold questions, or None (review.gold not set).
        self._gold: dict[str, GoldDesk | None] = {}
        for model_id in settings.models:  # a bad gold file stops the worker at start
            self.gold_desk(model_id)
        if settings.defaults.review.gold is not None:
            load_gold_set(settings.defaults.review.gold)
        self.processed = 0
        self.dead_lettered = 0
        self.labels_processed = 0
        self.redelivered = 0
        self._adjudicated_at = datetime.fromtimestamp(0, UTC)
        # Pending predictions' scores and segment as JSON (a processor runs on one thread)
        self._json = OwnSizeJson()

    # ------------------------------------------------------------ inference

    def inference(self, raw: bytes, source: MessageSource, out: Outgoing) -> None:
        """Process one inference message; append what to publish to ``out``."""
        clock = self.clock
        now = clock() if clock is not None else self._event_time
        try:
            event = decode_inference(raw, self.max_event_bytes)
        except InvalidEventError as exc:
            self._dead_letter(exc.reason, exc.detail, source, raw, now, exc.model_id, out)
            return
        self._inference(event, raw, source, now, out)
        self._settle_versions((event.model_id,))

    def inference_batch(
        self, messages: Sequence[tuple[bytes, MessageSource]], out: Outgoing
    ) -> None:
        """Process inference messages in order, as :meth:`inference` one by one does
        (the same outputs in the same order, state and counters), with the drift work's
        columnar part done per model for the whole batch first
        (:meth:`~detectors.model_monitor.ModelMonitor.prepare`) and the segment monitors'
        work per model at its end (:mod:`streams.processing.segment_batch`), with the
        cyclic garbage collector paused (:func:`~streams.gc_pause.gc_paused`): the
        batch's young objects are collected once after it, which costs ~8 % less than a
        collection every few events, the later generations' included
        (``benchmarks/processor.py``)."""
        with gc_paused():  # one collection after the batch, not one per ~700 objects
            self._inference_batch(messages, out)

    def _inference_batch(
        self, messages: Sequence[tuple[bytes, MessageSource]], out: Outgoing
    ) -> None:
        max_bytes = self.max_event_bytes
        decoded: list[InferenceEvent | InvalidEventError] = []
        by_model: dict[str, list[Mapping[str, Any]]] = {}
        for raw, _ in messages:
            try:
                event = decode_inference(raw, max_bytes)
            except InvalidEventError as exc:
                decoded.append(exc)
                continue
            decoded.append(event)
            model_id = event.model_id  # a named tuple's field: a descriptor call a read
            feats = by_model.get(model_id)
            if feats is None:
                by_model[model_id] = [event.features]
            else:
                feats.append(event.features)
        fleet = self.fleet
        prepared = []
        for model_id, feats in by_model.items():
            state = fleet.peek(model_id)  # a model new to this worker: per event
            # A model's one event in the batch too: prepared, it costs less than the
            # per-event path's range checks in Python and one-row multivariate score
            # (callgrind, batches of 15 as a worker's at 5,000 events/s: ~8,000 fewer
            # instructions per event of all; benchmarks/processor.py --instruction-batch).
            if state is not None:
                try:
                    state.monitor.prepare(feats)
                except Exception:  # an optimisation only: never a reason to lose events
                    log.exception("model %r: batch preparation failed; per event", model_id)
                    continue
                prepared.append(state)
        clock = self.clock
        later: dict[int, SegmentBatch] = {}
        for (raw, source), item in zip(messages, decoded, strict=True):
            now = clock() if clock is not None else self._event_time
            if isinstance(item, InvalidEventError):
                self._dead_letter(item.reason, item.detail, source, raw, now, item.model_id, out)
            else:
                self._inference(item, raw, source, now, out, later)
        for state in prepared:  # let the batch's events go; settle its versions
            state.monitor.prepare(())
            self._settle(state)
        if later:
            publish_segment_changes(list(later.values()), out.alerts, self._emit(out))
        if len(prepared) < len(by_model):  # a model new to this worker, or not prepared
            self._settle_versions(by_model)  # again for the others: they hold none now

    def _settle_versions(self, model_ids: Iterable[str]) -> None:
        """The versions' estimates of these models take the confidences
        :meth:`VersionBook.observe <streams.processing.versions.VersionBook.observe>` held
        back, a run at a time: at the end of every call, so none is held between calls
        (what the ``vigil_version_*`` series and checkpoints read is as before)."""
        fleet = self.fleet
        for model_id in model_ids:
            state = fleet.peek(model_id)
            if state is not None:
                self._settle(state)

    @staticmethod
    def _settle(state: ModelState) -> None:
        """:meth:`_settle_versions` of one model's state."""
        versions = state.versions
        if versions is not None:
            try:
                versions.settle()
            except Exception:  # a bug must not stop the stream
                log.exception(
                    "model %r: settling the versions' estimates failed", state.monitor.model_id
                )

    def _inference(
        self,
        event: InferenceEvent,
        raw: bytes,
        source: MessageSource,
        now: datetime,
        out: Outgoing,
        later: dict[int, SegmentBatch] | None = None,
    ) -> None:
        """One decoded event; ``later`` (a batch's): segment work is queued there, per
        model monitor, instead of done now."""
        # Its fields as locals: each read of a NamedTuple's attribute calls a descriptor.
        event_id, model_id, model_version, ts, prediction, features, segment, _, _ = event
        clock = self.clock
        if clock is None:
            now = self._event_time = ts
        fleet = self.fleet
        known = fleet.known
        if known is not None and model_id not in known:  # not fleet.is_known(model_id)
            self._refuse(model_id, source, raw, now, out, inference=True)
            return
        try:
            # fleet.get(model_id), its common case inlined (per event): a model held
            state = fleet._models.get(model_id)
            if state is None:
                state = fleet.get(model_id)
            else:
                fleet._models.move_to_end(model_id)
            partition, offset = source.partition, source.offset
            # state.applied("inference", partition, offset), inlined (per event)
            if partition == state.partition and offset <= state.offsets.get("inference", -1):
                # Redelivered after a restart: the restored state already holds it, and its
                # outputs were flushed before that state was checkpointed.
                self.redelivered += 1
                self.processed += 1
                self.metrics.model(model_id).processed.inc()
                return
            is_class = isinstance(prediction, ClassPrediction)
            kind: PredictionKind = "classification" if is_class else "regression"
            if state.kind is not None and state.kind != kind:
                raise _wrong_kind("prediction", model_id, state.kind, kind)
            monitor = state.monitor
            segs = monitor.segments
            batch = None
            if later is not None and segs is not None:
                batch = later.get(id(monitor))
                if batch is None:
                    batch = later[id(monitor)] = SegmentBatch(monitor, model_id)
            # monitor.observe without its checks of what the decoder validated (the
            # prediction, its kind against the model's just above, the features, the id)
            verdict = monitor._observe(
                features,
                prediction,
                now,
                event_id,
                segment,
                None if batch is None else batch.work,
            )
            if batch is not None:
                batch.at.append(None)  # its place: once its own alerts are out
            decision = verdict.decision
            state.kind = kind
            confidence = prediction.confidence if is_class else None  # type: ignore[union-attr]
            versions = state.versions
            assert versions is not None  # noqa: S101 - Fleet.get and Fleet.put always give one
            epoch = now.timestamp()
            if epoch - versions.checked >= RETIRE_EVERY:  # before: a freed slot is taken
                self._retire(model_id, state, epoch)
            slot, version, canary = versions.observe(
                model_version,
                prediction.label if is_class else prediction.value,  # type: ignore[union-attr]
                confidence,
                epoch,
            )
            if decision.escalate:  # by a rule, or by the audit sample (not a rule's call)
                inclusion: float | None = decision.inclusion_probability
                by_rule = decision.reasons[0].kind != "audit"  # Decision.audited, inlined
            else:
                inclusion, by_rule = None, False
            kept = None
            if segs is not None and segment:  # its monitored values: all of them, usually
                kept = segment
                if not segment.keys() <= segs.key_set:
                    kept = {k: segment[k] for k in segs.keys if k in segment}
            # Scores only when classwise calibration will read them (they cost memory and
            # checkpoint bytes per pending prediction); as JSON, see Compact.
            seg_json = None if kept is None else self._json.dumps(kept)
            if is_class:
                scores = prediction.scores if monitor.classwise is not None else None  # type: ignore[union-attr]
                compact: Compact = (
                    "c",
                    prediction.label,  # type: ignore[union-attr]
                    confidence,
                    None,
                    slot,
                    None,
                    None if scores is None else self._json.dumps(scores),
                    seg_json,
                )
            else:
                compact = (
                    "r",
                    prediction.value,  # type: ignore[union-attr]
                    prediction.interval,  # type: ignore[union-attr]
                    None,
                    slot,
                    None,
                    None,
                    seg_json,
                )
            ts_epoch = epoch if now is ts else ts.timestamp()
            # join.add_prediction, unchecked: the decoder checked the ids and the time
            # (a UTC datetime: ``now`` itself without a clock), this built the rest
            state.join.add_checked(model_id, event_id, compact, ts_epoch, by_rule, inclusion)
            if partition == state.partition:  # state.mark("inference", ...): its common case
                state.offsets["inference"] = offset
                state.dirty = True
            else:
                state.mark("inference", partition, offset)
        except InvalidEventError as exc:
            self._dead_letter(exc.reason, exc.detail, source, raw, now, model_id, out)
            return
        except Exception as exc:  # a bug must not stop the stream: keep the message
            self._processing_error(exc, source, raw, now, model_id, out, inference=True)
            return
        monitor.model_version = model_version
        self.processed += 1
        metrics = self.metrics
        m = metrics._models.get(model_id)  # metrics.model(model_id): its common case inlined
        if m is None:
            m = metrics.model(model_id)
        lag = epoch - ts_epoch  # seconds, as (now - ts).total_seconds() to ~1 us
        m.inference(confidence, lag if lag > 0.0 else 0.0)  # max(0.0, lag)
        if decision.suppressed:
            m.suppressed.inc()
        elif decision.escalate:
            version.escalations += 1
            ms = self.settings.for_model(model_id)
            review = ms.review
            record = escalation_record(
                event,
                decision,
                escalated_at=now,
                policy_name=ms.escalation.name,
                policy_version=ms.escalation.version,
                redacted=ms.redacted,
                reviews_wanted=self._reviews_wanted(model_id, event_id, review),
            )
            body = orjson.dumps(record)
            out.escalations.append((model_id.encode(), body))
            self._desk(state).sent(event_id, now, body)
            # Once per escalation, under its first (primary) reason: the counter sums to the
            # number of escalations, comparable with the budget.
            m.escalation(decision.reasons[0].kind).inc()
            if any(r.kind == "outlier" for r in decision.reasons):
                m.outlier_escalations.inc()
            desk = self.gold_desk(model_id)
            if desk is not None:
                gold = desk.escalation(model_id, record)
                if gold is not None:
                    out.escalations.append((model_id.encode(), orjson.dumps(gold)))
                    m.escalation("gold").inc()
        if verdict.changes:
            self._alerts(model_id, model_version, verdict.changes, now, out)
        if batch is not None:  # its segment alerts go here, after the batch
            batch.at[-1] = (len(out.alerts), self.processed, now, model_version)
        if canary:
            self._alerts(model_id, model_version, canary, now, out)

    def _emit(self, out: Outgoing) -> Callable[[str, str, list[SignalChange], datetime], None]:
        """:meth:`_alerts` into ``out``, for :func:`publish_segment_changes`."""

        def emit(model_id: str, version: str, changes: list[SignalChange], now: datetime) -> None:
            self._alerts(model_id, version, changes, now, out)

        return emit

    def _alerts(
        self,
        model_id: str,
        model_version: str,
        changes: Sequence[SignalChange],
        now: datetime,
        out: Outgoing,
    ) -> None:
        if not changes:
            return
        key = model_id.encode()
        m = self.metrics.model(model_id)
        redacted = self.settings.for_model(model_id).redacted
        for change in changes:
            record = alert_record(
                model_id,
                model_version,
                change,
                detected_at=now,
                redacted=redacted,
            )
            out.alerts.append((key, orjson.dumps(record)))
            m.alert(change.signal, change.state).inc()

    # ------------------------------------------------------------ labels

    def label(self, raw: bytes, source: MessageSource, out: Outgoing) -> None:
        """Process one label message (SPEC §3).

        A label on a gold item scores its reviewer. Any other label joins its event and
        goes to the model's adjudicator, which keeps the labels of an event until it has
        the reviews it asked for (or its timeout passes, :meth:`adjudicate_due`, or an
        outcome arrives); the model learns from the *final* label only, and an event
        that vigil escalated yields a reviewed record (SPEC §12). A label for an event
        already decided is ``late``.
        """
        now = self.clock() if self.clock is not None else self._event_time
        try:
            lab = decode_label(raw, self.max_event_bytes)
        except InvalidEventError as exc:
            self._dead_letter(
                exc.reason, exc.detail, source, raw, now, exc.model_id, out, inference=False
            )
            return
        if self.clock is None:
            now = self._event_time = max(self._event_time, lab.ts)
        model_id = lab.model_id
        if not self.fleet.is_known(model_id):
            self._refuse(model_id, source, raw, now, out, inference=False)
            return
        m = self.metrics.model(model_id)
        reviewer = lab.reviewer or None  # "" names nobody
        changes: list[SignalChange] = []
        decisions: tuple[Adjudication, ...] = ()
        try:
            state = self.fleet.get(model_id)
            if state.applied("labels", source.partition, source.offset):
                self.redelivered += 1
                return
            desk = self._desk(state)
            gold = self.gold_desk(model_id)
            right = None if gold is None else gold.score(lab)
            if right is not None:  # a gold item: it scores its reviewer, never the model
                state.mark("labels", source.partition, source.offset)
                if reviewer is not None:
                    changes = desk.gold(reviewer, right)
                outcome = "gold"
                self.metrics.gold_answer(reviewer, right)
                self.metrics.reviewer_label(reviewer)
            else:
                review = self._review_label(model_id, state, desk, lab, reviewer, now)
                if review is None:  # dead-lettered: the label contradicts its prediction
                    self._dead_letter(
                        "bad_value",
                        f"label carries {'a class label' if lab.value is None else 'a value'} "
                        f"but event {lab.event_id!r} was a "
                        f"{'regression' if lab.value is None else 'classification'} prediction",
                        source,
                        raw,
                        now,
                        model_id,
                        out,
                        inference=False,
                    )
                    return
                outcome, decisions = review
                state.mark("labels", source.partition, source.offset)
        except (InvalidEventError, InvalidObservationError) as exc:
            reason: DeadLetterReason = (
                exc.reason if isinstance(exc, InvalidEventError) else "bad_value"
            )
            detail = exc.detail if isinstance(exc, InvalidEventError) else str(exc)
            self._dead_letter(reason, detail, source, raw, now, model_id, out, inference=False)
            return
        except Exception as exc:  # a bug must not stop the stream: keep the message
            self._processing_error(exc, source, raw, now, model_id, out, inference=False)
            return
        self.labels_processed += 1
        m.labels_outcome(outcome).inc()
        changes += self._learn(model_id, state, desk, decisions, out)
        self._alerts(model_id, state.monitor.model_version, changes, now, out)

    def _review_label(
        self,
        model_id: str,
        state: ModelState,
        desk: ReviewDesk,
        lab: LabelEvent,
        reviewer: str | None,
        now: datetime,
    ) -> tuple[str, tuple[Adjudication, ...]] | None:
        """Join a (non-gold) label and hand it to the adjudicator: the label's outcome
        and the decisions it caused (``None``: it contradicts its prediction's kind)."""
        kind: PredictionKind = "classification" if lab.label is not None else "regression"
        if state.kind is not None and state.kind != kind:
            # Before the join, so the pending prediction stays for its right label.
            raise _wrong_kind("label", model_id, state.kind, kind)
        event_id = lab.event_id
        truth = lab.label if lab.label is not None else lab.value
        assert truth is not None  # noqa: S101 - decode_label guarantees one of them
        wanted: int | None = None
        if desk.status(event_id) is None:  # the event's first label: join it
            result = state.join.match(model_id, event_id, lab.ts, prediction=lab.prediction)
            if result.outcome != "joined":
                # "duplicate": joined long ago, decided and forgotten by the adjudicator
                return ("unmatched" if result.outcome == "unmatched" else "late"), ()
            if isinstance(_expand(result.prediction), ClassPrediction) != (lab.label is not None):
                return None
            if result.delay_seconds is not None:
                self.metrics.model(model_id).label_delay.observe(max(0.0, result.delay_seconds))
            # The probability that this label's source labelled this event: what the
            # label says; for an outcome source, its rate (it samples whatever vigil
            # did); for a review, the probability vigil recorded when it sent the event;
            # for anything else, the outcome rate.
            inclusion = lab.inclusion_probability
            ms = self.settings.for_model(model_id)
            if inclusion is None:
                inclusion = result.inclusion_probability
                if inclusion is None or lab.source == "outcome":
                    inclusion = ms.labels.outcome_rate
            sent = desk.take_escalation(event_id)
            if sent is not None:
                wanted = int(orjson.loads(sent[1]).get("reviews_wanted", 1))
            elif result.inclusion_probability is not None:  # sent, but no longer remembered
                wanted = self._reviews_wanted(model_id, event_id, ms.review)
            desk.open(
                event_id,
                OpenEvent(
                    result.prediction,
                    bool(result.escalated),
                    inclusion,
                    None if sent is None else sent[0],
                    None if sent is None else sent[1],
                ),
            )
        if lab.source != "outcome":
            self.metrics.reviewer_label(reviewer, desk.seconds_to_label(event_id, lab.ts))
        added = desk.add(
            event_id,
            truth,
            now=now,
            reviewer=reviewer,
            source=lab.source,
            ts=lab.ts,
            reviews_wanted=wanted,
        )
        return ("late" if added.status == "late" else "joined"), added.decisions

    def _learn(
        self,
        model_id: str,
        state: ModelState,
        desk: ReviewDesk,
        decisions: Sequence[Adjudication],
        out: Outgoing,
    ) -> list[SignalChange]:
        """Learn from decided events (:meth:`_adjudicated`); a bug in one must not stop
        the stream: it is logged, and the events stay decided."""
        changes: list[SignalChange] = []
        try:
            for decision in decisions:
                changes += self._adjudicated(model_id, state, desk, decision, out)
        except Exception:
            log.exception("learning from adjudicated events of model %s failed", model_id)
        return changes

    def _adjudicated(
        self,
        model_id: str,
        state: ModelState,
        desk: ReviewDesk,
        decision: Adjudication,
        out: Outgoing,
    ) -> list[SignalChange]:
        """Learn from one decided event: reviewers, agreement, and (from its final label)
        the model's statistics; publish its reviewed record if vigil escalated it."""
        event, changes = desk.close(decision)
        self.metrics.model(model_id).adjudication(decision.method).inc()
        if event is None:  # opened before a restart from a checkpoint without its context
            return changes
        p = event.prediction
        prediction = _expand(p)
        changes += state.monitor.observe_label(
            prediction,
            decision.final,
            was_escalated=event.by_rule,
            inclusion_probability=event.inclusion,
            segment=_segment_of(p),
        )
        slot = _version_of(p)
        if (
            slot is not None
            and isinstance(prediction, ClassPrediction)
            and state.versions is not None
        ):
            state.versions.observe_label(
                slot,
                prediction.confidence,
                prediction.label == decision.final,
                1.0 / event.inclusion,
            )
        if event.escalation is not None:
            record = reviewed_record(
                orjson.loads(event.escalation), decision, inclusion_probability=event.inclusion
            )
            out.reviewed.append((model_id.encode(), orjson.dumps(record)))
        return changes

    def adjudicate_due(self, out: Outgoing) -> None:
        """Decide the events whose adjudication timeout has passed (call it once per
        batch: it looks at most once a second of the worker's clock)."""
        now = self.clock() if self.clock is not None else self._event_time
        if (now - self._adjudicated_at).total_seconds() < 1.0:
            return
        self._adjudicated_at = now
        epoch = now.timestamp()
        for model_id, state in self.fleet.items():
            self._retire(model_id, state, epoch)
            desk = state.review
            if desk is None or not desk.pending:
                continue
            decisions = desk.expire(now)
            if decisions:
                state.dirty = True  # not tied to an input offset: the next checkpoint has it
                changes = self._learn(model_id, state, desk, decisions, out)
                self._alerts(model_id, state.monitor.model_version, changes, now, out)

    def _retire(self, model_id: str, state: ModelState, now: float) -> None:
        """Retire the model's idle versions: their state leaves the next checkpoint, their
        series (``vigil_version_*``, and the canary's alert counters) the next scrape."""
        book = state.versions
        if book is None:
            return
        gone = book.retire_idle(now)
        if gone:
            state.dirty = True
            m = self.metrics.model(model_id)
            for version in gone:
                m.forget_signal(canary_signal(version))
                m.forget_signal(output_signal(version, True))
                m.forget_signal(output_signal(version, False))

    @staticmethod
    def _reviews_wanted(model_id: str, event_id: str, review: ReviewSettings) -> int:
        """The escalation's ``reviews_wanted`` (SPEC §4): the overlap draw, deterministic."""
        return reviews_wanted(
            model_id,
            event_id,
            overlap_rate=review.overlap_rate,
            overlap_reviews=review.overlap_reviews,
            seed=review.audit_seed,
        )

    @staticmethod
    def _desk(state: ModelState) -> ReviewDesk:
        desk = state.review
        assert desk is not None  # noqa: S101 - Fleet.get and Fleet.put always give one
        return desk

    # ------------------------------------------------------------ gold

    def gold_desk(self, model_id: str) -> GoldDesk | None:
        """The model's gold questions (``review.gold``), or ``None``."""
        try:
            return self._gold[model_id]
        except KeyError:
            pass
        ms = self.settings.for_model(model_id)
        r = ms.review
        desk = None
        if r.gold is not None:
            key = (
                r.gold_key.get_secret_value() if r.gold_key else f"vigil\x1f{self.settings.app_id}"
            )
            desk = GoldDesk(
                load_gold_set(r.gold),
                GoldIds(key.encode()),
                rate=r.gold_rate,
                seed=r.audit_seed,
                tolerance=r.gold_tolerance,
                redacted=ms.redacted,
            )
        if len(self._gold) < self.fleet.max_tracked:
            self._gold[model_id] = desk
        return desk

    # ------------------------------------------------------------ dead letters

    def _processing_error(
        self,
        exc: Exception,
        source: MessageSource,
        raw: bytes,
        now: datetime,
        model_id: str,
        out: Outgoing,
        *,
        inference: bool,
    ) -> None:
        """Log the traceback and keep the message as a ``processing_error`` dead letter."""
        log.exception("processing failed for %s offset %s", source.topic, source.offset)
        detail = f"{type(exc).__name__}: {exc}"[:500]
        self._dead_letter(
            "processing_error", detail, source, raw, now, model_id, out, inference=inference
        )

    def _refuse(
        self,
        model_id: str,
        source: MessageSource,
        raw: bytes,
        now: datetime,
        out: Outgoing,
        *,
        inference: bool,
    ) -> None:
        """Dead-letter a message of a model this worker may not track."""
        self._dead_letter(
            "bad_value",
            f"model_id {model_id!r} is not configured and allow_unknown_models is false",
            source,
            raw,
            now,
            model_id,
            out,
            inference=inference,
        )

    def _dead_letter(
        self,
        reason: DeadLetterReason,
        detail: str,
        source: MessageSource,
        raw: bytes,
        now: datetime,
        model_id: str | None,
        out: Outgoing,
        *,
        inference: bool = True,
    ) -> None:
        self.dead_lettered += 1
        dl = DeadLetter(reason, detail, source, now, bytes(raw), model_id)
        out.dead_letters.append((source.key, orjson.dumps(dl.as_dict())))
        self.metrics.dead_letter(reason).inc()
        if inference:
            self.metrics.model(model_id).dead_letter.inc()
