"""Which Label Studio project holds a model's tasks, made on first use.

A model named under ``review.label_studio.projects`` uses that project as it is. Any other
model gets the project titled ``project_title`` (``"vigil {model_id}"``): found by title
after a restart, else created with the configured ``label_config`` or one built from the
model's classes (:func:`streams.review.tasks.label_config`). For a project the bridge built
itself (recognised by its description), a class not seen before is added to the choices
before the first task that predicts it, so a reviewer can always pick what the model said.

Every project the bridge uses gets a saved Data Manager view, :data:`QUEUE_VIEW`, that
lists tasks highest priority first: the queue reviewers work from; and, when
``webhook_url`` is set, one webhook to the bridge for ``ANNOTATION_CREATED`` and
``ANNOTATION_UPDATED`` carrying the shared secret (kept up to date if the secret or URL
changes). :meth:`ProjectDirectory.discover` finds every model's project, including those
made before a restart that no escalation has touched since.

A reviewer who works through the queue ("Label Tasks As Displayed"; "Label All Tasks" goes
by task id in Label Studio Community) finds the model's prediction already selected only if
the project's "Use predictions to prelabel tasks" (``show_collab_predictions``) is on and
its ``model_version`` is :data:`~streams.review.tasks.PRE_ANNOTATION_VERSION`, the version
of every pre-annotation the bridge imports (an empty one becomes that at the first
import). A task opened from the list shows it pre-selected whatever the settings. A project
the bridge makes is made so; one it finds or is given is used as it is, with a warning in
the log if its settings hide the pre-annotations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import unescape

from streams.config.settings import LabelStudioSettings
from streams.review.label_studio_api import LabelStudioClient, Project
from streams.review.tasks import PRE_ANNOTATION_VERSION, PredictionKind, label_config
from streams.review.webhook_endpoint import WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER

__all__ = ["BUILT_BY_BRIDGE", "QUEUE_VIEW", "ModelProject", "ProjectDirectory"]

log = logging.getLogger(__name__)

#: The description of projects whose labeling config the bridge built and maintains.
BUILT_BY_BRIDGE = (
    "Made by vigil's review bridge (vigil review label-studio): one task per escalation; "
    "the labeling config is built from the model's classes."
)

#: A choice as :func:`~streams.review.tasks.label_config` writes it (``quoteattr`` picks
#: single quotes for a value holding a double quote).
#: Title of the saved view ordered by priority, made once per project.
QUEUE_VIEW = "Review queue (highest priority first)"
_QUEUE_ORDER = ("-tasks:data.priority",)

_CHOICE = re.compile(r"""<Choice\s+value=(?:"([^"]*)"|'([^']*)')\s*/>""")


@dataclass
class ModelProject:
    """A model's project, and (for one the bridge maintains) the classes it offers."""

    id: int
    maintained: bool
    kind: PredictionKind | None = None
    classes: set[str] = field(default_factory=set)


