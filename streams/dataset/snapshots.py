"""Named versions of the dataset and their exports: what a training run cites.

``snapshot NAME`` records, as the table property ``vigil.snapshot.<NAME>``, a JSON object
``{"version", "rows", "sha256", "created_at"}`` naming the table's current version. Table
properties, not commit metadata: they live in the table's metadata, which every later
version and every checkpoint carries, so a name survives log clean-up, compaction and
later appends; commit metadata would vanish with its commit file. Naming is itself one
Delta commit (``SET TBLPROPERTIES``), so a sink committing at the same moment loses its
commit, reloads and retries (:mod:`streams.dataset.table`). Names are unique: naming an
existing name again is refused.

The **content hash** is the SHA-256 of a canonical encoding of the version's rows, not of
a Parquet file's bytes (which change with the Parquet writer's version): one line per row,
the row's values as a JSON array in column order (times as RFC 3339 UTC, microseconds),
rows sorted by (``model_id``, ``reviewed_id``, ``kafka_topic``, ``kafka_partition``,
``kafka_offset``), which is unique per row because the sink writes each Kafka record once;
a first line lists the columns. It depends only on the rows, so more appends, compaction
(``optimize.compact``) and checkpoints leave it unchanged, and anyone can recompute it from
the exported file (:func:`content_hash`).

Exports are the same sorted rows, written to Parquet with fixed writer settings, with
the snapshot's name, version and hash in the file's key-value metadata.

``snapshot`` and ``export`` hold the whole version in memory (Arrow, then sorted): a few
million rows take a few GB. A named version can be exported only while its data files
exist: ``VACUUM`` with a retention shorter than the age of the oldest named version would
remove them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streams.dataset.rows import COLUMNS
from streams.dataset.table import DatasetTable
from streams.errors import VigilError

__all__ = [
    "PROPERTY_PREFIX",
    "SORT_KEY",
    "Snapshot",
    "SnapshotError",
    "canonical_rows",
    "content_hash",
    "export_snapshot",
    "list_snapshots",
    "take_snapshot",
]

PROPERTY_PREFIX = "vigil.snapshot."
SORT_KEY = ("model_id", "reviewed_id", "kafka_topic", "kafka_partition", "kafka_offset")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HASH_BATCH = 10_000


class SnapshotError(VigilError, ValueError):
    """A snapshot name that is invalid, taken or unknown; or an export that does not match."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    version: int
    rows: int
    sha256: str
    created_at: str

    def as_property(self) -> str:
        return orjson.dumps(
            {
                "version": self.version,
                "rows": self.rows,
                "sha256": self.sha256,
                "created_at": self.created_at,
            }
        ).decode()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SnapshotError(f"snapshot name must match {_NAME.pattern}; got {name!r}")
    return name


def canonical_rows(table: pa.Table) -> pa.Table:
    """``table`` in the canonical form that exports and hashes use: vigil's columns in
    their order, then any others by name; plain Arrow types; sorted by :data:`SORT_KEY`."""
    names = [c for c in COLUMNS if c in table.column_names]
    names += sorted(c for c in table.column_names if c not in COLUMNS)
    columns = []
    for name in names:
        column = table[name]
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(kind):
            column = column.cast(pa.timestamp("us", tz="UTC"))
        columns.append(column)
    out = pa.table(columns, names=names)
    keys = [(k, "ascending") for k in SORT_KEY if k in names]
    if keys:
        out = out.take(pc.sort_indices(out, sort_keys=keys))
    return out.combine_chunks()


def content_hash(table: pa.Table) -> str:
    """SHA-256 (hex) of the canonical encoding of ``table``'s rows (module docstring)."""
    rows = canonical_rows(table)
    digest = hashlib.sha256()
    header = [[f.name, str(f.type)] for f in rows.schema]
    digest.update(orjson.dumps(header) + b"\n")
    for batch in rows.to_batches(max_chunksize=_HASH_BATCH):
        columns = [_plain(batch.column(i)) for i in range(batch.num_columns)]
        for values in zip(*columns, strict=True):
            digest.update(orjson.dumps(list(values)) + b"\n")
    return digest.hexdigest()


