"""Per-event cost of vigil's processing core, in process, without Kafka; prints ONE JSON object.

The events are the ones ``benchmarks/throughput.py`` sends (10 models, 20 numeric + 3
categorical features, conformal policy, all detectors on). Each figure is the median of
``--repeats`` passes over ``--events`` messages, next to a baseline measured in the
same run: ``orjson.loads`` of the same bytes (what a bare consumer does per message).

* ``us_per_event``: :meth:`Processor.inference`, all included (validation,
  monitoring, decision, escalation records, label join, metrics);
* ``us_decode``: :func:`~streams.events.schema.decode_inference` alone (its fast path
  is msgspec Structs); ``us_decode_orjson_fast_path``: the decoder before issue 18
  (``orjson.loads``, then checks in Python: ``baselines/orjson_fast_decode.py``) on the
  same events, measured in the same run; ``decode_speedup`` = the latter / the former;
* ``us_drift``: :meth:`DriftMonitor.update` plus the per-event data-quality reading;
* ``us_audit``: :meth:`AuditSampler.update` (the audit draw of an auto-accepted event,
  default rate), a part of ``us_per_event``;
* ``us_parse``: the baseline; ``ratio_vs_parse`` = ``us_parse / us_per_event``;
* ``us_per_event_before_16``: :meth:`Processor.inference` with the monitors issue 16
  added turned off (``drift.multivariate``, ``escalation.outlier_quantile``,
  ``versions.canary``, ``calibration.classwise``; no segments; the per-version
  accuracy estimates off after the warm-up, which no setting turns off, see
  :func:`without_version_estimates`): the baseline of issue 16's cost target,
  measured in the same run, its passes alternating with ``us_per_event_all_on`` and
  ``us_per_event_all_on_batched`` (:func:`cost_figures`);
* ``us_per_event_batched``: the defaults through :meth:`Processor.inference_batch`,
  ``worker.batch_size`` (1,000 in the benchmarks' configuration) messages at a time, as
  both ingest drivers run it at full load (the drift work's columnar part done per model
  and batch, issue 18);
  ``batched_vs_per_event`` = ``us_per_event_batched / us_per_event``;
  ``us_per_event_all_on_batched`` and ``all_on_batched_vs_before_16`` (=
  ``us_per_event_all_on_batched / us_per_event_before_16``): issue 16's cost target as
  the worker now runs, against the worker before issue 16 (one event at a time);
* ``us_per_event_batched_steady`` (full mode): the same once every learned reference
  has stopped growing (``REFERENCE_GROWTH`` x 1,000 values per feature and model, after
  ~600k events): what a long-running worker pays per event;
* ``us_per_event_all_on``: the defaults (``us_per_event``) plus segments (keys
  ``region`` and ``tenant``, the latter added to every event from 1,000 values,
  ``top_k`` 10, three features watched per segment value); ``all_on_cost_ratio`` =
  ``us_per_event_all_on / us_per_event_before_16``.

Instructions (``--instructions``: on in full mode, off in ``--quick`` unless asked),
counted by valgrind's callgrind, which counts the same whatever else the machine does,
so a regression shows in one run:

* ``instructions_per_event``: :meth:`Processor.inference_batch` with the defaults (as
  ``us_per_event_batched``: what the worker runs) but for its caps
  (``instructions_caps``: ``labels.max_pending`` and ``review.max_open`` lowered so
  that the label join and the review desk are full after the warm-up, as in a
  long-running worker, see :data:`COUNT_CAPS`), in batches of
  ``instructions_batch_size`` (``--instruction-batch``; default the benchmarks'
  ``worker.batch_size``: a worker's batches at full load; at 5,000 events/s its batches
  hold 10-20 events, and what a batch costs on top of its events shows at 15);
  ``instructions_per_parse``: the ``orjson.loads`` baseline;
  ``instructions_ratio_vs_parse`` = their ratio.

Each comes from two child processes under ``valgrind --tool=callgrind`` that do the same
start-up and warm-up and then differ only in how many events they process (``n1``,
``n2``): (Ir(n2) - Ir(n1)) / (n2 - n1) cancels interpreter start-up, imports and
warm-up. The children run with ``PYTHONHASHSEED=0``, OpenBLAS on one thread
(:data:`COUNT_ENV`: valgrind runs threads one at a time, and OpenBLAS's idle threads spin
for however long the scheduler lets them: with its default threads the same code counted
217.5k-219.7k instructions per event from run to run, with one 213.9k-214.1k) and a clock
that advances a fixed :data:`CLOCK_STEP` per reading (wall time runs ~60x slower under
valgrind, and the processor's once-a-second work would otherwise run per event 60x as
often), so every run counts the same instructions. Needs ``valgrind`` on the PATH
(Debian's package); one count takes a few minutes (start-up alone is ~100 s under
valgrind). ``--callgrind-out DIR`` keeps the processor's two counted runs' callgrind files, which
``benchmarks/profile/instruction_shares.py`` turns into instructions per event by C
function (``make profile-instructions`` does both). The default warm-up is the least that
fills the caps, and its counted window holds every learned numeric reference's first
doubling (each detector's CUSUM thresholds solved again); ``--instruction-warmup 60000``
counts a window past the second, where no threshold is solved (the steady state, but
for the rare later doublings).

``python benchmarks/processor.py [--quick] [--instructions | --no-instructions]
[--only timing|process|all_on|cost|instructions] [--callgrind-out DIR]
[--instruction-warmup N] [--instruction-batch N]`` (``process``:
``us_per_event_batched`` alone; ``all_on``: ``us_per_event_all_on_batched`` alone;
``cost``: the three figures of issue 16's cost target, taken in turn)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zlib import crc32

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines.orjson_fast_decode import decode_inference as decode_inference_before_18
from prometheus_client import CollectorRegistry
from throughput import N_MODELS, make_events, unique_id, worker_config

from detectors.audit import AuditSampler
from detectors.drift_monitor import DriftMonitor
from detectors.sensitivity import REFERENCE_GROWTH
from streams.config import settings_from_dict
from streams.config.settings import deep_merge
from streams.events.dead_letters import MessageSource
from streams.events.schema import decode_inference
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

TOPICS = {
    "inference": "in",
    "labels": "lb",
    "escalations": "esc",
    "alerts": "al",
    "deadletter": "dl",
}


#: Seconds the children's clock advances per reading (one per event): ~50k events/s.
CLOCK_STEP = timedelta(microseconds=20)
#: Events the counted children process before the measured ones: every model's
#: reference window (its first 1,000 events; 10 models) is learned by then, and its caps
#: (:data:`COUNT_CAPS`) are full (the fewest events of a model among the first 15,000 of
#: ``make_events(20_000)``: ~1,400; 12,000 until the sixteenth session of issue 18).
COUNT_WARMUP = 15_000
#: The counted children's caps, lowered so that every model's label join and review desk
#: are full by the end of the warm-up (at the defaults, 10,000 each, a model's join fills
#: after 10,000 of its events, ~100,000 in all: ~8x the warm-up under valgrind). A full
#: cap costs the same instructions per event whatever its size: an eviction per event
#: (per escalation for the desk), a chunk sealed every 1,024; what a larger cap adds is
#: cache misses, which are not instructions. Before the sixteenth session of issue 18 the
#: count ran below the caps, and missed that work altogether (``count_child`` now checks).
COUNT_CAPS: dict[str, Any] = {"labels": {"max_pending": 1_000}, "review": {"max_open": 100}}
#: The counted children's environment over the parent's: string hashes fixed, OpenBLAS on
#: one thread (its idle threads' spinning is counted too, a different amount each run).
COUNT_ENV = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
#: The baseline's child: ``orjson.loads`` of the same bytes, ``argv[1]`` times.
PARSE_CHILD = """
import sys, orjson
raws = [v.encode() for _, v in orjson.loads(open(sys.argv[2], "rb").read())]
k = len(raws)
loads = orjson.loads
for i in range(int(sys.argv[1])):
    loads(raws[i % k])
