"""The Faust app's consumer, before any broker is involved."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

from streams.config import settings_from_dict
from streams.ingest.faust_app import create_app
from streams.processing.processor import Outgoing


def test_a_scrape_before_the_worker_starts_builds_no_consumer() -> None:
    # /metrics is served before the Faust worker starts, from another thread. A scrape
    # that read the lazy ``app.consumer`` built a second Consumer racing the worker's own;
    # the app kept one that was never started and died with ConsumerNotStarted.
    vigil = create_app(settings_from_dict({"app_id": "vigil-test-faust-app"}))
    text = generate_latest(vigil.core.metrics.registry).decode()  # asks for the consumer lag
    assert "# TYPE vigil_consumer_lag gauge" in text
    assert "vigil_consumer_lag{" not in text  # nothing assigned yet
    # Neither a scrape nor the lag refresh of a tick builds the consumer.
    vigil.core.tick()
    assert vigil.read_lag() == [] and vigil.core.lag() == []
    assert vigil.app._consumer is None  # Faust's cache behind the lazy property


def test_a_batch_is_numbered_before_its_first_send_and_each_answer_reaches_the_core() -> None:
    # A tick may snapshot a model while the agent awaits a send; the snapshot holds the
    # whole batch, so every output of the batch must be counted before the first await.
    vigil = create_app(settings_from_dict({"app_id": "vigil-test-faust-send"}))
    core = vigil.core
    counted: list[int] = []
    futures: list[asyncio.Future[Any]] = []

    class Topic:
        async def send(self, key: bytes | None, value: bytes) -> asyncio.Future[Any]:
            counted.append(core.produced)
            futures.append(asyncio.get_running_loop().create_future())
            return futures[-1]

    vigil._outputs = tuple((name, Topic()) for name in ("esc", "al", "dl", "rev"))  # type: ignore[assignment]
    out = Outgoing(escalations=[(b"m", b"1"), (b"m", b"2")], alerts=[(b"m", b"3")])

    async def run() -> None:
        await vigil._send(out)
        assert counted == [3, 3, 3]
        futures[1].set_result(None)
        futures[0].set_result(None)
        await asyncio.sleep(0)
        assert core.unacknowledged == 1
        futures[2].set_exception(RuntimeError("no leader"))
        await asyncio.sleep(0)

    asyncio.run(run())
    assert core.unacknowledged == 1
    assert core.delivery_errors == ["al: RuntimeError('no leader')"]
