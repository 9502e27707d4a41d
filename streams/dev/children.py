"""Child processes that die with their parent, and stop signals that reach the parent.

The developer tools start long-lived children: the broker JVM (:mod:`streams.dev.local_broker`),
and for ``vigil demo`` a worker and Prometheus (:mod:`streams.dev.demo`); tests start
workers. Two things must hold whatever happens to the Python process that started them:

* **It stops on SIGINT, SIGTERM and SIGHUP** (:func:`stop_signals`). A process started in
  the background by a non-interactive shell (``sh -c 'vigil demo &'``) inherits SIGINT
  ignored, and Python keeps an inherited ``SIG_IGN``, so Ctrl-C/``kill -INT`` did nothing;
  SIGHUP (the terminal closed) killed the parent with no cleanup at all.
* **Its children die with it** (:func:`spawn`), even on ``kill -9``, where no handler and
  no ``atexit`` runs.

For the second, Linux's parent-death signal: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` in the
child between fork and exec. Chosen over a watchdog pipe because the kernel delivers it
whatever ends the parent, with no extra process: a pipe needs the child to read it, and
neither ``java`` nor ``prometheus`` does, so each child would need a wrapper process that
itself must be stopped, forward signals and report the exit code. The cost: Linux only
(elsewhere children still stop on the paths that run Python code: signals, ``atexit``,
context managers) and a ``preexec_fn``, which makes the fork slower and runs Python in the
child. SIGTERM rather than SIGKILL: every child here stops cleanly and promptly on SIGTERM
(the JVM runs a controlled KRaft shutdown, the worker flushes and commits, Prometheus
closes its TSDB), and the callers' own SIGKILL fallback covers a child that hangs while
the parent is alive.

The kernel sends the parent-death signal when the *thread* that forked the child exits,
not the process: a broker started from a short-lived thread would be killed when that
thread ends. :func:`spawn` therefore forks from the main thread, or else from one
spawning thread that lives as long as the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

__all__ = ["STOP_SIGNALS", "spawn", "stop", "stop_signals"]

#: The signals that stop a dev tool cleanly: Ctrl-C, ``kill``, and the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: What a child receives when its parent dies (see the module docstring for why not SIGKILL).
PARENT_DEATH_SIGNAL = signal.SIGTERM

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_libc: ctypes.CDLL | None = None
if sys.platform == "linux":
    # Loaded and typed here, before any fork: the child only calls into it.
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _libc.prctl.restype = ctypes.c_int
    _libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
    _libc.signal.restype = ctypes.c_void_p

Output = int | IO[Any] | None


def _die_with(parent: int) -> Callable[[], None]:
    assert _libc is not None  # noqa: S101 - callers check _libc first; narrows the type
    libc = _libc
    stop_signals = [int(s) for s in STOP_SIGNALS]
    pdeathsig = int(PARENT_DEATH_SIGNAL)

    def in_child() -> None:
        # Runs in the forked child before exec; keep it to plain C calls.
        # Dispositions set to SIG_IGN survive exec: a parent started with SIGTERM ignored
        # would hand that on and the parent-death signal would be ignored too.
        for sig in stop_signals:
            libc.signal(sig, None)  # NULL is SIG_DFL
        libc.prctl(_PR_SET_PDEATHSIG, pdeathsig, 0, 0)
        # The parent may have died between fork and prctl: then no signal will ever come.
        if os.getppid() != parent:
            os.kill(os.getpid(), pdeathsig)

    return in_child


def _popen(cmd: Sequence[str | Path], kwargs: dict[str, Any]) -> subprocess.Popen[bytes]:
    preexec = _die_with(os.getpid()) if _libc is not None else None
    # Own session: Ctrl-C in a terminal (the foreground process group) reaches the Python
    # parent only, which stops its children in order; and stop() can signal the group.
    # No shell: the commands are argument lists built by vigil's dev tools.
    return subprocess.Popen(  # noqa: S603 - argument lists built by vigil's dev tools
        [str(part) for part in cmd], start_new_session=True, preexec_fn=preexec, **kwargs
    )


class _Spawner(threading.Thread):
    """The thread that forks for callers off the main thread; it never exits."""

    def __init__(self) -> None:
        super().__init__(name="vigil-spawner", daemon=True)
        self.requests: queue.SimpleQueue[
            tuple[Sequence[str | Path], dict[str, Any], Future[subprocess.Popen[bytes]]]
        ] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            cmd, kwargs, future = self.requests.get()
            try:
                future.set_result(_popen(cmd, kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def spawn(
    cmd: Sequence[str | Path],
    *,
    stdout: Output = None,
    stderr: Output = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, to be killed with SIGTERM if this process dies.

    stdin is ``/dev/null``: these children never read a terminal. Stop it with :func:`stop`.
    """
    kwargs: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": stdout,
        "stderr": stderr,
        "env": env,
    }
    if threading.current_thread() is threading.main_thread():
        return _popen(cmd, kwargs)
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
            _spawner.start()
    future: Future[subprocess.Popen[bytes]] = Future()
    _spawner.requests.put((cmd, kwargs, future))
    return future.result()


def stop(proc: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM the child's process group, wait ``grace`` seconds, then SIGKILL the group.

    The group is killed even after a clean exit: nothing the child forked may survive it.
    Returns the child's exit code (negative: the signal that ended it).
    """
    if proc.poll() is None and grace > 0:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group id is the child's pid (own session). Gone already, or reaped and reused by
    # an unrelated process we may not signal: nothing to do either way.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`KeyboardInterrupt`.

    Installed explicitly, whatever the inherited dispositions (an ignored SIGINT included),
    and restored on exit. Signal handlers belong to the main thread: elsewhere this does
    nothing, and the main thread's handlers apply.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
