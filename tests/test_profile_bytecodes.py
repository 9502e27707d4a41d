"""``benchmarks/profile/bytecodes.py``: bytecodes and calls per event by Python function,
counted exactly, over the instruction count's events."""

from __future__ import annotations

import doctest
import sys

import orjson
import pytest

from benchmarks.profile import bytecodes
from benchmarks.profile.bytecodes import count, per_event


def test_the_module_doctests_pass() -> None:
    assert doctest.testmod(bytecodes).failed == 0


def test_counts_are_exact_and_repeat() -> None:
    def body(n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total

    small = count(lambda: body(1))[0][body.__code__]
    large = count(lambda: body(11))[0][body.__code__]
    # Ten more turns of the loop: the same bytecodes ten more times, every run.
    assert (large - small) % 10 == 0 and large > small
    assert count(lambda: body(11))[0][body.__code__] == large


def test_a_tracer_already_set_is_put_back() -> None:
    def mine(frame: object, event: str, arg: object) -> None:
        return None

    sys.settrace(mine)
    try:
        count(lambda: None)
        assert sys.gettrace() is mine
    finally:
        sys.settrace(None)


def test_per_event_divides_by_the_events_and_lists_the_heaviest_first() -> None:
    def light() -> None:
        return None

    def heavy() -> int:
        return sum(i for i in range(20))

    ops, calls = count(lambda: [light() for _ in range(6)] + [heavy() for _ in range(3)])
    out = per_event(ops, calls, events=3)
    names = [f["function"] for f in out["top_functions"]]
    assert names.index(
        "test_per_event_divides_by_the_events_and_lists_the_heaviest_first.<locals>.heavy"
    ) < names.index(
        "test_per_event_divides_by_the_events_and_lists_the_heaviest_first.<locals>.light"
    )
    by_name = {f["function"].rsplit(".", 1)[-1]: f for f in out["top_functions"]}
    assert by_name["light"]["calls_per_event"] == 2.0
    assert by_name["heavy"]["calls_per_event"] == 1.0
    assert out["bytecodes_per_event"] == round(sum(ops.values()) / 3, 1)


def test_the_processor_runs_one_inference_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert bytecodes.main(["--events", "40", "--top", "60"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    rows = {f["function"]: f for f in out["top_functions"]}
    assert rows["Processor._inference"]["calls_per_event"] == 1.0
    assert rows["Processor._inference"]["where"].startswith("streams/processing/processor.py:")
    assert (
        0
        < sum(f["bytecodes_per_event"] for f in out["top_functions"])
        <= out["bytecodes_per_event"] + 1
    )
