"""The dataset's Delta table: opened or made, appended to with Kafka offsets, read back.

An append is one Delta commit that carries, next to its rows, one *application
transaction* per Kafka partition it covers: app id ``vigil-dataset/<group>/<topic>/<partition>``
and version = the partition's next offset. Delta commits are atomic, so the rows and the
offsets they came from land together or not at all, and
:meth:`DatasetTable.committed_offset` reads back how far each partition is in the table.

Before every attempt :meth:`DatasetTable.append` drops the rows the table already has (an
offset below the partition's transaction version). When another writer commits first,
delta-rs raises ``CommitFailedError`` for a concurrent commit of the same application
transaction, or for a metadata change (a ``vigil dataset snapshot``); the table is then
reloaded, the rows filtered again and the commit retried. delta-rs records transactions but
never skips rows by itself: the filter here is what makes a replay harmless.

delta-rs panics in a forked child: a process that uses this module must be started with
``spawn`` (or ``subprocess``), never ``fork``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from streams.dataset.rows import ROW_SCHEMA
from streams.errors import VigilError

__all__ = ["PARTITION_COLUMN", "DatasetTable", "DatasetTableError", "app_id"]

log = logging.getLogger(__name__)

PARTITION_COLUMN = "model_id"


class DatasetTableError(VigilError, RuntimeError):
    """The dataset table could not be read or written (after the retries allowed)."""


def app_id(group: str, topic: str, partition: int) -> str:
    """The application transaction id of one consumer group's progress in one partition.

    >>> app_id("vigil-dataset", "vigil.reviewed", 3)
    'vigil-dataset/vigil.reviewed/3'
    """
    return f"{group}/{topic}/{partition}"


class DatasetTable:
    """The Delta table at ``uri`` (a path or a delta-rs URI), made on first use with
    :data:`~streams.dataset.rows.ROW_SCHEMA`, partitioned by ``model_id``."""

    def __init__(self, uri: str, *, storage_options: Mapping[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options) if storage_options else None
        self._table: Any = None
        #: Commits lost to another writer (each reloaded and retried), and the version of
        #: the last commit made here; read by the sink's metrics.
        self.conflicts = 0
        self.last_version: int | None = None

    # -- opening ------------------------------------------------------------------------

    def exists(self) -> bool:
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options))

    def open(self, *, create: bool = False) -> Any:
        """The ``DeltaTable``, loaded at its latest version; made empty if ``create``."""
        from deltalake import DeltaTable

        if self._table is None:
            if not self.exists():
                if not create:
                    raise DatasetTableError(f"no Delta table at {self.uri!r}")
                DeltaTable.create(
                    self.uri,
                    ROW_SCHEMA,
                    mode="ignore",  # another sink made it first: fine
                    partition_by=[PARTITION_COLUMN],
                    name="vigil reviewed records",
                    storage_options=self.storage_options,
                )
            self._table = DeltaTable(self.uri, storage_options=self.storage_options)
        return self._table

    def reload(self, *, create: bool = False) -> Any:
        """The table at its latest version (another writer may have committed)."""
        table = self.open(create=create)
        table.update_incremental()
        return table

    # -- offsets ------------------------------------------------------------------------

    def committed_offset(self, app: str) -> int | None:
        """The next offset recorded for ``app`` in the loaded version (None: never)."""
        version = self.open().transaction_version(app)
        return None if version is None else int(version)

    # -- writing ------------------------------------------------------------------------

    def append(
        self,
        rows: pa.Table,
        offsets: Mapping[str, tuple[int, int]],
        *,
        max_attempts: int = 20,
    ) -> int:
        """Commit ``rows`` with ``offsets`` (app id → (partition, next offset)) as one
        Delta commit; returns the rows written (those the table had already are dropped).

        ``rows`` carry ``kafka_partition`` and ``kafka_offset``; all of one call come from
        one topic and group (the app ids say which). Nothing is written when every row and
        every offset is already in the table.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake
        from deltalake.exceptions import CommitFailedError

        table = self.open(create=True)
        for attempt in range(1, max_attempts + 1):
            todo, advancing = self._not_yet_in(table, rows, offsets)
            if not advancing:
                return 0
            txns = [Transaction(app, next_offset) for app, (_, next_offset) in advancing.items()]
            try:
                write_deltalake(
                    table,
                    todo,
                    mode="append",
                    schema_mode="merge",
                    # delta-rs retries a commit that only raced other appends (its conflict
                    # check passes them) and fails one that raced the same transaction
                    # id or a metadata change: that is the reload below.
                    commit_properties=CommitProperties(app_transactions=txns),
                )
            except CommitFailedError as exc:
                log.warning(
                    "dataset commit %d/%d lost to another writer (%s): reloading the table",
                    attempt,
                    max_attempts,
                    exc,
                )
                self.conflicts += 1
                table = self.reload(create=True)
                continue
            table.update_incremental()
            self.last_version = int(table.version())
            return int(todo.num_rows)
        raise DatasetTableError(
            f"could not commit to {self.uri!r} in {max_attempts} attempts: other writers kept "
            "committing first"
        )

    def _not_yet_in(
        self, table: Any, rows: pa.Table, offsets: Mapping[str, tuple[int, int]]
    ) -> tuple[pa.Table, dict[str, tuple[int, int]]]:
        """The rows and offsets beyond what ``table`` (as loaded) has committed."""
        advancing: dict[str, tuple[int, int]] = {}
        masks = []
        for app, (partition, next_offset) in offsets.items():
            done = table.transaction_version(app)
            done = -1 if done is None else int(done)
            if next_offset > done:
                advancing[app] = (partition, next_offset)
            if done >= 0:
                # Rows of this partition below its committed offset are in the table.
                masks.append(
                    pc.and_(
                        pc.equal(rows["kafka_partition"], partition),
                        pc.less(rows["kafka_offset"], done),
                    )
                )
        if not masks or rows.num_rows == 0:
            return rows, advancing
        already = masks[0]
        for mask in masks[1:]:
            already = pc.or_(already, mask)
        return rows.filter(pc.invert(already)), advancing

    # -- reading ------------------------------------------------------------------------

    def version(self) -> int:
        return int(self.open().version())

    def read(self, version: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Every row of ``version`` (default: the latest), single-threaded.

        pyarrow's thread pool, used by ``DeltaTable.to_pyarrow_table``, was seen to abort
        the interpreter at exit ("terminate called without an active exception") with
        deltalake 1.6; a single-threaded scan of the same dataset does not.
        """
        from deltalake import DeltaTable

        table = DeltaTable(self.uri, storage_options=self.storage_options)
        if version is not None:
            table.load_as_version(version)
        dataset = table.to_pyarrow_dataset()
        return dataset.to_table(columns=list(columns) if columns else None, use_threads=False)

    def properties(self) -> dict[str, str]:
        """The table's properties (``delta.*`` and vigil's own), as last loaded."""
        return dict(self.reload().metadata().configuration)

    def set_properties(self, properties: Mapping[str, str]) -> None:
        """One commit that sets ``properties`` (keys outside ``delta.*`` allowed)."""
        self.reload().alter.set_table_properties(dict(properties), raise_if_not_exists=False)

    def count_by_partition(self, version: int | None = None) -> dict[str, int]:
        """Rows per ``model_id`` in ``version``."""
        ids = self.read(version, columns=[PARTITION_COLUMN])[PARTITION_COLUMN]
        counts = pc.value_counts(ids)
        return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}
