"""The sink's metrics (``vigil_dataset_*``), read from its counts at scrape time.

A custom collector (prometheus/client_python's pattern for values that exist only when
scraped): the sink keeps plain numbers (:class:`~streams.dataset.sink.SinkCounts`) and
this reads them, so the hot loop never touches a metric object. No labels: nothing here
can grow with the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.dataset.sink import DatasetSink

__all__ = ["SinkCollector", "serve_sink_metrics"]


class SinkCollector(Collector):
    """``vigil_dataset_records_total{outcome}`` (``written`` | ``skipped``: already in
    the table | ``invalid``: not a reviewed record), ``vigil_dataset_commits_total``,
    ``vigil_dataset_commit_conflicts_total`` (commits lost to another writer, retried) and
    ``vigil_dataset_table_version``."""

    def __init__(self, sink: DatasetSink) -> None:
        self.sink = sink

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        counts = self.sink.counts
        records = CounterMetricFamily(
            "vigil_dataset_records",
            "reviewed records consumed by the dataset sink, by outcome",
            labels=["outcome"],
        )
        records.add_metric(["written"], counts.written)
        records.add_metric(["skipped"], counts.skipped)
        records.add_metric(["invalid"], counts.invalid)
        yield records
        yield CounterMetricFamily(
            "vigil_dataset_commits", "Delta commits made by the sink", value=counts.commits
        )
        yield CounterMetricFamily(
            "vigil_dataset_commit_conflicts",
            "Delta commits lost to another writer (the table reloaded, the batch retried)",
            value=self.sink.table.conflicts,
        )
        if self.sink.table.last_version is not None:
            yield GaugeMetricFamily(
                "vigil_dataset_table_version",
                "the table version of the sink's last commit",
                value=self.sink.table.last_version,
            )


def serve_sink_metrics(sink: DatasetSink, host: str, port: int) -> Callable[[], None]:
    """Serve ``/metrics`` in a thread; returns the function that stops it."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(SinkCollector(sink))
    server, thread = start_http_server(port, addr=host, registry=registry)

    def shutdown() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return shutdown
