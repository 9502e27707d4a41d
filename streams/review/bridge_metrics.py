"""The review bridge's metrics (``vigil_review_bridge_*`` and ``vigil_review_backlog``), in a
registry of their own that ``vigil review label-studio`` serves at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from streams.processing.metrics import OTHER_MODEL

__all__ = ["BridgeMetrics"]


class BridgeMetrics:
    """The bridge's counters, in a registry of their own. The ``model`` label takes the
    first ``max_models`` models seen, then ``_other`` (as a worker's metrics do)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, max_models: int = 500) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be >= 1; got {max_models!r}")
        self.max_models = max_models
        self._models: set[str] = set()
        self.registry = registry if registry is not None else CollectorRegistry()
        prefix = "vigil_review_bridge"
        self.tasks_created = Counter(
            f"{prefix}_tasks_created",
            "Label Studio tasks created, one per escalation",
            ["model"],
            registry=self.registry,
        )
        self.tasks_existing = Counter(
            f"{prefix}_escalations_already_tasked",
            "escalations consumed again (redelivered or duplicated) whose task already existed",
            ["model"],
            registry=self.registry,
        )
        self.not_routed = Counter(
            f"{prefix}_escalations_not_routed",
            "escalations of models not in review.label_studio.models, passed over",
            registry=self.registry,
        )
        self.invalid = Counter(
            f"{prefix}_invalid_escalations",
            "consumed messages that are not escalations (SPEC §4), passed over",
            registry=self.registry,
        )
        self.errors = Counter(
            f"{prefix}_errors",
            "failed attempts (retried): kind unavailable | refused (writing tasks), "
            "publish | reconcile (annotations back)",
            ["kind"],
            registry=self.registry,
        )
        self.annotations_published = Counter(
            f"{prefix}_annotations_published",
            "annotations published as LabelEvents, by the way they came back",
            ["model", "via"],
            registry=self.registry,
        )
        self.reconciliation_catches = Counter(
            f"{prefix}_reconciliation_catches",
            "annotations that no webhook had brought, published by reconciliation",
            ["model"],
            registry=self.registry,
        )
        self.reconciliations = Counter(
            f"{prefix}_reconciliations",
            "completed reconciliation passes over every project",
            registry=self.registry,
        )
        self.annotations_invalid = Counter(
            f"{prefix}_invalid_annotations",
            "annotations that cannot be a LabelEvent (logged, not published)",
            registry=self.registry,
        )
        self.webhooks_received = Counter(
            f"{prefix}_webhooks",
            "webhook requests accepted, by Label Studio action",
            ["action"],
            registry=self.registry,
        )
        self.webhook_refusals = Counter(
            f"{prefix}_webhook_refusals",
            "webhook requests refused: secret (401), too_large (413), invalid (400), "
            "busy (503: the hand-off queue is full; reconciliation catches up)",
            ["reason"],
            registry=self.registry,
        )
        self.label_studio_up = Gauge(
            f"{prefix}_label_studio_up",
            "1 if the last request to Label Studio succeeded, else 0",
            registry=self.registry,
        )
        # SPEC §7 names it without the bridge's prefix; set by streams.review.backlog.
        self.backlog = Gauge(
            "vigil_review_backlog",
            "open review tasks per model: Label Studio tasks without a completed "
            "(submitted, not skipped) annotation",
            ["model"],
            registry=self.registry,
        )

    def model(self, model_id: str) -> str:
        """The ``model`` label value of ``model_id``."""
        if model_id in self._models:
            return model_id
        if len(self._models) < self.max_models:
            self._models.add(model_id)
            return model_id
        return OTHER_MODEL
