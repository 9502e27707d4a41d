"""Top functions of a py-spy profile in collapsed-stack form (``py-spy record --format raw``).

Each input line is ``frame;frame;...;frame COUNT``, outermost frame first (what
``py-spy record --format raw`` writes; flamegraph.pl and speedscope read the same file).
Prints two tables as text: functions by *own* time (samples where the function is the
innermost frame) and by *cumulative* time (samples where it is anywhere on the stack,
counted once per sample even when it recurses), as a share of the samples kept.

``--under NAME`` keeps only the samples whose stack passes through a function called
``NAME`` (e.g. ``timed``: the measured passes of ``benchmarks/processor.py``, not its
set-up and warm-up). Frames are kept as py-spy wrote them; record with ``--function``
so that a function is one frame (its first line) rather than one per line.

``python benchmarks/profile/top_functions.py FILE [--under NAME] [--top N]``
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """(stack, samples) per line; raises ValueError on a line that is not ``stack COUNT``.

    A sample without a Python frame (py-spy writes `` COUNT``) has an empty stack.
    """
    out = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            raise ValueError(f"line {number}: not 'frame;...;frame COUNT': {line[:80]!r}")
        out.append((stack.split(";") if stack else [], int(count)))
    return out


def function_name(frame: str) -> str:
    """``name`` of a py-spy frame ``name (file:line)``."""
    return frame.split(" (", 1)[0]


def top(
    stacks: list[tuple[list[str], int]], under: str | None = None
) -> tuple[int, Counter[str], Counter[str]]:
    """(samples kept, own samples per frame, cumulative samples per frame); samples
    without a Python frame are left out."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    kept = 0
    for stack, count in stacks:
        if under is not None:
            names = [function_name(f) for f in stack]
            if under not in names:
                continue
            # Only what runs inside ``under``: the frames around it are the same in
            # every kept sample and would top the cumulative table at 100 %.
            stack = stack[names.index(under) + 1 :]
        if not stack:
            continue
        kept += count
        own[stack[-1]] += count
        for frame in set(stack):
            cumulative[frame] += count
    return kept, own, cumulative


def table(title: str, counts: Counter[str], total: int, n: int) -> str:
    rows = [f"{title} ({total} samples)", f"{'share':>7}  {'samples':>8}  function (file:line)"]
    for frame, count in counts.most_common(n):
        rows.append(f"{count / total:7.1%}  {count:8d}  {frame}")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path, help="collapsed stacks (py-spy record --format raw)")
    ap.add_argument("--under", help="keep only samples inside this function (by name)")
    ap.add_argument("--top", type=int, default=25, help="rows per table")
    args = ap.parse_args()
    stacks = parse(args.file.read_text().splitlines())
    kept, own, cumulative = top(stacks, args.under)
    if not kept:
        print(f"no samples{f' under {args.under}' if args.under else ''} in {args.file}")
        return 1
    print(table("By own time", own, kept, args.top))
    print()
    print(table("By cumulative time", cumulative, kept, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
