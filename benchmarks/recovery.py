"""Recovery from kill -9: a worker is SIGKILLed mid-stream and restarted; prints ONE JSON.

A local broker (:class:`~streams.dev.local_broker.LocalBroker`, its own) and real ``vigil
worker`` processes. 10 models, 20 numeric features per event, 0.5 % malformed messages;
the whole stream is published at once, the first worker is killed (process group,
SIGKILL) once it has processed 40 % of it and written a checkpoint, and a second worker
with the same config restores the checkpoints and finishes. Then it is stopped cleanly
and the checkpoints are read back.

* ``events_published``: messages published (valid and malformed).
* ``events_accounted``: valid events in the final checkpointed monitors (sum of
  ``events_seen``) + malformed messages in the dead-letter topic (distinct source
  offsets). Equal to
  ``events_published`` when nothing was lost; ``events_applied_twice`` and
  ``events_lost`` say which way a difference goes, per model.
* ``missing_escalations``: events under the confidence threshold with no escalation.
* ``conflicting_escalations``: events with two escalations that differ in anything but
  ``escalated_at``; ``duplicate_escalations``: identical extra copies (replays of the
  uncommitted tail, removable by ``escalation_id``).
* ``restore_seconds``: the restarted worker's restore step as it logs it (reading the
  checkpoints of its partitions and rebuilding the monitors, before fetching resumes);
  ``restore_read``: what those restores read, from the checkpoint store's log:
  ``records`` and ``mb`` fetched, ``skipped`` (records before the read starts the killed
  worker committed, not fetched), ``read_s`` (fetching), ``decoded`` and ``decode_s``;
  ``first_event_seconds``: from starting the second worker process to its first processed
  event (Python start-up, group join, restore; /metrics polled every 0.1 s), and its
  parts from the second worker's log (``first_event_breakdown``, each from the end of
  the one before; null where the log does not say): ``start`` (process start, imports,
  config, until the worker service starts), ``join`` (until its consumer has an
  assignment), ``restore`` (until the checkpoints are restored), ``first_event`` (until
  /metrics counts a processed event).
* ``membership``: ``static`` (default: both workers have the same ``worker.instance_id``,
  as a restarted pod of a StatefulSet would, so the second one takes the first one's place
  in the group at once) or ``dynamic`` (no instance id: the second worker's join waits for
  the broker to expire the killed member's session, ``worker.session_timeout_s``).
* ``state_bytes_per_model``: size of the largest model's checkpoint record (``VGC2`` +
  zstd(pickle)), and ``state_bytes_per_model_mean``.

``python benchmarks/recovery.py [--quick] [--ingest faust|batch] [--membership
static|dynamic]`` (quick: 80,000 events instead of 200,000: with 20,000 a worker on this
2-core machine processed them all before its first checkpoint, 2 s in, and the restarted
worker, with nothing left, waited out its 300 s; such a run now fails instead;
``--ingest`` is passed as ``worker.ingest`` where that setting exists).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.config import settings_from_dict
from streams.dev.local_broker import LocalBroker
from streams.dev.scrape import total
from streams.kafka.checkpoints import CheckpointStore, encode
from streams.kafka.topics import create_topics
from tests.support import (
    EscalationAudit,
    SyntheticStream,
    TopicReader,
    WorkerProcess,
    publish,
    topic_size,
    unique_topics,
    wait_until,
)

MIN_CONFIDENCE = 0.6
N_MODELS = 10
N_FEATURES = 20
PARTITIONS = 4
KILL_AT = 0.4  # fraction of the stream processed when the first worker is killed


def worker_ingest(ingest: str) -> dict[str, str]:
    """``{"ingest": ...}``: the worker's ingestion path (``worker.ingest``)."""
    return {"ingest": ingest}


def processed(worker: WorkerProcess) -> float:
    try:
        return total(worker.scrape(), "vigil_events_total", outcome="processed")
    except OSError:
        return 0.0


#: The ``[2026-12-03 02:52:05,888]`` timestamp mode's log format puts first on a line.
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")


def logged_at(log: str, marker: str) -> float | None:
    """Epoch seconds of the first log line containing ``marker`` (None if none)."""
    for line in log.splitlines():
        if marker in line and (m := _LOG_TIME.match(line)):
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
            return at.timestamp() + int(m.group(2)) / 1000
    return None


def breakdown(log: str, spawned: float, first_event: float) -> dict[str, float | None]:
    """Seconds of each step from spawning the worker to its first event (see module doc)."""
    marks = [
        ("start", logged_at(log, "Starting...")),
        ("join", logged_at(log, "assignment: partitions")),
        ("restore", logged_at(log, "model checkpoints in")),
        ("first_event", first_event),
    ]
    out: dict[str, float | None] = {}
    last: float | None = spawned
    for name, at in marks:
        out[name] = None if at is None or last is None else round(at - last, 3)
        last = at
    return out


#: The checkpoint store's log line of a read (streams.kafka.checkpoints).
_READ = re.compile(
    r"read (\d+) records \(([0-9.]+) MB; (\d+) skipped before the committed starts\) "
    r"in ([0-9.]+) s, decoded (\d+) in ([0-9.]+) s"
)


def restore_read(log: str) -> dict[str, float]:
    """The checkpoint reads of a worker's restores, summed from its log (see module doc)."""
    keys = ("records", "mb", "skipped", "read_s", "decoded", "decode_s")
    out = dict.fromkeys(keys, 0.0)
    for found in _READ.findall(log):
        for key, value in zip(keys, found, strict=True):
            out[key] += float(value)
    return {k: round(v, 3) for k, v in out.items()}


