"""The local backend: every attempt is a process tree on this host (optionally a container).

Life of an attempt
------------------
``start`` hands the spec to a small thread pool, which runs
``[taskset -c CPUS] /bin/sh wrapper.sh ATTEMPT_DIR ENV CMD...`` with :class:`subprocess.Popen` in
a new session (no ``preexec_fn``: it would force a slow fork in Python). The wrapper (see
``wrapper.sh``) starts the command with ``setsid`` in its own session and process group, writes
``wrapper.pid``, ``child.pid`` and ``output.log``, tells the server the command's pid over a pipe
and, once it has reaped the command, writes ``exit_status`` (valid once its last line ``end`` is
there). Because the wrapper is in its own session, a crash of the server leaves it running and
the status is recovered later by :meth:`LocalBackend.reconcile`.

Pid reuse: a wrapper found after a restart is adopted only if ``/proc/<pid>/cmdline`` names its
attempt directory (checked after ``pidfd_open``, so the pidfd is known to refer to it); leftovers
of a vanished wrapper are killed only if ``/proc/<pid>/environ`` carries the attempt's marker
variable; the command's process group id cannot be reused while the group has members.

Threads
-------
* spawn pool (``spawn_threads``): directories, ``attempt.json`` and ``Popen``; nothing more, so
  that spawning never waits for a wrapper.
* watcher: one :mod:`selectors` loop over the pipes on which wrappers report the command's pid
  (it emits ``AttemptStarted``) and over ``pidfd_open`` descriptors of the wrappers (it emits
  ``AttemptExited``; pidfds work for processes that are not our children, so adopted attempts
  take the same path; polling is the fallback), plus the heap of pending SIGKILL escalations.
  The watcher also reads the OOM eventfds of cgroup v1 attempts and kills such an attempt the
  moment it reaches its memory limit.
* monitor: every ``monitor_interval_s`` it reads each running attempt's cgroup (working set, OOM)
  or, for attempts without one, makes one pass over ``/proc`` (PSS per command tree, killing trees
  over their memory limit); it keeps usage peaks and caps each ``output.log`` (see ``cap_log``).

Containment and stops
---------------------
Each attempt's processes are held by a :class:`~genobatch.backends.containment.Containment`: its
own cgroup where the server can create one, else its session. When the wrapper ends, whatever the
attempt left running is killed. A stop is durable: the ``stop`` file (SIGKILL deadline, wall
clock) is written before SIGTERM is sent, so a restarted server resumes the escalation with the
grace that is left.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psutil

from genobatch.backends.base import (
    AttemptExited,
    AttemptSpec,
    AttemptStarted,
    Backend,
    BackendEvent,
    EventSink,
    Inventory,
)
from genobatch.backends.cgroup import CgroupRoot, attempt_cgroup_name, open_attempt_cgroup
from genobatch.backends.container import container_command, container_name
from genobatch.backends.containment import SAMPLED, Containment, EndOfAttempt, sweep_sessions
from genobatch.backends.host import (
    alive,
    cap_log,
    find_wrapper,
    is_wrapper_of,
    mtime_ms,
    parent_of,
    probe_default_signal_env,
    read_int,
    read_stop,
    write_stop,
)
from genobatch.backends.launch import (
    hand_over,
    inherited_environment,
    job_environment,
    read_attempt_file,
    resolve_job_user,
    write_attempt_file,
)
from genobatch.backends.nvml import discover_gpus
from genobatch.backends.usage import (
    ExitRecord,
    ProcessTable,
    UsageAccumulator,
    build_usage,
    read_exit_record,
    sample_members,
    sample_tree,
    scan_processes,
)

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrapper.sh")
WRAPPER_PID_FILE = "wrapper.pid"
CHILD_PID_FILE = "child.pid"
OOM_MARKER = "oom_killed"  # written before an OOM kill, so the reason survives a restart
DEFAULT_MAX_LOG_BYTES = 100 * 1024 * 1024

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
EXITED = "Essential container in task exited"
FAILED_TO_START = "Task failed to start"
STOPPED_BEFORE_START = "Task stopped before it started"
VANISHED = "Host process vanished: the attempt's wrapper ended without recording an exit status"
VANISHED_RESTART = "Host process vanished (server restarted and the attempt was not found)"

_MIB = 1024 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _add_kernel_peak(usage: dict, end: EndOfAttempt, oom: bool) -> None:
    """Add the cgroup's peak charge (page cache included) as ``peak_memory_charged``. For an
    attempt killed at its limit, that is also its ``peak_rss``: the samples of the working set
    (taken every monitor interval) would miss the final climb."""
    if end.peak_bytes:
        usage["peak_memory_charged"] = end.peak_bytes
        if oom:
            usage["peak_rss"] = max(usage.get("peak_rss", 0), end.peak_bytes)


@dataclass(eq=False)
class _Attempt:
    """The backend's state for one attempt (guarded by ``LocalBackend._lock``)."""

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

    @property
    def key(self) -> tuple[str, int]:
        return (self.job_id, self.attempt)

    def leader(self) -> int | None:
        """The command's pid (= its process group and session), read lazily for adopted ones."""
        if self.child_pid is None:
            self.child_pid = read_int(os.path.join(self.attempt_dir, CHILD_PID_FILE))
        return self.child_pid


