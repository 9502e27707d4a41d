"""From a Label Studio annotation on a bridge-made task to a LabelEvent (SPEC §3).

Pure functions, no I/O. The task's ``data`` is what :func:`streams.review.tasks.task_payload`
wrote from the escalation, so the LabelEvent gets, copied from the escalation: ``event_id``,
``model_id``, ``escalation_id``, the event's ``prediction`` and its
``inclusion_probability`` (a label still counts correctly when the worker's join state for
the event has expired). From the annotation: the reviewer's answer (the chosen class, or
the number of a regression model), ``reviewer`` (resolved by the caller from the
annotation's ``completed_by``), and ``ts``, the time of the annotation's last change.

**Identity.** A label is identified by ``(model_id, event_id, reviewer)`` (SPEC §3: a
second label from one reviewer replaces the first). One version of one annotation always
gives the same bytes (:func:`encode_label`), so a label published twice, by a webhook and
by reconciliation or again after a restart, is the same message twice, never two labels.
:func:`annotation_version` names that version: the annotation's id and its ``updated_at``.

What publishes nothing (:func:`label_event` returns ``None``): a cancelled (skipped)
annotation, and one with no answer in the ``label`` control. What is refused
(:class:`InvalidAnnotationError`, counted and logged by the caller, never published): an
answer that is not one class or one finite number, or a task without the escalation's
fields (a task not made by the bridge). Every LabelEvent is checked by vigil's own label
validator before it leaves, so the bridge never publishes what a worker would dead-letter.

>>> task = {"data": {"event_id": "e1", "model_id": "fraud", "escalation_id": "x1",
...     "prediction": {"label": "ok", "confidence": 0.6}, "inclusion_probability": 0.5}}
>>> annotation = {"id": 7, "completed_by": 3, "was_cancelled": False,
...     "updated_at": "2026-12-02T10:00:00.250000Z",
...     "result": [{"from_name": "label", "type": "choices", "value": {"choices": ["fraud"]}}]}
>>> event = label_event(task, annotation, reviewer="ana@example.com")
>>> event["label"], event["reviewer"], event["source"], event["ts"], event["escalation_id"]
('fraud', 'ana@example.com', 'human', '2026-12-02T10:00:00.250000+00:00', 'x1')
>>> annotation_version(annotation)
(7, '2026-12-02T10:00:00.250000Z')
>>> label_event(task, {**annotation, "was_cancelled": True}, reviewer="ana@example.com") is None
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.errors import InvalidEventError, VigilError
from streams.events.schema import decode_label
from streams.review.tasks import CONTROL

__all__ = [
    "InvalidAnnotationError",
    "annotation_version",
    "encode_label",
    "label_event",
    "parse_stamp",
    "reviewer_of",
]

#: The task data fields a LabelEvent is built from (written by ``task_payload``).
_REQUIRED = ("event_id", "model_id", "escalation_id")


class InvalidAnnotationError(VigilError, ValueError):
    """An annotation (or its task) that cannot become a LabelEvent; the message says why."""


def annotation_version(annotation: Mapping[str, Any]) -> tuple[int, str]:
    """``(annotation id, updated_at)``: one version of one annotation."""
    try:
        return int(annotation["id"]), str(annotation["updated_at"])
    except (KeyError, TypeError, ValueError):
        raise InvalidAnnotationError("annotation without an integer id and updated_at") from None


def reviewer_of(annotation: Mapping[str, Any]) -> int | str:
    """The user id in ``completed_by`` (a number, or an object with ``id``; Label Studio
    answers either, depending on the endpoint); its ``email`` instead when given."""
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        email = who.get("email")
        if isinstance(email, str) and email:
            return email
        who = who.get("id")
    if isinstance(who, int) and not isinstance(who, bool):
        return who
    raise InvalidAnnotationError(f"annotation without a user in completed_by: {who!r}")


def label_event(
    task: Mapping[str, Any], annotation: Mapping[str, Any], *, reviewer: str
) -> dict[str, Any] | None:
    """The LabelEvent (a JSON-ready dict) of ``annotation`` on ``task``, or ``None`` when it
    publishes nothing (cancelled, or no answer). Raises :class:`InvalidAnnotationError`."""
    if annotation.get("was_cancelled"):
        return None
    answer = _answer(annotation.get("result"))
    if answer is None:
        return None
    data = task.get("data")
    if not isinstance(data, Mapping) or any(not data.get(k) for k in _REQUIRED):
        raise InvalidAnnotationError(
            f"task {task.get('id')!r} lacks {', '.join(_REQUIRED)} in its data: "
            "not a task made by vigil's review bridge"
        )
    event: dict[str, Any] = {
        "event_id": data["event_id"],
        "model_id": data["model_id"],
        "ts": _utc(annotation.get("updated_at")),
        answer[0]: answer[1],
        "source": "human",
        "reviewer": reviewer,
        "escalation_id": data["escalation_id"],
    }
    if isinstance(data.get("prediction"), Mapping):
        event["prediction"] = dict(data["prediction"])
    if data.get("inclusion_probability") is not None:
        event["inclusion_probability"] = data["inclusion_probability"]
    try:
        decode_label(encode_label(event))
    except InvalidEventError as exc:
        raise InvalidAnnotationError(
            f"annotation {annotation.get('id')!r} on task {task.get('id')!r} would be an "
            f"invalid LabelEvent: {exc}"
        ) from None
    return event


def encode_label(event: Mapping[str, Any]) -> bytes:
    """The message bytes of a LabelEvent: one version of one annotation, one byte string
    (keys sorted)."""
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def _answer(result: Any) -> tuple[str, Any] | None:
    """``("label", class)`` or ``("value", number)`` from the ``label`` control's result."""
    if not isinstance(result, list):
        return None
    for region in result:
        if not isinstance(region, Mapping) or region.get("from_name") != CONTROL:
            continue
        value = region.get("value")
        if not isinstance(value, Mapping):
            continue
        if "choices" in value:
            choices = value["choices"]
            one = isinstance(choices, list) and len(choices) == 1
            if not (one and isinstance(choices[0], str)):
                raise InvalidAnnotationError(f"expected one chosen class; got {choices!r}")
            return "label", choices[0]
        if "number" in value:
            number = value["number"]
            if (
                not isinstance(number, int | float)
                or isinstance(number, bool)
                or not math.isfinite(number)
            ):
                raise InvalidAnnotationError(f"expected a finite number; got {number!r}")
            return "value", number
    return None


def _utc(stamp: Any) -> str:
    """Label Studio's ``updated_at`` as RFC 3339 in UTC."""
    return parse_stamp(stamp).astimezone(UTC).isoformat()


def parse_stamp(stamp: Any) -> datetime:
    """A Label Studio timestamp (ISO 8601, ``Z`` or an offset) as an aware datetime;
    :class:`InvalidAnnotationError` if it is none."""
    if not isinstance(stamp, str):
        raise InvalidAnnotationError(f"annotation without updated_at: {stamp!r}")
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        raise InvalidAnnotationError(f"updated_at is not ISO 8601: {stamp!r}") from None
    # Label Studio stores UTC (USE_TZ); a naive stamp is UTC written without its zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
