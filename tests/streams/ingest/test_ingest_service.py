"""The batch driver's loop (:class:`~streams.ingest.batch.IngestService`): how it runs
each batch cycle, without Kafka."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import pytest

from streams.ingest.batch import IngestService


class CountingIngest:
    """Stands in for :class:`~streams.ingest.batch.BatchIngest`: records whether the
    collector was on during each cycle and stops the loop after ``cycles``."""

    def __init__(self, cycles: int, fail_at: int | None = None) -> None:
        self.settings = SimpleNamespace(worker=SimpleNamespace(batch_within_s=0.01))
        self.core = SimpleNamespace(shutdown=self._shutdown)
        self.cycles = cycles
        self.fail_at = fail_at
        self.enabled_during: list[bool] = []
        self.enabled_at_shutdown: bool | None = None
        self.service: IngestService | None = None

    def start(self) -> None:
        pass

    def run_once(self, timeout: float) -> int:
        assert timeout == 0.01
        self.enabled_during.append(gc.isenabled())
        if len(self.enabled_during) == self.fail_at:
            raise RuntimeError("boom")
        if len(self.enabled_during) >= self.cycles:
            assert self.service is not None
            self.service._stop.set()
        return 1

    def _shutdown(self) -> None:
        self.enabled_at_shutdown = gc.isenabled()


def run(ingest: CountingIngest) -> IngestService:
    service = IngestService(ingest)  # type: ignore[arg-type]
    ingest.service = service
    service.start()
    service.stop(timeout=10)
    return service


def test_each_batch_cycle_runs_with_the_collector_paused_and_it_is_back_on_between() -> None:
    assert gc.isenabled()
    ingest = CountingIngest(cycles=3)
    service = run(ingest)
    assert service.error is None
    # Off inside every cycle (consume, process, publish, checkpoint round), on after:
    # the batch's objects are freed before the collector next looks.
    assert ingest.enabled_during == [False, False, False]
    assert ingest.enabled_at_shutdown is True
    assert gc.isenabled()


def test_a_crashing_cycle_leaves_the_collector_on() -> None:
    ingest = CountingIngest(cycles=5, fail_at=2)
    service = run(ingest)
    assert isinstance(service.error, RuntimeError)
    assert ingest.enabled_during == [False, False]
    assert ingest.enabled_at_shutdown is True
    assert gc.isenabled()


@pytest.fixture(autouse=True)
def _collector_on() -> None:
    gc.enable()