def _plain(column: pa.Array) -> list[Any]:
    if pa.types.is_timestamp(column.type):
        # RFC 3339, microseconds, UTC: the same text for the same instant whatever reads it.
        return [
            None if v is None else v.astimezone(UTC).isoformat(timespec="microseconds")
            for v in column.to_pylist()
        ]
    return column.to_pylist()


def _distinct(rows: pa.Table) -> pa.Table:
    """The first row of each (``model_id``, ``reviewed_id``) of canonically sorted rows."""
    if rows.num_rows == 0:
        return rows
    models = rows["model_id"].to_pylist()
    ids = rows["reviewed_id"].to_pylist()
    keep = [True] + [
        (models[i], ids[i]) != (models[i - 1], ids[i - 1]) for i in range(1, rows.num_rows)
    ]
    return rows.filter(pa.array(keep))


def list_snapshots(table: DatasetTable) -> list[Snapshot]:
    """Every named version, oldest version first."""
    found = []
    for key, value in table.properties().items():
        if not key.startswith(PROPERTY_PREFIX):
            continue
        fields = orjson.loads(value)
        found.append(
            Snapshot(
                name=key[len(PROPERTY_PREFIX) :],
                version=int(fields["version"]),
                rows=int(fields["rows"]),
                sha256=str(fields["sha256"]),
                created_at=str(fields["created_at"]),
            )
        )
    return sorted(found, key=lambda s: (s.version, s.name))


def find_snapshot(table: DatasetTable, name: str) -> Snapshot:
    for snapshot in list_snapshots(table):
        if snapshot.name == name:
            return snapshot
    raise SnapshotError(f"no snapshot named {name!r} in {table.uri!r}")


def take_snapshot(table: DatasetTable, name: str, *, now: datetime | None = None) -> Snapshot:
    """Name the table's current version ``name`` (unique); returns the snapshot."""
    check_name(name)
    if any(s.name == name for s in list_snapshots(table)):
        raise SnapshotError(f"snapshot {name!r} already exists in {table.uri!r}")
    version = table.version()
    rows = table.read(version)
    created = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
    snapshot = Snapshot(name, version, rows.num_rows, content_hash(rows), created)
    table.set_properties({PROPERTY_PREFIX + name: snapshot.as_property()})
    return snapshot


def export_snapshot(
    table: DatasetTable, name: str, out: Path, *, distinct: bool = False
) -> tuple[Snapshot, str, int]:
    """Write the rows of snapshot ``name`` to ``out`` (Parquet), sorted; returns the
    snapshot, the hash of the rows written and their number.

    The rows read back must hash to the snapshot's recorded hash, or nothing is written
    (:class:`SnapshotError`): the version's files changed. With ``distinct``, one row per
    ``reviewed_id`` (the first by Kafka position) and the hash is of those rows.
    """
    snapshot = find_snapshot(table, name)
    rows = canonical_rows(table.read(snapshot.version))
    found = content_hash(rows)
    if found != snapshot.sha256:
        raise SnapshotError(
            f"version {snapshot.version} of {table.uri!r} now hashes to {found}, not the "
            f"{snapshot.sha256} recorded for snapshot {name!r}: its files were changed"
        )
    if distinct:
        rows = _distinct(rows)
        found = content_hash(rows)
    metadata = {
        b"vigil.snapshot": name.encode(),
        b"vigil.version": str(snapshot.version).encode(),
        b"vigil.sha256": found.encode(),
        b"vigil.distinct": b"true" if distinct else b"false",
    }
    rows = rows.replace_schema_metadata(metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(rows, tmp, compression="zstd", row_group_size=100_000, use_dictionary=True)
    tmp.replace(out)
    return snapshot, found, rows.num_rows
