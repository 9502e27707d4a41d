"""``benchmarks/profile/instruction_shares.py``: a callgrind count's instructions per event
by C function and group, from two runs that differ only in how many events they process."""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.processor import callgrind_ir
from benchmarks.profile import instruction_shares
from benchmarks.profile.instruction_shares import (
    annotate,
    group_of,
    parse_listing,
    per_event,
    shares,
)
from tests.deploy.conftest import require_tool

PY = "/b/Python-3.11.7"
LIBPY = "[/r/lib/libpython3.11.so.1.0]"
NUMPY = "[/v/lib/python3.11/site-packages/numpy/_core/_multiarray_umath.cpython-311.so]"


def listing(rows: dict[str, int]) -> str:
    """A ``callgrind_annotate`` listing of ``rows`` (function -> own instructions)."""
    total = sum(rows.values())
    lines = ["Ir  file:function", f"{total:,} (100.0%)  PROGRAM TOTALS", ""]
    lines += [f"{v:,} ({100 * v / total:.2f}%)  {f}" for f, v in rows.items()]
    return "\n".join(lines)


def test_the_module_doctests_pass() -> None:
    assert doctest.testmod(instruction_shares).failed == 0


def test_a_listing_is_read_with_the_levels_of_a_recursion_summed() -> None:
    eval_loop = f"{PY}/Python/ceval.c:_PyEval_EvalFrameDefault {LIBPY}"
    text = listing(
        {
            eval_loop: 5_000,
            f"{PY}/Python/ceval.c:_PyEval_EvalFrameDefault'2 {LIBPY}": 1_200,
            f"???:PyArray_Pack {NUMPY}": 300,
            "???:0x0000000000012345": 7,
        }
    )
    got = parse_listing(text)
    assert got == {eval_loop: 6_200, f"???:PyArray_Pack {NUMPY}": 300, "???:0x0000000000012345": 7}


@pytest.mark.parametrize(
    ("function", "group"),
    [
        (f"{PY}/Objects/dictobject.c:insertdict {LIBPY}", "python:dictobject"),
        (f"{PY}/./Include/object.h:_PyFrame_Clear {LIBPY}", "python:object.h"),
        (f"{PY}/./Include/object.h:_PyEval_EvalFrameDefault", "python:object.h"),
        (f"???:PyArray_Pack {NUMPY}", "numpy"),
        (f"{PY}/Objects/clinic/dictobject.c.h:dict_get {LIBPY}", "python:dictobject"),
        (
            "???:blas_thread_server [/v/site-packages/scipy.libs/libscipy_openblas64_-3.so]",
            "openblas",
        ),
        ("???:json_decode [/v/site-packages/msgspec/_core.cpython-311.so]", "msgspec"),
        ("x.S:__memcpy_avx [/usr/lib/x86_64-linux-gnu/libc.so.6]", "libc"),
        ("???:0x0000000000012345", "?"),
        # Debian's python3.11 (the Makefile's): linked statically, no debug information.
        ("???:_PyEval_EvalFrameDefault [/usr/bin/python3.11]", "python"),
        ("???:0x00000000004fee40 [/usr/bin/python3.11]", "python"),
        ("???:main [/usr/local/bin/python3]", "python"),
        ("???:f [/v/site-packages/python3x/_m.so]", "python3x"),  # a package, not it
    ],
)
def test_functions_fall_into_their_groups(function: str, group: str) -> None:
    assert group_of(function) == group


def test_per_event_is_the_difference_over_the_extra_events_negatives_kept() -> None:
    first = Counter({"a": 1_000, "b": 500, "once": 40, "same": 9})
    second = Counter({"a": 5_000, "b": 2_500, "same": 9})
    assert per_event(first, second, 1_000, 5_000) == {"a": 1.0, "b": 0.5, "once": -0.01}
    with pytest.raises(ValueError, match="more events"):
        per_event(first, second, 5_000, 5_000)


