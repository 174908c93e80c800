"""An attempt's containment: what holds its processes together, and ends all of them with it.

AWS Batch stops a job's whole container when the job ends, so nothing a job started may outlive
it on a vCPU the next job is given. Two kinds:

* ``cgroup`` - the attempt's cgroup (:mod:`genobatch.backends.cgroup`). Every process the command
  ever starts is in it, whatever it does (``setsid``, double fork, ignoring SIGTERM), and ending
  the attempt kills the cgroup's members until it is empty. Memory is enforced by the kernel.
* ``session`` - the fallback where the server may not create cgroups: the command's session and
  process group, its descendants, and processes started since the attempt began that carry its
  marker variable in ``/proc/<pid>/environ`` (that finds a ``setsid`` grandchild whose parent has
  exited). A process that clears its environment *and* leaves the session escapes this; memory
  is sampled (PSS) by the backend's monitor.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass

import psutil

from genobatch.backends.cgroup import AttemptCgroup, open_attempt_cgroup
from genobatch.backends.host import MARKER_ENV, carries_marker
from genobatch.backends.usage import ProcessTable, scan_processes

SAMPLED = "sampled PSS"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class EndOfAttempt:
    """What the kernel knew of an attempt's memory when it ended (cgroup containment only)."""

    out_of_memory: bool = False
    peak_bytes: int | None = None  # the cgroup's peak charge, page cache included


@dataclass(slots=True)
class Containment:
    """How one attempt's processes are found and ended; ``cgroup`` None means ``session``."""

    attempt_dir: str
    cgroup: AttemptCgroup | None = None

    @classmethod
    def recorded(cls, attempt_dir: str, meta: dict, info: dict | None) -> Containment:
        """The containment an attempt was started with, from attempt.json (or its start info)."""
        cgroup = open_attempt_cgroup(meta) or open_attempt_cgroup(info or {})
        return cls(attempt_dir, cgroup)

    @property
    def kind(self) -> str:
        """``cgroup`` or ``session``, as the job's native detail states it."""
        return "cgroup" if self.cgroup is not None else "session"

    @property
    def memory_enforcement(self) -> str:
        """``cgroup v1``, ``cgroup v2`` or ``sampled PSS``."""
        return self.cgroup.enforcement if self.cgroup is not None else SAMPLED

    def describe(self) -> dict:
        """The fields recorded with the attempt (and shown in its native detail)."""
        fields = {"containment": self.kind, "memory_enforcement": self.memory_enforcement}
        if self.cgroup is not None:
            fields.update(self.cgroup.to_info())
        return fields

    def kill_all(self, leader: int | None, table: ProcessTable | None = None) -> None:
        """SIGKILL every process of the attempt (the server's wrapper is never among them).

        Called from the backend's watcher and monitor threads, so it waits only briefly for the
        cgroup to empty (a process in uninterruptible sleep takes a while); :meth:`end` waits
        longer once the attempt is over.
        """
        if self.cgroup is not None:
            self.cgroup.kill(timeout_s=0.5)
            return
        if leader is None:
            return
        for pid in self._session_members(leader, table or scan_processes()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def end(self, leader: int | None, started_ms: int | None = None) -> EndOfAttempt:
        """The attempt is over: read what the kernel measured, kill what is left, clean up.

        ``started_ms`` (wall clock, at or before the attempt's first process) limits the marker
        search of ``session`` containment to processes started since (see :func:`sweep_sessions`,
        which ends many attempts with one look at ``/proc``).
        """
        if self.cgroup is not None:
            report = EndOfAttempt(self.cgroup.out_of_memory(), self.cgroup.peak_bytes())
            self.cgroup.kill()
            self.cgroup.remove()
            return report
        sweep_sessions([(self.attempt_dir, leader, started_ms)])
        return EndOfAttempt()

    def _session_members(self, leader: int, table: ProcessTable) -> list[int]:
        """The leader's session, group and descendants while the leader runs; once it has ended
        (its pid may be reused), only those of them that carry the attempt's marker."""
        members = table.members(leader)
        if any(p.pid == leader for p in members) and carries_marker(leader, self.attempt_dir):
            return [p.pid for p in members]
        return [p.pid for p in members if carries_marker(p.pid, self.attempt_dir)]


def sweep_sessions(ended: list[tuple[str, int | None, int | None]]) -> int:
    """Kill what attempts under ``session`` containment left behind; return how many processes.

    ``ended`` holds (attempt directory, leader pid, wall-clock start in ms) per attempt. One scan
    of ``/proc`` serves them all: a process is theirs if it is in a leader's session or process
    group (the kernel does not reuse a pid while it names a live session or group; a live process
    *with* the leader's pid that lacks the marker is a stranger's new session and is spared), or
    if it started since the earliest of them and carries one of their markers.
    """
    if not ended:
        return 0
    table = scan_processes()
    leaders: dict[int, str] = {}
    for attempt_dir, leader, _ in ended:
        if leader is None:
            continue
        holder = table.procs.get(leader)
        if holder is None or carries_marker(leader, attempt_dir):
            leaders[leader] = attempt_dir
    markers = {f"{MARKER_ENV}={attempt_dir}".encode() for attempt_dir, _, _ in ended}
    starts = [started_ms for _, _, started_ms in ended if started_ms is not None]
    # /proc/stat's boot time is whole seconds: start the window a little early.
    since = (min(starts) / 1000 - psutil.boot_time() - 2) * _CLK_TCK if starts else None
    doomed = []
    for proc in table.procs.values():
        if (
            proc.session in leaders
            or proc.pgrp in leaders
            or since is not None
            and proc.start_ticks >= since
            and _marker_of(proc.pid) in markers
        ):
            doomed.append(proc.pid)
    for pid in doomed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(doomed)


def _marker_of(pid: int) -> bytes | None:
    """The ``GENOBATCH_ATTEMPT_DIR=...`` entry of a process's environment, if it has one."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    prefix = MARKER_ENV.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item
    return None
