"""Looking at real processes through /proc (Linux), for the process-hygiene tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

#: How long a child may take to go after its parent died: the JVM's controlled shutdown
#: on SIGTERM takes 1-3 s idle, more on a loaded 2-core machine.
GONE_WITHIN_S = 45.0

needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the parent-death signal and /proc are Linux's",
)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return text.rsplit(") ", 1)[1].split()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (dead, not yet reaped by its new parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    if not Path("/proc").is_dir():  # not Linux: no way to tell a zombie here
        return True
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def wait_gone(pids: Iterable[int], timeout: float = GONE_WITHIN_S) -> list[int]:
    """Wait until none of ``pids`` runs; returns those still running at the timeout."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return []
        time.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


def start_in_background(command: str, out: Path, env: dict[str, str] | None = None) -> int:
    """Run ``command`` as ``sh -c 'command &'`` does, output to ``out``; return its pid.

    A non-interactive shell starts background jobs with SIGINT and SIGQUIT ignored, and
    the job inherits that: the case of a tool started from a script.
    """
    pid_file = out.with_suffix(".pid")
    subprocess.run(
        ["sh", "-c", f'{command} > "{out}" 2>&1 & echo $! > "{pid_file}"'],
        check=True,
        env=dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1"),
    )
    return int(pid_file.read_text(encoding="ascii"))


def wait_for_line(path: Path, needle: str, pid: int, timeout: float) -> str:
    """Wait until ``path`` contains ``needle`` while ``pid`` runs; return the file's text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if needle in text:
            return text
        if not alive(pid):
            pytest.fail(f"process {pid} exited before printing {needle!r}:\n{text}")
        time.sleep(0.2)
    pytest.fail(f"no {needle!r} from process {pid} within {timeout:g} s:\n{path.read_text()}")


def kill_quietly(pids: Iterable[int]) -> None:
    """SIGKILL what a failed test left running (only pids the test itself started)."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def children_by_role(pid: int) -> dict[str, int]:
    """What ``pid`` spawned, by role (from each child's command line)."""
    roles = {}
    for child in children_of(pid):
        cmd = command_line(child)
        if "kafka.Kafka" in cmd:
            roles["broker"] = child
        elif "streams.cli worker" in cmd:
            roles["worker"] = child
        elif "streams.cli review label-studio" in cmd:
            roles["bridge"] = child
        elif "label-studio" in cmd:
            roles["label-studio"] = child
        elif "prometheus" in cmd:
            roles["prometheus"] = child
    return roles
