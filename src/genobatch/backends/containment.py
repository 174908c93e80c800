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

from genobatch.backends.cgroup import AttemptCgroup
from genobatch.backends.host import carries_marker
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
        """SIGKILL every process of the attempt (the server's wrapper is never among them)."""
        if self.cgroup is not None:
            self.cgroup.kill()
            return
        if leader is None:
            return
        for pid in self._session_members(leader, table or scan_processes()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def end(self, leader: int | None, started_ms: int | None = None) -> EndOfAttempt:
        """The attempt is over: read what the kernel measured, kill what is left, clean up.

        ``started_ms`` (wall clock, at or before the attempt's first process) limits the marker
        search of ``session`` containment to processes started since, so that ending a short job
        does not read the environment of every process on the host.
        """
        if self.cgroup is not None:
            report = EndOfAttempt(self.cgroup.out_of_memory(), self.cgroup.peak_bytes())
            self.cgroup.kill()
            self.cgroup.remove()
            return report
        table = scan_processes()
        pids = set(self._session_members(leader, table)) if leader is not None else set()
        if started_ms is not None:
            # /proc/stat's boot time is whole seconds: start the window a little early.
            since = (started_ms / 1000 - psutil.boot_time() - 2) * _CLK_TCK
            for proc in table.procs.values():
                if proc.start_ticks >= since and proc.pid not in pids and carries_marker(proc.pid, self.attempt_dir):
                    pids.add(proc.pid)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return EndOfAttempt()

    def _session_members(self, leader: int, table: ProcessTable) -> list[int]:
        """The leader's session, group and descendants while the leader runs; once it has ended
        (its pid may be reused), only those of them that carry the attempt's marker."""
        members = table.members(leader)
        if any(p.pid == leader for p in members) and carries_marker(leader, self.attempt_dir):
            return [p.pid for p in members]
        return [p.pid for p in members if carries_marker(p.pid, self.attempt_dir)]
