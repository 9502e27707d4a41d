"""``vigil replay FILE [--labels FILE]``: the worker's code path over JSONL files, no Kafka.

Inference events and labels are merged in timestamp order (labels ordered by
their ``ts``) and fed to the same :class:`~streams.processing.Processor` the
worker runs, on event time, so a replay is deterministic: the same files give
the same escalations, alerts and reviewed records, byte for byte. The events may come from standard
input (``FILE`` is ``-``); the labels, read whole and sorted first, from a file.
"""

from __future__ import annotations

import heapq
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
from prometheus_client import CollectorRegistry

from streams.config import Settings
from streams.events.dead_letters import MessageSource
from streams.processing.metrics import VigilMetrics
from streams.processing.processor import Outgoing, Processor

__all__ = ["ReplaySummary", "run_replay"]

_LABEL = 1
_INFERENCE = 0

#: The events path that means standard input, and the name its dead letters carry.
STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass
class ReplaySummary:
    events: int = 0
    labels: int = 0
    processed: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    escalation_reasons: Counter[str] = field(default_factory=Counter)
    alerts: list[str] = field(default_factory=list)
    reviewed: int = 0
    seconds: float = 0.0
    out_dir: str = ""

    def render(self) -> str:
        lines = [
            f"replayed {self.events} events and {self.labels} labels in {self.seconds:.1f}s",
            f"  processed:    {self.processed}",
            f"  dead letters: {sum(self.dead_letters.values())} {dict(self.dead_letters)}",
            f"  escalations:  {self.escalations} {dict(self.escalation_reasons)}",
            f"  alerts:       {len(self.alerts)}",
            f"  reviewed:     {self.reviewed}",
        ]
        lines += [f"    {a}" for a in self.alerts[:50]]
        lines.append(f"  written to {self.out_dir}/")
        return "\n".join(lines)


def _ts_key(line: bytes) -> float:
    """Sort key of one JSONL line: its ts in epoch seconds (unreadable lines sort first)."""
    try:
        ts = orjson.loads(line).get("ts")
    except (orjson.JSONDecodeError, AttributeError):
        return float("-inf")
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return float("-inf")
    return float("-inf")


def _lines(path: str, kind: int) -> Iterator[tuple[float, int, int, bytes]]:
    if path == STDIN:  # not ours to close
        yield from _numbered(sys.stdin.buffer, kind)
        return
    with Path(path).open("rb") as f:
        yield from _numbered(f, kind)


def _numbered(f: IO[bytes], kind: int) -> Iterator[tuple[float, int, int, bytes]]:
    for lineno, line in enumerate(f, 1):
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield (_ts_key(line) if kind == _LABEL else 0.0, kind, lineno, line)


def run_replay(
    settings: Settings,
    events_path: str,
    *,
    labels: str | None = None,
    out_dir: str = "replay-out",
    progress: bool = True,
) -> ReplaySummary:
    """Replay ``events_path`` (``-`` for standard input) and ``labels``; returns the summary.

    Raises :class:`OSError` naming the file, before anything is written, when an input
    cannot be read."""
    # Sizes for the progress bar; stat-ing first also fails on a missing input before
    # the output directory is made. Standard input has no size: progress shows no bar.
    events_bytes = None if events_path == STDIN else Path(events_path).stat().st_size
    labels_bytes = Path(labels).stat().st_size if labels else 0
    total_bytes = None if events_bytes is None else events_bytes + labels_bytes
    events_name = STDIN_NAME if events_path == STDIN else events_path
    out_path = Path(out_dir)
    out_path.mkdir(parents=True, exist_ok=True)
    processor = Processor(
        settings, VigilMetrics(CollectorRegistry(), settings.worker.max_models), clock=None
    )
    summary = ReplaySummary(out_dir=str(out_path))
    # Labels are read whole and sorted by ts (bounded by the file the user gives); events
    # stream in file order, each label released once an event at or after its ts is seen.
    pending = sorted(_lines(labels, _LABEL)) if labels else []
    heapq.heapify(pending)
    out = Outgoing()
    started = time.monotonic()
    last_report = started
    done_bytes = 0
    with (
        (out_path / "escalations.jsonl").open("wb") as esc_f,
        (out_path / "alerts.jsonl").open("wb") as alert_f,
        (out_path / "deadletters.jsonl").open("wb") as dl_f,
        (out_path / "reviewed.jsonl").open("wb") as rev_f,
    ):
        files = (esc_f, alert_f, dl_f, rev_f)
        for _, _, lineno, line in _lines(events_path, _INFERENCE):
            t = _ts_key(line) if pending else 0.0
            while pending and pending[0][0] <= t:
                _, _, lab_no, lab_line = heapq.heappop(pending)
                processor.label(lab_line, MessageSource(str(labels), 0, lab_no, None), out)
                summary.labels += 1
                done_bytes += len(lab_line) + 1
            processor.inference(line, MessageSource(events_name, 0, lineno, None), out)
            processor.adjudicate_due(out)
            summary.events += 1
            done_bytes += len(line) + 1
            _drain(out, files, summary)
            if progress and time.monotonic() - last_report > 0.5:
                last_report = time.monotonic()
                _progress(sys.stderr, done_bytes, total_bytes, summary, last_report - started)
        while pending:
            _, _, lab_no, lab_line = heapq.heappop(pending)
            processor.label(lab_line, MessageSource(str(labels), 0, lab_no, None), out)
            summary.labels += 1
            _drain(out, files, summary)
    summary.processed = processor.processed
    summary.seconds = time.monotonic() - started
    if progress:
        _progress(sys.stderr, total_bytes or 0, total_bytes, summary, summary.seconds)
        sys.stderr.write("\n")
    return summary


def _drain(out: Outgoing, files: tuple[IO[bytes], ...], summary: ReplaySummary) -> None:
    if not len(out):
        return
    esc_f, alert_f, dl_f, rev_f = files
    for _, value in out.escalations:
        esc_f.write(value + b"\n")
        summary.escalations += 1
        for r in orjson.loads(value)["reasons"]:
            summary.escalation_reasons[r["kind"]] += 1
    for _, value in out.alerts:
        alert_f.write(value + b"\n")
        a = orjson.loads(value)
        summary.alerts.append(
            f"{a['detected_at']} {a['model_id']} {a['signal']} {a['state']} "
            f"(statistic {a['statistic']:.4g}, threshold {a['threshold']:.4g})"
        )
    for _, value in out.dead_letters:
        dl_f.write(value + b"\n")
        summary.dead_letters[orjson.loads(value)["reason"]] += 1
    for _, value in out.reviewed:
        rev_f.write(value + b"\n")
        summary.reviewed += 1
    out.clear()


def _progress(
    stream: IO[str], done: int, total: int | None, summary: ReplaySummary, elapsed: float
) -> None:
    rate = summary.events / elapsed if elapsed > 0 else 0.0
    bar = ""
    if total is not None:  # None: standard input, whose size is unknown
        frac = done / total if total else 1.0
        bar = f"[{'#' * int(frac * 30):<30}] {frac:6.1%} "
    stream.write(
        f"\r{bar}{summary.events} events {rate:,.0f}/s "
        f"escalations {summary.escalations} alerts {len(summary.alerts)}"
    )
    stream.flush()