class LocalBackend(Backend):
    """Runs attempts as host processes pinned to their CPUs, with memory limits and usage."""

    def __init__(
        self,
        *,
        cpus: int | None = None,
        memory_mib: int | None = None,
        gpus: int | None = None,
        container_runtime: str | None = None,
        spawn_threads: int = 2,
        monitor_interval_s: float = 0.25,
        cgroups: bool = True,
        cgroup_group: str = "local",
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        job_user: str | None = None,
    ) -> None:
        """Configure the capacity (None: discover it) and start the watcher and monitor threads.

        ``container_runtime`` (e.g. ``"docker"``) is used for attempts with an image when it is
        found on PATH; otherwise every attempt runs on the host. ``cgroups``: put each attempt in
        its own cgroup where the server can create one (under ``genobatch/<cgroup_group>`` in its
        own cgroup); False always uses session containment and sampled memory.
        ``max_log_bytes`` caps each ``output.log`` (0: unlimited). ``job_user`` runs the commands
        as that user (the server must run as root).
        """
        if spawn_threads < 1:
            raise ValueError("spawn_threads must be at least 1")
        if monitor_interval_s <= 0:
            raise ValueError("monitor_interval_s must be positive")
        if max_log_bytes < 0:
            raise ValueError("max_log_bytes must not be negative")
        self._job_user = resolve_job_user(job_user) if job_user else None
        self._cgroups = CgroupRoot.detect(cgroup_group) if cgroups else None
        self._max_log_bytes = max_log_bytes
        self._log_lock = threading.Lock()
        self._cfg_cpus, self._cfg_memory, self._cfg_gpus = cpus, memory_mib, gpus
        self._inventory: Inventory | None = None
        self._host_cpus = tuple(sorted(os.sched_getaffinity(0)))
        self._hostname = socket.gethostname()
        self._taskset = shutil.which("taskset")
        self._resetenv = probe_default_signal_env()
        self._runtime = shutil.which(container_runtime) if container_runtime else None
        if container_runtime and self._runtime is None:
            log.warning("container runtime %r not found on PATH; images run on the host", container_runtime)
        self._base_env = inherited_environment()
        self._interval = monitor_interval_s
        self._sink: EventSink | None = None
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        self._closing = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=spawn_threads, thread_name_prefix="genobatch-spawn")
        # Watcher state: only the watcher thread touches the selector; others queue and wake it.
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._to_watch: deque[tuple[_Attempt, int | None, int | None]] = deque()
        self._polled: list[_Attempt] = []
        self._kills: list[tuple[float, int, _Attempt]] = []  # heap, guarded by _lock
        # Ended attempts under session containment whose leftovers the monitor is to kill.
        self._sweeps: list[tuple[str, int | None, int | None]] = []  # guarded by _lock
        self._seq = itertools.count()
        self._watcher = threading.Thread(target=self._watch_loop, name="genobatch-watch", daemon=True)
        self._monitor = threading.Thread(target=self._monitor_loop, name="genobatch-monitor", daemon=True)
        self._watcher.start()
        self._monitor.start()

    @property
    def memory_enforcement(self) -> str:
        """How new attempts' memory limits are enforced: ``cgroup v1``, ``cgroup v2`` or ``sampled PSS``."""
        return self._cgroups.enforcement if self._cgroups is not None else SAMPLED

    # -- Backend API -------------------------------------------------------------------------

    def bind(self, sink: EventSink) -> None:
        """Set the callable that receives AttemptStarted/AttemptExited (from any thread)."""
        self._sink = sink

    def inventory(self) -> Inventory:
        """Host CPU indices (first ``cpus`` if configured), memory in MiB and GPU indices."""
        if self._inventory is None:
            cpus = self._host_cpus if self._cfg_cpus is None else self._host_cpus[: self._cfg_cpus]
            memory = self._cfg_memory or psutil.virtual_memory().total // _MIB
            gpus = tuple(range(self._cfg_gpus)) if self._cfg_gpus is not None else discover_gpus()
            self._inventory = Inventory(cpus=cpus, memory_mib=int(memory), gpus=gpus)
        return self._inventory

    def start(self, spec: AttemptSpec) -> None:
        """Queue the attempt for spawning; events follow through the sink."""
        if self._closing.is_set():
            raise RuntimeError("backend is closed")
        attempt_dir = os.path.abspath(spec.attempt_dir)
        use_container = bool(self._runtime and spec.image)
        att = _Attempt(
            job_id=spec.job_id,
            attempt=spec.attempt,
            attempt_dir=attempt_dir,
            memory_mib=spec.memory_mib,
            runtime=os.path.basename(self._runtime) if use_container and self._runtime else "host",
            container=container_name(spec.job_id, spec.attempt) if use_container else None,
            image=spec.image,
        )
        with self._lock:
            if att.key in self._attempts:
                raise ValueError(f"attempt {att.key} is already known to this backend")
            self._attempts[att.key] = att
        self._pool.submit(self._spawn, spec, att)

    def stop(self, job_id: str, attempt: int, grace_s: float = 30.0) -> None:
        """SIGTERM the command's process group now and SIGKILL its whole tree after ``grace_s``.

        A stop that arrives before the wrapper was spawned cancels the spawn (the attempt ends
        with ``exit_code=None``); one that arrives while the wrapper starts the command is applied
        as soon as the command exists. Repeated calls do not repeat SIGTERM but may bring the
        SIGKILL forward.
        """
        with self._lock:
            att = self._attempts.get((job_id, attempt))
            if att is None or att.state == "done":
                return
            if att.state in ("pending", "starting"):
                # Acted on before Popen (no spawn at all) or once the command has started.
                att.stop_grace = grace_s if att.stop_grace is None else min(att.stop_grace, grace_s)
                return
            self._begin_stop(att, grace_s)

    def reconcile(self, job_id: str, attempt: int, attempt_dir: str, info: dict) -> AttemptExited | None:
        """Settle or adopt an attempt found after a restart; never starts anything.

        The adopted attempt's AttemptExited comes from the watcher thread and may be delivered
        before this call returns.
        """
        attempt_dir = os.path.abspath(attempt_dir)
        with self._lock:
            known = self._attempts.get((job_id, attempt))
            if known is not None and known.state != "done":
                return None
        record = read_exit_record(attempt_dir)
        if record is not None:
            return self._recovered(job_id, attempt, attempt_dir, record, info)
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
            meta = read_attempt_file(attempt_dir)
            att = _Attempt(
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
                containment=self._containment_of(attempt_dir, meta, info),
            )
            att.leader()
            stop = read_stop(attempt_dir)
            with self._lock:
                self._attempts[att.key] = att
                if stop is not None:
                    # The previous server sent SIGTERM: resume its escalation with the grace left
                    # (SIGKILL at once if that is past), never granting a fresh grace period.
                    att.term_sent = True
                    self._schedule_kill(att, max(0, stop - _now_ms()) / 1000)
            self._watch(att, pidfd, None)
            return None
        # The wrapper may have finished between the first look and the liveness check.
        record = read_exit_record(attempt_dir)
        if record is not None:
            return self._recovered(job_id, attempt, attempt_dir, record, info)
        meta = read_attempt_file(attempt_dir)
        self._containment_of(attempt_dir, meta, info).end(
            read_int(os.path.join(attempt_dir, CHILD_PID_FILE)), meta.get("created_ms")
        )
        return AttemptExited(
            job_id=job_id,
            attempt=attempt,
            at_ms=_now_ms(),
            exit_code=None,
            status_reason=VANISHED_RESTART,
            usage={"hostname": self._hostname, "samples": 0},
        )

    def close(self) -> None:
        """Stop the threads; attempts keep running and are adopted by the next ``reconcile``.

        Attempts queued but not yet spawned are dropped (reconcile reports them vanished).
        """
        if self._closing.is_set():
            return
        self._closing.set()
        self._wake()
        self._watcher.join()
        self._monitor.join()
        sweep_sessions(self._sweeps)  # leftovers of attempts that ended since the last tick
        self._sweeps = []
        if self._cgroups is not None:
            self._cgroups.release()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- spawning ----------------------------------------------------------------------------

    def _spawn(self, spec: AttemptSpec, att: _Attempt) -> None:
        try:
            self._spawn_attempt(spec, att)
        except Exception as exc:  # an unexpected error must still end the attempt exactly once
            log.exception("spawning %s failed", att.key)
            self._finish(att, None, reason=f"CannotStartContainerError: {exc}", status=FAILED_TO_START)

    def _spawn_attempt(self, spec: AttemptSpec, att: _Attempt) -> None:
        with self._lock:
            cancelled = att.stop_grace is not None
        if cancelled:
            self._finish(att, None, status=STOPPED_BEFORE_START)
            return
        if not spec.command:
            self._finish(att, None, reason="CannotStartContainerError: empty command", status=FAILED_TO_START)
            return
        work = os.path.join(att.attempt_dir, "work")
        os.makedirs(work, exist_ok=True)
        env, container_keys = job_environment(spec, att.attempt_dir, self._base_env, self._job_user)
        if att.container and self._runtime:
            command = container_command(self._runtime, spec, name=att.container, workdir=work, env_keys=container_keys)
        else:
            command = list(spec.command)
        att.created_ms = _now_ms()
        att.containment = Containment(att.attempt_dir, None if att.container else self._new_cgroup(spec, att))
        cgroup = att.containment.cgroup
        runas = ""
        if self._job_user is not None:
            hand_over(att.attempt_dir, work, self._job_user)
            runas = self._job_user.runas
        argv = [SHELL, WRAPPER, att.attempt_dir, self._resetenv, cgroup.procs_file if cgroup else "", runas, *command]
        # Pinning costs an extra exec, so it is skipped when the job may use every host CPU anyway.
        if spec.cpus and self._taskset and set(spec.cpus) != set(self._host_cpus):
            argv = [self._taskset, "-c", ",".join(map(str, spec.cpus)), *argv]
        att.executable = command[0]
        self._write_spec_file(spec, att, command)
        # The wrapper reports the command's pid on this pipe. The watcher reads it, so this thread
        # can go on spawning instead of waiting for the wrapper to get that far.
        pipe_r, pipe_w = os.pipe2(os.O_CLOEXEC)
        try:
            popen = subprocess.Popen(
                argv,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=pipe_w,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(pipe_r)
            self._finish(att, None, reason=f"CannotStartContainerError: {exc}", status=FAILED_TO_START)
            return
        finally:
            os.close(pipe_w)
        os.set_blocking(pipe_r, False)
        with self._lock:
            att.popen, att.wrapper_pid, att.state = popen, popen.pid, "starting"
        self._watch(att, None, pipe_r)

    def _new_cgroup(self, spec: AttemptSpec, att: _Attempt):
        """The attempt's cgroup with its memory limit, or None (no cgroups here, or creating one
        failed: then this attempt is contained by its session and its memory sampled)."""
        if self._cgroups is None:
            return None
        name = attempt_cgroup_name(spec.job_id, spec.attempt, att.attempt_dir)
        try:
            return self._cgroups.create(name, max(0, spec.memory_mib) * _MIB)
        except OSError as exc:
            log.warning("no cgroup for %s (%s): its memory is sampled instead", att.key, exc)
            return None

    def _started(self, att: _Attempt, child_pid: int) -> None:
        """The wrapper reported the command's pid: the attempt runs (watcher thread)."""
        with self._lock:
            if att.state != "starting":
                return
            # The wrapper writes child.pid as the command starts, before reporting the pid: its mtime
            # is the start, whereas this thread may read the pipe late on a busy host. The same
            # timestamp is what reconcile and the usage record use.
            started = mtime_ms(os.path.join(att.attempt_dir, CHILD_PID_FILE)) or _now_ms()
            att.child_pid, att.started_ms, att.state = child_pid, started, "running"
        info = {
            "pid": att.wrapper_pid,
            "child_pid": child_pid,
            "runtime": att.runtime,
            "image": att.image,
            "hostname": self._hostname,
            "attempt_dir": att.attempt_dir,
        }
        info.update(self._containment_fields(att))
        if self._job_user is not None:
            info["user"] = self._job_user.name
        if att.container:
            info["container_name"] = att.container
        self._emit(AttemptStarted(att.job_id, att.attempt, att.started_ms, info))
        with self._lock:
            if att.stop_grace is not None and att.state == "running":
                self._begin_stop(att, att.stop_grace)

    def _write_spec_file(self, spec: AttemptSpec, att: _Attempt, command: list[str]) -> None:
        """Write ``attempt.json`` (see :func:`~genobatch.backends.launch.write_attempt_file`)."""
        meta = {
            "job_id": spec.job_id,
            "attempt": spec.attempt,
            "command": list(spec.command),
            "argv": command,
            "environment_keys": sorted(spec.environment),
            "attempt_dir": att.attempt_dir,
            "vcpus": spec.vcpus,
            "memory_mib": spec.memory_mib,
            "cpus": list(spec.cpus),
            "gpus": list(spec.gpus),
            "image": spec.image,
            "compute_environment": spec.compute_environment,
            "runtime": att.runtime,
            "container_name": att.container,
            "hostname": self._hostname,
            "created_ms": att.created_ms,
            **self._containment_fields(att),
        }
        write_attempt_file(att.attempt_dir, meta)

    @staticmethod
    def _containment_fields(att: _Attempt) -> dict:
        """``containment`` and ``memory_enforcement`` (and the cgroup) as recorded and shown."""
        if att.container:
            return {"containment": "container runtime", "memory_enforcement": "container runtime"}
        return att.containment.describe() if att.containment is not None else {}

    # -- events ------------------------------------------------------------------------------

    def _emit(self, event: BackendEvent) -> None:
        sink = self._sink
        if sink is None:
            log.warning("no sink bound; dropped %r", event)
            return
        try:
            sink(event)
        except Exception:  # the sink's bug must not kill a backend thread
            log.exception("event sink failed on %r", event)

    def _finish(
        self,
        att: _Attempt,
        exit_code: int | None,
        *,
        reason: str | None = None,
        status: str = EXITED,
        usage: dict | None = None,
        at_ms: int | None = None,
    ) -> None:
        """Mark the attempt done and emit its AttemptExited, exactly once."""
        with self._lock:
            if att.state == "done":
                return
            att.state = "done"
            if self._attempts.get(att.key) is att:
                del self._attempts[att.key]
        cgroup = att.containment.cgroup if att.containment else None
        if cgroup is not None and cgroup.exists():  # one that never ran anything (failed start)
            cgroup.kill()
            cgroup.remove()
        if usage is None:
            usage = {"hostname": self._hostname, "samples": att.usage.samples}
        self._emit(
            AttemptExited(
                job_id=att.job_id,
                attempt=att.attempt,
                at_ms=at_ms if at_ms is not None else _now_ms(),
                exit_code=exit_code,
                reason=reason,
                status_reason=status,
                usage=usage,
            )
        )

    @staticmethod
    def _exit_fields(record: ExitRecord | None, oom: bool) -> tuple[int | None, str | None, str]:
        """(exit code, reason, status reason) for an attempt whose wrapper has ended."""
        if record is None:
            return (137, OOM_REASON, EXITED) if oom else (None, None, VANISHED)
        if record.status == "notfound":
            return None, "CannotStartContainerError: executable file not found in $PATH", FAILED_TO_START
        if record.status == "nocgroup":
            return None, "CannotStartContainerError: the command could not join its cgroup", FAILED_TO_START
        return record.exit_code, OOM_REASON if oom else None, EXITED

    def _recovered(
        self, job_id: str, attempt: int, attempt_dir: str, record: ExitRecord, info: dict | None
    ) -> AttemptExited:
        """The AttemptExited of an attempt that ended while the server was down; whatever it left
        running is killed now."""
        meta = read_attempt_file(attempt_dir)
        end = self._containment_of(attempt_dir, meta, info).end(
            read_int(os.path.join(attempt_dir, CHILD_PID_FILE)), meta.get("created_ms")
        )
        oom = end.out_of_memory or os.path.exists(os.path.join(attempt_dir, OOM_MARKER))
        exit_code, reason, status = self._exit_fields(record, oom)
        usage = build_usage(
            UsageAccumulator(),
            record,
            start_ms=mtime_ms(os.path.join(attempt_dir, CHILD_PID_FILE)),
            end_ms=record.mtime_ms,
            hostname=self._hostname,
        )
        _add_kernel_peak(usage, end, oom)
        return AttemptExited(job_id, attempt, record.mtime_ms, exit_code, reason, status, usage)

    @staticmethod
    def _containment_of(attempt_dir: str, meta: dict, info: dict | None) -> Containment:
        """The containment an attempt was started with, from attempt.json (or its start info)."""
        cgroup = open_attempt_cgroup(meta) or open_attempt_cgroup(info or {})
        return Containment(attempt_dir, cgroup)

    def _on_exit(self, att: _Attempt) -> None:
        """The wrapper has ended: reap it, read its exit record and report (watcher thread)."""
        # Whatever the wrapper wrote on the pipe is there now: AttemptStarted goes out first.
        while att.pipe_fd is not None:
            self._read_pipe(att)
        self._reap(att)
        self._close_oom_fd(att)
        record = read_exit_record(att.attempt_dir)
        if att.state == "starting":  # the command never started
            if record is not None and record.status == "notfound":
                reason = f"CannotStartContainerError: executable file not found in $PATH: {att.executable}"
            else:
                reason = "CannotStartContainerError: the wrapper ended before starting the command"
            self._finish(att, None, reason=reason, status=FAILED_TO_START)
            return
        # The attempt is over: nothing it started may keep running (AWS Batch stops the whole
        # container), whether it ended by itself, was stopped, or its wrapper vanished.
        containment = att.containment or Containment(att.attempt_dir)
        if containment.cgroup is not None:
            end = containment.end(att.leader(), att.created_ms)
        else:
            # Finding a session's leftovers takes a look at every process on the host: the
            # monitor does it once per interval for all attempts that ended meanwhile.
            end = EndOfAttempt()
            with self._lock:
                self._sweeps.append((att.attempt_dir, att.leader(), att.created_ms))
        self._cap_log(att)  # what was written since the monitor's last look
        exit_code, reason, status = self._exit_fields(record, att.oom or end.out_of_memory)
        end_ms = record.mtime_ms if record is not None else _now_ms()
        # Both ends from file times when possible: the same (coarse) clock, also after adoption.
        start_ms = mtime_ms(os.path.join(att.attempt_dir, CHILD_PID_FILE)) or att.started_ms
        usage = build_usage(
            att.usage,
            record,
            start_ms=start_ms,
            end_ms=end_ms,
            hostname=self._hostname,
        )
        _add_kernel_peak(usage, end, att.oom or end.out_of_memory)
        self._finish(att, exit_code, reason=reason, status=status, usage=usage, at_ms=end_ms)

    @staticmethod
    def _reap(att: _Attempt) -> None:
        """Reap our own wrapper (adopted ones belong to init), so no zombie is left behind."""
        popen = att.popen
        if popen is None or popen.returncode is not None:
            return
        try:
            _, status = os.waitpid(popen.pid, 0)
        except ChildProcessError:
            return
        popen.returncode = os.waitstatus_to_exitcode(status)

    # -- signals -----------------------------------------------------------------------------

    def _begin_stop(self, att: _Attempt, grace_s: float) -> None:
        """SIGTERM now (once) and schedule SIGKILL; called with the lock held.

        The SIGKILL deadline is written to the attempt's ``stop`` file *before* SIGTERM is sent
        (and again whenever it is brought forward), so a server killed during the grace period
        finds it on restart and resumes the escalation (see :meth:`reconcile`).
        """
        grace_s = max(0.0, grace_s)
        if att.kill_at is None or time.monotonic() + grace_s < att.kill_at:
            try:
                write_stop(att.attempt_dir, _now_ms() + round(grace_s * 1000))
            except OSError as exc:  # the stop itself must still happen
                log.warning("cannot record the stop of %s (%s): not resumed after a restart", att.key, exc)
        if not att.term_sent:
            att.term_sent = True
            self._signal(att, signal.SIGTERM)
        self._schedule_kill(att, grace_s)

    def _schedule_kill(self, att: _Attempt, delay_s: float) -> None:
        """SIGKILL the attempt in ``delay_s`` seconds unless it is due sooner; lock held."""
        deadline = time.monotonic() + delay_s
        if att.kill_at is None or deadline < att.kill_at:
            att.kill_at = deadline
            heapq.heappush(self._kills, (deadline, next(self._seq), att))
            self._wake()

    @staticmethod
    def _signal(att: _Attempt, sig: signal.Signals) -> None:
        """Signal the command's process group; the wrapper if the command is not known yet.

        The group id is the command's pid, which the kernel does not hand out again while the
        group has members, so signalling a running attempt's group cannot hit a stranger.
        """
        leader = att.leader()
        try:
            if leader is None:
                if att.wrapper_pid is not None:
                    os.kill(att.wrapper_pid, sig)  # its trap forwards once the command exists
                return
            try:
                os.killpg(leader, sig)
            except ProcessLookupError:
                # Right after the fork the command has not called setsid yet: signal it alone,
                # if it still is the wrapper's child (and so not a reused pid).
                if att.wrapper_pid is not None and parent_of(leader) == att.wrapper_pid:
                    os.kill(leader, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            log.warning("cannot signal %s: %s", att.key, exc)

    def _kill_tree(self, att: _Attempt, table: ProcessTable | None = None) -> None:
        """SIGKILL the command's group and every other process of the attempt (its cgroup, or
        its session and descendants)."""
        self._signal(att, signal.SIGKILL)
        (att.containment or Containment(att.attempt_dir)).kill_all(att.leader(), table)
        if att.container and self._runtime and not self._closing.is_set():
            # SIGKILL cannot be proxied by the runtime's client: remove the container itself.
            runtime, name = self._runtime, att.container
            with contextlib.suppress(RuntimeError):
                self._pool.submit(
                    subprocess.run,
                    [runtime, "kill", name],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                    check=False,
                )

    # -- watcher thread ----------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def _watch(self, att: _Attempt, pidfd: int | None, pipe_fd: int | None) -> None:
        """Hand an attempt's wrapper (its pidfd if already open, its pid pipe) to the watcher."""
        self._to_watch.append((att, pidfd, pipe_fd))
        self._wake()

    def _watch_loop(self) -> None:
        while not self._closing.is_set():
            try:
                self._watch_once()
            except Exception:  # keep watching whatever happened to one attempt
                log.exception("watcher iteration failed")
                time.sleep(0.05)

    def _watch_once(self) -> None:
        with self._lock:
            timeout = max(0.0, self._kills[0][0] - time.monotonic()) if self._kills else None
        if self._polled:
            timeout = 0.1 if timeout is None else min(timeout, 0.1)
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
                continue
            kind, att = key.data
            # An earlier event of this batch may have closed this descriptor already.
            if kind == "pipe" and att.pipe_fd == key.fd:
                self._read_pipe(att)
            elif kind == "exit" and att.pidfd == key.fd:
                self._selector.unregister(key.fd)
                os.close(key.fd)
                att.pidfd = None
                self._on_exit(att)
            elif kind == "oom" and att.oom_fd == key.fd:
                with contextlib.suppress(OSError):
                    os.eventfd_read(key.fd)
                cgroup = att.containment.cgroup if att.containment else None
                if cgroup is not None and cgroup.out_of_memory():
                    self._oom_kill(att, "reached its memory limit")
        while self._to_watch:
            att, pidfd, pipe_fd = self._to_watch.popleft()
            if pipe_fd is not None:
                att.pipe_fd = pipe_fd
                self._selector.register(pipe_fd, selectors.EVENT_READ, ("pipe", att))
            cgroup = att.containment.cgroup if att.containment else None
            if cgroup is not None and att.oom_fd is None and att.state != "done":
                att.oom_fd = cgroup.oom_eventfd()
                if att.oom_fd is not None:
                    self._selector.register(att.oom_fd, selectors.EVENT_READ, ("oom", att))
            if pidfd is None and att.wrapper_pid is not None:
                try:
                    pidfd = os.pidfd_open(att.wrapper_pid)
                except ProcessLookupError:  # a non-child that is already gone
                    self._on_exit(att)
                    continue
                except OSError:
                    self._polled.append(att)
                    continue
            if pidfd is None:
                self._polled.append(att)
            else:
                att.pidfd = pidfd
                self._selector.register(pidfd, selectors.EVENT_READ, ("exit", att))
        if self._polled:
            self._poll_fallback()
        self._fire_kills()

    def _close_oom_fd(self, att: _Attempt) -> None:
        """Stop watching the attempt's OOM eventfd (watcher thread)."""
        if att.oom_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(att.oom_fd)
            os.close(att.oom_fd)
            att.oom_fd = None

    def _read_pipe(self, att: _Attempt) -> None:
        """Read the wrapper's report of the command's pid; on a full line or EOF, act on it."""
        fd = att.pipe_fd
        assert fd is not None
        try:
            chunk = os.read(fd, 64)
        except BlockingIOError:  # nothing more, yet the write end is open: treat as the end
            chunk = b""
        att.pipe_buf += chunk
        if chunk and b"\n" not in att.pipe_buf:
            return
        self._selector.unregister(fd)
        os.close(fd)
        att.pipe_fd = None
        try:
            child_pid = int(att.pipe_buf)
        except ValueError:
            return  # no pid: the wrapper ended first; _on_exit reports the failed start
        self._started(att, child_pid)

    def _poll_fallback(self) -> None:
        """Exit detection without pidfds: waitpid for our children, /proc for adopted ones."""
        still = []
        for att in self._polled:
            if att.popen is not None and att.popen.returncode is None:
                try:
                    pid, status = os.waitpid(att.popen.pid, os.WNOHANG)
                except ChildProcessError:  # reaped elsewhere: it has ended all the same
                    pid, status = att.popen.pid, 0
                ended = pid != 0
                if ended:
                    att.popen.returncode = os.waitstatus_to_exitcode(status)
            else:
                ended = att.wrapper_pid is None or not alive(att.wrapper_pid)
            if ended:
                self._on_exit(att)
            else:
                still.append(att)
        self._polled = still

    def _fire_kills(self) -> None:
        now = time.monotonic()
        due = []
        with self._lock:
            while self._kills and self._kills[0][0] <= now:
                _, _, att = heapq.heappop(self._kills)
                if att.state == "running" and att.kill_at is not None and att.kill_at <= now:
                    att.kill_at = None
                    due.append(att)
        for att in due:
            log.info("attempt %s did not end within its grace period: SIGKILL", att.key)
            self._kill_tree(att)

    # -- monitor thread ----------------------------------------------------------------------

    def _monitor_loop(self) -> None:
        while not self._closing.wait(self._interval):
            try:
                self._monitor_once()
            except Exception:
                log.exception("monitor iteration failed")

    def _monitor_once(self) -> None:
        with self._lock:
            running = [a for a in self._attempts.values() if a.state == "running"]
            sweeps, self._sweeps = self._sweeps, []
        sweep_sessions(sweeps)
        if not running:
            return  # no /proc scan at all while nothing runs
        sampled = []
        for att in running:
            self._cap_log(att)
            cgroup = att.containment.cgroup if att.containment else None
            if cgroup is not None:
                self._sample_cgroup(att, cgroup)
            elif att.container is None:  # a container's memory is the runtime's to enforce
                sampled.append(att)
        if not sampled:
            return
        table = scan_processes()
        for att in sampled:
            leader = att.leader()
            if leader is None:
                continue
            sample = sample_tree(table, leader)
            att.usage.add(sample)
            if att.memory_mib > 0 and sample.rss > att.memory_mib * _MIB:
                self._oom_kill(att, f"uses {sample.rss // _MIB} MiB (PSS) > {att.memory_mib} MiB", table)

    def _cap_log(self, att: _Attempt) -> None:
        """Keep the attempt's log under the cap; the monitor and the watcher (at the attempt's
        end) both do, one at a time, or two cuts could interleave."""
        if self._max_log_bytes:
            with self._log_lock:
                att.log_dropped = cap_log(att.attempt_dir, self._max_log_bytes, att.log_dropped)

    def _sample_cgroup(self, att: _Attempt, cgroup) -> None:
        """The kernel's figures: the working set for the usage peak; an OOM the eventfd missed
        (cgroup v2, an adopted attempt, or one that hit its limit before the fd was registered)."""
        working_set = cgroup.working_set_bytes()
        if working_set is not None:
            att.usage.add(sample_members(cgroup.pids(), working_set))
        if cgroup.out_of_memory():
            self._oom_kill(att, "reached its memory limit (cgroup)")

    def _oom_kill(self, att: _Attempt, why: str, table: ProcessTable | None = None) -> None:
        """End an attempt over its memory limit: the marker first (the reason survives a
        restart), then SIGKILL to every process of it."""
        with self._lock:
            if att.state != "running" or att.oom:
                return
            att.oom = True
        log.info("attempt %s %s: killed", att.key, why)
        with contextlib.suppress(OSError), open(os.path.join(att.attempt_dir, OOM_MARKER), "w") as fh:
            fh.write(f"{why}\n")
        self._kill_tree(att, table)
