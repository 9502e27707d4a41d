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
from streams.events.schema import MODEL_ID_RE
from streams.review.label_studio_api import LabelStudioClient, Project, ProjectCounts
from streams.review.tasks import PRE_ANNOTATION_VERSION, PredictionKind, label_config
from streams.review.webhook_endpoint import WEBHOOK_ACTIONS, WEBHOOK_SECRET_HEADER

__all__ = [
    "BUILT_BY_BRIDGE",
    "QUEUE_VIEW",
    "ModelProject",
    "ProjectDirectory",
    "model_projects",
    "title_pattern",
]

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


def model_projects(
    client: LabelStudioClient, settings: LabelStudioSettings
) -> dict[str, ProjectCounts]:
    """``model id -> counts`` of the project each model's tasks go to: those configured in
    ``projects``, and every project titled by ``project_title`` whose title yields a valid
    model id (SPEC §4); of several projects with one title the lowest id, as the bridge
    writes to that one. Only models in ``models``, when that is set. One ``GET
    /api/projects/`` per 100 projects whose title contains the literal part of
    ``project_title``, plus one per 100 configured projects."""
    configured = settings.projects
    found: dict[str, ProjectCounts] = {}
    if configured:
        by_id = {c.id: c for c in client.project_counts(ids=configured.values())}
        for model, project_id in configured.items():
            if project_id in by_id:
                found[model] = by_id[project_id]
    pattern, literal = title_pattern(settings.project_title)
    # Ordered by id: the first project of a title is the lowest id, as the bridge picks.
    for counts in client.project_counts(title_contains=literal):
        match = pattern.fullmatch(counts.title)
        if match is None:
            continue
        model = match["model"]
        if model not in configured and model not in found:
            found[model] = counts
    if settings.models is not None:
        wanted = set(settings.models)
        found = {m: c for m, c in found.items() if m in wanted}
    return found


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
        """``model id -> project id`` of every model's project (:func:`model_projects`)."""
        return {m: c.id for m, c in model_projects(self.client, self.settings).items()}

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
