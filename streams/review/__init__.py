"""The review bridge to Label Studio (SPEC §13): escalations become tasks, once each, and
annotations come back as LabelEvents, none lost, none doubled.

Escalations → tasks:

* :mod:`streams.review.label_studio_api`: a small client for Label Studio's REST API;
* :mod:`streams.review.tasks`: an escalation as a task, and the labeling config;
* :mod:`streams.review.projects`: each model's project, made on first use, with its queue
  view and its webhook;
* :mod:`streams.review.bridge`: the consumer loop and its guarantee.

Annotations → labels:

* :mod:`streams.review.webhook_endpoint`: Label Studio's webhooks in, checked, handed off;
* :mod:`streams.review.annotations`: an annotation as a LabelEvent;
* :mod:`streams.review.annotation_publisher` and :mod:`streams.review.label_sink`: each
  annotation version published once, confirmed by the broker;
* :mod:`streams.review.reconcile` and :mod:`streams.review.high_water`: what webhooks
  missed, read back from Label Studio since a mark kept in Kafka;
* :mod:`streams.review.label_loop`: the way back in one thread.

And: :mod:`streams.review.backlog` (open tasks per model, ``vigil_review_backlog``),
:mod:`streams.review.bridge_metrics`, and :mod:`streams.review.service`, all of it
assembled as ``vigil review label-studio`` runs it.
"""

from __future__ import annotations

from streams.review.bridge import LabelStudioBridge, TaskWriter
from streams.review.label_studio_api import LabelStudioClient, LabelStudioUnavailableError
from streams.review.service import LabelStudioService

__all__ = [
    "LabelStudioBridge",
    "LabelStudioClient",
    "LabelStudioService",
    "LabelStudioUnavailableError",
    "TaskWriter",
]