def read_all(reader: TopicReader, done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        reader.poll(1.0)
    reader.poll(2.0)


def run(n_events: int, workdir: Path, ingest: str, membership: str) -> dict[str, Any]:
    started = time.monotonic()
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap
        topics = unique_topics("recovery")
        topics.setdefault("checkpoints", topics["inference"].removesuffix(".inference") + ".cp")
        config = {
            "app_id": f"vigil-bench-{topics['inference']}",
            "topics": {**topics, "partitions": PARTITIONS},
            "worker": {"checkpoint_interval_s": 2.0, **worker_ingest(ingest)},
            "defaults": {"escalation": {"min_confidence": MIN_CONFIDENCE, "data_reasons": False}},
        }
        settings = settings_from_dict({**config, "kafka": {"bootstrap": bootstrap}})
        create_topics(settings)
        stream = SyntheticStream(
            N_MODELS,
            min_confidence=MIN_CONFIDENCE,
            n_numeric=N_FEATURES,
            invalid_every=200,
            seed=2026,
        )
        messages = stream.take(n_events)
        escalations = TopicReader(bootstrap, topics["escalations"])
        dead = TopicReader(bootstrap, topics["deadletter"])
        # The restarted worker has the killed one's id, as a pod restarted in place would.
        env = {"VIGIL_INSTANCE_ID": "recovery-worker-0"} if membership == "static" else {}
        first = WorkerProcess(bootstrap, config, workdir, name="first", env=env)
        second = WorkerProcess(bootstrap, config, workdir, name="second", env=env)
        try:
            first.start()
            publish(bootstrap, topics["inference"], messages)
            n_valid = sum(stream.valid.values())
            if not wait_until(
                lambda: (
                    processed(first) >= KILL_AT * n_valid
                    and topic_size(bootstrap, topics["checkpoints"]) > 0
                ),
                timeout=600,
            ):
                raise RuntimeError(f"first worker made no progress:\n{first.log_tail()}")
            processed_at_kill = processed(first)
            first.kill()
            if processed_at_kill >= n_valid:
                raise RuntimeError(
                    f"the first worker processed all {n_valid} valid events before its first "
                    "checkpoint: nothing was left to recover (give it more events)"
                )

            spawned, spawned_wall = time.monotonic(), time.time()
            second.start()
            if not wait_until(lambda: processed(second) > 0, timeout=300, interval=0.1):
                raise RuntimeError(f"the restarted worker processed nothing:\n{second.log_tail()}")
            first_event_seconds = time.monotonic() - spawned
            first_event_wall = time.time()

            wanted = set(stream.qualifying)

            def all_escalated() -> bool:
                return wanted <= {m["event_id"] for m in escalations.messages}

            read_all(escalations, all_escalated, timeout=900)
            invalid = set(stream.invalid)
            read_all(
                dead,
                lambda: invalid <= {base64.b64decode(d["payload_b64"]) for d in dead.messages},
                timeout=120,
            )
            code = second.stop(grace=60)
            if code != 0:
                raise RuntimeError(f"second worker exited with {code}:\n{second.log_tail()}")
        finally:
            escalations.close()
            dead.close()
            first.kill()
            second.kill()

        store = CheckpointStore(settings)
        try:
            checkpoints = store.read(range(PARTITIONS))
        finally:
            store.close()
        seen = {m: int(cp.state["monitor"]["events_seen"]) for m, cp in checkpoints.items()}
        sizes = [len(encode(cp)) for cp in checkpoints.values()]
        second_log = second.log_path.read_text(errors="replace")
        restores = re.findall(r"restored \d+ model checkpoints in ([0-9.]+) s", second_log)
        audit = EscalationAudit(escalations.messages, stream.qualifying)
        # Dead letters by source offset: replays may repeat one, and payloads repeat.
        dead_sources = {
            (d["source"]["partition"], d["source"]["offset"])
            for d in dead.messages
            if d["source"]["topic"] == topics["inference"]
        }
        accounted = sum(seen.values()) + len(dead_sources)
        return {
            "benchmark": "recovery",
            "events_published": stream.published,
            "events_accounted": accounted,
            "events_applied_twice": sum(
                max(0, seen.get(m, 0) - n) for m, n in stream.valid.items()
            ),
            "events_lost": sum(max(0, n - seen.get(m, 0)) for m, n in stream.valid.items()),
            "missing_escalations": len(audit.missing),
            "conflicting_escalations": len(audit.conflicting),
            "duplicate_escalations": audit.duplicates,
            "escalations_expected": len(stream.qualifying),
            "processed_when_killed": int(processed_at_kill),
            "restore_seconds": round(sum(float(r) for r in restores), 3),
            "restore_read": restore_read(second_log),
            "first_event_seconds": round(first_event_seconds, 3),
            "first_event_breakdown": breakdown(second_log, spawned_wall, first_event_wall),
            "membership": membership,
            "state_bytes_per_model": max(sizes) if sizes else 0,
            "state_bytes_per_model_mean": round(sum(sizes) / len(sizes)) if sizes else 0,
            "models": N_MODELS,
            "features": N_FEATURES,
            "partitions": PARTITIONS,
            "seconds": round(time.monotonic() - started, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="80,000 events instead of 200,000")
    parser.add_argument(
        "--ingest", default="batch", choices=("batch", "faust"), help="worker.ingest"
    )
    parser.add_argument(
        "--membership",
        default="static",
        choices=("static", "dynamic"),
        help="static: the restarted worker has the killed one's worker.instance_id",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-recovery-") as tmp:
        result = run(80_000 if args.quick else 200_000, Path(tmp), args.ingest, args.membership)
    result["ingest"] = args.ingest
    print(json.dumps(result))
    ok = (
        result["missing_escalations"] == 0
        and result["conflicting_escalations"] == 0
        and result["events_accounted"] == result["events_published"]
        and result["state_bytes_per_model"] <= 1_000_000
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
