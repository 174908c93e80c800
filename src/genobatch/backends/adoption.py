"""How the local backend finds its attempts again after a restart: adopt or settle, never start.

A mixin of :class:`~genobatch.backends.local.LocalBackend`. An attempt whose exit record exists
is settled from it (:func:`~genobatch.backends.outcome.recovered_exit`). One still run by its
wrapper (checked against pid reuse through ``/proc``) or by the persistent launcher (which lists
what it runs when the backend connects) is adopted: watched again, a stop in progress resumed
with the grace that is left. Anything else has vanished: whatever it left running is killed and
it is reported with ``exit_code=None``.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from genobatch.backends.attempt import CHILD_PID_FILE, WRAPPER_PID_FILE, LocalAttempt
from genobatch.backends.base import AttemptExited, AttemptNotStarted, AttemptSpec, AttemptStarted, BackendEvent
from genobatch.backends.containment import Containment
from genobatch.backends.host import find_wrapper, is_wrapper_of, mtime_ms, read_int, read_stop
from genobatch.backends.launch import read_attempt_file
from genobatch.backends.outcome import VANISHED_RESTART, recovered_exit
from genobatch.backends.usage import read_exit_record

if TYPE_CHECKING:
    from genobatch.backends.launcher_client import LauncherClient
    from genobatch.backends.watcher import Watcher


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Adoption:
    """``reconcile`` and its helpers; uses the backend's lock, attempt table and watcher."""

    _lock: threading.Lock
    _attempts: dict[tuple[str, int], LocalAttempt]
    _launched: dict[str, LocalAttempt]
    _launcher: LauncherClient
    _watcher: Watcher
    _hostname: str

    if TYPE_CHECKING:  # the backend's own, used here

        def _emit(self, event: BackendEvent) -> None: ...
        def _connect_launcher(self, *, start: bool) -> bool: ...

    def reconcile(self, spec: AttemptSpec, info: dict) -> AttemptExited | AttemptNotStarted | None:
        """Settle or adopt an attempt found after a restart; never starts anything.

        An attempt that certainly never started - no exit record, no ``child.pid`` and no
        ``wrapper.pid`` (the launcher creates ``child.pid`` before it spawns; the wrapper writes
        ``wrapper.pid`` before it starts the command), and nothing runs or waits for it - is
        reported as :class:`AttemptNotStarted`, so the engine places it again.

        The adopted attempt's AttemptExited comes from the watcher thread and may be delivered
        before this call returns.
        """
        job_id, attempt, attempt_dir = spec.job_id, spec.attempt, os.path.abspath(spec.attempt_dir)
        with self._lock:
            known = self._attempts.get((job_id, attempt))
            if known is not None and known.state != "done":
                return None
        record = read_exit_record(attempt_dir)
        if record is not None:
            return recovered_exit(job_id, attempt, attempt_dir, record, info, self._hostname)
        meta = read_attempt_file(attempt_dir)
        if meta.get("launcher") == "persistent":
            return self._reconcile_launched(spec, info, meta)
        pid = read_int(os.path.join(attempt_dir, WRAPPER_PID_FILE))
        if pid is None and isinstance((info or {}).get("pid"), int):
            pid = info["pid"]
        if pid is None:
            pid = find_wrapper(attempt_dir)  # the server died before the wrapper wrote its pid
        pidfd: int | None = None
        if pid is not None:
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                pid = None
            except OSError:
                pidfd = None  # no pidfd support: the watcher polls
            # Checked after pidfd_open: if the pid is our wrapper now, the pidfd refers to it.
            if pid is not None and not is_wrapper_of(pid, attempt_dir):
                if pidfd is not None:
                    os.close(pidfd)
                pid = pidfd = None
        if pid is not None:
            att = LocalAttempt(
                job_id=job_id,
                attempt=attempt,
                attempt_dir=attempt_dir,
                memory_mib=int(meta.get("memory_mib") or 0),
                runtime=str(meta.get("runtime") or (info or {}).get("runtime") or "host"),
                container=meta.get("container_name"),
                state="running",
                wrapper_pid=pid,
                started_ms=mtime_ms(os.path.join(attempt_dir, CHILD_PID_FILE)),
                created_ms=meta.get("created_ms"),
                containment=Containment.recorded(attempt_dir, meta, info),
            )
            att.leader()
            with self._lock:
                self._attempts[att.key] = att
            self._adopted(att, pidfd)
            return None
        # The wrapper may have finished between the first look and the liveness check.
        return self._settle_unattended(spec, info, meta)

    def _adopted(self, att: LocalAttempt, pidfd: int | None) -> None:
        """Watch an attempt found running after a restart, resuming a stop in progress."""
        stop = read_stop(att.attempt_dir)
        with self._lock:
            if stop is not None:
                # The previous server sent SIGTERM: resume its escalation with the grace left
                # (SIGKILL at once if that is past), never granting a fresh grace period.
                att.term_sent = True
                self._watcher.schedule_kill(att, max(0, stop - _now_ms()) / 1000)
        # It runs: if the previous server died before recording its start, this records it
        # (the scheduler ignores a start it already has). Before watching, so it comes first.
        self._emit(AttemptStarted(att.job_id, att.attempt, att.started_ms or _now_ms(), {"adopted": True}))
        self._watcher.watch(att, pidfd, None)

    def _settle_unattended(self, spec: AttemptSpec, info: dict, meta: dict) -> AttemptExited | AttemptNotStarted:
        """An attempt nothing runs any more: its exit record if it has one by now, never started
        if nothing was ever spawned for it, else vanished (and whatever it left running is killed)."""
        job_id, attempt, attempt_dir = spec.job_id, spec.attempt, os.path.abspath(spec.attempt_dir)
        record = read_exit_record(attempt_dir)
        if record is not None:
            return recovered_exit(job_id, attempt, attempt_dir, record, info, self._hostname)
        # Any trace of a process: its pid files, or a start the server recorded.
        spawned = any(os.path.exists(os.path.join(attempt_dir, name)) for name in (CHILD_PID_FILE, WRAPPER_PID_FILE))
        spawned = spawned or bool((info or {}).get("pid") or (info or {}).get("child_pid"))
        Containment.recorded(attempt_dir, meta, info).end(
            read_int(os.path.join(attempt_dir, CHILD_PID_FILE)), meta.get("created_ms")
        )
        if not spawned:
            return AttemptNotStarted(job_id, attempt, _now_ms())
        return AttemptExited(
            job_id=job_id,
            attempt=attempt,
            at_ms=_now_ms(),
            exit_code=None,
            status_reason=VANISHED_RESTART,
            usage={"hostname": self._hostname, "samples": 0},
        )

    def _reconcile_launched(
        self, spec: AttemptSpec, info: dict, meta: dict
    ) -> AttemptExited | AttemptNotStarted | None:
        """Reconcile an attempt the persistent launcher started: adopt it if the launcher still
        runs it, else settle it from its exit record (or report it vanished)."""
        attempt_dir = os.path.abspath(spec.attempt_dir)
        att = LocalAttempt(
            job_id=spec.job_id,
            attempt=spec.attempt,
            attempt_dir=attempt_dir,
            memory_mib=int(meta.get("memory_mib") or 0),
            state="running",
            started_ms=mtime_ms(os.path.join(attempt_dir, CHILD_PID_FILE)),
            created_ms=meta.get("created_ms"),
            containment=Containment.recorded(attempt_dir, meta, info),
            launched=True,
        )

        def adopt(pid: int) -> None:
            att.child_pid = pid
            with self._lock:
                self._attempts[att.key] = att
                self._launched[attempt_dir] = att

        def adopt_waiting(after: str) -> None:
            att.state, att.after_dir = "starting", after
            with self._lock:
                self._attempts[att.key] = att
                self._launched[attempt_dir] = att

        # A launcher that runs nothing may have exited: then there is nothing to adopt.
        if self._connect_launcher(start=False):
            if self._launcher.running_pid(attempt_dir, adopt):
                self._adopted(att, None)
                return None
            if self._launcher.waiting(attempt_dir, adopt_waiting):
                # A successor the launcher still holds: it starts when its predecessor ends.
                self._watcher.watch(att, None, None)
                return None
        return self._settle_unattended(spec, info, meta)