class ProjectDirectory:
    """Model id → :class:`ModelProject`, resolved once per model and cached."""

    def __init__(self, client: LabelStudioClient, settings: LabelStudioSettings) -> None:
        self.client = client
        self.settings = settings
        self._projects: dict[str, ModelProject] = {}

    def project_for(
        self, model_id: str, kind: PredictionKind, classes: Iterable[str] = ()
    ) -> ModelProject:
        """The model's project, made if needed, offering every class in ``classes``."""
        project = self._projects.get(model_id)
        if project is None:
            project = self._resolve(model_id, kind, classes)
            self._ensure_queue_view(project.id)
            self.ensure_webhook(project.id)
            self._projects[model_id] = project
        missing = set(classes) - project.classes
        if project.maintained and project.kind == "classification" and missing:
            config = label_config("classification", project.classes | missing)
            self.client.update_label_config(project.id, config)
            # Only once Label Studio has it: a failed update is tried again with the batch.
            project.classes |= missing
            log.info("project %d of model %s now offers %s", project.id, model_id, sorted(missing))
        return project

    def _resolve(self, model_id: str, kind: PredictionKind, classes: Iterable[str]) -> ModelProject:
        configured = self.settings.projects.get(model_id)
        if configured is not None:
            # Fails now, not at the first import, if absent.
            _warn_if_predictions_hidden(self.client.project(configured), model_id)
            return ModelProject(configured, maintained=False)
        title = self.settings.project_title.format(model_id=model_id)
        found = self.client.find_project(title)
        if found is not None:
            _warn_if_predictions_hidden(found, model_id)
            maintained = self.settings.label_config is None and found.description == BUILT_BY_BRIDGE
            offered = {unescape(a or b) for a, b in _CHOICE.findall(found.label_config)}
            found_kind: PredictionKind = "classification" if offered else kind
            return ModelProject(found.id, maintained, found_kind, offered)
        own_config = self.settings.label_config
        config = own_config or label_config(kind, classes)
        description = "" if own_config else BUILT_BY_BRIDGE
        made = self.client.create_project(
            title,
            config,
            description,
            model_version=PRE_ANNOTATION_VERSION,
            show_collab_predictions=True,
        )
        log.info("made Label Studio project %d (%r) for model %s", made.id, title, model_id)
        return ModelProject(made.id, own_config is None, kind, set(classes))

    def discover(self) -> dict[str, int]:
        """``model id -> project id`` of every model's project: the configured ones and those
        titled by ``project_title`` (the lowest id when several share a title)."""
        found = dict(self.settings.projects)
        head, _, tail = self.settings.project_title.partition("{model_id}")
        pattern = re.compile(
            re.escape(head) + r"([A-Za-z0-9][A-Za-z0-9._-]{0,63})" + re.escape(tail)
        )
        for project in sorted(self.client.projects(), key=lambda p: p.id):
            match = pattern.fullmatch(project.title)
            if match is not None:
                found.setdefault(match.group(1), project.id)
        return found

    def ensure_webhook(self, project_id: int) -> None:
        """Register (or correct) the project's webhook to the bridge, if one is configured."""
        url = self.settings.webhook_url
        secret = self.settings.webhook_secret
        if url is None or secret is None:
            return
        headers = {WEBHOOK_SECRET_HEADER: secret.get_secret_value()}
        mine = [h for h in self.client.webhooks(project_id) if h.get("url") == url]
        if mine:
            hook = mine[0]
            if (
                hook.get("headers") == headers
                and set(hook.get("actions") or ()) == set(WEBHOOK_ACTIONS)
                and hook.get("is_active", True)
                and hook.get("send_payload", True)
            ):
                return
            self.client.save_webhook(
                project_id, url, headers=headers, actions=WEBHOOK_ACTIONS, webhook_id=hook["id"]
            )
        else:
            self.client.save_webhook(project_id, url, headers=headers, actions=WEBHOOK_ACTIONS)
        log.info("project %d sends annotations to %s", project_id, url)

    def _ensure_queue_view(self, project_id: int) -> None:
        titles = {view.get("data", {}).get("title") for view in self.client.views(project_id)}
        if QUEUE_VIEW not in titles:
            self.client.create_view(project_id, QUEUE_VIEW, _QUEUE_ORDER)


def _warn_if_predictions_hidden(project: Project, model_id: str) -> None:
    if project.model_version not in ("", PRE_ANNOTATION_VERSION):
        log.warning(
            "project %d of model %s pre-labels tasks with predictions of model version %r "
            "only: reviewers working through its queue will not see the model's prediction "
            "pre-selected (choose %r in its settings)",
            project.id,
            model_id,
            project.model_version,
            PRE_ANNOTATION_VERSION,
        )
    elif not project.show_collab_predictions:
        log.warning(
            "project %d of model %s does not use predictions to prelabel tasks: reviewers "
            "working through its queue will not see the model's prediction pre-selected",
            project.id,
            model_id,
        )
