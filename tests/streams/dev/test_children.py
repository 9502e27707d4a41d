"""streams.dev.children with real processes: stop signals, and children that die with their
parent however it ends (``kill -9`` included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.dev import children
from tests.streams.dev.processes import (
    alive,
    children_of,
    kill_quietly,
    needs_proc,
    start_in_background,
    wait_for_line,
    wait_gone,
)

PYTHON = sys.executable

# A parent that spawns ``sleep`` (from the main thread, or from a thread that then ends),
# prints the child's pid and waits to be killed.
PARENT = """
import sys, threading, time
from streams.dev.children import spawn
if sys.argv[1] == "thread":
    spawned = []
    thread = threading.Thread(target=lambda: spawned.append(spawn(["sleep", "600"])))
    thread.start()
    thread.join()
    child = spawned[0]
else:
    child = spawn(["sleep", "600"])
print("child", child.pid, flush=True)
time.sleep(600)
"""

# Waits under stop_signals() and says which signal ended the wait.
WAITER = """
import time
from streams.dev.children import stop_signals
try:
    with stop_signals():
        print("ready", flush=True)
        time.sleep(120)
except KeyboardInterrupt as exc:
    print("interrupted by", exc, flush=True)
"""


def _child_pid(out: Path, parent: int) -> int:
    text = wait_for_line(out, "child ", parent, timeout=60)
    return int(text.split("child ", 1)[1].split()[0])


@needs_proc
@pytest.mark.parametrize("spawned_from", ["main", "thread"])
def test_child_dies_when_its_parent_is_killed(tmp_path: Path, spawned_from: str) -> None:
    out = tmp_path / "parent.out"
    parent = subprocess.Popen(
        [PYTHON, "-c", PARENT, spawned_from], stdout=out.open("wb"), stderr=subprocess.STDOUT
    )
    child = None
    try:
        child = _child_pid(out, parent.pid)
        assert children_of(parent.pid) == [child]
        if spawned_from == "thread":
            # The spawning thread has ended: the child must not have been signalled then.
            time.sleep(0.5)
            assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_gone([child], timeout=10) == [], "the child outlived its killed parent"
    finally:
        parent.kill()
        kill_quietly([child] if child else [])


@needs_proc
def test_child_dies_with_its_parent_even_if_it_inherited_sigterm_ignored(tmp_path: Path) -> None:
    # The parent-death signal is SIGTERM: an ignored SIGTERM handed down from the parent's
    # own parent must not make the child immune to it.
    out = tmp_path / "parent.out"
    parent = subprocess.Popen(
        [PYTHON, "-c", PARENT, "main"],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    child = None
    try:
        child = _child_pid(out, parent.pid)
        parent.kill()
        parent.wait()
        assert wait_gone([child], timeout=10) == []
    finally:
        parent.kill()
        kill_quietly([child] if child else [])


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_interrupt_a_background_job(tmp_path: Path, sig: signal.Signals) -> None:
    # Started as `sh -c 'python ... &'`: SIGINT arrives ignored, and Python keeps that.
    out = tmp_path / "waiter.out"
    pid = start_in_background(f"\"{PYTHON}\" -c '{WAITER}'", out)
    try:
        wait_for_line(out, "ready", pid, timeout=60)
        ignored = int(
            next(
                line.split()[1]
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("SigIgn:")
            ),
            16,
        )
        assert not ignored & (1 << (signal.SIGINT - 1)), "handlers were not installed"
        os.kill(pid, sig)
        assert wait_gone([pid], timeout=10) == []
        assert f"interrupted by {sig.name}" in out.read_text()
    finally:
        kill_quietly([pid])


def test_stop_signals_restore_the_previous_handlers() -> None:
    before = {sig: signal.getsignal(sig) for sig in children.STOP_SIGNALS}
    with children.stop_signals():
        assert all(signal.getsignal(sig) is not before[sig] for sig in before)
    assert {sig: signal.getsignal(sig) for sig in children.STOP_SIGNALS} == before


def test_stop_ends_a_child_that_ignores_sigterm() -> None:
    proc = children.spawn(
        [PYTHON, "-c", "import signal, time; signal.signal(15, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    assert children.stop(proc, grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 10
    proc.stdout.close()
