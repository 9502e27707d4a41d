"""``vigil demo --review``: Label Studio and the review bridge next to the demo's worker.

One model's escalations, :data:`HUMAN_REVIEWED_MODEL`'s, become Label Studio tasks that a
person labels in a browser; the demo's synthetic review team stops labelling that model
(:func:`streams.dev.demo.synthetic_reviewed`), so its label and calibration panels move
only when the person labels. The other models keep their synthetic reviewers, so the rest
of the demo looks as without ``--review``; the bridge sends only that model's escalations
to Label Studio (``review.label_studio.models``).

:func:`start_review` starts, in order:

1. **Label Studio**, unless one is configured: ``review.label_studio.token`` set (e.g.
   ``VIGIL_LABEL_STUDIO_URL`` and ``VIGIL_LABEL_STUDIO_TOKEN``) means "use that server"
   (tests point the demo at their session's server this way). Otherwise a local server
   (:class:`~streams.dev.label_studio.LocalLabelStudio`, webhooks to 127.0.0.1 allowed)
   whose data directory is in the demo's run directory: every run starts with empty
   projects, so the queue holds this run's escalations only, and no label from an
   earlier run (whose events this run's worker never saw) comes back. The first start
   on an empty directory migrates the database (60-90 s); that is done once, in a
   template directory in the cache (``$VIGIL_CACHE_DIR`` or ``~/.cache/vigil``), which
   every run copies, so later runs start in ~10 s. The template keeps its admin login,
   so the printed login stays the same from run to run (it is a local server on
   127.0.0.1; the login file is mode 0600). One template per Label Studio version.
2. **The bridge**, ``python -m streams.cli review label-studio`` as a child process
   (:mod:`streams.dev.children`) with the config :func:`bridge_config` writes next to the
   worker's: free ports on 127.0.0.1 for its webhook endpoint and ``/metrics``, a random
   webhook secret. The token and secret reach it by its environment, never the file.

A missing Label Studio installation fails before anything starts, with the error that
says to run ``make label-studio`` (:class:`~streams.dev.label_studio.LabelStudioMissingError`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from streams.config import Settings
from streams.config.settings import deep_merge
from streams.dev import children
from streams.dev.local_broker import free_port

if TYPE_CHECKING:  # imported when used: a demo without --review never loads it
    from streams.dev.label_studio import LocalLabelStudio

__all__ = [
    "DEMO_PROJECT_TITLE",
    "HUMAN_REVIEWED_MODEL",
    "Review",
    "bridge_config",
    "start_review",
]

#: The model a person reviews in Label Studio. A classification model with audits, so
#: its queue mixes the uncertain items with audited auto-accepted ones.
HUMAN_REVIEWED_MODEL = "fraud-detector"

#: ``review.label_studio.project_title`` of the demo (the user's setting wins): not the
#: default one, so that a demo pointed at a real Label Studio keeps apart from its projects.
DEMO_PROJECT_TITLE = "vigil demo {model_id}"

#: Seconds between two "still starting" lines while Label Studio starts.
PROGRESS_EVERY_S = 10.0

#: The template data directory, under the cache directory.
_TEMPLATE = "label-studio-demo-template"


def _say(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        print(line, flush=True)


def bridge_config(
    worker_config: Mapping[str, Any],
    *,
    url: str,
    webhook_port: int,
    metrics_port: int,
) -> dict[str, Any]:
    """The bridge's configuration: the worker's (so the same Kafka and topics), with the
    demo's ``review.label_studio`` over it. Listen addresses, ports and the URL are the
    demo's (it chose them free); the user's other Label Studio keys (project mapping,
    labeling config, title) win over the demo's. No secret is in it: the token and webhook
    secret go by the environment (:func:`bridge_environment`).

    >>> cfg = bridge_config({"app_id": "a"}, url="http://127.0.0.1:1", webhook_port=2,
    ...                     metrics_port=3)
    >>> ls = cfg["review"]["label_studio"]
    >>> ls["webhook_url"], ls["metrics_port"], ls["project_title"], cfg["app_id"]
    ('http://127.0.0.1:2/webhook', 3, 'vigil demo {model_id}', 'a')
    """
    for name, port in (("webhook_port", webhook_port), ("metrics_port", metrics_port)):
        if type(port) is not int or not 0 < port < 65536:
            raise ValueError(f"{name} must be a port number (1-65535); got {port!r}")
    # Only the model a person reviews goes to Label Studio; the others keep their synthetic
    # reviewers (through Kafka) and leave no unanswered tasks behind.
    defaults = {
        "review": {
            "label_studio": {
                "project_title": DEMO_PROJECT_TITLE,
                "models": [HUMAN_REVIEWED_MODEL],
            }
        }
    }
    forced = {
        "review": {
            "label_studio": {
                "url": url,
                "webhook_host": "127.0.0.1",
                "webhook_port": webhook_port,
                "webhook_url": f"http://127.0.0.1:{webhook_port}/webhook",
                "metrics_host": "127.0.0.1",
                "metrics_port": metrics_port,
                # Short, so that a person's labels show within seconds even when a webhook
                # is missed, and the backlog panel follows the queue closely.
                "reconcile_every_s": 5,
                "backlog_every_s": 5,
            }
        }
    }
    config = deep_merge(deep_merge(defaults, dict(worker_config)), forced)
    ls = config["review"]["label_studio"]
    for secret in ("token", "webhook_secret"):
        ls.pop(secret, None)
    return config


def bridge_environment(
    base: Mapping[str, str], *, url: str, token: str, secret: str
) -> dict[str, str]:
    """``base`` with the bridge's Label Studio URL, token and webhook secret (the
    environment wins over the config file, so an inherited ``VIGIL_LABEL_STUDIO_URL``
    naming another server must be replaced, not kept)."""
    return {
        **base,
        "VIGIL_LABEL_STUDIO_URL": url,
        "VIGIL_LABEL_STUDIO_TOKEN": token,
        "VIGIL_LABEL_STUDIO_WEBHOOK_SECRET": secret,
    }


@dataclass
class Review:
    """What :func:`start_review` started, and what to print about it."""

    url: str
    #: ``(email, password)`` of the local server's admin; None for a configured server.
    login: tuple[str, str] | None
    token: str
    project: str
    bridge_metrics_port: int
    bridge: subprocess.Popen[bytes]
    server: LocalLabelStudio | None
    config_path: Path

    @property
    def bridge_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.bridge_metrics_port}/metrics"

    def banner(self) -> str:
        """The lines the demo prints about the review loop."""
        from streams.review.projects import QUEUE_VIEW

        if self.login is not None:
            login = f"{self.login[0]} / {self.login[1]}"
        else:
            login = "your account (VIGIL_LABEL_STUDIO_URL/_TOKEN name this server)"
        lines = [
            f"review:     Label Studio {self.url}  login {login}",
            f"            open project {self.project!r}, view '{QUEUE_VIEW}',",
            "            and label there:",
            f"            {HUMAN_REVIEWED_MODEL}'s escalations are reviewed there only, so its "
            '"vigil" columns',
            "            stay empty until you label, then its label and calibration panels move.",
            "            The other models keep their synthetic reviewers (through Kafka).",
            f"bridge:     {self.bridge_metrics_url}  (config {self.config_path})",
        ]
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop the bridge, then Label Studio (if the demo started it)."""
        children.stop(self.bridge, grace=15.0)
        if self.server is not None:
            self.server.stop()


