"""``vigil replay -``: the events from standard input give what the same file gives."""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.cli import main
from streams.dev.traffic import SyntheticModel, invalid_event

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def stream(tmp_path: Path) -> tuple[Path, Path]:
    """600 events of one model (two of them invalid) and labels for about half."""
    model = SyntheticModel("churn", n_numeric=3, seed=11, start=START)
    rng = random.Random(11)
    events, labels = tmp_path / "events.jsonl", tmp_path / "labels.jsonl"
    with events.open("wb") as ev, labels.open("wb") as lab:
        for i in range(600):
            event, truth = model.event()
            ev.write(orjson.dumps(event) + b"\n")
            if rng.random() < 0.5:
                ts = datetime.fromisoformat(event["ts"]) + timedelta(seconds=2)
                label = {"event_id": event["event_id"], "model_id": "churn", "ts": ts.isoformat()}
                lab.write(orjson.dumps({**label, "label": truth, "source": "outcome"}) + b"\n")
            if i % 300 == 0:
                ev.write(invalid_event("bad_timestamp", "churn", i)[0] + b"\n")
    return events, labels


def comparable(summary: str) -> str:
    """The summary without what legitimately differs between two runs: time and out dir."""
    summary = re.sub(r" in \d+\.\ds$", "", summary, flags=re.M)
    return re.sub(r"written to .*$", "written to <out>/", summary, flags=re.M)


def dead_letters(out: Path) -> list[dict[str, object]]:
    """Dead letters without the source name (the file's path, or <stdin>)."""
    rows = [orjson.loads(line) for line in (out / "deadletters.jsonl").read_bytes().splitlines()]
    for row in rows:
        row["source"].pop("topic")
    return rows


def test_replay_reads_events_from_stdin(
    stream: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events, labels = stream
    by_file, by_stdin = tmp_path / "by-file", tmp_path / "by-stdin"
    common = ["--labels", str(labels), "--quiet"]
    assert main(["replay", str(events), *common, "--out", str(by_file)]) == 0
    from_file = capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(events.read_bytes())))
    assert main(["replay", "-", *common, "--out", str(by_stdin)]) == 0
    from_stdin = capsys.readouterr().out

    assert "replayed 602 events" in from_file
    assert "dead letters: 2" in from_file
    assert comparable(from_stdin) == comparable(from_file)
    for name in ("escalations.jsonl", "alerts.jsonl"):
        assert (by_stdin / name).read_bytes() == (by_file / name).read_bytes(), name
    assert dead_letters(by_stdin) == dead_letters(by_file)
    sources = {
        orjson.loads(line)["source"]["topic"]
        for line in (by_stdin / "deadletters.jsonl").read_bytes().splitlines()
    }
    assert sources == {"<stdin>"}


def test_replay_progress_from_stdin_has_no_bar(
    stream: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    events, _ = stream
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(events.read_bytes())))
    assert main(["replay", "-", "--out", str(tmp_path / "o")]) == 0
    progress = capsys.readouterr().err
    assert "602 events" in progress and "%" not in progress and "[" not in progress


def test_replay_from_stdin_in_a_real_vigil_process(
    stream: tuple[Path, Path], tmp_path: Path
) -> None:
    events, labels = stream

    def vigil(*args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "replay",
                *args,
                "--labels",
                str(labels),
                "--quiet",
            ],
            input=stdin,
            capture_output=True,
            timeout=120,
            cwd=tmp_path,
            check=True,
        )
        return done.stdout.decode()

    from_file = vigil(str(events), "--out", "by-file")
    from_stdin = vigil("-", "--out", "by-stdin", stdin=events.read_bytes())
    assert "replayed 602 events" in from_file
    assert comparable(from_stdin) == comparable(from_file)
