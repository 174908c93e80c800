"""The local backend's state for one attempt, shared by its spawn pool, watcher and monitor.

Every field is guarded by ``LocalBackend._lock`` except those the comments give to one thread
(the watcher's descriptors, the monitor's log count), which only that thread touches.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field

from genobatch.backends.containment import Containment
from genobatch.backends.host import parent_of, read_int
from genobatch.backends.usage import UsageAccumulator

log = logging.getLogger(__name__)

WRAPPER_PID_FILE = "wrapper.pid"
CHILD_PID_FILE = "child.pid"
OOM_MARKER = "oom_killed"  # written before an OOM kill, so the reason survives a restart


@dataclass(eq=False)
class LocalAttempt:
    """One attempt of the local backend, from the moment it is queued until its end is reported."""

    job_id: str
    attempt: int
    attempt_dir: str
    memory_mib: int
    runtime: str = "host"
    container: str | None = None  # container name when run by a container runtime
    image: str | None = None
    executable: str = ""
    # pending (queued) -> starting (wrapper spawned) -> running (command started) -> done
    state: str = "pending"
    popen: subprocess.Popen | None = None  # None for adopted attempts
    wrapper_pid: int | None = None
    child_pid: int | None = None
    started_ms: int | None = None
    pidfd: int | None = None  # watched by the watcher thread only
    pipe_fd: int | None = None  # the wrapper reports the command's pid on it
    pipe_buf: bytes = b""
    stop_grace: float | None = None  # a stop that arrived before the command started
    term_sent: bool = False
    kill_at: float | None = None  # monotonic deadline of the SIGKILL escalation
    oom: bool = False
    usage: UsageAccumulator = field(default_factory=UsageAccumulator)
    containment: Containment | None = None  # None until spawned (and for container attempts)
    created_ms: int | None = None  # wall clock before the wrapper was spawned
    oom_fd: int | None = None  # cgroup v1 OOM eventfd, watched by the watcher thread only
    log_dropped: int = 0  # bytes cut out of output.log so far (monitor thread)
    launched: bool = False  # started by the persistent launcher (no wrapper; it reports the end)
    # A successor placed ahead (issue 9): the predecessor's directory the launcher waits on, or
    # the predecessor's key while this backend holds it back itself (a wrapper-run predecessor).
    after_dir: str | None = None
    held_behind: tuple[str, int] | None = None
    after_key: tuple[str, int] | None = None  # the predecessor it was placed behind

    @property
    def key(self) -> tuple[str, int]:
        """(job id, attempt number): the attempt's identity in the backend's table."""
        return (self.job_id, self.attempt)

    def leader(self) -> int | None:
        """The command's pid (= its process group and session), read lazily for adopted ones."""
        if self.child_pid is None:
            self.child_pid = read_int(os.path.join(self.attempt_dir, CHILD_PID_FILE))
        return self.child_pid

    def containment_fields(self) -> dict:
        """``containment`` and ``memory_enforcement`` (and the cgroup) as recorded and shown."""
        if self.container:
            return {"containment": "container runtime", "memory_enforcement": "container runtime"}
        return self.containment.describe() if self.containment is not None else {}

    def reap(self) -> None:
        """Reap our own wrapper (adopted ones belong to init), so no zombie is left behind."""
        popen = self.popen
        if popen is None or popen.returncode is not None:
            return
        try:
            _, status = os.waitpid(popen.pid, 0)
        except ChildProcessError:
            return
        popen.returncode = os.waitstatus_to_exitcode(status)

    def signal(self, sig: signal.Signals) -> None:
        """Signal the command's process group; the wrapper if the command is not known yet.

        The group id is the command's pid, which the kernel does not hand out again while the
        group has members, so signalling a running attempt's group cannot hit a stranger.
        """
        leader = self.leader()
        try:
            if leader is None:
                if self.wrapper_pid is not None:
                    os.kill(self.wrapper_pid, sig)  # its trap forwards once the command exists
                return
            try:
                os.killpg(leader, sig)
            except ProcessLookupError:
                # Right after the fork the command has not called setsid yet: signal it alone,
                # if it still is the wrapper's child (and so not a reused pid).
                if self.wrapper_pid is not None and parent_of(leader) == self.wrapper_pid:
                    os.kill(leader, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            log.warning("cannot signal %s: %s", self.key, exc)
