"""The demo's summary: per-model figures from a worker's ``/metrics``, and the screen showing them.

:func:`model_rows` turns two scrapes into one :class:`ModelRow` per model and
:func:`render_table` lays them out; both are pure. :class:`SummaryScreen` prints the table:
redrawn in place on a terminal, as plain blocks of lines otherwise (a pipe, a log file).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from typing import TextIO

from streams.dev.scrape import Samples, total

__all__ = ["ModelRow", "SummaryScreen", "model_rows", "render_table"]

_MISSING = "-"


@dataclass(frozen=True)
class ModelRow:
    """What the demo shows for one model (counters are totals since the worker started)."""

    model: str
    events_per_second: float | None  # None: no earlier scrape to compare with
    escalations: float
    suppressed: float
    dead_letters: float
    drifting: tuple[str, ...]
    accuracy: float | None
    estimated_accuracy: float | None


def _gauge(samples: Samples, name: str, model: str) -> float | None:
    for labels, value in samples.get(name, []):
        if labels.get("model") == model and not math.isnan(value):
            return value
    return None


def model_rows(now: Samples, before: Samples | None = None, seconds: float = 0.0) -> list[ModelRow]:
    """One row per model with events in ``vigil_events_total`` of ``now``, sorted by name.

    The worker's catch-all series (``_other`` past its model cap, ``_unknown`` for
    messages without a readable model id) get a row once they have counted something.

    Events per second is the growth of the model's consumed events (processed and
    dead-lettered) since ``before``, taken ``seconds`` earlier.
    """
    models = sorted({labels["model"] for labels, _ in now.get("vigil_events_total", [])})
    rows = []
    for model in models:
        if not total(now, "vigil_events_total", model=model):
            continue
        rate = None
        if before is not None and seconds > 0:
            grown = total(now, "vigil_events_total", model=model) - total(
                before, "vigil_events_total", model=model
            )
            # A restarted worker starts its counters again from zero.
            rate = max(0.0, grown) / seconds
        drifting = tuple(
            sorted(
                labels["signal"]
                for labels, value in now.get("vigil_drift_active", [])
                if labels.get("model") == model and value > 0
            )
        )
        rows.append(
            ModelRow(
                model=model,
                events_per_second=rate,
                escalations=total(now, "vigil_escalations_total", model=model),
                suppressed=total(now, "vigil_escalations_suppressed_total", model=model),
                dead_letters=total(now, "vigil_events_total", model=model, outcome="dead_letter"),
                drifting=drifting,
                accuracy=_gauge(now, "vigil_accuracy", model),
                estimated_accuracy=_gauge(now, "vigil_estimated_accuracy", model),
            )
        )
    return rows


_COLUMNS = (
    ("model", "<"),
    ("events/s", ">"),
    ("escalations", ">"),
    ("suppressed", ">"),
    ("dead letters", ">"),
    ("accuracy", ">"),
    ("est. accuracy", ">"),
    ("in drift", "<"),
)


def _cells(row: ModelRow) -> tuple[str, ...]:
    def share(value: float | None) -> str:
        return _MISSING if value is None else f"{value:.3f}"

    rate = row.events_per_second
    return (
        row.model,
        _MISSING if rate is None else f"{rate:.1f}",
        f"{row.escalations:.0f}",
        f"{row.suppressed:.0f}",
        f"{row.dead_letters:.0f}",
        share(row.accuracy),
        share(row.estimated_accuracy),
        ", ".join(row.drifting) or _MISSING,
    )


def render_table(head: str, rows: list[ModelRow]) -> str:
    """``head`` on the first line, then an aligned table of ``rows`` (none: ``head`` only)."""
    if not rows:
        return head
    table = [tuple(name for name, _ in _COLUMNS), *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(line, _COLUMNS, widths, strict=True)
        ).rstrip()
        for line in table
    ]
    return "\n".join([head, *lines])


class SummaryScreen:
    """Shows successive summaries on ``out``.

    On a terminal each summary replaces the previous one (cursor up, clear to the end of
    the screen), its lines cut to the terminal's width so that none wraps and the count of
    lines to move up stays right. Elsewhere each summary is printed after the last one,
    followed by a blank line.
    """

    def __init__(self, out: TextIO, *, live: bool | None = None) -> None:
        self.out = out
        self.live = out.isatty() if live is None else live
        self._drawn = 0

    def show(self, text: str) -> None:
        if not self.live:
            self.out.write(f"{text}\n\n")
            self.out.flush()
            return
        width = shutil.get_terminal_size().columns
        lines = [line[:width] for line in text.splitlines()]
        # ESC[nF: to the start of the line n lines up; ESC[J: clear from there to the end.
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.out.write(up + "\x1b[J" + "".join(f"{line}\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)
