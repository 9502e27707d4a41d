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
  ``versions.canary``, ``calibration.classwise``; no segments): the baseline of
  issue 16's cost target, measured in the same run;
* ``us_per_event_batched``: the defaults through :meth:`Processor.inference_batch`,
  ``worker.batch_size`` (500) messages at a time, as both ingest drivers run it (the
  drift work's columnar part done per model and batch, issue 18);
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

``python benchmarks/processor.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines.orjson_fast_decode import decode_inference as decode_inference_before_18
from prometheus_client import CollectorRegistry
from throughput import N_MODELS, make_events, worker_config

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds")
    ap.add_argument("--events", type=int, help="events per pass")
    ap.add_argument("--repeats", type=int, help="passes per figure")
    args = ap.parse_args()
    n = args.events or (30_000 if args.quick else 200_000)
    repeats = args.repeats or (3 if args.quick else 5)

    events = make_events(20_000)
    raws = [v for _, v in events]
    k = len(events)

    out = Outgoing()

    def runner(
        extra: dict[str, Any], batch: list[tuple[bytes, bytes]], *, batched: bool = False
    ) -> Callable[[int], None]:
        """``process`` for a processor of the benchmark's config merged with ``extra``;
        ``batched``: through :meth:`Processor.inference_batch`, ``worker.batch_size``
        messages at a time (what both ingest drivers do)."""
        conf = deep_merge(worker_config(TOPICS, "bench-processor"), {"defaults": extra})
        proc = Processor(settings_from_dict(conf), VigilMetrics(CollectorRegistry()))
        start = 0

        size = proc.settings.worker.batch_size

        def run(count: int) -> None:
            nonlocal start
            inference = proc.inference
            for i in range(count):
                key, value = batch[i % k]
                inference(value, MessageSource("in", i & 3, start + i, key), out)
                if len(out) > 1000:
                    out.clear()
            start += count

        def run_batched(count: int) -> None:
            nonlocal start
            inference = proc.inference_batch
            for first in range(0, count, size):
                inference(
                    [
                        (batch[i % k][1], MessageSource("in", i & 3, start + i, batch[i % k][0]))
                        for i in range(first, min(count, first + size))
                    ],
                    out,
                )
                out.clear()
            start += count

        return run_batched if batched else run

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

    before_16 = runner(
        {
            "drift": {"multivariate": False},
            "escalation": {"outlier_quantile": 0},
            "versions": {"canary": False},
            "calibration": {"classwise": False},
        },
        events,
    )
    seg_events = []
    for i, (key, value) in enumerate(events):
        body = orjson.loads(value)
        body["segment"]["tenant"] = f"t{(i * 7919) % 1000}"
        seg_events.append((key, orjson.dumps(body)))
    segments = {"segments": {"keys": ["region", "tenant"], "features": ["x0", "x1", "c0"]}}
    all_on = runner(segments, seg_events)
    all_on_batched = runner(segments, seg_events, batched=True)

    # Warm up: references are learned from the first 1000 values of each model (of
    # each segment value: ~10,000 events of a model for a value with 10 % of them).
    process(min(n, 40_000))
    drift(min(n, 40_000))
    before_16(min(n, 40_000))
    all_on(max(min(n, 40_000), 200_000))
    process_batched(min(n, 40_000))
    all_on_batched(max(min(n, 40_000), 200_000))

    us_decode, us_decode_before_18 = timed_alternately([decode, decode_before_18], n, repeats)
    result = {
        "events": n,
        "repeats": repeats,
        "us_parse": round(timed(parse, n, repeats), 2),
        "us_decode": round(us_decode, 2),
        "us_decode_orjson_fast_path": round(us_decode_before_18, 2),
        "us_drift": round(timed(drift, n, repeats), 2),
        "us_audit": round(timed(audit, n, repeats), 3),
        "us_per_event": round(timed(process, n, repeats), 2),
    }
    result["decode_speedup"] = round(result["us_decode_orjson_fast_path"] / result["us_decode"], 3)
    result["ratio_vs_parse"] = round(result["us_parse"] / result["us_per_event"], 4)
    result["us_per_event_before_16"] = round(timed(before_16, n, repeats), 2)
    result["us_per_event_all_on"] = round(timed(all_on, n, repeats), 2)
    result["all_on_cost_ratio"] = round(
        result["us_per_event_all_on"] / result["us_per_event_before_16"], 3
    )
    result["us_per_event_batched"] = round(timed(process_batched, n, repeats), 2)
    result["batched_vs_per_event"] = round(
        result["us_per_event_batched"] / result["us_per_event"], 3
    )
    if not args.quick:
        # Steady state: learned references grow to REFERENCE_GROWTH x reference_size
        # values (50,000 per feature and model) before they stop taking in data; the
        # figures above include that growth, a worker spends nearly all its life after.
        process_batched(REFERENCE_GROWTH * 1000 * N_MODELS + 100_000)
        result["us_per_event_batched_steady"] = round(timed(process_batched, n, repeats), 2)
    result["us_per_event_all_on_batched"] = round(timed(all_on_batched, n, repeats), 2)
    # Issue 16's target as the worker runs now (batches) against the worker before
    # issue 16 (one event at a time, its monitors off).
    result["all_on_batched_vs_before_16"] = round(
        result["us_per_event_all_on_batched"] / result["us_per_event_before_16"], 3
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
