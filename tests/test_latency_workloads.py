"""``benchmarks/throughput.py``'s latency workloads: which events escalate, and the keys
each workload's figures are reported under (the ``most`` workload's are the keys on
record; the ``conformal`` workload's carry its name); what a run reads of the worker
besides its latencies (the events it got through, its CPU)."""

from __future__ import annotations

import doctest
import os
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import throughput
from benchmarks.throughput import (
    LATENCY_ESCALATIONS,
    NoSteadyState,
    cpu_seconds,
    got_through,
    latency_config,
    latency_figures,
    wait_turn,
    worker_config,
)
from streams.config import settings_from_dict
from tests.support import unique_topics


def test_the_most_workload_escalates_below_the_threshold_the_conformal_one_as_configured() -> None:
    topics = unique_topics("lat")
    most = latency_config(topics, "a", "most")
    conformal = latency_config(topics, "a", "conformal")
    assert most["defaults"]["escalation"] == {"policy": "threshold", "min_confidence": 0.99}
    # The throughput runs' policy (issue 18's configuration), not the threshold.
    assert (
        conformal["defaults"]["escalation"] == worker_config(topics, "a")["defaults"]["escalation"]
    )
    assert conformal["defaults"]["escalation"]["policy"] == "conformal"
    for cfg in (most, conformal):
        assert cfg["worker"]["batch_within_s"] == 0.01
        settings_from_dict(cfg)  # a config a worker starts with
    with pytest.raises(ValueError, match="escalation must be one of"):
        latency_config(topics, "a", "every")


def _fake_latency(steady_high: bool) -> Any:
    calls: list[tuple[float, str]] = []

    def latency(
        bootstrap: str, tmp: Path, rate: float, seconds: float, escalation: str = "most"
    ) -> dict[str, float]:
        calls.append((rate, escalation))
        if rate > 10_000 and not steady_high:
            raise NoSteadyState("behind")
        return {
            "p50": rate / 1000,
            "p99": rate / 100,
            "rate_achieved": rate,
            "received": 0.5,
            "got_through": rate * 0.8,
            "cores": 0.987,
        }

    return latency, calls


@pytest.mark.parametrize("escalation", LATENCY_ESCALATIONS)
def test_each_workload_reports_under_its_own_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, escalation: str
) -> None:
    latency, calls = _fake_latency(steady_high=True)
    monkeypatch.setattr(throughput, "latency", latency)
    got = latency_figures("b", tmp_path, 5000.0, 20000.0, 30.0, escalation)
    assert calls == [(5000.0, escalation), (20000.0, escalation)]
    tag = "" if escalation == "most" else "conformal_"
    assert got == {
        f"{tag}p50_latency_ms": 5.0,
        f"{tag}p99_latency_ms": 50.0,
        f"{tag}latency_rate_achieved": 5000,
        f"{tag}latency_received_share": 0.5,
        f"{tag}latency_worker_events_per_s": 4000,
        f"{tag}latency_worker_cores": 0.99,
        f"latency_20k_{tag}steady": True,
        f"latency_20k_{tag}p50_ms": 20.0,
        f"latency_20k_{tag}p99_ms": 200.0,
        f"latency_20k_{tag}rate_achieved": 20000,
        f"latency_20k_{tag}received_share": 0.5,
        f"latency_20k_{tag}worker_events_per_s": 16000,
        f"latency_20k_{tag}worker_cores": 0.99,
    }


def test_a_run_that_never_catches_up_is_reported_not_steady(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    latency, _ = _fake_latency(steady_high=False)
    monkeypatch.setattr(throughput, "latency", latency)
    got = latency_figures("b", tmp_path, 5000.0, 20000.0, 30.0, "conformal")
    assert got["latency_20k_conformal_steady"] is False
    assert got["latency_20k_conformal_p99_ms"] is None
    assert got["conformal_p99_latency_ms"] == 50.0
    # Without a second rate, no key of it.
    assert not any("20k" in k for k in latency_figures("b", tmp_path, 5000.0, 0.0, 30.0, "most"))


def test_got_through_is_the_rate_sent_when_kept_up_and_the_rate_worked_when_behind() -> None:
    # 10,000 events sent over 2 s; each escalated one (every 100th) arrives 5 ms after
    # its send when the worker keeps up, or at 4,000 events/s when it does not.
    sent_at = {i: i / 5000 * 1000.0 for i in range(0, 10_000, 100)}
    kept_up = [(i, t + 5.0) for i, t in sent_at.items()]
    behind = [(i, 1000.0 + i / 4000 * 1000.0) for i in sent_at]
    assert got_through(kept_up) == pytest.approx(5000.0)
    assert got_through(behind) == pytest.approx(4000.0)
    assert got_through(list(reversed(behind))) == pytest.approx(4000.0)  # any order
    assert got_through(kept_up[:1]) is None
    assert got_through([(1, 5.0), (2, 5.0)]) is None  # none apart: no rate


def test_cpu_seconds_counts_this_process_work_and_nan_once_gone() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.2  # clock ticks: 10 ms apart
    assert cpu_seconds(2**22 + 1) != cpu_seconds(2**22 + 1)  # NaN: no such process


def test_the_generator_sends_what_is_due_and_otherwise_sleeps_a_tick_or_more() -> None:
    now = time.perf_counter()
    assert wait_turn(now - 0.01) is False  # due: send it
    started = time.perf_counter()
    assert wait_turn(started + 0.0001) is True  # nearly due: still a whole tick's sleep
    assert time.perf_counter() - started >= throughput.TICK_S
    started = time.perf_counter()
    assert wait_turn(started + 10.0) is True  # far ahead: a short sleep, then ask again
    assert time.perf_counter() - started < 5.0


def test_the_module_doctests_pass() -> None:
    assert doctest.testmod(throughput).failed == 0
