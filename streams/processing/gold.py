"""Gold questions (issue 15): known-answer items mixed into the escalations stream.

A model's ``review.gold`` file holds InferenceEvents, each with its known answer
(``label`` for a classification model, ``value`` for a regression one). The worker sends
a share of them to review like any escalation, and a label on one scores its reviewer
instead of the model.

**Gold event ids are recognised without state.** Each gold escalation gets a fresh id that
reads like a random UUID: a nonce drawn from the escalation it rides along with, the
gold item's index encrypted with a pad from that nonce, and a MAC, all from HMAC-SHA256
under ``key``. :meth:`GoldIds.read` takes any event id and returns the gold index if, and
only if, the MAC checks out (a real id passes by chance with probability 2⁻⁴⁸). So a
label on a gold item is known as such after any restart, on any worker, with nothing
kept or checkpointed, and the id tells a reviewer nothing without the key.

>>> ids = GoldIds(b"secret")
>>> gold = ids.make("fraud", "e-17", 3)
>>> ids.read("fraud", gold), ids.read("fraud", "e-17"), ids.read("churn", gold)
(3, None, None)
>>> gold == ids.make("fraud", "e-17", 3), gold == ids.make("fraud", "e-18", 3)
(True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from detectors.audit import audit_draw
from streams.errors import ConfigError, InvalidEventError
from streams.events.records import REDACTED, escalation_id, prediction_dict
from streams.events.schema import InferenceEvent, LabelEvent, decode_inference

__all__ = ["GoldDesk", "GoldIds", "GoldItem", "GoldSet", "load_gold_set"]

#: Lines (items) a gold file may hold: each item is kept in memory.
MAX_GOLD_ITEMS = 100_000

#: Problems listed when a gold file is refused.
_MAX_PROBLEMS = 5


class GoldItem(NamedTuple):
    event: InferenceEvent
    truth: str | float


class GoldSet:
    """The gold items of one model, in file order (an item's index is its line's rank
    among the items)."""

    def __init__(self, items: list[GoldItem]) -> None:
        if not items:
            raise ValueError("a gold set needs at least one item")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def load(cls, path: str | Path, *, max_items: int = MAX_GOLD_ITEMS) -> GoldSet:
        """Read a JSONL gold file; a :class:`~streams.errors.ConfigError` names the first
        bad lines and why (blank lines are skipped)."""
        items: list[GoldItem] = []
        problems: list[str] = []
        try:
            lines = Path(path).read_bytes().splitlines()
        except OSError as exc:
            raise ConfigError(f"gold file {str(path)!r} cannot be read: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if len(items) >= max_items:
                problems.append(f"more than {max_items} items")
                break
            try:
                items.append(_item(line))
            except (InvalidEventError, ValueError) as exc:
                problems.append(f"line {number}: {exc}")
                if len(problems) >= _MAX_PROBLEMS:
                    break
        if problems:
            raise ConfigError(f"gold file {str(path)!r}: " + "; ".join(problems))
        if not items:
            raise ConfigError(f"gold file {str(path)!r} holds no item")
        return cls(items)


def _item(line: bytes) -> GoldItem:
    event = decode_inference(line)
    raw = orjson.loads(line)
    label, value = raw.get("label"), raw.get("value")
    if (label is None) == (value is None):
        raise ValueError("a gold item needs its known answer: exactly one of label, value")
    if label is not None:
        if not isinstance(label, str) or not 1 <= len(label) <= 256:
            raise ValueError(f"label must be a string of 1-256 characters; got {label!r}")
        return GoldItem(event, label)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number; got {value!r}")
    return GoldItem(event, float(value))


class GoldIds:
    """Make and recognise gold event ids under ``key`` (keep it out of reviewers' reach:
    with it, an id says whether it is gold)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the gold id key must not be empty")
        self._key = key

    def make(self, model_id: str, trigger_event_id: str, index: int) -> str:
        """The id of gold item ``index`` sent along with event ``trigger_event_id``."""
        if not 0 <= index < 2**32:
            raise ValueError(f"gold index out of range: {index!r}")
        nonce = self._mac(b"n", model_id, trigger_event_id.encode())[:6]
        pad = int.from_bytes(self._mac(b"p", model_id, nonce)[:4], "big")
        hidden = (index ^ pad).to_bytes(4, "big")
        tag = self._mac(b"m", model_id, nonce + index.to_bytes(4, "big"))[:6]
        h = (nonce + hidden + tag).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def read(self, model_id: str, event_id: str) -> int | None:
        """The gold index that ``event_id`` stands for, or ``None`` (not a gold id)."""
        if len(event_id) != 36 or event_id.count("-") != 4:
            return None
        try:
            raw = bytes.fromhex(event_id.replace("-", ""))
        except ValueError:
            return None
        if len(raw) != 16:
            return None
        nonce, hidden, tag = raw[:6], raw[6:10], raw[10:]
        pad = int.from_bytes(self._mac(b"p", model_id, nonce)[:4], "big")
        index = int.from_bytes(hidden, "big") ^ pad
        expected = self._mac(b"m", model_id, nonce + index.to_bytes(4, "big"))[:6]
        return index if hmac.compare_digest(tag, expected) else None

    def _mac(self, purpose: bytes, model_id: str, data: bytes) -> bytes:
        message = purpose + b"\x1f" + model_id.encode() + b"\x1f" + data
        return hmac.new(self._key, message, hashlib.sha256).digest()


