"""``vigil`` as a user meets it: every command answers a file it cannot read, a bad
``--config`` or a bad argument with one line on stderr and exit code 2, no traceback.

Each case runs in-process through :func:`streams.cli.main` and, for a missing file,
also as a real ``vigil`` process (``python -m streams.cli``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.cli import main

#: Every command that takes ``--config``, with the arguments it needs besides it.
#: ``{events}`` is a valid events file. None of them gets as far as Kafka.
WITH_CONFIG = {
    "worker": ["worker"],
    "demo": ["demo", "--traffic-only"],
    "replay": ["replay", "{events}", "--quiet", "--out", "{out}"],
    "publish": ["publish", "{events}"],
    "reference build": ["reference", "build", "{events}", "--model", "m", "--version", "1"],
    "topics create": ["topics", "create"],
}

#: Every command that reads an input file, with ``{file}`` where it goes.
WITH_INPUT = {
    "replay": ["replay", "{file}", "--quiet", "--out", "{out}"],
    "replay --labels": ["replay", "{events}", "--labels", "{file}", "--quiet", "--out", "{out}"],
    "publish": ["publish", "{file}"],
    "reference build": ["reference", "build", "{file}", "--model", "m", "--version", "1"],
    "config check": ["config", "check", "{file}"],
    **{f"{name} --config": [*argv, "--config", "{file}"] for name, argv in WITH_CONFIG.items()},
}


def input_cases() -> list[object]:
    return [pytest.param(argv, id=name) for name, argv in WITH_INPUT.items()]


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    event = {
        "event_id": "e1",
        "model_id": "m",
        "ts": "2026-01-01T00:00:00Z",
        "features": {"x": 1.0},
        "prediction": {"label": "a", "confidence": 0.9},
    }
    path.write_bytes(orjson.dumps(event) + b"\n")
    return path


def fill(argv: list[str], tmp_path: Path, events: Path, file: Path | None = None) -> list[str]:
    names = {"events": str(events), "out": str(tmp_path / "out"), "file": str(file)}
    return [a.format(**names) for a in argv]


def one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("vigil"), err
    for word in words:
        assert word in err, (word, err)
    assert out == ""


@pytest.mark.parametrize("argv", input_cases())
def test_a_missing_file_is_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-file.jsonl"
    code = main(fill(argv, tmp_path, events, missing))
    captured = capsys.readouterr()
    one_line_error(code, captured.out, captured.err, str(missing), "No such file or directory")
    assert not (tmp_path / "out").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("argv", input_cases())
def test_a_directory_given_as_a_file_is_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    code = main(fill(argv, tmp_path, events, directory))
    captured = capsys.readouterr()
    one_line_error(code, captured.out, captured.err, str(directory), "Is a directory")


@pytest.mark.parametrize("argv", input_cases())
def test_a_missing_file_in_a_real_vigil_process(
    argv: list[str], tmp_path: Path, events: Path
) -> None:
    missing = tmp_path / "no-such-file.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *fill(argv, tmp_path, events, missing)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    one_line_error(done.returncode, done.stdout, done.stderr, str(missing))


BAD_YAML = "kafka:\n  bootstrap: localhost:9092\n bad: [1,\n"


@pytest.mark.parametrize("argv", list(WITH_CONFIG.values()), ids=list(WITH_CONFIG))
def test_bad_yaml_in_config_is_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text(BAD_YAML)
    code = main([*fill(argv, tmp_path, events), "--config", str(config)])
    captured = capsys.readouterr()
    one_line_error(
        code, captured.out, captured.err, str(config), "not valid YAML", "line 3, column 2"
    )


@pytest.mark.parametrize("argv", list(WITH_CONFIG.values()), ids=list(WITH_CONFIG))
def test_an_invalid_setting_is_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "vigil.yaml"
    config.write_text("worker: {max_models: -1}\n")
    code = main([*fill(argv, tmp_path, events), "--config", str(config)])
    captured = capsys.readouterr()
    one_line_error(code, captured.out, captured.err, "worker.max_models")


BAD_ARGUMENTS = {
    "no command": ([], "required"),
    "unknown command": (["frobnicate"], "invalid choice"),
    "demo --rate 0": (["demo", "--rate", "0"], "argument --rate: must be a finite number > 0"),
    "demo --rate -5": (["demo", "--rate=-5"], "argument --rate: must be a finite number > 0"),
    "demo --rate nan": (["demo", "--rate", "nan"], "argument --rate: must be a finite number"),
    "demo --rate inf": (["demo", "--rate", "inf"], "argument --rate: must be a finite number"),
    "demo --rate fast": (["demo", "--rate", "fast"], "argument --rate: must be a number"),
    "demo --duration 0": (["demo", "--duration", "0"], "argument --duration: must be a finite"),
    "replay --labels -": (["replay", "-", "--labels", "-"], "argument --labels: must be a file"),
    "reference build without --model": (
        ["reference", "build", "f.jsonl", "--version", "1"],
        "the following arguments are required: --model",
    ),
    "topics without a subcommand": (["topics"], "required"),
}


@pytest.mark.parametrize(("argv", "words"), list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
def test_a_bad_argument_is_one_line_and_exit_2(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    one_line_error(code, captured.out, captured.err, words, "--help")


def test_help_is_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--help"]) == 0
    assert "'-' for stdin" in capsys.readouterr().out


def test_a_runtime_failure_is_one_line_and_exit_1(
    tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["reference", "build", str(events), "--model", "other", "--version", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("vigil: no valid events of model 'other'")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
