"""The README's Benchmarks section: tables that render, one row per benchmark script.

A Markdown table row with more cells than its header loses the extra ones when rendered
(GitHub's tables drop them without a word): the throughput row once carried an empty
cell, and with it its whole result went unseen. The session-by-session history lives
in ``benchmarks/HISTORY.md``, which the section links.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A cell boundary: a pipe not escaped with a backslash (GitHub's rule, in code spans too).
_PIPE = re.compile(r"(?<!\\)\|")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line) up to the next ``## `` heading."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end != -1 else len(text)]


def tables(text: str) -> list[list[list[str]]]:
    """Every table in ``text``: its rows (header first, the delimiter row left out),
    each a list of cells."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                found.append(current)
            inner = line.strip()
            inner = inner[1:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner[1:]
            cells = [c.strip() for c in _PIPE.split(inner)]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                current.append(cells)
        else:
            current = None
    return found


@pytest.fixture(scope="module")
def benchmarks_section() -> str:
    return section((ROOT / "README.md").read_text(encoding="utf-8"), "## Benchmarks")


def test_every_row_of_every_table_has_its_header_s_cells(benchmarks_section: str) -> None:
    found = tables(benchmarks_section)
    assert len(found) >= 2  # the benchmarks, and issue 18's targets
    for table in found:
        header = table[0]
        for row in table[1:]:
            assert len(row) == len(header), f"{len(row)} cells, header {len(header)}: {row[0]}"


def test_every_benchmark_script_has_a_row(benchmarks_section: str) -> None:
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py") if p.name != "__init__.py"}
    main = tables(benchmarks_section)[0]
    assert main[0] == ["script", "what it measures", "result"]
    named = {m for row in main[1:] for m in re.findall(r"`([\w.]+\.py)", row[0])}
    assert scripts <= named, f"no row for {sorted(scripts - named)}"
    assert named <= scripts, f"rows for scripts that do not exist: {sorted(named - scripts)}"


def test_results_are_the_latest_not_a_log(benchmarks_section: str) -> None:
    # A cell holds the latest figures; what came before goes to benchmarks/HISTORY.md.
    main = tables(benchmarks_section)[0]
    for row in main[1:]:
        assert len(row[2]) < 2_000, f"{row[0]}: {len(row[2])} characters of results"
    assert "(benchmarks/HISTORY.md)" in benchmarks_section
    assert (ROOT / "benchmarks" / "HISTORY.md").is_file()


def test_the_table_reader_sees_a_row_with_a_cell_too_many() -> None:
    text = "| a | b |\n|---|---|\n| `x.py` | `a \\| b` |\n| y | | z |\n"
    assert tables(text) == [[["a", "b"], ["`x.py`", "`a \\| b`"], ["y", "", "z"]]]