@lru_cache(maxsize=64)
def load_gold_set(path: str) -> GoldSet:
    """A gold file, read once per path."""
    return GoldSet.load(path)


class GoldDesk:
    """One model's gold questions at work: which escalations bring a gold item along, the
    gold escalation itself, and the score of a label on one.

    **Which and how many.** With every escalation the worker sends (after the budget: gold
    items follow the budget's rate, never its priority cut), a deterministic draw (the
    audit's, salted) below ``rate`` sends one gold item too, the item picked by a hash of
    the same event. **What it looks like.** The triggering escalation's record with the
    gold event's prediction, features (redacted as configured), segment and metadata, a
    fresh gold id (:class:`GoldIds`), ``inclusion_probability`` 1 and ``reviews_wanted`` 1:
    its priority, reasons, timestamps and model version are those of the escalation it
    rides along with, so it sits in the queue among them. Choose gold items that look like
    escalated ones: an item whose prediction contradicts the copied reasons stands out.
    """

    def __init__(
        self,
        gold: GoldSet,
        ids: GoldIds,
        *,
        rate: float,
        seed: int = 0,
        tolerance: float = 0.0,
        redacted: frozenset[str] = frozenset(),
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1]; got {rate!r}")
        self.gold = gold
        self.ids = ids
        self.rate = rate
        self.seed = seed
        self.tolerance = tolerance
        self.redacted = redacted

    def escalation(self, model_id: str, trigger: Mapping[str, Any]) -> dict[str, Any] | None:
        """The gold escalation to send along with ``trigger`` (an escalation record), or
        ``None`` when the draw says no."""
        event_id = str(trigger["event_id"])
        if self.rate <= 0.0 or audit_draw(model_id, "\0gold\0" + event_id, self.seed) >= self.rate:
            return None
        pick = int.from_bytes(hashlib.sha256(f"{model_id}\x1f{event_id}".encode()).digest()[:8])
        index = pick % len(self.gold)
        item = self.gold.items[index].event
        gold_id = self.ids.make(model_id, event_id, index)
        features = item.features
        if self.redacted and not self.redacted.isdisjoint(features):
            features = {k: (REDACTED if k in self.redacted else v) for k, v in features.items()}
        return {
            **trigger,
            "escalation_id": escalation_id(model_id, gold_id),
            "event_id": gold_id,
            "prediction": prediction_dict(item.prediction),
            "features": features,
            "segment": item.segment,
            "trace_id": None,
            "metadata": item.metadata,
            "inclusion_probability": 1.0,
            "reviews_wanted": 1,
        }

    def score(self, label: LabelEvent) -> bool | None:
        """Whether ``label`` answers a gold item rightly; ``None`` when its event is not a
        gold item of this model."""
        index = self.ids.read(label.model_id, label.event_id)
        if index is None or index >= len(self.gold):
            return None
        truth = self.gold.items[index].truth
        if isinstance(truth, str):
            return label.label == truth
        return label.value is not None and abs(label.value - truth) <= self.tolerance
