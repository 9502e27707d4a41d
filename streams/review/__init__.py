"""The review bridge to Label Studio (SPEC §13): escalations become tasks, once each.

* :mod:`streams.review.label_studio_api`: a small client for Label Studio's REST API;
* :mod:`streams.review.tasks`: an escalation as a task, and the labeling config;
* :mod:`streams.review.projects`: each model's project, made on first use;
* :mod:`streams.review.bridge`: the consumer loop and its guarantee (``vigil review
  label-studio``);
* :mod:`streams.review.backlog`: open tasks per model (``vigil_review_backlog``).
"""

from __future__ import annotations

from streams.review.bridge import LabelStudioBridge, TaskWriter
from streams.review.label_studio_api import LabelStudioClient, LabelStudioUnavailableError

__all__ = ["LabelStudioBridge", "LabelStudioClient", "LabelStudioUnavailableError", "TaskWriter"]