"""
_IR = re.compile(r"I\s+refs:\s+([\d,]+)")


class StepClock:
    """A clock for counted runs: starts at its creation, advances ``step`` per reading."""

    def __init__(self, step: timedelta = CLOCK_STEP) -> None:
        self.now = datetime.now(UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def make_runner(
    extra: dict[str, Any],
    batch: list[tuple[bytes, bytes]],
    out: Outgoing,
    clock: Callable[[], datetime] | None = None,
    *,
    batched: bool = False,
    made: list[Processor] | None = None,
    batch_size: int | None = None,
) -> Callable[[int], None]:
    """``run(count)``: ``count`` events of ``batch`` (cycled) through
    :meth:`Processor.inference` of a processor of the benchmark's config merged with
    ``extra``; ``clock`` is the processor's (default: the wall clock); ``batched``:
    through :meth:`Processor.inference_batch`, ``worker.batch_size`` messages at a
    time (what both ingest drivers do), or ``batch_size`` at a time. The processor is
    appended to ``made``.

    Each event gets an id of its own as it goes in (``throughput.unique_id``, counted in
    the figures like the runner's other set-up), as a worker's
    events have: until the fifteenth session of issue 18 the payloads were cycled as
    they were, and a repeated id found its prediction still pending in the label join
    and its escalation still remembered by the review desk, which skipped their
    inserts and evictions (a fifth of the per-event cost once their caps are full).

    Each key comes from one of four partitions, always the same (SPEC §1: topics are
    keyed by ``model_id``, so a model's events come from one partition): until the
    twenty-ninth session every event's partition was its index's, so a model's events
    came from all four in turn and ~80 % of them paid for a change of partition in the
    model's offsets (``ModelState.mark``), which a worker's do not."""
    conf = deep_merge(worker_config(TOPICS, "bench-processor"), {"defaults": extra})
    settings = settings_from_dict(conf)
    metrics = VigilMetrics(CollectorRegistry())
    proc = (
        Processor(settings, metrics) if clock is None else Processor(settings, metrics, clock=clock)
    )
    if made is not None:
        made.append(proc)
    k = len(batch)
    part = [crc32(key) & 3 for key, _ in batch]  # a key's partition, as a producer's
    start = 0
    size = settings.worker.batch_size if batch_size is None else batch_size

    def run(count: int) -> None:
        nonlocal start
        inference = proc.inference
        for i in range(count):
            key, value = batch[i % k]
            source = MessageSource("in", part[i % k], start + i, key)
            inference(unique_id(value, start + i), source, out)
            if len(out) > 1000:
                out.clear()
        start += count

    def run_batched(count: int) -> None:
        nonlocal start
        inference = proc.inference_batch
        for first in range(0, count, size):
            inference(
                [
                    (
                        unique_id(batch[i % k][1], start + i),
                        MessageSource("in", part[i % k], start + i, batch[i % k][0]),
                    )
                    for i in range(first, min(count, first + size))
                ],
                out,
            )
            out.clear()
        start += count

    return run_batched if batched else run


def read_events(path: Path) -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs :func:`write_events` wrote."""
    return [(k.encode(), v.encode()) for k, v in orjson.loads(path.read_bytes())]


def write_events(path: Path, events: list[tuple[bytes, bytes]]) -> None:
    """Events for the counted children, as a JSON list of [key, value] strings (UTF-8)."""
    path.write_bytes(orjson.dumps([[k.decode(), v.decode()] for k, v in events]))


def count_child(events_file: Path, warmup: int, count: int, batch_size: int | None = None) -> None:
    """The counted child of ``instructions_per_event``: warm up, then ``count`` events,
    with :data:`COUNT_CAPS`, in batches of ``batch_size`` (default the worker's);
    RuntimeError if a cap is not full after the warm-up."""
    made: list[Processor] = []
    run = make_runner(
        COUNT_CAPS,
        read_events(events_file),
        Outgoing(),
        StepClock(),
        batched=True,
        made=made,
        batch_size=batch_size,
    )
    run(warmup)
    short = caps_short(made[0])
    if short:
        raise RuntimeError(f"caps not full after {warmup} events: {short}")
    run(count)


def caps_short(proc: Processor) -> dict[str, tuple[int, int]]:
    """Every model whose label join or review desk is below its cap: (pending
    predictions, remembered escalations)."""
    short = {}
    for model_id, state in proc.fleet.items():
        ms = proc.settings.for_model(model_id)
        desk = state.review
        remembered = 0 if desk is None else desk.remembered
        if state.join.pending < ms.labels.max_pending or remembered < ms.review.max_open:
            short[model_id] = (state.join.pending, remembered)
    return short


def callgrind_ir(
    valgrind: str, argv: list[str], workdir: Path, out_file: Path | None = None
) -> int:
    """Instructions (callgrind's ``Ir``) of ``argv`` run to its end under ``valgrind``;
    callgrind's file goes to ``out_file`` (default: a temporary file in ``workdir``)."""
    if out_file is None:
        fd, name = tempfile.mkstemp(prefix="callgrind.", dir=workdir)
        os.close(fd)
        out_file = Path(name)
    proc = subprocess.run(  # noqa: S603 - the arguments are this module's own
        [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **COUNT_ENV},
        check=False,
    )
    found = _IR.findall(proc.stderr)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"valgrind {argv} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def instructions_per(
    valgrind: str,
    argv: Callable[[int], list[str]],
    n1: int,
    n2: int,
    workdir: Path,
    keep: Callable[[int], Path] | None = None,
) -> float:
    """(Ir(n2) - Ir(n1)) / (n2 - n1) of ``argv(n)``, the two runs side by side; ``keep(n)``:
    where the run of ``n`` events leaves its callgrind file (default: not kept)."""

    def count(n: int) -> int:
        return callgrind_ir(valgrind, argv(n), workdir, None if keep is None else keep(n))

    with ThreadPoolExecutor(2) as pool:
        ir1, ir2 = pool.map(count, (n1, n2))
    return (ir2 - ir1) / (n2 - n1)


def count_instructions(
    events: list[tuple[bytes, bytes]],
    n1: int,
    n2: int,
    keep_dir: Path | None = None,
    warmup: int = COUNT_WARMUP,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """``instructions_per_event`` and ``instructions_per_parse`` (see the module doc);
    ``batch_size``: the processor's events in batches of that many (default the
    worker's, ``worker.batch_size``);
    ``keep_dir``: the processor's two counted runs leave their callgrind files there, as
    ``processor.N.callgrind`` (for ``benchmarks/profile/instruction_shares.py``);
    ``warmup``: events before the counted ones (at least :data:`COUNT_WARMUP`, so that
    the caps are full)."""
    if warmup < COUNT_WARMUP:
        raise ValueError(f"a warm-up of {warmup} events leaves the caps short of full")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="vigil-callgrind-") as tmpdir:
        workdir = Path(tmpdir)
        events_file = workdir / "events.json"
        write_events(events_file, events)
        me = str(Path(__file__).resolve())
        per_event = instructions_per(
            valgrind,
            lambda n: [
                sys.executable, me, "--count-child", str(events_file),
                "--count-warmup", str(warmup), "--events", str(n),
                *([] if batch_size is None else ["--count-batch", str(batch_size)]),
            ],
            n1, n2, workdir,
            None if keep_dir is None else lambda n: keep_dir / f"processor.{n}.callgrind",
        )  # fmt: skip
        per_parse = instructions_per(
            valgrind,
            lambda n: [sys.executable, "-c", PARSE_CHILD, str(n), str(events_file)],
            n1, n2, workdir,
        )  # fmt: skip
    return {
        "instructions_events": [n1, n2],
        "instructions_warmup": warmup,
        "instructions_batch_size": batch_size or worker_config(TOPICS, "")["worker"]["batch_size"],
        "instructions_caps": {
            "max_pending": COUNT_CAPS["labels"]["max_pending"],
            "max_open": COUNT_CAPS["review"]["max_open"],
        },
        "instructions_per_event": round(per_event),
        "instructions_per_parse": round(per_parse),
        "instructions_ratio_vs_parse": round(per_parse / per_event, 4),
    }


def timed(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Median CPU microseconds per event of ``fn(n)`` over ``repeats`` passes.

    CPU time of this process, not wall time: on a shared machine, time spent waiting
    for a core is not the code's cost (cache and memory contention still are).
    """
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        fn(n)
        runs.append((time.process_time() - started) / n * 1e6)
    return statistics.median(runs)


def timed_alternately(fns: list[Callable[[int], None]], n: int, repeats: int) -> list[float]:
    """:func:`timed` of each of ``fns``, their passes taken in turn: a slow spell of the
    machine then falls on all of them alike."""
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, runs, strict=True):
            started = time.process_time()
            fn(n)
            out.append((time.process_time() - started) / n * 1e6)
    return [statistics.median(r) for r in runs]


# Everything on: the defaults plus segments (``tenant`` from :func:`with_tenants`).
SEGMENTS = {"segments": {"keys": ["region", "tenant"], "features": ["x0", "x1", "c0"]}}


def with_tenants(events: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``events`` with a ``tenant`` segment value each, out of 1,000."""
    seg_events = []
    for i, (key, value) in enumerate(events):
        body = orjson.loads(value)
        body["segment"]["tenant"] = f"t{(i * 7919) % 1000}"
        seg_events.append((key, orjson.dumps(body)))
    return seg_events


def without_version_estimates(proc: Processor) -> None:
    """Turn off the per-version accuracy estimates (issue 16's) of every model ``proc``
    has seen, and of the versions it starts from now on."""
    for _, state in proc.fleet.items():
        book = state.versions
        if book is None:
            continue
        book.performance = None
        for _, stats in book.items():
            stats.performance = None


def cost_figures(
    before_16: Callable[[int], None],
    before_16_proc: Processor,
    all_on: Callable[[int], None],
    all_on_batched: Callable[[int], None],
    n: int,
    repeats: int,
) -> dict[str, Any]:
    """Issue 16's cost target: the worker before issue 16 (one event at a time, its
    monitors off; the version book's per-version accuracy estimate off after the
    warm-up: the version book itself, its per-version counts and confidence
    histogram, has no off switch and stays in the baseline), everything on one event at
    a time, and everything on as the worker runs now (batches), after a warm-up, their
    passes taken in turn (a slow spell of the machine then falls on the baseline and
    the figures alike)."""
    # References are learned from the first 1000 values of each model (of each segment
    # value: ~10,000 events of a model for a value with 10 % of them).
    before_16(min(n, 40_000))
    without_version_estimates(before_16_proc)
    all_on(max(min(n, 40_000), 200_000))
    all_on_batched(max(min(n, 40_000), 200_000))
    us_before_16, us_all_on, us_all_on_batched = timed_alternately(
        [before_16, all_on, all_on_batched], n, repeats
    )
    return {
        "us_per_event_before_16": round(us_before_16, 2),
        "us_per_event_all_on": round(us_all_on, 2),
        "all_on_cost_ratio": round(us_all_on / us_before_16, 3),
        "us_per_event_all_on_batched": round(us_all_on_batched, 2),
        "all_on_batched_vs_before_16": round(us_all_on_batched / us_before_16, 3),
    }


def timings(
    events: list[tuple[bytes, bytes]],
    n: int,
    repeats: int,
    only: str | None = None,
    steady: bool = False,
) -> dict[str, Any]:
    """The CPU-time figures of the module doc (everything but the instruction counts);
    ``only="process"``: ``us_per_event_batched`` alone (what ``make profile`` samples),
    ``only="all_on"``: ``us_per_event_all_on_batched`` alone, ``only="cost"``:
    :func:`cost_figures` alone."""
    raws = [v for _, v in events]
    k = len(events)

    out = Outgoing()

    def runner(
        extra: dict[str, Any], batch: list[tuple[bytes, bytes]], *, batched: bool = False
    ) -> Callable[[int], None]:
        return make_runner(extra, batch, out, batched=batched)

    seg_events = with_tenants(events)
    if only in ("process", "all_on"):  # one of the worker's paths, for make profile
        extra, batch = ({}, events) if only == "process" else (SEGMENTS, seg_events)
        alone = runner(extra, batch, batched=True)
        alone(min(n, 40_000) if only == "process" else max(min(n, 40_000), 200_000))
        name = "us_per_event_batched" if only == "process" else "us_per_event_all_on_batched"
        return {"events": n, "repeats": repeats, name: round(timed(alone, n, repeats), 2)}
    process = runner({}, events)
    process_batched = runner({}, events, batched=True)

    def parse(count: int) -> None:
        loads = orjson.loads
        for i in range(count):
            loads(raws[i % k])

    def decode(count: int) -> None:
        for i in range(count):
            decode_inference(raws[i % k])

    def decode_before_18(count: int) -> None:
        for i in range(count):
            decode_inference_before_18(raws[i % k])

    decoded = [decode_inference(v) for v in raws]
    if decoded != [decode_inference_before_18(v) for v in raws]:
        raise AssertionError("the two decoders disagree on the benchmark's events")
    monitors: dict[str, DriftMonitor] = {}
    for e in decoded:
        monitors.setdefault(e.model_id, DriftMonitor(sensitivity=1_000_000))

    def drift(count: int) -> None:
        for i in range(count):
            e = decoded[i % k]
            m = monitors[e.model_id]
            m.update(e.features, e.prediction)
            m.last_quality  # noqa: B018  (computed on read: the per-event data reasons)

    sampler = AuditSampler()
    audit_keys = [(e.model_id, e.event_id, e.ts) for e in decoded]

    def audit(count: int) -> None:
        update = sampler.update
        for i in range(count):
            update(*audit_keys[i % k])

    made: list[Processor] = []
    before_16 = make_runner(
        {
            "drift": {"multivariate": False},
            "escalation": {"outlier_quantile": 0},
            "versions": {"canary": False},
            "calibration": {"classwise": False},
        },
        events,
        out,
        made=made,
    )
    all_on = runner(SEGMENTS, seg_events)
    all_on_batched = runner(SEGMENTS, seg_events, batched=True)
    if only == "cost":
        return cost_figures(before_16, made[0], all_on, all_on_batched, n, repeats)

    # Warm up: references are learned from the first 1000 values of each model (of
    # each segment value: ~10,000 events of a model for a value with 10 % of them).
    process(min(n, 40_000))
    drift(min(n, 40_000))
    process_batched(min(n, 40_000))
    result: dict[str, Any] = {"events": n, "repeats": repeats}
    result.update(cost_figures(before_16, made[0], all_on, all_on_batched, n, repeats))

    us_decode, us_decode_before_18 = timed_alternately([decode, decode_before_18], n, repeats)
    result |= {
        "us_parse": round(timed(parse, n, repeats), 2),
        "us_decode": round(us_decode, 2),
        "us_decode_orjson_fast_path": round(us_decode_before_18, 2),
        "us_drift": round(timed(drift, n, repeats), 2),
        "us_audit": round(timed(audit, n, repeats), 3),
        "us_per_event": round(timed(process, n, repeats), 2),
    }
    result["decode_speedup"] = round(result["us_decode_orjson_fast_path"] / result["us_decode"], 3)
    result["ratio_vs_parse"] = round(result["us_parse"] / result["us_per_event"], 4)
    result["us_per_event_batched"] = round(timed(process_batched, n, repeats), 2)
    result["batched_vs_per_event"] = round(
        result["us_per_event_batched"] / result["us_per_event"], 3
    )
    if steady:
        # Steady state: learned references grow to REFERENCE_GROWTH x reference_size
        # values (50,000 per feature and model) before they stop taking in data; the
        # figures above include that growth, a worker spends nearly all its life after.
        process_batched(REFERENCE_GROWTH * 1000 * N_MODELS + 100_000)
        result["us_per_event_batched_steady"] = round(timed(process_batched, n, repeats), 2)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds")
    ap.add_argument("--events", type=int, help="events per pass")
    ap.add_argument("--repeats", type=int, help="passes per figure")
    ap.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        help="count instructions under valgrind (default: on in full mode, off with --quick)",
    )
    ap.add_argument(
        "--instruction-events",
        type=int,
        nargs=2,
        metavar=("N1", "N2"),
        help="events of the two counted runs (default 1000 5000; --quick 500 2500)",
    )
    ap.add_argument(
        "--instruction-warmup",
        type=int,
        default=COUNT_WARMUP,
        metavar="N",
        help=f"events before the counted ones (default {COUNT_WARMUP}, the least that fills "
        "the caps; the window then holds each learned reference's first doubling, when its "
        "CUSUM thresholds are solved again: 60000 counts past the second)",
    )
    ap.add_argument(
        "--only",
        choices=("timing", "process", "all_on", "cost", "instructions"),
        help="run one part only (process: us_per_event_batched alone; all_on: "
        "us_per_event_all_on_batched alone; cost: issue 16's cost figures alone)",
    )
    ap.add_argument(
        "--callgrind-out",
        type=Path,
        metavar="DIR",
        help="keep the counted runs' callgrind files in DIR (processor.N1.callgrind, "
        "processor.N2.callgrind) for benchmarks/profile/instruction_shares.py",
    )
    ap.add_argument(
        "--instruction-batch",
        type=int,
        metavar="N",
        help="count with the processor's events in batches of N (default the benchmarks' "
        "worker.batch_size, 1,000: a worker's batches at full load; at 5,000 events/s "
        "they hold 10-20)",
    )
    ap.add_argument("--count-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--count-batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--count-warmup", type=int, default=COUNT_WARMUP, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count_child is not None:  # the child process of --instructions
        count_child(args.count_child, args.count_warmup, args.events, args.count_batch)
        return 0
    n = args.events or (30_000 if args.quick else 200_000)
    repeats = args.repeats or (3 if args.quick else 5)
    count = args.instructions if args.instructions is not None else not args.quick
    parts = {args.only} if args.only else {"timing", *(["instructions"] if count else [])}

    events = make_events(20_000)
    result: dict[str, Any] = {"mode": "quick" if args.quick else "full"}
    if parts & {"timing", "process", "all_on", "cost"}:
        only = args.only if args.only in ("process", "all_on", "cost") else None
        result.update(timings(events, n, repeats, only=only, steady=not args.quick))
    if "instructions" in parts:
        n1, n2 = args.instruction_events or ((500, 2500) if args.quick else (1000, 5000))
        if args.callgrind_out is not None:
            args.callgrind_out.mkdir(parents=True, exist_ok=True)
        result.update(
            count_instructions(
                events,
                n1,
                n2,
                args.callgrind_out,
                args.instruction_warmup,
                args.instruction_batch,
            )
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
