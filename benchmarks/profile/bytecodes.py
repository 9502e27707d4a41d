"""Python bytecodes per event, by function: where a worker's Python work goes, counted.

The instruction count (``benchmarks/processor.py --only instructions``) says how much a
worker does per event, and ``instruction_shares.py`` what kind of C code does it; most of
it is the interpreter's loop (~75 %), which Python 3.11 does not attribute to Python
functions. This counts, with ``sys.settrace``'s opcode events, the bytecodes each Python
function executes and how often it is called, per event, over the events of the
instruction count (the same events, caps, clock and warm-up, in process): exact and the
same from run to run, whatever the machine is doing, where py-spy (``make profile``)
samples wall time. Tracing slows the counted events ~30x; it changes no bytecode run.

What it showed (issue 18, twenty-sixth session): ~2,160 bytecodes and ~35 Python calls
per event, spread over some 30 functions of 20-280 bytecodes each; a batch's rows handed
over in one call instead of one call each ran as many bytecodes (the loop does what the
calls did), so the count went up, not down.

``python benchmarks/profile/bytecodes.py [--events N] [--warmup N] [--top N] [--batch N]``
(``--batch``: the events in batches of N, default the benchmarks' ``worker.batch_size``,
1,000) prints one JSON object: ``bytecodes_per_event``, ``calls_per_event`` (Python
functions) and
``top_functions`` (``function``, ``where``, ``bytecodes_per_event``, ``calls_per_event``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]

#: Where a function is: (file, relative to the repository when in it; first line; name).
Where = tuple[str, int, str]


def count(work: Callable[[], object]) -> tuple[Counter[CodeType], Counter[CodeType]]:
    """Bytecodes executed and calls made, per code object, while ``work()`` runs (on this
    thread; any tracer already set is put back after).

    >>> def f(n):
    ...     total = 0
    ...     for i in range(n):
    ...         total += i
    ...     return total
    >>> ops, calls = count(lambda: [f(1), f(10)])
    >>> calls[f.__code__], ops[f.__code__] > 2 * count(lambda: f(1))[0][f.__code__]
    (2, True)
    """
    ops: Counter[CodeType] = Counter()
    calls: Counter[CodeType] = Counter()

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            ops[frame.f_code] += 1
        elif event == "call":
            frame.f_trace_opcodes = True
            calls[frame.f_code] += 1
        return tracer

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(before)
    # The lambda or function handed in is not the work counted.
    own = getattr(work, "__code__", None)
    if own is not None:
        ops.pop(own, None)
        calls.pop(own, None)
    return ops, calls


def where(code: CodeType) -> Where:
    """The file (relative to the repository when it is in it), first line and name."""
    path = Path(code.co_filename)
    try:
        name = str(path.resolve().relative_to(ROOT))
    except ValueError:
        name = code.co_filename
    return name, code.co_firstlineno, code.co_qualname


def per_event(
    ops: Counter[CodeType], calls: Counter[CodeType], events: int, top: int = 40
) -> dict[str, Any]:
    """The JSON object of the module doc from :func:`count`'s counts over ``events``.

    >>> def g():
    ...     return 1
    >>> ops, calls = count(lambda: [g() for _ in range(4)])
    >>> out = per_event(ops, calls, events=2)
    >>> [(f["function"], f["calls_per_event"]) for f in out["top_functions"]][-1]
    ('g', 2.0)
    """
    total = sum(ops.values())
    rows = []
    for code, n in ops.most_common(top):
        file, line, name = where(code)
        rows.append(
            {
                "function": name,
                "where": f"{file}:{line}",
                "bytecodes_per_event": round(n / events, 1),
                "calls_per_event": round(calls[code] / events, 2),
            }
        )
    return {
        "events": events,
        "bytecodes_per_event": round(total / events, 1),
        "calls_per_event": round(sum(calls.values()) / events, 2),
        "top_functions": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000, help="events counted")
    parser.add_argument("--warmup", type=int, default=None, help="events before them")
    parser.add_argument("--top", type=int, default=40, help="functions listed")
    parser.add_argument(
        "--batch", type=int, default=None, help="events per batch (default: the worker's)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
    from benchmarks.processor import (
        COUNT_CAPS,
        COUNT_WARMUP,
        StepClock,
        make_events,
        make_runner,
    )
    from streams.processing.processor import Outgoing

    warmup = COUNT_WARMUP if args.warmup is None else args.warmup
    run = make_runner(
        COUNT_CAPS,
        make_events(20_000),
        Outgoing(),
        StepClock(),
        batched=True,
        batch_size=args.batch,
    )
    run(warmup)
    ops, calls = count(lambda: run(args.events))
    batch = {} if args.batch is None else {"batch_size": args.batch}
    out = {"warmup": warmup, **batch, **per_event(ops, calls, args.events, args.top)}
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
