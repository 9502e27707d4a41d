"""Gold items and their ids (streams/processing/gold.py)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from streams.errors import ConfigError
from streams.processing.gold import GoldIds, GoldSet


def _gold_line(i: int, **answer: object) -> bytes:
    event = {
        "event_id": f"g{i}",
        "model_id": "fraud",
        "ts": "2026-12-01T10:00:00+00:00",
        "prediction": {"label": "ok", "confidence": 0.6},
        "features": {"amount": i},
        **answer,
    }
    return orjson.dumps(event)


def test_a_gold_file_loads_in_order_with_its_answers(tmp_path: Path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_bytes(b"\n".join([_gold_line(0, label="fraud"), b"", _gold_line(1, value=2.5)]))
    gold = GoldSet.load(path)
    assert len(gold) == 2
    assert [(item.event.event_id, item.truth) for item in gold.items] == [
        ("g0", "fraud"),
        ("g1", 2.5),
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (_gold_line(0), "exactly one of label, value"),
        (_gold_line(0, label="a", value=1), "exactly one of label, value"),
        (_gold_line(0, value=True), "finite number"),
        (_gold_line(0, value="3"), "finite number"),
        (_gold_line(0, label=""), "1-256 characters"),
        (b"{not json", "line 1"),
        (orjson.dumps({"event_id": "x", "label": "a"}), "line 1"),
    ],
    ids=["no-answer", "two-answers", "bool", "string", "empty-label", "not-json", "not-an-event"],
)
def test_a_bad_gold_file_is_refused_naming_the_line(tmp_path: Path, line: bytes, why: str) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_bytes(line)
    with pytest.raises(ConfigError, match=why):
        GoldSet.load(path)


def test_missing_empty_and_oversized_gold_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        GoldSet.load(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_bytes(b"\n\n")
    with pytest.raises(ConfigError, match="no item"):
        GoldSet.load(tmp_path / "empty.jsonl")
    (tmp_path / "big.jsonl").write_bytes(b"\n".join(_gold_line(i, label="a") for i in range(4)))
    with pytest.raises(ConfigError, match="more than 3 items"):
        GoldSet.load(tmp_path / "big.jsonl", max_items=3)


def test_gold_ids_round_trip_and_real_ids_are_not_gold() -> None:
    ids = GoldIds(b"k")
    rng = random.Random(5)
    for _ in range(2000):
        index = rng.randrange(2**32)
        trigger = f"e-{rng.random()}"
        made = ids.make("fraud", trigger, index)
        assert ids.read("fraud", made) == index
        assert ids.read("other", made) is None  # keyed by model too
        assert GoldIds(b"other key").read("fraud", made) is None
    import uuid

    real = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(5000)]
    assert not any(ids.read("fraud", r) is not None for r in real)
    for junk in ("", "g0", "x" * 36, "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"):
        assert ids.read("fraud", junk) is None


def test_gold_ids_differ_per_trigger_and_look_like_any_uuid() -> None:
    ids = GoldIds(b"k")
    made = {ids.make("fraud", f"e{i}", 0) for i in range(1000)}
    assert len(made) == 1000
    sample = next(iter(made))
    assert [len(part) for part in sample.split("-")] == [8, 4, 4, 4, 12]
    with pytest.raises(ValueError):
        ids.make("fraud", "e", -1)
    with pytest.raises(ValueError):
        GoldIds(b"")
