"""The demo's summary: per-model figures from a worker's ``/metrics`` and the demo's ground
truth, and the screen showing them.

:func:`model_rows` turns two scrapes (and the demo's :class:`~streams.dev.ground_truth.ModelTally`
per model) into one :class:`ModelRow` per model, :func:`reviewer_rows` a scrape and the
review team's :class:`~streams.dev.label_sources.ReviewerTally` s into one
:class:`ReviewerRow` per reviewer, and :func:`render_table` lays them out in tables:
traffic, quality, reviewers; all are pure. :class:`SummaryScreen` prints them:
redrawn in place on a terminal, as plain blocks of lines otherwise (a pipe, a log file).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from streams.dev.ground_truth import ModelTally
from streams.dev.label_sources import ReviewerTally
from streams.dev.scrape import Samples, total

__all__ = [
    "LEGEND",
    "ModelRow",
    "ReviewerRow",
    "SummaryScreen",
    "model_rows",
    "render_table",
    "reviewer_rows",
]

#: The worker's count of gold answers per reviewer and outcome (right | wrong).
GOLD_ANSWERS = "vigil_reviewer_gold_answers_total"

#: What the quality table's columns are; printed once, above the first summary.
LEGEND = """\
accuracy: "true" of every event (the demo knows every truth); "vigil" from the
  labels, each weighed by 1/inclusion probability; "labelled" of the same
  labels, unweighted; "label-free" vigil's estimate that needs no labels.
auto-accept error: the error among the events no rule escalated: "true",
  vigil's estimate and its 95% upper bound.
reviewers: labels sent, the share of them wrong ("true"; the labels vigil
  learns from carry this noise), and vigil's score from the gold questions."""

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
    audits: float = 0.0
    autoaccept_error: float | None = None
    autoaccept_error_upper: float | None = None
    # From the demo's ground truth (None: no tally for the model).
    true_accuracy: float | None = None
    true_autoaccept_error: float | None = None
    labelled_accuracy: float | None = None


@dataclass(frozen=True)
class ReviewerRow:
    """What the demo shows for one reviewer."""

    reviewer: str
    labels: int | None  # None: not one of the demo's synthetic reviewers (a person)
    true_error: float | None
    gold_answers: float  # labels on gold items, as the worker scored them
    gold_accuracy: float | None


def reviewer_rows(now: Samples, tallies: Mapping[str, ReviewerTally]) -> list[ReviewerRow]:
    """One row per synthetic reviewer (in ``tallies``' order), then one per other reviewer
    the worker scored on gold items (sorted): its labels and true error from its tally,
    its gold answers and their accuracy from :data:`GOLD_ANSWERS` of ``now``.
    """
    scored = sorted({labels["reviewer"] for labels, _ in now.get(GOLD_ANSWERS, [])} - set(tallies))
    rows = []
    for reviewer in [*tallies, *scored]:
        right = total(now, GOLD_ANSWERS, reviewer=reviewer, outcome="right")
        answers = right + total(now, GOLD_ANSWERS, reviewer=reviewer, outcome="wrong")
        tally = tallies.get(reviewer)
        rows.append(
            ReviewerRow(
                reviewer=reviewer,
                labels=None if tally is None else tally.labels,
                true_error=None if tally is None else tally.error,
                gold_answers=answers,
                gold_accuracy=right / answers if answers else None,
            )
        )
    return rows


def _gauge(samples: Samples, name: str, model: str) -> float | None:
    for labels, value in samples.get(name, []):
        if labels.get("model") == model and not math.isnan(value):
            return value
    return None


