"""``benchmarks/profile/top_functions.py``: own and cumulative shares of collapsed stacks."""

from __future__ import annotations

import pytest

from benchmarks.profile.top_functions import parse, top

STACKS = [
    "main (b.py:1);timed (b.py:5);run (b.py:9);inference (p.py:1);decode (s.py:1) 6",
    "main (b.py:1);timed (b.py:5);run (b.py:9);inference (p.py:1) 2",
    # Recursion: f counted once in the cumulative table, own time to the innermost f.
    "main (b.py:1);timed (b.py:5);run (b.py:9);f (r.py:1);f (r.py:1) 2",
    "main (b.py:1);warm_up (b.py:20);inference (p.py:1) 90",
    " 5",
]


def test_under_keeps_only_the_samples_inside_the_function_and_counts_recursion_once() -> None:
    kept, own, cumulative = top(parse(STACKS), under="timed")
    assert kept == 10
    assert own == {"decode (s.py:1)": 6, "inference (p.py:1)": 2, "f (r.py:1)": 2}
    assert cumulative["run (b.py:9)"] == 10
    assert cumulative["inference (p.py:1)"] == 8
    assert cumulative["f (r.py:1)"] == 2
    assert "timed (b.py:5)" not in cumulative and "main (b.py:1)" not in cumulative


def test_without_under_every_sample_with_a_python_frame_counts() -> None:
    kept, own, cumulative = top(parse(STACKS))
    assert kept == 100
    assert own["inference (p.py:1)"] == 92
    assert cumulative["main (b.py:1)"] == 100


def test_a_line_without_a_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse(["a (x.py:1) 3", "a (x.py:1);b (x.py:2)"])
