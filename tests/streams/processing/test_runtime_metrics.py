"""The worker's process series: memory, CPU, and the cyclic collector's pauses."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from streams.processing.runtime_metrics import GcPauses, register_runtime_metrics
from tests.streams.dev.processes import needs_proc


def _count(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("vigil_gc_pause_seconds_count", {"generation": generation})
    assert value is not None
    return value


@pytest.fixture
def pauses() -> Iterator[tuple[CollectorRegistry, GcPauses]]:
    registry = CollectorRegistry()
    p = GcPauses(registry)
    yield registry, p
    p.uninstall()


def test_every_collection_is_observed_while_installed(
    pauses: tuple[CollectorRegistry, GcPauses],
) -> None:
    registry, p = pauses
    p.install()
    p.install()  # idempotent: one callback, one observation per collection
    gc.collect(2)
    gc.collect(0)
    assert _count(registry, "2") == 1
    assert _count(registry, "0") >= 1
    total = registry.get_sample_value("vigil_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0
    p.uninstall()
    gc.collect(2)
    assert _count(registry, "2") == 1
    assert p._callback not in gc.callbacks


def test_a_stop_without_its_start_is_not_observed(
    pauses: tuple[CollectorRegistry, GcPauses],
) -> None:
    registry, p = pauses
    p._callback("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert _count(registry, "1") == 0


def test_an_unknown_generation_counts_as_the_oldest() -> None:
    registry = CollectorRegistry()
    ticks = iter([1.0, 1.5, 2.0, 2.25])
    p = GcPauses(registry, clock=lambda: next(ticks))
    for generation in (7, "x"):
        p._callback("start", {"generation": generation})
        p._callback("stop", {"generation": generation, "collected": 0, "uncollectable": 0})
    assert _count(registry, "2") == 2
    assert registry.get_sample_value(
        "vigil_gc_pause_seconds_sum", {"generation": "2"}
    ) == pytest.approx(0.75)
    assert {s.labels["generation"] for m in registry.collect() for s in m.samples} == {
        "0",
        "1",
        "2",
    }


@needs_proc
def test_the_process_series_are_registered() -> None:
    registry = CollectorRegistry()
    p = register_runtime_metrics(registry)
    try:
        rss = registry.get_sample_value("process_resident_memory_bytes")
        assert rss is not None and rss > 10 * 2**20  # this interpreter, numpy, ...
        assert registry.get_sample_value("process_cpu_seconds_total") > 0  # type: ignore[operator]
        before = registry.get_sample_value("python_gc_collections_total", {"generation": "2"})
        assert before is not None
        gc.collect(2)
        after = registry.get_sample_value("python_gc_collections_total", {"generation": "2"})
        assert after == before + 1
        assert _count(registry, "2") == 1
        info = [s for m in registry.collect() for s in m.samples if s.name == "python_info"]
        assert len(info) == 1 and info[0].labels["major"] == str(sys.version_info.major)
    finally:
        p.uninstall()
