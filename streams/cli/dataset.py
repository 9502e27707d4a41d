"""``vigil dataset sink | snapshot NAME | export NAME --out FILE.parquet | list``: the
versioned dataset of reviewed records (SPEC §14, :mod:`streams.dataset`).

The table is ``dataset.table`` (``VIGIL_DATASET_TABLE``), or ``--table`` for one command.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from streams.cli.options import Subparsers, settings_of, with_config

if TYPE_CHECKING:
    from streams.dataset import DatasetTable

__all__ = ["register"]


def _table(args: argparse.Namespace) -> DatasetTable:
    from streams.dataset import DatasetTable

    return DatasetTable(args.table or settings_of(args).dataset.table)


def run_sink(args: argparse.Namespace) -> int:
    from streams.dataset import DatasetSink
    from streams.dataset.metrics import serve_sink_metrics
    from streams.dev.children import stop_signals

    settings = settings_of(args)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sink = DatasetSink(settings, table=_table(args))
    stop_metrics = serve_sink_metrics(
        sink, settings.dataset.metrics_host, settings.dataset.metrics_port
    )
    try:
        # SIGINT/SIGTERM stop it between batches or mid-batch; either way the table holds
        # whole batches only, and a restart seeks by it.
        with stop_signals(), contextlib.suppress(KeyboardInterrupt):
            sink.run()
    finally:
        stop_metrics()
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    from streams.dataset import take_snapshot

    s = take_snapshot(_table(args), args.name)
    print(f"{s.name}: version {s.version}, {s.rows} rows, sha256 {s.sha256}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from streams.dataset import export_snapshot

    s, digest, rows = export_snapshot(_table(args), args.name, args.out, distinct=args.distinct)
    print(f"{args.out}: snapshot {s.name}, version {s.version}, {rows} rows, sha256 {digest}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from streams.dataset import list_snapshots

    table = _table(args)
    snapshots = list_snapshots(table)
    print(f"{table.uri}: version {table.version()}")
    if not snapshots:
        print("no snapshots")
    for s in snapshots:
        print(f"{s.name}\tversion {s.version}\t{s.rows} rows\tsha256 {s.sha256}\t{s.created_at}")
    return 0


def register(sub: Subparsers) -> None:
    d = sub.add_parser("dataset", help="the versioned dataset of reviewed records (Delta Lake)")
    d_sub = d.add_subparsers(dest="dataset_command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = with_config(d_sub.add_parser(name, help=help_text))
        p.add_argument("--table", help="the Delta table (path or URI); default dataset.table")
        return p

    command("sink", "reviewed topic -> Delta table, each record exactly once").set_defaults(
        func=run_sink
    )
    snap = command("snapshot", "name the table's current version")
    snap.add_argument("name", help="unique name: letters, digits, '.', '_', '-'")
    snap.set_defaults(func=run_snapshot)
    exp = command("export", "write a named version's rows, sorted, to Parquet")
    exp.add_argument("name", help="a snapshot name (see `vigil dataset list`)")
    exp.add_argument("--out", required=True, type=Path, help="the Parquet file to write")
    exp.add_argument(
        "--distinct",
        action="store_true",
        help="one row per reviewed_id (copies published twice to the topic dropped)",
    )
    exp.set_defaults(func=run_export)
    command("list", "snapshots: names, versions, row counts, hashes").set_defaults(func=run_list)
