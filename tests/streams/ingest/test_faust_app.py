"""The Faust app's consumer, before any broker is involved."""

from __future__ import annotations

from prometheus_client import generate_latest

from streams.config import settings_from_dict
from streams.ingest.faust_app import create_app


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
