"""The review backlog: open Label Studio tasks per model, as ``vigil_review_backlog{model}``.

A task is **open** while it has no completed annotation: none that was submitted with a
result and not cancelled. A *skipped* task (only cancelled annotations) stays open: nobody
reviewed it, no label was published for it, and it is still in the queue for another
reviewer (Label Studio's default skip queue hands it to the others). So the backlog is,
per project, Label Studio's ``task_number - num_tasks_with_annotations``
(:class:`~streams.review.label_studio_api.ProjectCounts`). One caveat from that count:
an annotation marked as ground truth does not count, so a task whose only annotation is
a ground-truth one is reported open.

Which projects: those of ``review.label_studio.projects`` (model -> project id), and every
project titled by ``project_title`` for some model id (the bridge makes them on first use,
so they are found by listing, and a restarted bridge reports every model's backlog, not
only those it has seen since). A titled project counts only if its title yields a valid
model id (SPEC §4); of several projects with one title the lowest id counts, as the bridge
writes to that one; a model with a configured project is read from that project alone.

Cost of :meth:`BacklogCounter.update`: one ``GET /api/projects/`` per 100 projects whose
title contains the literal part of ``project_title`` (usually 1), plus one per 100
configured projects (0 if none). Label Studio computes the counts in its database, in a
few queries per page (each a count over the listed projects' tasks and annotations); no
task is transferred.
"""

from __future__ import annotations

import logging
import re

from streams.config.settings import LabelStudioSettings
from streams.events.schema import MODEL_ID_RE
from streams.review.bridge_metrics import BridgeMetrics
from streams.review.label_studio_api import LabelStudioClient, ProjectCounts

__all__ = ["BacklogCounter", "title_pattern"]

log = logging.getLogger(__name__)

#: Stands for the model id while ``project_title`` is split into its literal parts.
_MARK = "\x00"


def title_pattern(project_title: str) -> tuple[re.Pattern[str], str]:
    """The regex that reads a model id back from a title made by ``project_title``, and the
    longest literal part of the title (the text to search projects by; may be empty).

    >>> pattern, literal = title_pattern("vigil {model_id}")
    >>> pattern.fullmatch("vigil fraud-v2")["model"], literal
    ('fraud-v2', 'vigil ')
    >>> pattern.fullmatch("vigil two words") is None
    True
    """
    try:
        parts = project_title.format(model_id=_MARK).split(_MARK)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"project_title must contain {{model_id}} and no other field; "
            f"got {project_title!r} ({exc})"
        ) from None
    if len(parts) < 2:
        raise ValueError(f"project_title must contain {{model_id}}; got {project_title!r}")
    # The first {model_id} captures it; any later one must repeat it.
    regex = re.escape(parts[0]) + f"(?P<model>{MODEL_ID_RE.pattern})"
    regex += "(?P=model)".join(re.escape(part) for part in parts[1:])
    return re.compile(regex), max(parts, key=len)


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
        self._title, self._title_literal = title_pattern(settings.project_title)
        self._labels: set[str] = set()  # the model label values set by the last update

    def update(self) -> dict[str, int]:
        """Count now: set the gauge of every model found, remove the series of models whose
        project is gone, and return ``model id -> open tasks`` (uncapped ids).

        Raises :class:`~streams.errors.LabelStudioError` when Label Studio cannot be asked;
        the gauge then keeps the values of the last successful update.
        """
        backlog = {model: counts.open_tasks for model, counts in self._projects().items()}
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

    def _projects(self) -> dict[str, ProjectCounts]:
        """``model id -> counts`` of the project the bridge writes that model's tasks to."""
        configured = self.settings.projects
        found: dict[str, ProjectCounts] = {}
        if configured:
            by_id = {c.id: c for c in self.client.project_counts(ids=configured.values())}
            for model, project_id in configured.items():
                if project_id in by_id:
                    found[model] = by_id[project_id]
        # Ordered by id: the first project of a title is the lowest id, as the bridge picks.
        for counts in self.client.project_counts(title_contains=self._title_literal):
            match = self._title.fullmatch(counts.title)
            if match is None:
                continue
            model = match["model"]
            if model not in configured and model not in found:
                found[model] = counts
        return found
