"""From an escalation (SPEC §4) to a Label Studio task, and the labeling config it is shown in.

Pure functions, no I/O. A task's ``data`` carries:

* what the reviewer sees: ``title`` (model, priority, first reason), ``reasons_text`` (every
  reason with its score and threshold) and ``features`` (already redacted by the worker; a
  missing value shown as ``(missing)``), laid out by :func:`label_config`;
* what the bridge needs later, unchanged from the escalation: ``escalation_id`` (the task's
  identity: one task per escalation), ``event_id``, ``model_id``, ``model_version``,
  ``prediction``, ``inclusion_probability`` and ``reviews_wanted`` (copied into the
  LabelEvent of each annotation), ``priority`` (a sortable Data Manager column), ``reasons``
  and ``segment``.

The prediction becomes the task's pre-annotation: the predicted class selected in the
``label`` choices (scored with its confidence), or the predicted value in the ``value``
number field of a regression model. Every pre-annotation carries the same Label Studio
``model_version``, :data:`PRE_ANNOTATION_VERSION`, whatever version of the model made the
prediction (that one stays in the task's ``data.model_version``). Label Studio pre-labels
the tasks it hands a reviewer in turn ("Label All Tasks", "Label Tasks As Displayed") with
the predictions of its project's ``model_version`` only, and an import sets a project's
empty one to that of the predictions imported: with one value per model version, every
task made after the model's next release would reach the reviewer with nothing selected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from streams.errors import InvalidEventError

__all__ = [
    "CONTROL",
    "PRE_ANNOTATION_VERSION",
    "SHOWN_IN",
    "Escalation",
    "PredictionKind",
    "decode_escalation",
    "label_config",
    "task_payload",
]

PredictionKind = Literal["classification", "regression"]

#: Name of the control a reviewer answers with (``<Choices>`` or ``<Number>``) and of the
#: object it is attached to; the pre-annotation's ``from_name`` and ``to_name``.
CONTROL = "label"
SHOWN_IN = "reasons"

#: The Label Studio ``model_version`` of every pre-annotation, and of every project the
#: bridge makes (see the module docstring).
PRE_ANNOTATION_VERSION = "vigil"

_MISSING = "(missing)"


@dataclass(frozen=True)
class Escalation:
    """The fields of one escalation record the bridge relies on, checked; ``record`` is the
    whole record as consumed."""

    escalation_id: str
    model_id: str
    event_id: str
    priority: float
    prediction: Mapping[str, Any]
    record: Mapping[str, Any]

    @property
    def kind(self) -> PredictionKind:
        return "classification" if "label" in self.prediction else "regression"

    @property
    def reviews_wanted(self) -> int:
        """Independent reviews the escalation asks for (SPEC §4; 1 when absent or not a
        whole number in 1-16)."""
        wanted = self.record.get("reviews_wanted", 1)
        if isinstance(wanted, bool) or not isinstance(wanted, int) or not 1 <= wanted <= 16:
            return 1
        return wanted

    @property
    def classes(self) -> frozenset[str]:
        """Every class this escalation names (its label and the keys of its scores)."""
        if self.kind != "classification":
            return frozenset()
        scores = self.prediction.get("scores")
        named = set(scores) if isinstance(scores, Mapping) else set()
        return frozenset({str(self.prediction["label"]), *map(str, named)})


def decode_escalation(record: Any) -> Escalation:
    """Check the fields the bridge needs; raise :class:`~streams.errors.InvalidEventError`
    (reason ``schema``) naming the first one that is missing or wrong.

    >>> e = decode_escalation({"escalation_id": "x1", "model_id": "m", "event_id": "e",
    ...                        "priority": 0.9, "prediction": {"label": "cat"}})
    >>> e.kind, sorted(e.classes)
    ('classification', ['cat'])
    >>> decode_escalation({"escalation_id": "x1"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.errors.InvalidEventError: schema: escalation field 'model_id' must be ...; got None
    """
    if not isinstance(record, Mapping):
        raise InvalidEventError("schema", f"escalation must be a JSON object; got {record!r:.80}")
    for name in ("escalation_id", "model_id", "event_id"):
        value = record.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidEventError(
                "schema", f"escalation field {name!r} must be a non-empty string; got {value!r}"
            )
    priority = record.get("priority")
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int | float)
        or not 0.0 <= priority <= 1.0
    ):
        raise InvalidEventError(
            "schema", f"escalation field 'priority' must be a number in [0, 1]; got {priority!r}"
        )
    prediction = record.get("prediction")
    if not isinstance(prediction, Mapping) or not (
        isinstance(prediction.get("label"), str) or _is_number(prediction.get("value"))
    ):
        raise InvalidEventError(
            "schema",
            "escalation field 'prediction' must hold a string 'label' or a number 'value'; "
            f"got {prediction!r:.120}",
        )
    return Escalation(
        escalation_id=record["escalation_id"],
        model_id=record["model_id"],
        event_id=record["event_id"],
        priority=float(priority),
        prediction=prediction,
        record=record,
    )


def label_config(kind: PredictionKind, classes: Iterable[str] = ()) -> str:
    """The labeling config of a model's project: the escalation shown as a header, its
    reasons and its features, and one control to answer with.

    >>> print(label_config("classification", ["dog", "cat"]))  # doctest: +ELLIPSIS
    <View>
      <Header value="$title"/>
      <Text name="reasons" value="$reasons_text"/>
      <Table name="features" value="$features"/>
      <Choices name="label" toName="reasons" choice="single" showInline="true" required="true">
        <Choice value="cat"/>
        <Choice value="dog"/>
      </Choices>
    </View>
    """
    if kind == "classification":
        choices = "".join(f"    <Choice value={quoteattr(c)}/>\n" for c in sorted(set(classes)))
        control = (
            f'  <Choices name="{CONTROL}" toName="{SHOWN_IN}" choice="single" '
            f'showInline="true" required="true">\n{choices}  </Choices>\n'
        )
    elif kind == "regression":
        control = f'  <Number name="{CONTROL}" toName="{SHOWN_IN}" required="true"/>\n'
    else:
        raise ValueError(f"kind must be 'classification' or 'regression'; got {kind!r}")
    return (
        "<View>\n"
        '  <Header value="$title"/>\n'
        f'  <Text name="{SHOWN_IN}" value="$reasons_text"/>\n'
        '  <Table name="features" value="$features"/>\n'
        f"{control}"
        "</View>"
    )


def task_payload(escalation: Escalation) -> dict[str, Any]:
    """The task (``{"data", "predictions"}``) of one escalation, for a bulk import.

    >>> e = decode_escalation({"escalation_id": "x1", "model_id": "m", "event_id": "e",
    ...     "model_version": "3", "priority": 0.91,
    ...     "reasons": [{"kind": "low_confidence", "score": 0.55, "threshold": 0.6}],
    ...     "prediction": {"label": "cat", "scores": {"cat": 0.55, "dog": 0.45}},
    ...     "features": {"age": 3, "city": None}, "inclusion_probability": 1.0})
    >>> task = task_payload(e)
    >>> task["data"]["title"], task["data"]["features"]
    ('m · priority 0.910 · low_confidence', {'age': 3, 'city': '(missing)'})
    >>> task["predictions"][0]["score"], task["predictions"][0]["result"][0]["value"]
    (0.55, {'choices': ['cat']})
    >>> task["predictions"][0]["model_version"], task["data"]["model_version"]
    ('vigil', '3')
    """
    record = escalation.record
    reasons = record.get("reasons")
    if not isinstance(reasons, list):
        reasons = []
    first = reasons[0].get("kind") if reasons and isinstance(reasons[0], Mapping) else None
    title = f"{escalation.model_id} · priority {escalation.priority:.3f}"
    if first:
        title += f" · {first}"
    features = record.get("features")
    if not isinstance(features, Mapping):
        features = {}
    data = {
        "title": title,
        "reasons_text": _reasons_text(reasons),
        "features": {str(k): (_MISSING if v is None else v) for k, v in features.items()},
        "escalation_id": escalation.escalation_id,
        "event_id": escalation.event_id,
        "model_id": escalation.model_id,
        "model_version": str(record.get("model_version", "unknown")),
        "priority": escalation.priority,
        "reasons": reasons,
        "prediction": dict(escalation.prediction),
        "inclusion_probability": record.get("inclusion_probability", 1.0),
        "reviews_wanted": record.get("reviews_wanted", 1),
        "segment": record.get("segment") or {},
    }
    return {"data": data, "predictions": [_pre_annotation(escalation)]}


def _pre_annotation(escalation: Escalation) -> dict[str, Any]:
    prediction = escalation.prediction
    if escalation.kind == "classification":
        label = str(prediction["label"])
        scores = prediction.get("scores")
        score = scores.get(label) if isinstance(scores, Mapping) else prediction.get("confidence")
        result = {"type": "choices", "value": {"choices": [label]}}
    else:
        score = None
        result = {"type": "number", "value": {"number": prediction["value"]}}
    annotation: dict[str, Any] = {
        "model_version": PRE_ANNOTATION_VERSION,
        "result": [{"from_name": CONTROL, "to_name": SHOWN_IN, **result}],
    }
    if isinstance(score, int | float) and _is_number(score):
        annotation["score"] = float(score)
    return annotation


def _reasons_text(reasons: list[Any]) -> str:
    lines = []
    for reason in reasons:
        if not isinstance(reason, Mapping):
            continue
        line = str(reason.get("kind", "?"))
        if _is_number(reason.get("score")) and _is_number(reason.get("threshold")):
            line += f": score {reason['score']:.4g}, threshold {reason['threshold']:.4g}"
        if reason.get("detail"):
            line += f" ({reason['detail']})"
        lines.append(line)
    return "\n".join(lines) or "(no reason given)"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
