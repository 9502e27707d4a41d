"""What every local server vigil runs as a child process shares: its lifecycle.

:class:`~streams.dev.local_broker.LocalBroker` (Kafka) and
:class:`~streams.dev.label_studio.LocalLabelStudio` differ in how they prepare a data
directory, start and tell that they are ready; starting, stopping, restarting on the same
directory, killing for fault tests, the context manager and the stop at interpreter exit
are the same, and live here once.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from streams.dev import children

__all__ = ["LocalServer"]

# Servers started and not yet stopped. Strong references on purpose: a server object that
# is dropped without stop() must still be stopped at exit, not leak its process.
_LIVE: set[LocalServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


class LocalServer:
    """Base of a server run as a child process with a data directory.

    A subclass calls :meth:`_init_server` in its ``__init__`` and implements
    :meth:`_prepare` (make the data directory: set ``_dir`` and ``_owns_dir``),
    :meth:`_launch` (spawn the process into ``_proc`` and wait until it is ready) and
    :meth:`_where` (for ``repr``).
    """

    #: Raised when the server is used before its first start (a subclass's own error).
    _not_started_error: ClassVar[type[Exception]] = RuntimeError
    #: Seconds between SIGTERM and SIGKILL on stop.
    _stop_grace: ClassVar[float] = 20.0

    def _init_server(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._owns_dir = False
        self._lock = threading.Lock()

    # -- read-only state ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the server, or ``None`` when it is not running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (not whether it answers)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def directory(self) -> Path:
        """The data directory in use."""
        if self._dir is None:
            raise self._not_started_error(
                f"{type(self).__name__} has not been started; call start() first"
            )
        return self._dir

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it is ready; return ``self``. The first start
        prepares the data directory; later starts (see :meth:`restart`) reuse it."""
        with self._lock:
            if self.running:
                return self
            first = self._dir is None
            self._before_start()
            if first:
                self._prepare()
            try:
                self._launch(first)
            except BaseException:
                # Not ready or interrupted: leave nothing running (and no temp dir behind on
                # a failed first start).
                self._terminate()
                if first:
                    self._cleanup_dir()
                raise
            _LIVE.add(self)
            return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a temporary data directory.

        Safe to call more than once, and registered with :mod:`atexit`.
        """
        with self._lock:
            self._terminate()
            self._cleanup_dir()
            _LIVE.discard(self)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop cleanly, stay down ``down_for`` seconds, start again on the same data
        directory."""
        with self._lock:
            self._terminate()
        time.sleep(down_for)
        self.start()

    def kill(self) -> None:
        """SIGKILL the server, keeping its data directory (for fault tests)."""
        with self._lock:
            self._terminate(grace=0.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}({self._where()}, {state}, pid={self.pid})"

    # -- for subclasses -------------------------------------------------------------------

    def _before_start(self) -> None:
        """Find what the start needs (raise if it is missing), before any directory exists."""

    def _prepare(self) -> None:
        raise NotImplementedError

    def _launch(self, first: bool) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop what the removed temporary directory's server had (ports...)."""

    def _terminate(self, grace: float | None = None) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            children.stop(proc, self._stop_grace if grace is None else grace)

    def _cleanup_dir(self) -> None:
        if self._owns_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._owns_dir = False
            self._forget()
