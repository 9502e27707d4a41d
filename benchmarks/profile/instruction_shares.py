"""Where a callgrind count's instructions go, per event, down to the C function.

``processor.py --only instructions`` counts two children that differ only in how many
events they process (``n1``, ``n2``); ``--callgrind-out DIR`` keeps their callgrind
files. This reads both through ``callgrind_annotate`` (valgrind's, beside ``valgrind``)
and prints one JSON object: the instructions per event, ``(Ir(n2) - Ir(n1)) / (n2 - n1)``,
by group and by function (own instructions: what a function's own code ran, not its
callees'). Start-up, imports and warm-up cancel out, as in the count itself.

Groups: the interpreter's own C by source file (``python:ceval`` is the bytecode loop,
``python:obmalloc`` the small-object allocator, ``python:dictobject`` dicts, ...; a
header's inlined code apart: ``python:object.h`` is mostly reference counting), or as one
group, ``python``, for an interpreter without debug information (Debian's python3.11,
which the Makefile makes ``.venv`` with: its functions are named, not its files); OpenBLAS
(``openblas``: numpy and scipy each bundle a copy, and either may get the name); an
extension module by the package it came from (``numpy``, ``msgspec``, ``orjson``, ...);
any other shared object by its name (``libc``).

A Python function does not show as itself here: its bytecode runs in the loop
(``_PyEval_EvalFrameDefault``) and its work in the C it calls. ``make profile`` (py-spy)
says which Python functions those are; this says what kind of work they do.

``python benchmarks/profile/instruction_shares.py OUT_N1 OUT_N2 --events N1 N2 [--top K]``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# A function's line in callgrind_annotate's listing: "  1,234 (12.3%)  file:function [object]"
# (the percentage is absent with some options; the object is absent for a few frames).
_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")
# callgrind names each level of a recursion apart: f, f'2, f'3, ...
_RECURSION = re.compile(r"'\d+(?= \[|$)")
_SITE_PACKAGES = re.compile(r"/site-packages/([^/]+)/")
# A source file of the interpreter: ceval.c, object.h, or a clinic file (dictobject.c.h).
_PYTHON_SOURCE = re.compile(r"/Python-[\d.]+\w*/(?:.*/)?(\w+)(\.c)?(\.h)?:")


def parse_listing(text: str) -> Counter[str]:
    """Own instructions per function of a ``callgrind_annotate`` listing, the levels of
    a recursion summed (``f'2`` counts as ``f``); the ``PROGRAM TOTALS`` line is left out.

    >>> parse_listing('''
    ... 9,000 (100.0%)  PROGRAM TOTALS
    ... 5,000 (55.6%)  x/ceval.c:_PyEval_EvalFrameDefault [/lib/libpython3.11.so.1.0]
    ... 1,000 (11.1%)  x/ceval.c:_PyEval_EvalFrameDefault'2 [/lib/libpython3.11.so.1.0]
    ... ''')["x/ceval.c:_PyEval_EvalFrameDefault [/lib/libpython3.11.so.1.0]"]
    6000
    """
    out: Counter[str] = Counter()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None or m.group(2).startswith("PROGRAM TOTALS"):
            continue
        out[_RECURSION.sub("", m.group(2))] += int(m.group(1).replace(",", ""))
    return out


def group_of(function: str) -> str:
    """The group a function's instructions count to (see the module doc).

    >>> group_of("/b/Python-3.11.7/Objects/dictobject.c:insertdict [/r/libpython3.11.so.1.0]")
    'python:dictobject'
    >>> group_of("???:PyArray_Pack [/v/lib/python3.11/site-packages/numpy/_core/_m.so]")
    'numpy'
    >>> group_of("./string/memmove.S:__memcpy_avx [/usr/lib/x86_64-linux-gnu/libc.so.6]")
    'libc'
    >>> group_of("???:_PyEval_EvalFrameDefault [/usr/bin/python3.11]")  # no debug info
    'python'
    """
    obj = function.rsplit(" [", 1)[1].rstrip("]") if " [" in function else ""
    if "libpython" in obj or (not obj and "/Python-" in function):
        source = _PYTHON_SOURCE.search(function)
        if source is None:
            return "python"
        name, c, h = source.groups()
        return f"python:{name}.h" if h and not c else f"python:{name}"
    if re.fullmatch(r"python3(\.\d+)?", Path(obj).name):  # an interpreter linked statically
        return "python"
    if "openblas" in Path(obj).name:  # numpy and scipy each bundle a copy
        return "openblas"
    package = _SITE_PACKAGES.search(obj)
    if package:
        return package.group(1).split(".")[0]
    if not obj:
        return "?"
    return Path(obj).name.split(".")[0].split("-")[0]


def per_event(first: Counter[str], second: Counter[str], n1: int, n2: int) -> dict[str, float]:
    """``(second - first) / (n2 - n1)`` per function: what each of the extra events cost
    (negative for the few that ran less in the longer run, such as a once-only step that
    fell in the shorter run; they are kept, so that the groups sum to the count).

    Functions are matched by ``file:function`` alone: callgrind names a function without
    debug information (``???:__popcountdi2``, which libpython and msgspec each carry a
    copy of) by whichever object it met it in first, which can differ between the two
    runs. The result names each with its object in the longer run.
    """
    if n2 <= n1:
        raise ValueError(f"the second run must process more events: {n1}, {n2}")
    a, objects_first = _by_name(first)
    b, objects = _by_name(second)
    out = {}
    for name in a.keys() | b.keys():
        diff = (b[name] - a[name]) / (n2 - n1)
        if diff:
            obj = objects.get(name) or objects_first.get(name)
            out[f"{name} [{obj}]" if obj else name] = diff
    return out


def _by_name(listing: Counter[str]) -> tuple[Counter[str], dict[str, str]]:
    """Instructions per ``file:function`` (objects merged), and the object of each
    (the one with the most instructions)."""
    counts: Counter[str] = Counter()
    best: dict[str, tuple[int, str]] = {}
    for key, v in listing.items():
        name, _, obj = key.partition(" [")
        counts[name] += v
        if obj and v > best.get(name, (-1, ""))[0]:
            best[name] = (v, obj.rstrip("]"))
    return counts, {name: obj for name, (_, obj) in best.items()}


def shares(per_fn: dict[str, float], top: int = 25) -> dict[str, Any]:
    """The JSON object of the module doc from instructions per event per function."""
    total = sum(per_fn.values())
    groups: Counter[str] = Counter()
    for fn, v in per_fn.items():
        groups[group_of(fn)] += v  # type: ignore[assignment]
    return {
        "instructions_per_event": round(total),
        "by_group": [
            {"group": g, "per_event": round(v), "share": round(v / total, 4)}
            for g, v in groups.most_common()
            if v / total >= 0.001
        ],
        "top_functions": [
            {"function": _short(f), "group": group_of(f), "per_event": round(v)}
            for f, v in sorted(per_fn.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def _short(function: str) -> str:
    """``file:function`` without the build's directories (``ceval.c:_PyEval_...``)."""
    where = function.split(" [", 1)[0]
    path, _, name = where.rpartition(":")
    return f"{Path(path).name}:{name}" if path else where


def annotate(path: Path) -> str:
    """``callgrind_annotate`` of one callgrind file, every function listed."""
    tool = shutil.which("callgrind_annotate")
    if tool is None:
        raise RuntimeError("needs callgrind_annotate (Debian's valgrind package)")
    proc = subprocess.run(  # noqa: S603 - a file name the caller gave, as one argument
        [tool, "--threshold=100", "--inclusive=no", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path, help="callgrind file of the run with N1 events")
    ap.add_argument("second", type=Path, help="callgrind file of the run with N2 events")
    ap.add_argument("--events", type=int, nargs=2, metavar=("N1", "N2"), required=True)
    ap.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    args = ap.parse_args()
    n1, n2 = args.events
    per_fn = per_event(
        parse_listing(annotate(args.first)), parse_listing(annotate(args.second)), n1, n2
    )
    print(json.dumps(shares(per_fn, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
