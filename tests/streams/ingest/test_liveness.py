"""``/healthz``: a worker whose ingest loop stops going round says so, while its
``/metrics`` (another thread) would go on answering."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.config import settings_from_dict
from streams.errors import ConfigError
from streams.ingest.liveness import Liveness
from streams.ingest.worker_http import serve_worker_http
from tests.streams.ingest.test_core import ManualClock, make_core
from tests.support import http_get as get


def test_alive_while_starting_then_while_the_last_beat_is_recent_enough() -> None:
    clock = ManualClock()
    live = Liveness(30.0, clock=clock)
    clock.now = 1_000.0
    live.begin()  # the worker starts serving /healthz, its loop next
    clock.now = 1_020.0
    assert live.check() == (True, "ok: starting (the ingest loop began 20 s ago)")
    live.beat()
    clock.now = 1_050.0
    assert live.check() == (True, "ok: the ingest loop went round 30 s ago")
    clock.now = 1_050.5
    alive, why = live.check()
    assert not alive
    assert why == "the ingest loop has not gone round for 30 s (worker.liveness_timeout_s: 30)"
    live.beat()  # the loop goes round again: alive again
    assert live.check() == (True, "ok: the ingest loop went round 0 s ago")


def test_a_loop_that_never_goes_round_is_not_alive_once_the_timeout_has_passed() -> None:
    """Stuck before its first round (say, in its first assignment's restore): starting
    counts as alive for the timeout only, from the creation or the last begin()."""
    clock = ManualClock()
    live = Liveness(30.0, clock=clock)  # at 0
    clock.now = 31.0
    alive, why = live.check()
    assert not alive
    assert why == (
        "the ingest loop has not gone round since it began 31 s ago (worker.liveness_timeout_s: 30)"
    )
    live.begin()  # began again (the worker started serving): the wait starts again
    assert live.check() == (True, "ok: starting (the ingest loop began 0 s ago)")
    clock.now = 62.0
    assert not live.check()[0]


@pytest.mark.parametrize("timeout", [0.0, -1.0, math.nan, math.inf])
def test_a_timeout_that_is_not_a_positive_number_is_refused(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        Liveness(timeout)


@pytest.mark.parametrize("value", [0, 4.9, 3601, "soon"])
def test_the_setting_is_bounded(value: object) -> None:
    with pytest.raises(ConfigError, match="liveness_timeout_s"):
        settings_from_dict({"worker": {"liveness_timeout_s": value}})
    assert settings_from_dict({}).worker.liveness_timeout_s == 120.0


def test_healthz_answers_503_with_the_reason_once_the_loop_is_silent_and_metrics_still_answer() -> (
    None
):
    registry = CollectorRegistry()
    Counter("vigil_probe", "a series to find", registry=registry).inc(3)
    clock = ManualClock()
    live = Liveness(60.0, clock=clock)
    server, thread = serve_worker_http("127.0.0.1", 0, registry, live)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, body = get(f"{base}/healthz")
        assert (status, body) == (200, "ok: starting (the ingest loop began 0 s ago)\n")
        live.beat()
        clock.now = 45.0
        went = "ok: the ingest loop went round 45 s ago\n"
        assert get(f"{base}/healthz?verbose=1") == (200, went)  # the query is not the path
        clock.now = 61.0
        status, body = get(f"{base}/healthz")
        assert status == 503
        assert body == (
            "the ingest loop has not gone round for 61 s (worker.liveness_timeout_s: 60)\n"
        )
        # The metrics are served as before, at /metrics and at any other path.
        for path in ("/metrics", "/"):
            status, body = get(base + path)
            assert status == 200 and "vigil_probe_total 3.0" in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert not thread.is_alive()


def test_the_core_beats_at_every_tick() -> None:
    clock = ManualClock()
    core, _driver, _store = make_core(clock=clock)
    try:
        assert core.liveness.timeout_s == core.settings.worker.liveness_timeout_s
        core.tick()
        clock.now = 121.0
        alive, why = core.liveness.check()
        assert not alive and "121 s" in why  # no tick for longer than the timeout
        core.tick()  # a batch, or the idle wait's end
        assert core.liveness.check() == (True, "ok: the ingest loop went round 0 s ago")
    finally:
        core.shutdown()