def model_rows(
    now: Samples,
    before: Samples | None = None,
    seconds: float = 0.0,
    tallies: Mapping[str, ModelTally] | None = None,
) -> list[ModelRow]:
    """One row per model with events in ``vigil_events_total`` of ``now``, sorted by name.

    The worker's catch-all series (``_other`` past its model cap, ``_unknown`` for
    messages without a readable model id) get a row once they have counted something.

    Events per second is the growth of the model's consumed events (processed and
    dead-lettered) since ``before``, taken ``seconds`` earlier. Audits are the escalations
    whose primary reason is ``audit``. ``tallies`` (model -> the demo's ground truth) fill
    the true figures.
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
        tally = (tallies or {}).get(model)
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
                audits=total(now, "vigil_escalations_total", model=model, reason="audit"),
                autoaccept_error=_gauge(now, "vigil_autoaccept_error", model),
                autoaccept_error_upper=_gauge(now, "vigil_autoaccept_error_upper", model),
                true_accuracy=None if tally is None else tally.accuracy,
                true_autoaccept_error=None if tally is None else tally.autoaccept_error,
                labelled_accuracy=None if tally is None else tally.labelled_accuracy,
            )
        )
    return rows


# (header, alignment, group): a group's name is written above its first column.
Column = tuple[str, str, str]

_TRAFFIC: tuple[Column, ...] = (
    ("model", "<", ""),
    ("events/s", ">", ""),
    ("escalations", ">", ""),
    ("audits", ">", ""),
    ("suppressed", ">", ""),
    ("dead letters", ">", ""),
    ("in drift", "<", ""),
)
_QUALITY: tuple[Column, ...] = (
    ("model", "<", ""),
    ("true", ">", "accuracy"),
    ("vigil", ">", "accuracy"),
    ("labelled", ">", "accuracy"),
    ("label-free", ">", "accuracy"),
    ("true", ">", "auto-accept error"),
    ("vigil", ">", "auto-accept error"),
    ("95% upper", ">", "auto-accept error"),
)
_REVIEWERS: tuple[Column, ...] = (
    ("reviewer", "<", ""),
    ("labels", ">", ""),
    ("true", ">", "error"),
    ("answers", ">", "gold (vigil)"),
    ("accuracy", ">", "gold (vigil)"),
)


def _share(value: float | None) -> str:
    return _MISSING if value is None else f"{value:.3f}"


def _traffic_cells(row: ModelRow) -> tuple[str, ...]:
    rate = row.events_per_second
    return (
        row.model,
        _MISSING if rate is None else f"{rate:.1f}",
        f"{row.escalations:.0f}",
        f"{row.audits:.0f}",
        f"{row.suppressed:.0f}",
        f"{row.dead_letters:.0f}",
        ", ".join(row.drifting) or _MISSING,
    )


def _quality_cells(row: ModelRow) -> tuple[str, ...]:
    return (
        row.model,
        _share(row.true_accuracy),
        _share(row.accuracy),
        _share(row.labelled_accuracy),
        _share(row.estimated_accuracy),
        _share(row.true_autoaccept_error),
        _share(row.autoaccept_error),
        _share(row.autoaccept_error_upper),
    )


def _reviewer_cells(row: ReviewerRow) -> tuple[str, ...]:
    return (
        row.reviewer,
        _MISSING if row.labels is None else str(row.labels),
        _share(row.true_error),
        f"{row.gold_answers:.0f}",
        _share(row.gold_accuracy),
    )


def _table(columns: tuple[Column, ...], body: list[tuple[str, ...]]) -> list[str]:
    """Aligned lines: the groups' names (if any), the headers, one line per row of ``body``."""
    table = [tuple(name for name, _, _ in columns), *body]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = [
        "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align, _), width in zip(line, columns, widths, strict=True)
        ).rstrip()
        for line in table
    ]
    if any(group for _, _, group in columns):
        above, at, previous = "", 0, ""
        for (_, _, group), width in zip(columns, widths, strict=True):
            if group and group != previous:
                above = f"{above:<{at}}{group}"
            previous = group
            at += width + 2
        lines.insert(0, above)
    return lines


def render_table(
    head: str, rows: list[ModelRow], reviewers: list[ReviewerRow] | None = None
) -> str:
    """``head`` on the first line, then aligned tables of ``rows``: traffic, and quality
    (accuracy and auto-accept error, true and vigil's) of the models that have any such
    figure; then one of the ``reviewers`` that have labelled or been scored. No rows:
    ``head`` only."""
    if not rows:
        return head
    lines = [head, *_table(_TRAFFIC, [_traffic_cells(row) for row in rows])]
    # Rows with no figure at all (``_unknown``: dead letters only) would be all dashes.
    measured = [cells for cells in map(_quality_cells, rows) if set(cells[1:]) != {_MISSING}]
    if measured:
        lines += ["", *_table(_QUALITY, measured)]
    active = [_reviewer_cells(r) for r in reviewers or [] if r.labels or r.gold_answers]
    if active:
        lines += ["", *_table(_REVIEWERS, active)]
    return "\n".join(lines)


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
