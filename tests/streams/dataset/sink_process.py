"""``vigil dataset sink`` as a child process (a fresh interpreter: delta-rs never runs in a
forked copy of this one), and what the table holds as seen from outside."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from streams.dev import children
from streams.dev.local_broker import free_port


class SinkProcess:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        table: Path,
        log_dir: Path,
        *,
        group: str = "vigil-dataset-test",
        batch_size: int = 500,
        batch_within_s: float = 0.2,
    ) -> None:
        self.table = table
        self.log_path = log_dir / "sink.log"
        self.env = dict(
            os.environ,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            VIGIL_TOPICS__REVIEWED=topic,
            VIGIL_DATASET_TABLE=str(table),
            VIGIL_DATASET__GROUP_ID=group,
            VIGIL_DATASET__BATCH_SIZE=str(batch_size),
            VIGIL_DATASET__BATCH_WITHIN_S=str(batch_within_s),
            VIGIL_DATASET__METRICS_PORT=str(free_port()),
            VIGIL_DATASET__METRICS_HOST="127.0.0.1",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SinkProcess:
        with self.log_path.open("ab") as log:
            self.proc = children.spawn(
                [sys.executable, "-m", "streams.cli", "dataset", "sink"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> int:
        """SIGKILL, no warning: the crash under test."""
        assert self.proc is not None
        return children.stop(self.proc, grace=0.0)

    def stop(self, grace: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        return children.stop(self.proc, grace)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def table_positions(table: Path) -> Counter[tuple[int, int]]:
    """(partition, offset) → rows in the table's latest version (empty if no table yet)."""
    from streams.dataset.table import DatasetTable

    t = DatasetTable(str(table))
    if not t.exists():
        return Counter()
    rows = t.read(columns=["kafka_partition", "kafka_offset"])
    return Counter(
        zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True)
    )


def table_rows(table: Path) -> int:
    from streams.dataset.table import DatasetTable

    t = DatasetTable(str(table))
    return t.open().count() if t.exists() else 0
