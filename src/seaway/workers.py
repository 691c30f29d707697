"""`seaway run --workers N`: N worker processes sharing the listening sockets.

Each worker is a complete ``seaway run`` (its own event loop, file watch, health
state and data planes) started by re-executing ``python -m seaway run ...
--worker-index I``. Workers bind their listeners with ``SO_REUSEPORT`` (Linux 3.9+,
socket(7)), so the kernel spreads new TCP connections and UDP flows over them by a
hash of the 4-tuple. The parent only supervises: it forwards SIGTERM, SIGINT and
SIGHUP, restarts a worker that died unexpectedly (a bounded number of times), and
exits when the workers have exited after a stop.

Worker I serves the admin API on the configured port + I (port 0: each its own
ephemeral port). The workers share connection counts, ClientIP affinity and active
health check results (worker 0 probes, the others replay its results:
``seaway.health.shared_checks``) through a file in /dev/shm that the parent creates
before the first worker and removes when it exits (``seaway.shared_state``); the
parent zeroes a dead worker's counts before it restarts it. What the workers share
and what they do not is in docs/operations.md ("Several worker processes").
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

log = logging.getLogger("seaway.workers")

# Restarts allowed within RESTART_WINDOW seconds before the parent gives up (exit 1):
# a worker that keeps dying is a bug or a broken host, not something to retry forever.
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
# How long the parent waits for workers to exit when it gives up, before SIGKILL.
STOP_GRACE = 10.0
# How often the parent looks at its signals and workers.
POLL_INTERVAL = 0.05

_listeners_shared = False


def share_listeners(on: bool = True) -> None:
    """Make the data planes bind their listeners with ``SO_REUSEPORT`` (workers only)."""
    global _listeners_shared  # noqa: PLW0603  (one switch per process, set before any listener)
    _listeners_shared = on


def listeners_shared() -> bool:
    """Whether listeners are bound with ``SO_REUSEPORT``: only in a worker of several."""
    return _listeners_shared


def worker_admin_address(host: str, port: int, index: int) -> tuple[str, int]:
    """Where worker ``index`` serves the admin API: the configured port + index."""
    if port == 0:
        return host, 0
    if port + index > 65535:
        raise ValueError(f"admin port {port} + worker index {index} is above 65535")
    return host, port + index


def die_with_parent() -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (prctl(2)
    PR_SET_PDEATHSIG), so a SIGKILLed supervisor leaves no worker behind."""
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent was already gone before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_argv(
    args: argparse.Namespace, index: int, admin: str, shared_state: str | None = None
) -> list[str]:
    """The command line of worker ``index``: the parent's ``seaway run`` options, and
    the path of the state the workers share (``seaway.shared_state``)."""
    argv = [sys.executable, "-m", "seaway", "--log-level", args.log_level, "run"]
    for path in args.file:
        argv += ["-f", path]
    argv += ["--admin", admin, "--worker-index", str(index)]
    if shared_state is not None:
        argv += ["--shared-state", shared_state]
    if args.state_file:
        argv += ["--state-file", args.state_file]
    if args.shutdown_delay is not None:
        argv += ["--shutdown-delay", str(args.shutdown_delay)]
    if args.admin_token_file:
        argv += ["--admin-token-file", args.admin_token_file]
    if args.access_log:
        argv += ["--access-log", args.access_log, "--access-log-format", args.access_log_format]
    return argv


class Supervisor:
    """Starts ``count`` workers (``argv_for(index)``) and keeps them running until a
    stop signal; see the module docstring. ``on_exit(index)`` is called when worker
    ``index`` has exited, before it is started again (the shared connection counts
    of a dead worker are zeroed there)."""

    def __init__(
        self,
        argv_for: Callable[[int], Sequence[str]],
        count: int,
        *,
        restart_limit: int = RESTART_LIMIT,
        restart_window: float = RESTART_WINDOW,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self._argv_for = argv_for
        self._count = count
        self._on_exit = on_exit
        self._restart_limit = restart_limit
        self._restart_window = restart_window
        self._workers: dict[int, subprocess.Popen[bytes]] = {}
        self._restarts: collections.deque[float] = collections.deque()
        self._signals: list[int] = []

    def _spawn(self, index: int) -> None:
        # Its own process group: a terminal's Ctrl-C reaches the parent only, which
        # forwards it once (a second SIGINT would make a worker skip its drain).
        proc = subprocess.Popen(list(self._argv_for(index)), process_group=0)
        self._workers[index] = proc
        log.info("worker %d started (pid %d)", index, proc.pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def run(self) -> int:
        """Supervise until the workers exit after a stop (0) or keep dying (1)."""
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_all()

    def _supervise(self) -> int:
        for index in range(self._count):
            self._spawn(index)
        stopping = False
        while True:
            while self._signals:
                signum = self._signals.pop(0)
                stopping = stopping or signum != signal.SIGHUP
                for proc in self._workers.values():
                    if proc.poll() is None:
                        proc.send_signal(signum)
            for index, proc in list(self._workers.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._workers[index]
                if self._on_exit is not None:
                    self._on_exit(index)
                if stopping:
                    if code != 0:
                        log.warning("worker %d exited with status %d", index, code)
                    continue
                if not self._may_restart():
                    log.error(
                        "worker %d exited with status %d; more than %d restarts in %g s: "
                        "giving up (see the workers' errors above)",
                        index,
                        code,
                        self._restart_limit,
                        self._restart_window,
                    )
                    return 1
                log.warning("worker %d exited unexpectedly (status %d); restarting", index, code)
                self._spawn(index)
            if stopping and not self._workers:
                log.info("all workers exited")
                return 0
            time.sleep(POLL_INTERVAL)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > self._restart_window:
            self._restarts.popleft()
        if len(self._restarts) >= self._restart_limit:
            return False
        self._restarts.append(now)
        return True

    def _stop_all(self) -> None:
        for proc in self._workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self._workers.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._workers.clear()
