"""False alerts of a worker with everything on, on stationary traffic; prints ONE JSON object.

Issue 16's first target: with every monitor on (2 segment keys x 10 values, segment
features, multivariate drift, outlier scoring, the version canary, classwise
calibration), stationary traffic raises at most 1 false alert per model per 1M
events, as with the aggregate signals alone. ``benchmarks/detector_quality.py``
measures each detector family apart; this runs them together, as the worker does:
:meth:`Processor.inference_batch` (``worker.batch_size`` messages at a time) with the
config of ``benchmarks/processor.py``'s everything-on figure (``throughput.py``'s
worker config: conformal policy, ``drift.sensitivity`` 1e6, plus ``segments`` keys
``region`` and ``tenant`` watching ``x0``, ``x1``, ``c0``).

Traffic: per model, :class:`~streams.dev.traffic.SyntheticModel` (20 numeric, 3
categorical features, two classes, one model version), independent events whose law
never changes; each event's ``segment`` is ``region`` (10 values, ``r0`` .. ``r9``,
shares 0.19, 0.15, 0.10, 0.10, 0.10, 0.09, 0.08, 0.07, 0.06, 0.06) and ``tenant`` (10
even values). References are learned from each model's (and each segment value's)
first events, as a worker without reference profiles does. The processor's clock
advances 10 ms per event (the events' own spacing), so time-driven work (version
retirement, checkpoints of state) follows event time, not the benchmark's speed.

Every alert record entering ``drift`` is false. Reported: their count, per model per
million events with a 95 % Poisson upper bound, per signal family, and the first few.
No labels flow, so label-driven signals (``accuracy``, ``calibration``: thresholds on
labelled windows, outside the events budget) are not exercised here.

``python benchmarks/stationary_all_on.py [--quick] [--models N] [--events N]``
(full: 4 models x 1M events, two processes; quick: 2 x 100k).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from detector_quality import poisson_upper
from processor import SEGMENTS, TOPICS, StepClock
from prometheus_client import CollectorRegistry
from throughput import worker_config

from streams.config import settings_from_dict
from streams.config.settings import deep_merge
from streams.dev.traffic import SyntheticModel
from streams.events.dead_letters import MessageSource
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

REGION_SHARES = (0.19, 0.15, 0.10, 0.10, 0.10, 0.09, 0.08, 0.07, 0.06, 0.06)
"""Traffic shares of the ten ``region`` values (``r2`` .. ``r4`` carry 10 % each)."""
EVENT_STEP = timedelta(milliseconds=10)
SENSITIVITY: float = worker_config(TOPICS, "bench-stationary")["defaults"]["drift"]["sensitivity"]


def family(signal: str) -> str:
    """``segment:region=r2:feature:x0`` -> ``segment:feature``; ``feature:x0`` ->
    ``feature``; ``version:2.0:prediction`` -> ``version``."""
    if signal.startswith("segment:"):
        rest = signal.split(":", 2)[2]
        return "segment:" + rest.split(":", 1)[0]
    return signal.split(":", 1)[0]


def config(sensitivity: float) -> dict[str, Any]:
    """The worker config of the run: everything on, ``drift.sensitivity`` as given."""
    extra = {**SEGMENTS, "drift": {"sensitivity": sensitivity}}
    return deep_merge(worker_config(TOPICS, "bench-stationary"), {"defaults": extra})


def run(job: tuple[list[int], int, float]) -> dict[str, Any]:
    """``events`` stationary events of each model of ``seeds``, interleaved, through one
    processor with everything on; the alerts entering drift."""
    seeds, events, sensitivity = job
    conf = config(sensitivity)
    settings = settings_from_dict(conf)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    proc = Processor(
        settings, VigilMetrics(CollectorRegistry()), clock=StepClock(EVENT_STEP / len(seeds))
    )
    models = [
        SyntheticModel(f"model-{s}", n_numeric=20, n_categorical=3, seed=s, start=start)
        for s in seeds
    ]
    rng = random.Random(1_000 + seeds[0])
    regions = [f"r{i}" for i in range(len(REGION_SHARES))]
    size = settings.worker.batch_size
    out = Outgoing()
    alerts: list[dict[str, Any]] = []
    total = events * len(models)
    t0 = time.perf_counter()
    offset = 0
    while offset < total:
        batch = []
        for i in range(offset, min(total, offset + size)):
            m = models[i % len(models)]
            event, _ = m.event()
            event["segment"] = {
                "region": rng.choices(regions, REGION_SHARES)[0],
                "tenant": f"t{rng.randrange(10)}",
            }
            key = m.model_id.encode()
            batch.append((orjson.dumps(event), MessageSource("in", 0, i, key)))
        proc.inference_batch(batch, out)
        offset += len(batch)
        for _, raw in out.alerts:
            alert = orjson.loads(raw)
            if alert["state"] == "drift":
                alerts.append(
                    {
                        "model": alert["model_id"],
                        "signal": alert["signal"],
                        "detector": alert["detector"],
                        "events_seen": alert["events_seen"],
                    }
                )
        if out.dead_letters:
            raise RuntimeError(f"stationary events dead-lettered: {out.dead_letters[:3]}")
        out.clear()
    return {"events": total, "alerts": alerts, "seconds": time.perf_counter() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 models x 100k events")
    ap.add_argument("--models", type=int, help="models (default 4; --quick 2)")
    ap.add_argument("--events", type=int, help="events per model (default 1M; --quick 100k)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--sensitivity",
        type=float,
        default=SENSITIVITY,
        help="drift.sensitivity (default the worker's, 1e6; a loose one shows alerts counted)",
    )
    args = ap.parse_args()
    n_models = args.models or (2 if args.quick else 4)
    per_model = args.events or (100_000 if args.quick else 1_000_000)
    procs = max(1, min(args.processes, n_models))
    groups = [list(range(p, n_models, procs)) for p in range(procs)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(procs) as pool:
        parts = list(pool.map(run, [(g, per_model, args.sensitivity) for g in groups]))
    alerts = [a for p in parts for a in p["alerts"]]
    total = sum(p["events"] for p in parts)
    per_million = 1e6 / total
    result = {
        "benchmark": "stationary_all_on",
        "mode": "quick" if args.quick else "full",
        "models": n_models,
        "events_per_model": per_model,
        "events": total,
        "false_alerts": len(alerts),
        "false_alerts_per_model_per_million": round(len(alerts) * per_million, 4),
        "false_alerts_per_model_per_million_upper95": round(
            poisson_upper(len(alerts)) * per_million, 4
        ),
        "target_per_model_per_million": 1.0,
        "budget_per_model_per_million": round(1e6 / args.sensitivity, 4),
        "false_alerts_by_family": dict(Counter(family(a["signal"]) for a in alerts)),
        "alert_list": alerts[:10],
        "settings": {
            "segments": SEGMENTS["segments"],
            "region_shares": REGION_SHARES,
            "tenants": 10,
            "sensitivity": args.sensitivity,
            "numeric_features": 20,
            "categorical_features": 3,
        },
        "cpu_seconds": round(sum(p["seconds"] for p in parts), 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
