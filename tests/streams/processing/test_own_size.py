"""OwnSizeJson: JSON bytes that weigh what they hold, and stay as they were returned."""

from __future__ import annotations

import random
import tracemalloc

import orjson
import pytest

from streams.processing.own_size import OwnSizeJson


def test_the_text_round_trips_floats_keys_order_and_unicode() -> None:
    own = OwnSizeJson()
    rng = random.Random(7)
    for _ in range(2_000):
        scores = {f"c{i}-é✓": rng.random() ** rng.choice([1, 5, 40]) for i in range(5)}
        scores["tiny"] = 5e-324
        scores["big"] = 1e22
        back = orjson.loads(own.dumps(scores))
        assert back == scores and list(back) == list(scores)  # floats exact, order kept


def test_a_result_is_not_changed_by_the_next_calls() -> None:
    own = OwnSizeJson()
    long = own.dumps({"k" * 500: "v" * 500})  # grows the buffer past its start
    short = own.dumps({"region": "eu"})
    assert orjson.loads(long) == {"k" * 500: "v" * 500}
    assert short == b'{"region":"eu"}'


def test_a_result_weighs_what_an_exact_copy_does() -> None:
    own = OwnSizeJson()
    obj = {"cat": 0.6, "dog": 0.4}
    n = 5_000

    def traced(make) -> float:  # type: ignore[no-untyped-def]
        tracemalloc.start()
        try:
            kept = [make() for _ in range(n)]
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert len(kept) == n
        return size / n

    exact = traced(lambda: bytes(bytearray(b'{"cat":0.6,"dog":0.4}')))
    assert traced(lambda: own.dumps(obj)) == pytest.approx(exact, abs=2)
    # What it is there for: orjson's own bytes hold its write buffer.
    assert traced(lambda: orjson.dumps(obj)) > 10 * exact
