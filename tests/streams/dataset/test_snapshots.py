"""Named versions, exports and content hashes (streams/dataset/snapshots.py), and the
``vigil dataset`` commands (streams/cli/dataset.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from streams.cli import main
from streams.dataset.rows import decode_reviewed, rows_to_table
from streams.dataset.snapshots import (
    SnapshotError,
    canonical_rows,
    content_hash,
    export_snapshot,
    list_snapshots,
    take_snapshot,
)
from streams.dataset.table import DatasetTable, app_id
from tests.streams.dataset.reviewed import reviewed_record

TOPIC = "vigil.reviewed"


def _append(table: DatasetTable, start: int, stop: int, **kw: bool) -> None:
    rows = [
        decode_reviewed(reviewed_record(i, **kw), topic=TOPIC, partition=0, offset=i)
        for i in range(start, stop)
    ]
    table.append(rows_to_table(rows), {app_id("g", TOPIC, 0): (0, stop)})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def table(tmp_path: Path) -> DatasetTable:
    t = DatasetTable(str(tmp_path / "table"))
    for start in range(0, 40, 10):  # four commits: several files per partition
        _append(t, start, start + 10)
    return t


def test_an_export_is_the_same_after_more_appends_a_compaction_and_a_new_feature(
    table: DatasetTable, tmp_path: Path
) -> None:
    snap = take_snapshot(table, "train-1")
    assert snap.rows == 40
    _, first_hash, rows = export_snapshot(table, "train-1", tmp_path / "a.parquet")
    assert first_hash == snap.sha256 and rows == 40

    _append(table, 40, 60, extra_feature=True)
    from deltalake import DeltaTable

    metrics = DeltaTable(table.uri).optimize.compact()
    assert metrics["numFilesRemoved"] > metrics["numFilesAdded"] > 0
    _, again, _ = export_snapshot(table, "train-1", tmp_path / "b.parquet")
    assert again == first_hash
    assert _sha(tmp_path / "a.parquet") == _sha(tmp_path / "b.parquet")  # byte-identical
    # The export holds exactly that version's rows, sorted, and says which it is.
    exported = pq.read_table(tmp_path / "b.parquet")
    assert exported.num_rows == 40
    assert sorted(exported["kafka_offset"].to_pylist()) == list(range(40))
    keys = list(
        zip(exported["model_id"].to_pylist(), exported["reviewed_id"].to_pylist(), strict=True)
    )
    assert keys == sorted(keys)
    meta = exported.schema.metadata
    assert meta[b"vigil.snapshot"] == b"train-1"
    assert meta[b"vigil.sha256"] == first_hash.encode()
    assert content_hash(exported) == first_hash  # recomputable from the file alone

    later = take_snapshot(table, "train-2")
    assert later.rows == 60 and later.sha256 != first_hash
    assert [s.name for s in list_snapshots(table)] == ["train-1", "train-2"]


def test_the_hash_depends_on_the_rows_not_their_order_or_files(table: DatasetTable) -> None:
    rows = table.read()
    assert content_hash(rows) == content_hash(rows.take(list(reversed(range(rows.num_rows)))))
    methods = rows["final_method"].to_pylist()
    methods[-1] = "majority" if methods[-1] != "majority" else "single"
    changed = rows.set_column(rows.column_names.index("final_method"), "final_method", [methods])
    assert content_hash(changed) != content_hash(rows)


def test_canonical_rows_put_vigil_columns_first_then_others_by_name(table: DatasetTable) -> None:
    rows = table.read()
    mixed = rows.append_column("zz_extra", [[1] * rows.num_rows]).append_column(
        "aa_extra", [[2] * rows.num_rows]
    )
    out = canonical_rows(mixed.select(list(reversed(mixed.column_names))))
    assert out.column_names[:3] == ["reviewed_id", "event_id", "model_id"]
    assert out.column_names[-2:] == ["aa_extra", "zz_extra"]


def test_names_are_unique_and_checked(table: DatasetTable) -> None:
    take_snapshot(table, "v1", now=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(SnapshotError, match="already exists"):
        take_snapshot(table, "v1")
    with pytest.raises(SnapshotError, match="must match"):
        take_snapshot(table, "bad name")
    with pytest.raises(SnapshotError, match="no snapshot named 'nope'"):
        export_snapshot(table, "nope", Path("/nonexistent/x.parquet"))
    (only,) = list_snapshots(table)
    assert only.created_at == "2026-01-01T00:00:00+00:00"


def test_an_export_whose_version_changed_is_refused(table: DatasetTable, tmp_path: Path) -> None:
    snap = take_snapshot(table, "v1")
    forged = snap.as_property().replace(snap.sha256, "0" * 64)
    table.set_properties({"vigil.snapshot.v1": forged})
    with pytest.raises(SnapshotError, match="files were changed"):
        export_snapshot(table, "v1", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_distinct_keeps_one_row_per_reviewed_record(tmp_path: Path) -> None:
    t = DatasetTable(str(tmp_path / "t"))
    _append(t, 0, 10)
    # The same ten records published again (at-least-once publishing): new offsets.
    rows = [
        decode_reviewed(reviewed_record(i), topic=TOPIC, partition=0, offset=10 + i)
        for i in range(10)
    ]
    t.append(rows_to_table(rows), {app_id("g", TOPIC, 0): (0, 20)})
    take_snapshot(t, "dup")
    assert export_snapshot(t, "dup", tmp_path / "all.parquet")[2] == 20
    _, digest, n = export_snapshot(t, "dup", tmp_path / "one.parquet", distinct=True)
    assert n == 10
    one = pq.read_table(tmp_path / "one.parquet")
    assert set(one["kafka_offset"].to_pylist()) == set(range(10))  # the first copies
    assert one.schema.metadata[b"vigil.distinct"] == b"true"
    assert content_hash(one) == digest


def test_the_commands(
    table: DatasetTable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--table", table.uri]
    assert main(["dataset", "list", *where]) == 0
    assert "no snapshots" in capsys.readouterr().out
    assert main(["dataset", "snapshot", "first", *where]) == 0
    assert "first: version 4, 40 rows, sha256 " in capsys.readouterr().out
    assert main(["dataset", "snapshot", "first", *where]) == 1
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "out" / "first.parquet"
    assert main(["dataset", "export", "first", "--out", str(out), *where]) == 0
    (snap,) = list_snapshots(table)
    assert f"40 rows, sha256 {snap.sha256}" in capsys.readouterr().out
    assert pq.read_table(out).num_rows == 40
    assert main(["dataset", "list", *where]) == 0
    listing = capsys.readouterr().out
    assert f"first\tversion 4\t40 rows\tsha256 {snap.sha256}" in listing
    assert main(["dataset", "list", "--table", str(tmp_path / "none")]) == 1
    assert "no Delta table" in capsys.readouterr().err
