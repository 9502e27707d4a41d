"""The demo's gold questions: items with a known answer, made from its synthetic models,
written as the worker's ``review.gold`` files, and answered from their content.

The worker mixes gold items into the escalations under fresh event ids and nothing that
marks them (:class:`streams.processing.gold.GoldDesk`), so a reviewer cannot look their
answer up by id: like a person, the demo's :class:`~streams.dev.label_sources.ReviewTeam`
recognises an item by what it shows, its model, features and predicted label
(:func:`content_key`), in :class:`GoldAnswers`, read from the files the demo wrote.

A gold item should look like an escalated one (an item whose prediction contradicts the
reasons it is shown with stands out): :func:`gold_items` keeps the uncertain events of a
twin of the model (same weights, its own draws, no drift), those the demo's threshold
policy would escalate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from streams.dev.traffic import SyntheticModel

__all__ = ["GoldAnswers", "content_key", "gold_items", "write_gold_file"]

#: Gold items the demo writes per model: at ``review.gold_rate`` 0.1 of a few escalations
#: a second each comes back a few times within minutes.
GOLD_ITEMS_PER_MODEL = 50
#: Items :class:`GoldAnswers` holds at most (a few hundred bytes each).
MAX_GOLD_ANSWERS = 10_000
#: The confidence below which the demo's threshold policy escalates
#: (``escalation.min_confidence``'s default): gold items are drawn from below it.
ESCALATED_BELOW = 0.6


def content_key(model_id: str, features: Mapping[str, Any], predicted: Any) -> bytes:
    """What identifies an item by its content: canonical JSON of its model, features and
    predicted label (the scores are left out: a float printed by another writer may differ
    in its last digit and the item is still the same).

    >>> one = content_key("m", {"b": 1.5, "a": "web"}, "pos")
    >>> one == content_key("m", {"a": "web", "b": 1.5}, "pos"), one == content_key("m", {}, "pos")
    (True, False)
    """
    return orjson.dumps([model_id, features, predicted], option=orjson.OPT_SORT_KEYS)


def gold_items(
    model: SyntheticModel,
    n: int = GOLD_ITEMS_PER_MODEL,
    *,
    seed: int,
    below: float = ESCALATED_BELOW,
) -> list[dict[str, Any]]:
    """``n`` gold items of ``model``: InferenceEvents with their true ``label``, ids
    ``gold-<model>-<k>``, drawn from a twin of the model (its weights, ``seed`` for its
    draws, no drift) among the events whose confidence is below ``below``.

    >>> items = gold_items(SyntheticModel("fraud", seed=1), 3, seed=9)
    >>> [item["event_id"] for item in items], all(item["label"] in ("neg", "pos") for item in items)
    (['gold-fraud-0', 'gold-fraud-1', 'gold-fraud-2'], True)
    >>> max(max(item["prediction"]["scores"].values()) for item in items) < 0.6
    True
    """
    if type(n) is not int or n < 1:
        raise ValueError(f"n must be an integer ≥ 1; got {n!r}")
    if not 0.5 < below <= 1.0:
        raise ValueError(f"below must be in (0.5, 1]; got {below!r}")
    twin = dataclasses.replace(model, seed=seed, drift=[])
    twin.weights = list(model.weights)
    twin.cat_weight = dict(model.cat_weight)
    items: list[dict[str, Any]] = []
    # Fewer than 1 in 20 of the synthetic models' events are uncertain only with
    # weights far above the demo's: stop rather than loop on a model that is never unsure.
    for _ in range(n * 1000):
        event, truth = twin.event(f"gold-{model.model_id}-{len(items)}")
        if max(event["prediction"]["scores"].values()) < below:
            items.append({**event, "label": truth})
            if len(items) == n:
                return items
    raise ValueError(f"model {model.model_id!r} is rarely below confidence {below}: no gold")


def write_gold_file(path: Path, items: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``items`` as a JSONL gold file (one item a line) at ``path``; returns it."""
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


class GoldAnswers:
    """The known answer of each gold item, by :func:`content_key`; at most ``max_items``.

    >>> answers = GoldAnswers()
    >>> item = {"model_id": "m", "features": {"x0": 0.5}, "prediction": {"label": "pos"}}
    >>> answers.add(item, "neg")
    >>> answers.answer({**item, "event_id": "fresh-id"}), answers.answer({**item, "model_id": "n"})
    ('neg', None)
    """

    def __init__(self, max_items: int = MAX_GOLD_ANSWERS) -> None:
        if type(max_items) is not int or max_items < 1:
            raise ValueError(f"max_items must be an integer ≥ 1; got {max_items!r}")
        self.max_items = max_items
        self._answers: dict[bytes, str] = {}

    def __len__(self) -> int:
        return len(self._answers)

    @classmethod
    def read(cls, paths: Iterable[Path], max_items: int = MAX_GOLD_ANSWERS) -> GoldAnswers:
        """The answers in the JSONL gold files at ``paths`` (items with a ``label``;
        blank lines skipped). Raises ``ValueError`` on a line that is no gold item."""
        answers = cls(max_items)
        for path in paths:
            for number, line in enumerate(Path(path).read_bytes().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                    answers.add(item, item["label"])
                except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError: a ValueError
                    raise ValueError(
                        f"{path}:{number}: not a gold item with a label: {exc}"
                    ) from None
        return answers

    def add(self, item: Mapping[str, Any], answer: str) -> None:
        """Learn ``answer`` for ``item`` (an InferenceEvent or an escalation of one)."""
        if not isinstance(answer, str):
            raise ValueError(f"a gold answer must be a label (text); got {answer!r}")
        key = self._key(item)
        if key is None:
            raise ValueError("a gold item needs model_id, features and prediction.label")
        if key not in self._answers and len(self._answers) >= self.max_items:
            raise ValueError(f"more than {self.max_items} gold items")
        self._answers[key] = answer

    def answer(self, escalation: Mapping[str, Any]) -> str | None:
        """The known answer of the item ``escalation`` shows, or None if it is no gold item
        (or one whose features were redacted: it no longer shows what identifies it)."""
        key = self._key(escalation)
        return None if key is None else self._answers.get(key)

    @staticmethod
    def _key(item: Mapping[str, Any]) -> bytes | None:
        prediction, features = item.get("prediction"), item.get("features")
        if not isinstance(prediction, Mapping) or not isinstance(features, Mapping):
            return None
        return content_key(str(item.get("model_id")), features, prediction.get("label"))
