"""The sink against the real broker: killed with SIGKILL mid-stream and restarted, the
table holds every reviewed record exactly once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.streams.dataset.reviewed import encoded, reviewed_record
from tests.streams.dataset.sink_process import SinkProcess, table_positions, table_rows
from tests.support import BackgroundPublisher, wait_until

pytestmark = [pytest.mark.kafka]

N = 6000


def test_a_sink_killed_mid_stream_and_restarted_writes_each_record_once(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=3)
    table = tmp_path / "dataset"
    records = [reviewed_record(i) for i in range(N)]
    # Still publishing while the sink runs, dies and comes back.
    publisher = BackgroundPublisher(
        kafka_bootstrap, topic, [encoded(r) for r in records], rate=1500
    ).start()
    sink = SinkProcess(kafka_bootstrap, topic, table, tmp_path, batch_size=200).start()
    try:
        assert wait_until(lambda: table_rows(table) >= N // 4, timeout=120), sink.log_tail()
        assert sink.kill() == -9
        killed_at = table_rows(table)
        assert killed_at < N, "the kill came after the end of the stream"

        sink = SinkProcess(kafka_bootstrap, topic, table, tmp_path, batch_size=200).start()
        publisher.join()
        assert wait_until(lambda: table_rows(table) >= N, timeout=180), sink.log_tail()
        # Time for a duplicate to land, if one were coming.
        wait_until(lambda: not sink.alive(), timeout=3)
        assert sink.stop() == 0, sink.log_tail()
    finally:
        if sink.alive():
            sink.kill()

    seen = table_positions(table)
    assert sum(seen.values()) == N, f"{sum(seen.values())} rows for {N} records"
    assert max(seen.values()) == 1
    from streams.dataset.table import DatasetTable

    ids = DatasetTable(str(table)).read(columns=["reviewed_id"])["reviewed_id"].to_pylist()
    assert sorted(ids) == sorted(r["reviewed_id"] for r in records)
    assert "assigned" in sink.log_tail(200)