def start_review(
    settings: Settings,
    worker_config: Mapping[str, Any],
    run_dir: Path,
    log: IO[bytes],
    env: Mapping[str, str],
) -> Review:
    """Start Label Studio (unless configured) and the bridge; see the module docstring.

    ``worker_config`` is what the worker was given, ``env`` its environment (Kafka's
    address and password); the bridge's output goes to ``log``. On any failure or
    interruption, what was started is stopped before the exception propagates.
    """
    configured = settings.review.label_studio
    server: LocalLabelStudio | None = None
    if configured.token is not None:
        url, token = configured.url.rstrip("/"), configured.token.get_secret_value()
        login = None
        _say(f"review:     using the Label Studio at {url} (review.label_studio.token is set)")
    else:
        server = _start_local(run_dir / "label-studio")
        url, token, login = server.url, server.token, (server.username, server.password)
    try:
        webhook_port, metrics_port = free_port(), free_port()
        config = bridge_config(
            worker_config, url=url, webhook_port=webhook_port, metrics_port=metrics_port
        )
        config_path = run_dir / "bridge.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        secret = secrets.token_urlsafe(24)
        bridge = children.spawn(
            [sys.executable, "-m", "streams.cli", "review", "label-studio", "-c", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=bridge_environment(env, url=url, token=token, secret=secret),
        )
    except BaseException:
        if server is not None:
            server.stop()
        raise
    title = config["review"]["label_studio"]["project_title"]
    project = config["review"]["label_studio"].get("projects", {}).get(HUMAN_REVIEWED_MODEL)
    name = (
        f"#{project}" if project is not None else title.replace("{model_id}", HUMAN_REVIEWED_MODEL)
    )
    return Review(url, login, token, name, metrics_port, bridge, server, config_path)


def _start_local(data_dir: Path) -> LocalLabelStudio:
    """A local Label Studio on a copy of the template data directory (made first if
    missing); the caller stops it."""
    from streams.dev.label_studio import LocalLabelStudio, label_studio_executable

    executable = label_studio_executable()  # a clear error, before anything starts
    template = _cache_dir() / f"{_TEMPLATE}-{_version(executable)}"
    if not (template / "vigil-login.json").is_file():
        _say(
            "review:     preparing Label Studio's database, once for all demo runs "
            f"(60-90 s; kept in {template}) ..."
        )
        _prepare_template(template, executable)
    shutil.copytree(template, data_dir, ignore=shutil.ignore_patterns("label-studio.log"))
    server = LocalLabelStudio(data_dir, executable=executable, allow_local_webhooks=True)
    _say("review:     starting Label Studio (~10 s) ...")
    with _progress("Label Studio starting"):
        server.start()
    return server


def _prepare_template(template: Path, executable: Path) -> None:
    """Start and stop Label Studio once on an empty directory, then move it to
    ``template``: a template exists complete or not at all (an interrupted preparation
    leaves a temporary directory that is removed)."""
    from streams.dev.label_studio import LocalLabelStudio

    template.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{_TEMPLATE}-", dir=template.parent))
    try:
        server = LocalLabelStudio(work, executable=executable, allow_local_webhooks=True)
        with _progress("preparing Label Studio"):
            server.start()
        server.stop()
        try:
            work.rename(template)
        except OSError:
            # Another demo prepared one meanwhile: use that one.
            if not (template / "vigil-login.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _version(executable: Path) -> str:
    """Label Studio's version next to ``executable`` (from its virtualenv's package
    metadata), so that an upgrade prepares a new template rather than migrating a copy of
    the old one on every run; ``unknown`` when it cannot be told.

    >>> _version(Path("/nonexistent/bin/label-studio"))
    'unknown'
    """
    venv = executable.resolve().parent.parent
    found = sorted(venv.glob("lib/python*/site-packages/label_studio-*.dist-info"))
    if not found:
        return "unknown"
    return found[-1].name.removeprefix("label_studio-").removesuffix(".dist-info")


def _cache_dir() -> Path:
    root = os.environ.get("VIGIL_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "vigil"


@contextlib.contextmanager
def _progress(what: str, every: float = PROGRESS_EVERY_S) -> Iterator[None]:
    """Print ``what ... N s`` every ``every`` seconds while the block runs."""
    done = threading.Event()
    started = time.monotonic()

    def tick(say: Callable[[str], None] = _say) -> None:
        while not done.wait(every):
            say(f"            {what} ... {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=tick, name="vigil-demo-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1.0)
