"""The sink's exactly-once rules against a real Delta table and a fake consumer
(streams/dataset/sink.py, streams/dataset/table.py). The real broker: test_sink_kafka.py."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from streams.config import settings_from_dict
from streams.dataset.rows import decode_reviewed, rows_to_table
from streams.dataset.sink import DatasetSink
from streams.dataset.table import DatasetTable, app_id
from tests.streams.dataset.reviewed import FakeConsumer, FakeLog, encoded, reviewed_record

TOPIC = "vigil.reviewed"
GROUP = "vigil-dataset"


def _settings(table: Path, batch_size: int = 7):  # type: ignore[no-untyped-def]
    return settings_from_dict(
        {"dataset": {"table": str(table), "batch_size": batch_size, "batch_within_s": 0.0}}
    )


def _log(n: int, partitions: int = 3) -> FakeLog:
    log = FakeLog(TOPIC, partitions)
    for i in range(n):
        log.append(encoded(reviewed_record(i))[1])
    return log


def _drain(sink: DatasetSink, rounds: int = 1000) -> None:
    for _ in range(rounds):
        before = sink.counts.consumed
        sink.run_once()
        if sink.counts.consumed == before:
            return


def _positions(path: Path) -> Counter[tuple[int, int]]:
    rows = DatasetTable(str(path)).read(columns=["kafka_partition", "kafka_offset"])
    return Counter(
        zip(rows["kafka_partition"].to_pylist(), rows["kafka_offset"].to_pylist(), strict=True)
    )


def _expect_each_once(path: Path, log: FakeLog) -> None:
    seen = _positions(path)
    want = {(p, o) for p, values in enumerate(log.partitions) for o in range(len(values))}
    assert set(seen) == want, f"missing {sorted(want - set(seen))[:5]}"
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1][:5]


def test_every_record_lands_once_and_offsets_are_in_the_table(tmp_path: Path) -> None:
    log = _log(50)
    sink = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    _drain(sink)
    _expect_each_once(tmp_path / "t", log)
    table = DatasetTable(str(tmp_path / "t"))
    for p, values in enumerate(log.partitions):
        assert table.committed_offset(app_id(GROUP, TOPIC, p)) == len(values)
        assert log.committed[p] == len(values)  # Kafka after Delta
    assert sink.counts.written == 50 and sink.counts.invalid == 0
    assert sorted(table.count_by_partition()) == ["churn", "fraud", "price"]


def test_a_crash_before_the_kafka_commit_replays_nothing_into_the_table(
    tmp_path: Path,
) -> None:
    log = _log(60)
    first = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    # The process dies after each Delta commit and before its Kafka commit.
    first._commit_kafka = lambda offsets: None  # type: ignore[method-assign]
    for _ in range(4):
        first.run_once()
    assert log.committed == {}
    assert sum(_positions(tmp_path / "t").values()) == 28

    second = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    _drain(second)
    _expect_each_once(tmp_path / "t", log)
    assert second.counts.written == 32
    assert second.counts.consumed == 32  # sought by the table: nothing read twice


def test_rows_already_in_the_table_are_dropped_at_commit(tmp_path: Path) -> None:
    """A writer that does not know the table's progress (a member that lost its partition
    in a rebalance) writes nothing twice."""
    log = _log(20, partitions=1)
    _drain(DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log)))
    table = DatasetTable(str(tmp_path / "t"))
    rows = [
        decode_reviewed(orjson.loads(v), topic=TOPIC, partition=0, offset=o)
        for o, v in enumerate(log.partitions[0])
    ]
    assert table.append(rows_to_table(rows), {app_id(GROUP, TOPIC, 0): (0, 20)}) == 0
    log.append(encoded(reviewed_record(99))[1], partition=0)
    rows.append(decode_reviewed(reviewed_record(99), topic=TOPIC, partition=0, offset=20))
    assert table.append(rows_to_table(rows[15:]), {app_id(GROUP, TOPIC, 0): (0, 21)}) == 1
    _expect_each_once(tmp_path / "t", log)


def test_a_commit_lost_to_a_concurrent_writer_reloads_and_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "t")
    rows = rows_to_table(
        [decode_reviewed(reviewed_record(i), topic=TOPIC, partition=0, offset=i) for i in range(10)]
    )
    offsets = {app_id(GROUP, TOPIC, 0): (0, 10)}
    stale = DatasetTable(path)
    stale.open(create=True)  # loaded before the other writer commits
    assert DatasetTable(path).append(rows, offsets) == 10
    # delta-rs refuses the stale commit of the same application transaction; the retry
    # reloads, finds the rows in and writes nothing.
    with caplog.at_level(logging.WARNING):
        assert stale.append(rows, offsets) == 0
    assert "Concurrent transaction failed" in caplog.text
    assert DatasetTable(path).read().num_rows == 10


def test_a_snapshot_between_load_and_commit_costs_a_retry_not_a_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from streams.dataset.snapshots import take_snapshot

    log = _log(30)
    sink = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    sink.run_once()
    take_snapshot(DatasetTable(str(tmp_path / "t")), "between")  # a metadata commit
    with caplog.at_level(logging.WARNING):
        _drain(sink)
    assert "Metadata changed since last commit" in caplog.text
    _expect_each_once(tmp_path / "t", log)


def test_records_that_are_not_reviewed_records_are_counted_and_passed_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = FakeLog(TOPIC, 1)
    log.append(encoded(reviewed_record(0))[1])
    log.append(b"{not json")
    log.append(orjson.dumps({**reviewed_record(1), "final": None}))
    log.append(None)  # a tombstone
    log.append(encoded(reviewed_record(2))[1])
    sink = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    with caplog.at_level(logging.ERROR):
        _drain(sink)
    assert (sink.counts.invalid, sink.counts.written) == (3, 2)
    assert "@1: not a reviewed record" in caplog.text
    assert DatasetTable(str(tmp_path / "t")).committed_offset(app_id(GROUP, TOPIC, 0)) == 5


def test_a_new_feature_merges_and_an_older_table_gains_new_columns(tmp_path: Path) -> None:
    """Features are JSON: a new one is a new key in its rows. A table written by an older
    sink, without a column this one writes, gets the column by schema merge (old rows
    null)."""
    from deltalake import write_deltalake

    path = tmp_path / "t"
    old_rows = rows_to_table(
        [decode_reviewed(reviewed_record(i), topic=TOPIC, partition=0, offset=i) for i in range(3)]
    ).drop_columns(["n_labels", "segment"])
    write_deltalake(str(path), old_rows, partition_by=["model_id"])
    log = FakeLog(TOPIC, 1)
    for i in range(9):
        log.append(encoded(reviewed_record(i, extra_feature=i >= 3))[1])
    log.committed[0] = 3  # the old rows came from offsets 0-2
    _drain(DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log)))
    rows = DatasetTable(str(path)).read()
    assert rows.num_rows == 9
    assert "n_labels" in rows.column_names and "segment" in rows.column_names
    by_offset = dict(zip(rows["kafka_offset"].to_pylist(), rows.to_pylist(), strict=True))
    assert by_offset[0]["n_labels"] is None
    assert by_offset[4]["n_labels"] == 2  # model churn: two reviews
    assert "device" in orjson.loads(by_offset[5]["features"])
    assert "device" not in orjson.loads(by_offset[1]["features"])
    assert pa.types.is_string(rows.schema.field("features").type) or pa.types.is_large_string(
        rows.schema.field("features").type
    )


def test_sink_members_of_other_partitions_do_not_lose_commits_to_each_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "t")

    def rows(partition: int) -> pa.Table:
        return rows_to_table(
            [
                decode_reviewed(reviewed_record(i), topic=TOPIC, partition=partition, offset=i)
                for i in range(5)
            ]
        )

    stale = DatasetTable(path)
    stale.open(create=True)
    assert DatasetTable(path).append(rows(0), {app_id(GROUP, TOPIC, 0): (0, 5)}) == 5
    with caplog.at_level(logging.WARNING):
        assert stale.append(rows(1), {app_id(GROUP, TOPIC, 1): (1, 5)}) == 5
    assert "lost to another writer" not in caplog.text
    assert DatasetTable(path).read().num_rows == 10


def test_the_metrics_read_the_sink_at_scrape_time(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    from streams.dataset.metrics import SinkCollector

    log = _log(20)
    log.append(b"[]")
    sink = DatasetSink(_settings(tmp_path / "t"), consumer=FakeConsumer(log))
    registry = CollectorRegistry()
    registry.register(SinkCollector(sink))
    assert registry.get_sample_value("vigil_dataset_table_version") is None
    _drain(sink)
    get = registry.get_sample_value
    assert get("vigil_dataset_records_total", {"outcome": "written"}) == 20
    assert get("vigil_dataset_records_total", {"outcome": "invalid"}) == 1
    assert get("vigil_dataset_commits_total") == sink.counts.commits > 0
    assert get("vigil_dataset_commit_conflicts_total") == 0
    assert get("vigil_dataset_table_version") == DatasetTable(str(tmp_path / "t")).version()