def test_groups_sum_to_the_count_and_functions_come_largest_first() -> None:
    per_fn = {
        f"{PY}/Python/ceval.c:_PyEval_EvalFrameDefault {LIBPY}": 600.0,
        f"{PY}/Objects/dictobject.c:insertdict {LIBPY}": 100.0,
        f"???:PyArray_Pack {NUMPY}": 310.0,
        f"{PY}/Objects/obmalloc.c:_PyObject_Free {LIBPY}": -10.0,
    }
    got = shares(per_fn, top=2)
    assert got["instructions_per_event"] == 1_000
    by_group = {g["group"]: g["per_event"] for g in got["by_group"]}
    assert by_group == {"python:ceval": 600, "numpy": 310, "python:dictobject": 100}
    assert [f["function"] for f in got["top_functions"]] == [
        "ceval.c:_PyEval_EvalFrameDefault",
        "???:PyArray_Pack",
    ]


# The counted children of the end-to-end test: the same start, then n rounds of work that
# builds and sorts a list (listobject.c) and fills a dict (dictobject.c).
CHILD = """
import sys
for i in range(int(sys.argv[1])):
    d = {}
    for j in sorted(range(200, 0, -1)):
        d[str(j)] = j
"""


def test_two_real_counts_give_the_extra_rounds_work(tmp_path: Path) -> None:
    valgrind = require_tool("valgrind", "valgrind")
    require_tool("callgrind_annotate", "valgrind")
    files = {n: tmp_path / f"child.{n}.callgrind" for n in (20, 120)}
    counts = {
        n: callgrind_ir(valgrind, [sys.executable, "-c", CHILD, str(n)], tmp_path, out)
        for n, out in files.items()
    }
    per_fn = per_event(
        parse_listing(annotate(files[20])), parse_listing(annotate(files[120])), 20, 120
    )
    got = shares(per_fn)
    # The functions' own instructions add up to the whole count (start-up cancelled).
    assert got["instructions_per_event"] == pytest.approx((counts[120] - counts[20]) / 100, 0.01)
    groups = {g["group"] for g in got["by_group"][:8]}
    functions = {f["function"].split(":")[-1] for f in got["top_functions"]}
    if "python" not in groups:  # an interpreter with debug information: by source file
        assert {"python:ceval", "python:dictobject"} <= groups
        assert "insertdict" in functions or "_PyDict_SetItem_Take2" in functions
    else:  # one without (Debian's python3.11, the Makefile's): one group, first
        assert got["by_group"][0]["group"] == "python"
        assert got["by_group"][0]["share"] > 0.5
        assert "_PyEval_EvalFrameDefault" in functions
    # Not a trace of an import: start-up is the same in both runs.
    assert all("import" not in f.lower() for f in functions)


def test_the_command_asks_for_the_events_of_both_runs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.callgrind", tmp_path / "b.callgrind"
    for path in (a, b):
        path.write_text("not a callgrind file")
    proc = subprocess.run(
        [sys.executable, "benchmarks/profile/instruction_shares.py", str(a), str(b)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 2  # --events is required
    assert "--events" in proc.stderr


def test_a_function_named_after_another_object_in_the_longer_run_is_still_matched() -> None:
    # callgrind names a function without debug information by the first object it met
    # it in: libgcc's __popcountdi2, which libpython and msgspec both carry.
    msgspec = "[/v/site-packages/msgspec/_core.cpython-311.so]"
    first = Counter({f"???:__popcountdi2 {LIBPY}": 25_000, "???:f [/x/libc.so.6]": 10})
    second = Counter({f"???:__popcountdi2 {msgspec}": 31_000, "???:f [/x/libc.so.6]": 10})
    got = per_event(first, second, 1_000, 5_000)
    assert got == {f"???:__popcountdi2 {msgspec}": 1.5}
    assert group_of(next(iter(got))) == "msgspec"
