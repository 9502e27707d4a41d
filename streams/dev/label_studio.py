"""A real Label Studio server on this machine, headless, for tests and the demo.

Label Studio pins its own dependencies, some of which clash with vigil's, so it lives in its
own virtualenv: ``make label-studio`` creates ``.venv-label-studio`` from
``requirements-label-studio.lock``. :class:`LocalLabelStudio` runs ``label-studio start``
from there as a child process (one that dies with this process,
:mod:`streams.dev.children`), with SQLite and media in a data directory of its own, one
admin user whose API token it chose, and waits until that user's token is accepted::

    with LocalLabelStudio() as ls:
        client = LabelStudioClient(ls.url, ls.token)

How it starts, and why (measured with Label Studio 1.23 on the 2-core CI machine):

* **Non-interactively.** The admin user, password and token come from
  ``LABEL_STUDIO_USERNAME``/``_PASSWORD``/``_USER_TOKEN``; legacy tokens
  (``Authorization: Token ...``) are enabled; sign-up without an invite link, the version
  check (a request to PyPI) and error reports to the vendor's Sentry are off. Label
  Studio also reads plain ``USERNAME``, ``PASSWORD`` and ``PORT``, which a shell or CI
  runner may set for other reasons: they are removed from its environment, as is every
  inherited ``LABEL_STUDIO_*`` and ``HEARTEX_*`` variable.
* **On the port it really serves.** Given a busy port, Label Studio silently serves on the
  next free one; the port is read back from its log, and readiness is the API accepting
  this server's own token (so another server on that port cannot pass for it).
* **Slow the first time.** The first start on an empty data directory runs the database
  migrations: 84 s here; a restart on that directory took 9 s. Tests therefore start one
  server per session.

By hand: ``python -m streams.dev.label_studio`` prints the URL and the login and runs until
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.dev import children
from streams.dev.local_broker import free_port
from streams.dev.local_server import LocalServer
from streams.errors import LocalLabelStudioError

__all__ = [
    "LabelStudioMissingError",
    "LocalLabelStudio",
    "LocalLabelStudioError",
    "label_studio_executable",
]

#: ``make label-studio`` installs it here (see the Makefile).
_REPO = Path(__file__).resolve().parents[2]
_VENV_EXECUTABLE = _REPO / ".venv-label-studio" / "bin" / "label-studio"

#: Environment variable naming another ``label-studio`` executable.
EXECUTABLE_ENV = "VIGIL_LABEL_STUDIO"

#: Label Studio reads each setting NAME from ``LABEL_STUDIO_NAME``, ``HEARTEX_NAME`` or plain
#: ``NAME``; these plain names are common in shells and CI runners for other purposes.
_CLEARED = ("USERNAME", "PASSWORD", "PORT", "HOST")

#: Django's runserver announces the address it bound, on stdout.
_SERVING = re.compile(rb"Starting development server at http://[^:/\s]+:(\d+)/")

# Django's runserver exits with this when the port it binds is taken. Label Studio checks a
# busy port by connecting, so a port bound but not yet listening (another process between
# its bind and listen) passes the check and is then refused: a race, met on a busy CI.
_PORT_TAKEN = b"That port is already in use"

# Launches on a fresh port after the one chosen was taken between check and bind.
_PORT_RACE_ATTEMPTS = 3

#: The first start migrates an empty SQLite database: 84 s on the 2-core CI machine, so
#: the default leaves room for a loaded machine.
_START_TIMEOUT_SECONDS = 300.0

#: The dev server stops at once on SIGTERM; this only bounds a hung one.

_LOG_TAIL_LINES = 40

#: The admin login of a data directory, kept next to its database (mode 0600).
_LOGIN_FILE = "vigil-login.json"


class LabelStudioMissingError(LocalLabelStudioError):
    """No ``label-studio`` executable: ``make label-studio`` was not run."""


def label_studio_executable() -> Path:
    """The ``label-studio`` to run: ``$VIGIL_LABEL_STUDIO``, else ``.venv-label-studio``'s,
    else one on PATH. Raises :class:`LabelStudioMissingError` when there is none."""
    configured = os.environ.get(EXECUTABLE_ENV, "").strip()
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LabelStudioMissingError(
                f"{EXECUTABLE_ENV}={configured!r} is not an executable file"
            )
        return path
    if _VENV_EXECUTABLE.is_file():
        return _VENV_EXECUTABLE
    found = shutil.which("label-studio")
    if found:
        return Path(found)
    raise LabelStudioMissingError(
        f"Label Studio is not installed: no {_VENV_EXECUTABLE} and no label-studio on PATH; "
        f"run `make label-studio` (or set {EXECUTABLE_ENV} to a label-studio executable)"
    )


class LocalLabelStudio(LocalServer):
    """A Label Studio server (SQLite) running as a child process on 127.0.0.1.

    Parameters
    ----------
    data_dir
        Database, media and the server's log (``label-studio.log``). ``None`` (default): a
        fresh temporary directory, removed by :meth:`stop`. A given directory is kept.
    executable
        The ``label-studio`` to run; default :func:`label_studio_executable`.
    username, password, token
        The admin user made on first start. ``password`` and ``token`` default to random
        ones; the token is what API clients send (``Authorization: Token ...``). A data
        directory used before keeps the login it was first started with (saved in it, as
        Label Studio makes its admin user only once).
    start_timeout
        Seconds :meth:`start` waits for the API to accept the token.
    allow_local_webhooks
        Turn Label Studio's SSRF protection off so that it may send webhooks to 127.0.0.1
        (tests and the demo). A production server keeps it on and targets a routable address.

    The port is chosen on the first start and asked for again on :meth:`restart`, so a
    client's URL stays valid unless another process took the port meanwhile.
    """

    _not_started_error = LocalLabelStudioError
    _stop_grace = 10.0

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        executable: Path | str | None = None,
        username: str = "vigil@example.com",
        password: str | None = None,
        token: str | None = None,
        start_timeout: float = _START_TIMEOUT_SECONDS,
        allow_local_webhooks: bool = False,
    ) -> None:
        if start_timeout <= 0:
            raise ValueError(f"start_timeout must be > 0 seconds; got {start_timeout!r}")
        if "@" not in username:
            raise ValueError(f"username must be an email address; got {username!r}")
        if token is not None and not re.fullmatch(r"[A-Za-z0-9]{6,40}", token):
            # Label Studio ignores a token of 5 characters or fewer; its column holds 40.
            raise ValueError("token must be 6-40 letters or digits")
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.executable = Path(executable) if executable is not None else None
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self.token = token if token is not None else secrets.token_hex(20)
        self.start_timeout = start_timeout
        self.allow_local_webhooks = allow_local_webhooks
        # Kept across restarts: a new key would log every browser session out.
        self._secret_key = secrets.token_urlsafe(48)
        self._init_server()
        self._executable: Path | None = None
        self._port: int | None = None
        self._log_offset = 0  # where this run's lines start in the log

    # -- read-only state ------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server really serves on (read from its log)."""
        if self._port is None:
            raise LocalLabelStudioError("Label Studio has not been started; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Label Studio's stdout and stderr."""
        return self.directory / "label-studio.log"

    # -- LocalServer ----------------------------------------------------------------------

    def _before_start(self) -> None:
        self._executable = self.executable or label_studio_executable()

    def _launch(self, first: bool) -> None:
        assert self._executable is not None  # noqa: S101 - found by _before_start()
        for attempt in range(1, _PORT_RACE_ATTEMPTS + 1):
            self._spawn(self._executable)
            try:
                self._wait_ready()
                return
            except LocalLabelStudioError:
                assert self._proc is not None  # noqa: S101 - set by _spawn(); narrows the type
                exited = self._proc.poll() is not None
                if attempt == _PORT_RACE_ATTEMPTS or not (exited and self._port_was_taken()):
                    raise
                self._port = free_port()

    def _where(self) -> str:
        return self.url if self._port is not None else "not started"

    def _forget(self) -> None:
        self._port = None

    # -- internals ------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.data_dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="vigil-label-studio-"))
            self._owns_dir = True
        else:
            self._dir = self.data_dir
            self._dir.mkdir(parents=True, exist_ok=True)
        # Label Studio makes the admin user once, on the first start in a directory, and
        # ignores the login variables afterwards: a kept directory keeps its first login.
        login = self._dir / _LOGIN_FILE
        if login.is_file():
            saved = json.loads(login.read_text(encoding="utf-8"))
            self.username, self.password, self.token = (
                saved["username"],
                saved["password"],
                saved["token"],
            )
        else:
            fields = {"username": self.username, "password": self.password, "token": self.token}
            login.write_text(json.dumps(fields), encoding="utf-8")
            login.chmod(0o600)

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _CLEARED and not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))
        }
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.directory / "data"),
            LABEL_STUDIO_USERNAME=self.username,
            LABEL_STUDIO_PASSWORD=self.password,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",  # noqa: S106 - a switch, not a secret
            LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
            LABEL_STUDIO_LATEST_VERSION_CHECK="false",
            SECRET_KEY=self._secret_key,
            # Label Studio reports server errors to its vendor's Sentry unless told not to.
            LABEL_STUDIO_SENTRY_DSN="",
            LABEL_STUDIO_FRONTEND_SENTRY_DSN="",
            # The port line must reach the log while the server runs, not at exit.
            PYTHONUNBUFFERED="1",
        )
        if self.allow_local_webhooks:
            env["LABEL_STUDIO_SSRF_PROTECTION_ENABLED"] = "false"
        return env

    def _spawn(self, executable: Path) -> None:
        if self._port is None:
            self._port = free_port()
        cmd: list[str | Path] = [
            executable,
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self._port),
        ]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = children.spawn(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self._environment()
            )

    def _run_log(self) -> bytes:
        """What this run has written to the log so far."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read()

    def _served_port(self) -> int | None:
        """The port announced in the log of this run, if announced yet."""
        match = _SERVING.search(self._run_log())
        return int(match.group(1)) if match else None

    def _port_was_taken(self) -> bool:
        """Whether this run exited because its port was taken as it bound."""
        return _PORT_TAKEN in self._run_log()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        announced: int | None = None
        problem: str | None = "it did not announce a port"
        while time.monotonic() < deadline:
            assert self._proc is not None  # noqa: S101 - set by _spawn(); narrows the type
            if self._proc.poll() is not None:
                raise LocalLabelStudioError(
                    f"Label Studio exited with {self._proc.returncode} during start"
                    f"{self._diagnostics()}"
                )
            if announced is None:
                announced = self._served_port()
                if announced is not None:
                    # Busy port: Label Studio moved to another one without failing.
                    self._port = announced
            if announced is not None:
                problem = self._whoami_problem()
                if problem is None:
                    return
            time.sleep(0.5)
        raise LocalLabelStudioError(
            f"Label Studio was not ready within {self.start_timeout:g} s ({problem})"
            f"{self._diagnostics()}"
        )

    def _whoami_problem(self) -> str | None:
        """``None`` if the server at :attr:`url` accepts our token as our user, else why not."""
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1, built here
            f"{self.url}/api/current-user/whoami",
            headers={"Authorization": f"Token {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                user = json.loads(response.read())
        except (OSError, ValueError) as exc:
            return f"{self.url}: {exc}"
        if user.get("email") != self.username:
            return f"{self.url} answers as {user.get('email')!r}, not {self.username!r}"
        return None

    def add_reviewer(self, email: str, password: str) -> str:
        """Sign a new user up through the organisation's invite link, as a reviewer joins a
        team, and return that user's API token (to annotate as them)."""
        import http.cookiejar
        import urllib.parse

        invite = urllib.request.Request(  # noqa: S310 - http://127.0.0.1, built here
            f"{self.url}/api/invite", headers={"Authorization": f"Token {self.token}"}
        )
        with urllib.request.urlopen(invite, timeout=30) as response:  # noqa: S310
            signup = self.url + json.loads(response.read())["invite_url"]
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        browser.open(signup, timeout=30).read()
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        form = {"email": email, "password": password, "csrfmiddlewaretoken": csrf}
        request = urllib.request.Request(  # noqa: S310
            signup, data=urllib.parse.urlencode(form).encode(), headers={"Referer": signup}
        )
        browser.open(request, timeout=30).read()
        try:
            with browser.open(f"{self.url}/api/current-user/token", timeout=30) as response:
                return str(json.loads(response.read())["token"])
        except urllib.error.HTTPError as exc:
            raise LocalLabelStudioError(
                f"signing up {email!r} at {self.url} did not log them in ({exc.code}): "
                "a used email, or a password Label Studio refuses (8 characters at least)"
            ) from None

    def _diagnostics(self) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"; no log at {self.log_path}"
        tail = "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])
        return f"; last lines of {self.log_path}:\n{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.dev.label_studio",
        description="Run a local Label Studio until Ctrl-C; print its URL and login.",
    )
    parser.add_argument("--data-dir", type=Path, help="keep the database here (default: temp)")
    args = parser.parse_args(argv)
    server = LocalLabelStudio(args.data_dir, allow_local_webhooks=True)
    with children.stop_signals(), server:
        print(f"Label Studio at {server.url}")
        print(f"login {server.username} / {server.password}; API token {server.token}")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
