"""The dataset sink against a real broker; prints ONE JSON object.

1. **Throughput.** ``n`` reviewed records (3 models) are on a 4-partition topic before the
   sink starts; the sink runs in this process (:class:`DatasetSink`, default settings:
   batches of 20k records, one Delta commit each) into a fresh local table.
   ``records_per_second`` is the records committed after the first commit over the time
   from the first commit to the last (the sink's rate once running);
   ``records_per_second_with_start`` is ``n`` over the time from the sink's start (table
   made, consumer group joined, first fetch) to the last commit. A throwaway sink runs
   first on the fresh broker (which makes ``__consumer_offsets`` then).
2. **Exactly once.** ``vigil dataset sink`` as a child process reads another topic while a
   publisher is still writing it; it is killed with SIGKILL once a third of the records
   are in the table, and started again. When the table holds every record (and 3 s more
   have passed), ``exactly_once_violations`` is the number of (partition, offset) rows
   that are duplicated plus those missing: 0 is the guarantee.

``python benchmarks/dataset_sink.py [--quick] [--n N]`` (quick: 50k records for throughput,
10k for the kill; full: 200k and 30k). A local broker is started unless
``KAFKA_BOOTSTRAP_SERVERS`` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka.admin import AdminClient, NewTopic

from streams.config import settings_from_dict
from streams.dataset.sink import DatasetSink
from streams.dataset.table import DatasetTable
from streams.dev.local_broker import LocalBroker
from tests.streams.dataset.reviewed import encoded, reviewed_record
from tests.streams.dataset.sink_process import SinkProcess, table_positions, table_rows
from tests.support import BackgroundPublisher, publish, wait_until

TARGET_RECORDS_PER_SECOND = 20_000


@contextlib.contextmanager
def broker() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    with LocalBroker() as local:
        yield local.bootstrap


def make_topic(bootstrap: str, partitions: int) -> str:
    name = f"bench.reviewed.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    time.sleep(1.0)  # leaders elected
    return name


def sink_for(bootstrap: str, topic: str, table: Path) -> DatasetSink:
    settings = settings_from_dict(
        {
            "kafka": {"bootstrap": bootstrap},
            "topics": {"reviewed": topic},
            # Batches of 20k (the default) filled within 0.5 s: at full speed a batch
            # fills long before; the wait only matters for the stream's last batch.
            "dataset": {
                "table": str(table),
                "group_id": f"bench-{topic}",
                "batch_within_s": 0.5,
            },
        }
    )
    return DatasetSink(settings)


def warm_up(bootstrap: str, workdir: Path) -> None:
    """A first consumer group on a fresh broker makes ``__consumer_offsets`` (50
    partitions), which a broker in service has long had: not the sink's cost."""
    topic = make_topic(bootstrap, 1)
    publish(bootstrap, topic, [encoded(reviewed_record(i)) for i in range(10)])
    sink = sink_for(bootstrap, topic, workdir / "warm-up")
    deadline = time.monotonic() + 120
    while sink.counts.written < 10 and time.monotonic() < deadline:
        sink.run_once()
    sink.consumer.close()


def throughput(bootstrap: str, workdir: Path, n: int) -> dict[str, Any]:
    topic = make_topic(bootstrap, 4)
    publish(bootstrap, topic, [encoded(reviewed_record(i)) for i in range(n)])
    sink = sink_for(bootstrap, topic, workdir / "throughput")
    settings = sink.settings
    started = time.perf_counter()
    sink.table.open(create=True)
    deadline = time.monotonic() + 600
    first: tuple[float, int] | None = None  # (time, rows) at the first commit
    while sink.counts.written < n and time.monotonic() < deadline:
        sink.run_once()
        if first is None and sink.counts.written:
            first = (time.perf_counter(), sink.counts.written)
    ended = time.perf_counter()
    seconds = ended - started
    sink.consumer.close()
    rows = DatasetTable(str(workdir / "throughput")).open().count()
    return {
        "records": n,
        "rows_in_table": rows,
        "seconds": round(seconds, 2),
        # After the first commit: without the group join and the first fetch.
        "records_per_second": (
            round((n - first[1]) / (ended - first[0])) if first and ended > first[0] else 0
        ),
        "records_per_second_with_start": round(n / seconds),
        "commits": sink.counts.commits,
        "batch_size": settings.dataset.batch_size,
    }


def kill_and_restart(bootstrap: str, workdir: Path, n: int) -> dict[str, Any]:
    topic = make_topic(bootstrap, 3)
    table = workdir / "killed"
    publisher = BackgroundPublisher(
        bootstrap, topic, [encoded(reviewed_record(i)) for i in range(n)], rate=n / 6
    ).start()
    sink = SinkProcess(bootstrap, topic, table, workdir, batch_size=1000).start()
    try:
        if not wait_until(lambda: table_rows(table) >= n // 3, timeout=180):
            raise RuntimeError(f"sink made no progress:\n{sink.log_tail()}")
        sink.kill()
        killed_at = table_rows(table)
        sink = SinkProcess(bootstrap, topic, table, workdir, batch_size=1000).start()
        publisher.join()
        wait_until(lambda: table_rows(table) >= n, timeout=300)
        time.sleep(3.0)
    finally:
        sink.stop()
    seen = table_positions(table)
    duplicates = sum(c - 1 for c in seen.values() if c > 1)
    missing = n - len(seen)
    return {
        "records": n,
        "rows_when_killed": killed_at,
        "rows": sum(seen.values()),
        "duplicates": duplicates,
        "missing": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None, help="records for the throughput run")
    args = parser.parse_args()
    n = args.n or (50_000 if args.quick else 200_000)
    n_kill = 10_000 if args.quick else 30_000
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        work = Path(tmp)
        warm_up(bootstrap, work)
        speed = throughput(bootstrap, work, n)
        crash = kill_and_restart(bootstrap, work, n_kill)
    print(
        json.dumps(
            {
                "benchmark": "dataset_sink",
                "quick": args.quick,
                "records_per_second": speed["records_per_second"],
                "target_records_per_second": TARGET_RECORDS_PER_SECOND,
                "meets_target": speed["records_per_second"] >= TARGET_RECORDS_PER_SECOND,
                "exactly_once_violations": crash["duplicates"] + crash["missing"],
                "throughput": speed,
                "kill_9": crash,
            }
        )
    )


if __name__ == "__main__":
    main()
