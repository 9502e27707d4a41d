"""A small typed client for the parts of Label Studio's REST API the review bridge uses.

Standard library only (``urllib``): a handful of JSON requests do not justify an HTTP
dependency, nor Label Studio's SDK, whose pins would join vigil's. Authentication is the
legacy API token (``Authorization: Token ...``), which a server enables with
``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``.

Failures are split by what the caller should do (:mod:`streams.errors`):

* :class:`LabelStudioUnavailableError`: no connection, a timeout, HTTP 5xx or 429. The
  server may be restarting; retry later.
* :class:`~streams.errors.LabelStudioError`: any other refusal (a bad token, a labeling
  config or a task the server rejects). The message names the request and quotes the
  server's answer; it never contains the token.

Endpoints (Label Studio 1.23, Community edition):

* ``GET/POST /api/projects``, ``PATCH /api/projects/{id}``;
* ``POST /api/projects/{id}/import?return_task_ids=true``: a bulk import. The Community
  edition imports synchronously, in one database transaction, and answers with the ids of
  the tasks it made; other editions answer ``{"import": id}`` and import in the
  background, which this client refuses (:class:`~streams.errors.LabelStudioError`) rather
  than report tasks that may never exist;
* ``GET /api/tasks/?project=..&query=..``: the Data Manager's task list, filtered on task
  data fields or on the time a task last changed (saving an annotation updates its task's
  ``updated_at``); ``GET/POST /api/dm/views/``: its saved views;
* ``GET/POST /api/webhooks/``, ``PATCH /api/webhooks/{id}/``: a project's webhooks;
* ``GET /api/users/{id}/``: who a user id is.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.config.settings import LabelStudioSettings
from streams.errors import LabelStudioError, VigilError

__all__ = [
    "LabelStudioClient",
    "LabelStudioUnavailableError",
    "Project",
    "ProjectCounts",
    "client_for",
]

#: Values per Data Manager filter request: each becomes one ``or`` item in the URL's query
#: (~190 bytes encoded); 200 worked against Label Studio 1.23, whose dev server takes
#: request lines up to 64 KiB. The path keeps its trailing slash: without it, Django's
#: append-slash middleware fails on a URL over 16 KiB (HTTP 400).
_FILTER_CHUNK = 100

#: Tasks per page when listing (Label Studio's own default page size).
_PAGE_SIZE = 100

_ANSWER_EXCERPT = 500


class LabelStudioUnavailableError(LabelStudioError):
    """Label Studio cannot be reached or failed on its side (5xx, 429): retry later."""


@dataclass(frozen=True)
class Project:
    """A project as the bridge reads it. The tasks Label Studio hands a reviewer in turn
    are pre-labelled with their predictions of ``model_version`` if
    ``show_collab_predictions`` ("Use predictions to prelabel tasks" in its settings)."""

    id: int
    title: str
    label_config: str
    description: str
    model_version: str = ""
    show_collab_predictions: bool = True


@dataclass(frozen=True)
class ProjectCounts:
    """A project's task counts, as Label Studio's project list computes them.

    ``annotated_tasks`` is Label Studio's ``num_tasks_with_annotations``: tasks with at
    least one annotation that is not cancelled (skipped), not a ground-truth copy, and has a
    result. A task whose only annotations were skipped is not annotated.
    """

    id: int
    title: str
    tasks: int
    annotated_tasks: int

    @property
    def open_tasks(self) -> int:
        """Tasks without such an annotation (never negative)."""
        return max(0, self.tasks - self.annotated_tasks)


#: The fields :meth:`LabelStudioClient.project_counts` asks for: Label Studio 1.23's
#: ``include`` both limits the counts it computes and the fields it returns.
_COUNT_FIELDS = ("id", "title", "task_number", "num_tasks_with_annotations")


class LabelStudioClient:
    """Requests to one Label Studio server as one user.

    Parameters
    ----------
    url
        Base URL, e.g. ``http://localhost:8080``.
    token
        The user's API token; kept out of ``repr`` and of every error message.
    timeout
        Seconds per request.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://; got {url!r}")
        if not token:
            raise ValueError("token must not be empty")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds; got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token

    def __repr__(self) -> str:
        return f"LabelStudioClient({self.url!r})"

    # -- projects -------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The user this client acts as."""
        user: dict[str, Any] = self._request("GET", "/api/current-user/whoami")
        return user

    def project(self, project_id: int) -> Project:
        return _project(self._request("GET", f"/api/projects/{project_id}"))

    def find_project(self, title: str) -> Project | None:
        """The project with exactly this title (the lowest id if several), or ``None``."""
        found: list[Project] = []
        page = 1
        while True:
            answer = self._request(
                "GET", "/api/projects", query={"title": title, "page": page, "page_size": 100}
            )
            found += [_project(p) for p in answer["results"] if p["title"] == title]
            if not answer.get("next"):
                break
            page += 1
        return min(found, key=lambda p: p.id) if found else None

    def create_project(
        self,
        title: str,
        label_config: str,
        description: str = "",
        *,
        model_version: str = "",
        show_collab_predictions: bool = True,
    ) -> Project:
        """Make a project; its predictions of ``model_version`` pre-label the tasks it
        hands out if ``show_collab_predictions`` (see :class:`Project`)."""
        body = {
            "title": title,
            "label_config": label_config,
            "description": description,
            "model_version": model_version,
            "show_collab_predictions": show_collab_predictions,
        }
        return _project(self._request("POST", "/api/projects", body=body))

    def update_label_config(self, project_id: int, label_config: str) -> Project:
        """Replace a project's labeling config (the server refuses one that would orphan
        existing annotations)."""
        body = {"label_config": label_config}
        return _project(self._request("PATCH", f"/api/projects/{project_id}", body=body))

    def project_counts(
        self, *, title_contains: str = "", ids: Iterable[int] | None = None
    ) -> list[ProjectCounts]:
        """Task counts of the projects whose title contains ``title_contains`` (ignoring
        case; every project if empty), or, given ``ids``, of those projects (ids that do
        not exist are left out). One request per 100 projects, ordered by id; a project
        made or deleted between two pages may be missed or listed twice."""
        base = {"include": ",".join(_COUNT_FIELDS), "ordering": "id", "page_size": _PAGE_SIZE}
        if ids is not None:
            wanted = sorted(set(ids))
            queries = [
                {**base, "ids": ",".join(str(i) for i in wanted[start : start + _PAGE_SIZE])}
                for start in range(0, len(wanted), _PAGE_SIZE)
            ]
        else:
            queries = [{**base, "title": title_contains} if title_contains else base]
        found: dict[int, ProjectCounts] = {}
        for query in queries:
            page = 1
            while True:
                answer = self._request("GET", "/api/projects/", query={**query, "page": page})
                results = answer.get("results") if isinstance(answer, dict) else None
                if not isinstance(results, list):
                    raise LabelStudioError(f"GET /api/projects/ answered {_excerpt(answer)}")
                for item in results:
                    counts = _project_counts(item)
                    found[counts.id] = counts
                if not answer.get("next"):
                    break
                page += 1
        return [found[i] for i in sorted(found)]

    # -- Data Manager views ---------------------------------------------------------------

    def views(self, project_id: int) -> list[dict[str, Any]]:
        """The project's saved Data Manager views (tabs), each ``{"id", "data": {...}}``."""
        views: list[dict[str, Any]] = self._request(
            "GET", "/api/dm/views/", query={"project": project_id}
        )
        return views

    def create_view(self, project_id: int, title: str, ordering: Sequence[str]) -> int:
        """Save a view ordered by ``ordering`` (e.g. ``["-tasks:data.priority"]``); its id."""
        body = {"project": project_id, "data": {"title": title, "ordering": list(ordering)}}
        return int(self._request("POST", "/api/dm/views/", body=body)["id"])

    # -- tasks ----------------------------------------------------------------------------

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        """Create ``tasks`` (``{"data": ..., "predictions": [...]}``) in one bulk import;
        return their ids, in order."""
        if not tasks:
            return []
        answer = self._request(
            "POST",
            f"/api/projects/{project_id}/import",
            query={"return_task_ids": "true"},
            body=list(tasks),
        )
        ids = answer.get("task_ids")
        if not isinstance(ids, list) or len(ids) != len(tasks):
            raise LabelStudioError(
                f"POST /api/projects/{project_id}/import of {len(tasks)} tasks answered "
                f"{_excerpt(answer)}; expected the ids of the tasks made (a background "
                "import, as non-Community editions do, is not supported)"
            )
        return [int(i) for i in ids]

    def set_overlap(self, task_id: int, overlap: int) -> None:
        """Ask for ``overlap`` annotations of one task: Label Studio serves it to that many
        annotators before it counts as labeled (a bulk import sets every task to the
        project's "annotations per task")."""
        self._request("PATCH", f"/api/tasks/{task_id}/", body={"overlap": int(overlap)})

    def find_tasks(self, project_id: int, field: str, values: Iterable[str]) -> dict[str, int]:
        """``value -> task id`` of the tasks whose ``data[field]`` equals one of ``values``
        (the lowest id when several tasks have one value)."""
        wanted = sorted(set(values))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), _FILTER_CHUNK):
            chunk = wanted[start : start + _FILTER_CHUNK]
            items = [
                {
                    "filter": f"filter:tasks:data.{field}",
                    "operator": "equal",
                    "type": "String",
                    "value": value,
                }
                for value in chunk
            ]
            query = {"filters": {"conjunction": "or", "items": items}}
            for task in self.tasks(project_id, query=query):
                value = task["data"].get(field)
                if value in chunk and (value not in found or task["id"] < found[value]):
                    found[value] = int(task["id"])
        return found

    def tasks(
        self,
        project_id: int,
        *,
        query: Mapping[str, Any] | None = None,
        view: int | None = None,
        fields: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Every task of a project, page by page: those matching the Data Manager ``query``,
        or as the saved ``view`` filters and orders them. ``fields="all"`` includes
        predictions and annotations."""
        page = 1
        while True:
            params: dict[str, Any] = {"project": project_id, "page": page, "page_size": _PAGE_SIZE}
            if view is not None:
                params["view"] = view
            if query is not None:
                params["query"] = json.dumps(dict(query))
            if fields:
                params["fields"] = fields
            try:
                answer = self._request("GET", "/api/tasks/", query=params)
            except LabelStudioError as exc:
                # Past the last page the Data Manager answers 404.
                if page > 1 and " 404 " in str(exc):
                    return
                raise
            tasks = answer.get("tasks", [])
            yield from tasks
            if len(tasks) < _PAGE_SIZE:
                return
            page += 1

    def annotated_tasks_changed_since(
        self, project_id: int, since: datetime
    ) -> Iterator[dict[str, Any]]:
        """The project's tasks with at least one (not cancelled) annotation that changed
        after ``since`` (aware), with their annotations, in id order (stable while tasks
        change). Label Studio compares at microseconds, in UTC."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        items = [
            {
                "filter": "filter:tasks:updated_at",
                "operator": "greater",
                "type": "Datetime",
                "value": stamp,
            },
            {
                "filter": "filter:tasks:total_annotations",
                "operator": "greater",
                "type": "Number",
                "value": 0,
            },
        ]
        query = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:id"]}
        return self.tasks(project_id, query=query, fields="all")

    # -- annotations (what a reviewer's labeling screen sends) -----------------------------

    def annotate(
        self, task_id: int, result: Sequence[Mapping[str, Any]], *, was_cancelled: bool = False
    ) -> dict[str, Any]:
        """Annotate a task as this client's user (``was_cancelled``: skip it)."""
        body = {"result": list(result), "was_cancelled": was_cancelled}
        made: dict[str, Any] = self._request(
            "POST", f"/api/tasks/{task_id}/annotations/", body=body
        )
        return made

    def update_annotation(
        self, annotation_id: int, result: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        changed: dict[str, Any] = self._request(
            "PATCH", f"/api/annotations/{annotation_id}/", body={"result": list(result)}
        )
        return changed

    # -- webhooks and users ---------------------------------------------------------------

    def webhooks(self, project_id: int) -> list[dict[str, Any]]:
        """The webhooks of one project (``{"id", "url", "headers", "actions", ...}``)."""
        hooks: list[dict[str, Any]] = self._request(
            "GET", "/api/webhooks/", query={"project": project_id}
        )
        return [h for h in hooks if h.get("project") == project_id]

    def save_webhook(
        self,
        project_id: int,
        url: str,
        *,
        headers: Mapping[str, str],
        actions: Sequence[str],
        webhook_id: int | None = None,
    ) -> int:
        """Create (or, given ``webhook_id``, replace the settings of) a project webhook that
        sends the whole payload for ``actions`` only; its id."""
        body = {
            "project": project_id,
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "headers": dict(headers),
            "actions": list(actions),
            "is_active": True,
        }
        if webhook_id is None:
            return int(self._request("POST", "/api/webhooks/", body=body)["id"])
        self._request("PATCH", f"/api/webhooks/{webhook_id}/", body=body)
        return webhook_id

    def user(self, user_id: int) -> dict[str, Any]:
        """One user (``{"id", "email", "username", ...}``)."""
        user: dict[str, Any] = self._request("GET", f"/api/users/{user_id}/")
        return user

    # -- transport ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Token {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - the configured server
        what = f"{method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", errors="replace")
            message = f"{what} answered {exc.code} {exc.reason}: {_excerpt(text)}"
            if exc.code >= 500 or exc.code == 429:
                raise LabelStudioUnavailableError(message) from None
            raise LabelStudioError(message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioUnavailableError(
                f"{what}: Label Studio at {self.url} cannot be reached: {reason}"
            ) from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise LabelStudioError(f"{what} answered non-JSON: {_excerpt(raw)}") from None


def _project(answer: Mapping[str, Any]) -> Project:
    return Project(
        int(answer["id"]),
        str(answer["title"]),
        str(answer.get("label_config") or ""),
        str(answer.get("description") or ""),
        str(answer.get("model_version") or ""),
        bool(answer.get("show_collab_predictions", True)),
    )


def _project_counts(answer: Mapping[str, Any]) -> ProjectCounts:
    try:
        counts = ProjectCounts(
            int(answer["id"]),
            str(answer["title"]),
            int(answer["task_number"]),
            int(answer["num_tasks_with_annotations"]),
        )
    except (KeyError, TypeError, ValueError):
        raise LabelStudioError(
            f"GET /api/projects/ answered a project without {', '.join(_COUNT_FIELDS)}: "
            f"{_excerpt(answer)} (a Label Studio older than 1.23?)"
        ) from None
    return counts


def _excerpt(answer: Any) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    return text if len(text) <= _ANSWER_EXCERPT else text[:_ANSWER_EXCERPT] + "..."


def client_for(settings: LabelStudioSettings) -> LabelStudioClient:
    """The client of ``review.label_studio``; a clear error when its token is not set."""
    if settings.token is None:
        raise VigilError(
            "review.label_studio.token is not set: give the bridge's Label Studio API "
            "token in VIGIL_LABEL_STUDIO_TOKEN"
        )
    return LabelStudioClient(
        settings.url, settings.token.get_secret_value(), timeout=settings.request_timeout_s
    )
