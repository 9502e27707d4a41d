"""The review backlog: open Label Studio tasks per model, as ``vigil_review_backlog{model}``.

A task is **open** while it has no completed annotation: none that was submitted with a
result and not cancelled. A *skipped* task (only cancelled annotations) stays open: nobody
reviewed it, no label was published for it, and it is still in the queue for another
reviewer (Label Studio's default skip queue hands it to the others). So the backlog is,
per project, Label Studio's ``task_number - num_tasks_with_annotations``
(:class:`~streams.review.label_studio_api.ProjectCounts`). One caveat from that count:
an annotation marked as ground truth does not count, so a task whose only annotation is
a ground-truth one is reported open.

Which projects: :func:`streams.review.projects.model_projects`, the configured ones and
every project titled by ``project_title`` (so a restarted bridge reports every model's
backlog, not only those it has seen since).

Cost of :meth:`BacklogCounter.update`: one ``GET /api/projects/`` per 100 projects whose
title contains the literal part of ``project_title`` (usually 1), plus one per 100
configured projects (0 if none). Label Studio computes the counts in its database, in a
few queries per page (each a count over the listed projects' tasks and annotations); no
task is transferred.
"""

from __future__ import annotations

import logging

from streams.config.settings import LabelStudioSettings
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_studio_api import LabelStudioClient
from streams.review.projects import model_projects

__all__ = ["BacklogCounter"]

log = logging.getLogger(__name__)


class BacklogCounter:
    """Counts open tasks per model and sets ``metrics.backlog``.

    Parameters
    ----------
    client
        The bridge's Label Studio client.
    settings
        ``review.label_studio``: ``projects`` and ``project_title`` say which projects.
    metrics
        The bridge's metrics; the ``model`` label is capped by :meth:`BridgeMetrics.model`,
        and the backlogs of models beyond the cap are summed under ``_other``.

    Examples
    --------
    >>> from streams.review.label_studio_api import ProjectCounts
    >>> class Fake:
    ...     def project_counts(self, *, title_contains="", ids=None):
    ...         return [ProjectCounts(7, "vigil fraud", tasks=5, annotated_tasks=2)]
    >>> counter = BacklogCounter(Fake(), LabelStudioSettings(), BridgeMetrics())
    >>> counter.update()
    {'fraud': 3}
    >>> counter.metrics.registry.get_sample_value("vigil_review_backlog", {"model": "fraud"})
    3.0
    """

    def __init__(
        self, client: LabelStudioClient, settings: LabelStudioSettings, metrics: BridgeMetrics
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self._labels: set[str] = set()  # the model label values set by the last update

    def update(self) -> dict[str, int]:
        """Count now: set the gauge of every model found, remove the series of models whose
        project is gone, and return ``model id -> open tasks`` (uncapped ids).

        Raises :class:`~streams.errors.LabelStudioError` when Label Studio cannot be asked;
        the gauge then keeps the values of the last successful update.
        """
        backlog = {
            model: counts.open_tasks
            for model, counts in model_projects(self.client, self.settings).items()
        }
        by_label: dict[str, int] = {}
        for model, open_tasks in backlog.items():
            label = self.metrics.model(model)
            by_label[label] = by_label.get(label, 0) + open_tasks
        for label, open_tasks in by_label.items():
            self.metrics.backlog.labels(label).set(open_tasks)
        for label in self._labels - by_label.keys():
            self.metrics.backlog.remove(label)
            log.info("no review project for model %s any more: backlog series removed", label)
        self._labels = set(by_label)
        return backlog
