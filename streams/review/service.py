"""``vigil review label-studio`` assembled: both ways of the review loop in one process.

* **Escalations → tasks**: :class:`~streams.review.bridge.LabelStudioBridge`, the
  consumer loop (the caller's thread, :meth:`LabelStudioService.run`).
* **Annotations → labels**: the webhook endpoint (its own HTTP threads, when
  ``webhook_secret`` is set) hands annotations to the label loop (one thread), which
  publishes them and reconciles every ``reconcile_every_s``.
* ``/metrics`` (``metrics_host``/``metrics_port``) serves the counters of both.

On start, every model's project found in Label Studio gets its webhook checked (a changed
secret or URL is corrected), and reconciliation marks are read from Kafka. Label Studio
down at start is waited out like any other outage: the consumer loop retries, and the
label loop's first reconciliation fails and is retried on schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streams.config import Settings
from streams.errors import VigilError
from streams.review.annotation_publisher import AnnotationPublisher
from streams.review.bridge import LabelStudioBridge
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.high_water import HighWaterMarks
from streams.review.label_loop import LabelLoop
from streams.review.label_sink import LabelSink
from streams.review.label_studio_api import LabelStudioClient, client_for
from streams.review.reconcile import Reconciler
from streams.review.webhook_endpoint import WebhookEndpoint

__all__ = ["LabelStudioService"]

log = logging.getLogger(__name__)


class LabelStudioService:
    """All parts of the bridge; :meth:`start` the background ones, :meth:`run` the
    consumer loop until :meth:`stop`, then :meth:`close`."""

    def __init__(self, settings: Settings, *, client: LabelStudioClient | None = None) -> None:
        ls = settings.review.label_studio
        if client is None:
            client = client_for(ls)
        if ls.webhook_url is not None and ls.webhook_secret is None:
            raise VigilError(
                "review.label_studio.webhook_url is set but webhook_secret is not: set "
                "VIGIL_LABEL_STUDIO_WEBHOOK_SECRET (the endpoint refuses unauthenticated "
                "webhooks)"
            )
        self.settings = settings
        self.client = client
        self.metrics = BridgeMetrics(max_models=settings.worker.max_models)
        self.bridge = LabelStudioBridge(settings, client=client, metrics=self.metrics)
        self.directory = self.bridge.writer.projects
        self.endpoint: WebhookEndpoint | None = None
        if ls.webhook_secret is not None:
            self.endpoint = WebhookEndpoint(
                ls.webhook_host, ls.webhook_port, ls.webhook_secret.get_secret_value(), self.metrics
            )
        self.marks = HighWaterMarks(settings)
        self.sink = LabelSink(settings)
        self.publisher = AnnotationPublisher(client, self.sink, self.metrics)
        self.reconciler = Reconciler(client, self._projects, self.marks, self.publisher)
        self.loop = LabelLoop(
            self.publisher,
            self.reconciler,
            handoff=self.endpoint.handoff if self.endpoint is not None else None,
            reconcile_every_s=ls.reconcile_every_s,
            periodic=self.periodic_job(),
            periodic_every_s=ls.backlog_every_s,
        )
        self._stop_metrics: Callable[[], None] | None = None
        self._webhooks_checked = False

    def periodic_job(self) -> Callable[[], object]:
        """The backlog count (``vigil_review_backlog{model}``)."""
        from streams.review.backlog import BacklogCounter

        return BacklogCounter(self.client, self.settings.review.label_studio, self.metrics).update

    def start(self) -> LabelStudioService:
        from streams.review.bridge import serve_metrics

        ls = self.settings.review.label_studio
        self._stop_metrics = serve_metrics(self.metrics, ls.metrics_host, ls.metrics_port)
        self.marks.load()
        if self.endpoint is not None:
            self.endpoint.start()
            log.info("webhook endpoint on %s:%d", ls.webhook_host, self.endpoint.port)
        else:
            log.info("no webhook endpoint: annotations come back by reconciliation alone")
        self.loop.start()
        return self

    def run(self) -> None:
        self.bridge.run()

    def stop(self) -> None:
        self.bridge.stop()

    def close(self) -> None:
        self.loop.stop()
        if self.endpoint is not None:
            self.endpoint.stop()
        self.sink.close()
        if self._stop_metrics is not None:
            self._stop_metrics()

    def _projects(self) -> dict[str, int]:
        """Every model's project; the first time, also check their webhooks."""
        projects = self.directory.discover()
        if not self._webhooks_checked:
            for project_id in projects.values():
                self.directory.ensure_webhook(project_id)
            self._webhooks_checked = True
        return projects
