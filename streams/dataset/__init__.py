"""The versioned dataset (SPEC §14): reviewed records in a Delta Lake table.

* :mod:`~streams.dataset.rows` — a reviewed record (SPEC §12) checked and flattened.
* :mod:`~streams.dataset.table` — the Delta table, appends carrying Kafka offsets.
* :mod:`~streams.dataset.sink` — ``vigil dataset sink``, exactly once.
* :mod:`~streams.dataset.snapshots` — named versions, exports and content hashes.

Nothing here may run in a forked process (delta-rs panics there): use ``spawn``.
"""

from __future__ import annotations

from streams.dataset.rows import decode_reviewed
from streams.dataset.sink import DatasetSink
from streams.dataset.snapshots import (
    Snapshot,
    SnapshotError,
    content_hash,
    export_snapshot,
    list_snapshots,
    take_snapshot,
)
from streams.dataset.table import DatasetTable, DatasetTableError

__all__ = [
    "DatasetSink",
    "DatasetTable",
    "DatasetTableError",
    "Snapshot",
    "SnapshotError",
    "content_hash",
    "decode_reviewed",
    "export_snapshot",
    "list_snapshots",
    "take_snapshot",
]
