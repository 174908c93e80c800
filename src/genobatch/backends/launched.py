"""The local backend's side of attempts started by the persistent launcher.

A mixin of :class:`~genobatch.backends.local.LocalBackend`, kept apart so that each module stays
about one thing: this one is how an attempt is handed to the launcher
(:mod:`~genobatch.backends.launcher`, reached through
:class:`~genobatch.backends.launcher_client.LauncherClient`), how its reports become the
backend's events, and how such an attempt is found again after a restart. It uses the backend's
lock, attempt table, watcher and event helpers (declared below for the type checker).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from genobatch.backends.attempt import LocalAttempt
from genobatch.backends.base import AttemptExited, AttemptSpec
from genobatch.backends.outcome import FAILED_TO_START, STOPPED_BEFORE_START

if TYPE_CHECKING:
    from genobatch.backends.launcher_client import LauncherClient
    from genobatch.backends.watcher import Watcher


class LaunchedAttempts:
    """Handing attempts to the persistent launcher and acting on its reports (watcher thread)."""

    _lock: threading.Lock
    _connect_lock: threading.Lock
    _attempts: dict[tuple[str, int], LocalAttempt]
    _launched: dict[str, LocalAttempt]  # attempt dir -> attempt, guarded by _lock
    _launcher: LauncherClient
    _watcher: Watcher

    if TYPE_CHECKING:  # the backend's own, used here

        def _write_spec_file(self, spec: AttemptSpec, att: LocalAttempt, command: list[str]) -> None: ...
        def _finish(self, att: LocalAttempt, exit_code: int | None, **kwargs: object) -> None: ...
        def _started(self, att: LocalAttempt, child_pid: int) -> None: ...
        def _adopted(self, att: LocalAttempt, pidfd: int | None) -> None: ...
        def _settle_unattended(self, spec: AttemptSpec, info: dict, meta: dict) -> AttemptExited: ...
        def _not_started(self, att: LocalAttempt) -> None: ...

    def _launch(self, spec: AttemptSpec, att: LocalAttempt, command: list[str], env: dict[str, str]) -> None:
        """Have the persistent launcher start the attempt (one message, sent from the caller's
        thread); it reports the start and the end on its socket (:meth:`_launcher_started`,
        :meth:`_launcher_exited`)."""
        att.executable, att.launched = command[0], True
        self._write_spec_file(spec, att, command)
        cgroup = att.containment.cgroup if att.containment else None
        try:
            self._connect_launcher(start=True)
        except OSError as exc:
            self._finish(att, None, reason=f"CannotStartContainerError: {exc}", status=FAILED_TO_START)
            return
        with self._lock:
            att.state = "starting"
            self._launched[att.attempt_dir] = att
        try:
            self._launcher.spawn(
                att.attempt_dir, command, env, list(spec.cpus), cgroup.procs_file if cgroup else None, att.after_dir
            )
        except OSError as exc:  # the launcher has gone: the watcher reports what it ran as lost
            with self._lock:
                self._launched.pop(att.attempt_dir, None)
            self._finish(att, None, reason=f"CannotStartContainerError: {exc}", status=FAILED_TO_START)
            return
        # Its OOM eventfd, once the request is out: waking the watcher first made it compete for
        # the GIL with this thread before the launcher had anything to do (an attempt that ends
        # before the watcher gets to it is simply not watched: its end is reported all the same).
        self._watcher.watch(att, None, None)

    def _connect_launcher(self, *, start: bool) -> bool:
        """Connect to the launcher (starting one if ``start``) and have the watcher read its
        socket; False if none runs and ``start`` is not set."""
        with self._connect_lock:
            if self._launcher.fileno() >= 0:
                return True
            if not self._launcher.connect(start=start):
                return False
            self._watcher.add_source(self._launcher.fileno(), self._launcher.on_readable)
            return True

    def _launcher_started(self, attempt_dir: str, pid: int) -> None:
        """The launcher started an attempt's command (watcher thread)."""
        with self._lock:
            att = self._launched.get(attempt_dir)
        if att is not None:
            self._started(att, pid)

    def _launcher_exited(self, attempt_dir: str) -> None:
        """The launcher recorded an attempt's end, or that it could not start (watcher thread)."""
        with self._lock:
            att = self._launched.pop(attempt_dir, None)
        if att is not None:
            self._watcher.end(att)

    def _launcher_withdrawn(self, attempt_dir: str) -> None:
        """The launcher dropped a successor that was still waiting (watcher thread): stopped
        before it started if a stop asked for it, else never started (a withdrawal)."""
        with self._lock:
            att = self._launched.pop(attempt_dir, None)
        if att is None:
            return
        self._watcher.forget(att)
        if att.stop_grace is not None:
            self._finish(att, None, status=STOPPED_BEFORE_START)
        else:
            self._not_started(att)

    def _launcher_lost(self) -> None:
        """The launcher's connection ended (watcher thread): what it had not reported ended is
        over as far as this server can tell; a record written meanwhile is still used."""
        with self._lock:
            lost = list(self._launched.values())
            self._launched.clear()
        for att in lost:
            self._watcher.end(att)
