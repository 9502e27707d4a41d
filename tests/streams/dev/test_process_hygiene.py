"""``python -m streams.dev.local_broker`` and ``vigil demo`` as real processes: they stop on
SIGINT (even started from a script, where SIGINT arrives ignored), SIGTERM and SIGHUP, and
their children (broker JVM, worker, Prometheus) never outlive them, ``kill -9`` included.

Each test starts its own broker: the point is the processes the tools spawn.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import kafka_unavailable
from tests.streams.dev.processes import (
    children_by_role,
    children_of,
    command_line,
    kill_quietly,
    needs_proc,
    start_in_background,
    wait_for_line,
    wait_gone,
)

pytestmark = [pytest.mark.kafka, needs_proc]

PYTHON = sys.executable
VIGIL = str(Path(sys.executable).with_name("vigil"))

#: A cold broker start on a loaded 2-core machine took up to 20 s; Maven is not involved
#: (the jars are resolved once, before these tests run, as for every Kafka test).
READY_WITHIN_S = 120.0

#: librdkafka's own log line format on stderr: ``%<level>|<time>|<facility>|...``.
RDKAFKA_LOG_LINE = re.compile(r"^%\d\|", re.MULTILINE)


@pytest.fixture
def own_broker_env(tmp_path: Path) -> dict[str, str]:
    """The environment for a tool that must start its own local broker; its temporary
    directories (the demo's log file among them) go under ``tmp_path``."""
    if shutil.which("java") is None:
        kafka_unavailable("java is not on PATH, so the local jar broker cannot run")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    return {**env, "TMPDIR": str(tmp_path)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_local_broker_cli_stops_with_its_jvm(
    tmp_path: Path, own_broker_env: dict[str, str], sig: signal.Signals
) -> None:
    out = tmp_path / "broker.out"
    pid = start_in_background(f'"{PYTHON}" -m streams.dev.local_broker', out, own_broker_env)
    spawned: list[int] = []
    try:
        wait_for_line(out, "Ctrl-C to stop.", pid, READY_WITHIN_S)
        jvm = children_by_role(pid).get("broker")
        assert jvm is not None, f"no broker JVM among {children_of(pid)}"
        spawned.append(jvm)
        os.kill(pid, sig)
        assert wait_gone([pid, jvm]) == [], out.read_text()
        assert "stopped." in out.read_text()
    finally:
        kill_quietly([pid, *spawned])


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL])
def test_demo_children_do_not_outlive_it(
    tmp_path: Path, own_broker_env: dict[str, str], sig: signal.Signals
) -> None:
    # SIGHUP: the terminal running the demo was closed. SIGKILL: nothing runs in the demo.
    out = tmp_path / "demo.out"
    pid = start_in_background(f'"{VIGIL}" demo --rate 60', out, own_broker_env)
    spawned: list[int] = []
    try:
        wait_for_line(out, "Ctrl-C stops everything.", pid, READY_WITHIN_S)
        roles = children_by_role(pid)
        spawned.extend(roles.values())
        # Without --review: no Label Studio, no bridge.
        expected = {"broker", "worker"} | ({"prometheus"} if shutil.which("prometheus") else set())
        assert set(roles) == expected, f"children: {[command_line(c) for c in children_of(pid)]}"
        os.kill(pid, sig)
        assert wait_gone([pid, *roles.values()]) == [], out.read_text()
        if sig == signal.SIGHUP:
            assert "stopped cleanly." in out.read_text()
    finally:
        kill_quietly([pid, *spawned])


def test_demo_output_off_a_terminal(tmp_path: Path, own_broker_env: dict[str, str]) -> None:
    # Long enough for the worker to report at least one table of per-model figures.
    done = subprocess.run(
        [VIGIL, "demo", "--duration", "25", "--rate", "150"],
        env=own_broker_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not RDKAFKA_LOG_LINE.search(output), output
    assert "\x1b[" not in output, "cursor movement off a terminal"
    printed = re.search(r"^log: +(\S+)", done.stdout, re.MULTILINE)
    assert printed, output
    log = Path(printed[1])
    assert log.is_file() and log.is_relative_to(tmp_path)
    assert "metrics at http://127.0.0.1:" in log.read_text()  # the worker's output went there
    assert re.search(r"^model +events/s +escalations +audits", done.stdout, re.MULTILINE), output
    assert re.search(r"^churn +\d+\.\d ", done.stdout, re.MULTILINE), output
    # The last summary: both label sources at work, audits sent to review, and the
    # quality table with the true accuracy the demo knows.
    last = done.stdout.rsplit("labels: ", 1)[1]
    counts = re.findall(r"^(\d+) by reviewers, (\d+) outcomes, (\d+) on gold items", last)
    reviews, outcomes, gold = map(int, counts[0])
    assert reviews > 0 and outcomes > 0 and gold > 0, output
    audits = re.search(r"^fraud-detector +\d+\.\d +\d+ +(\d+) ", last, re.MULTILINE)
    assert audits and int(audits[1]) > 0, output
    assert re.search(r"^ +accuracy +auto-accept error$", last, re.MULTILINE), output
    assert re.search(r"^fraud-detector +0\.\d{3} ", last, re.MULTILINE), output
    # The reviewers' table: the careless one among them, scored on gold items.
    assert re.search(r"^careless-carl +\d+ +0\.\d{3} ", last, re.MULTILINE), output
    assert done.stdout.rstrip().endswith(f"stopped cleanly. Log: {log}")
