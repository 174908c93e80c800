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
* watcher (:mod:`~genobatch.backends.watcher`): notices that a wrapper reported the command's
  pid (``AttemptStarted``) or ended (``AttemptExited``), kills a cgroup v1 attempt at its memory
  limit, and fires the SIGKILL escalations of stops.
* monitor (:mod:`~genobatch.backends.monitor`): samples running attempts' usage, kills those over
  a sampled memory limit, caps each ``output.log`` and kills what ended attempts left running.

The backend owns the table of attempts and its lock; the threads act on it through callbacks
(:meth:`LocalBackend._started`, :meth:`LocalBackend._on_exit`, :meth:`LocalBackend._oom_kill`,
:meth:`LocalBackend._kill_tree`). The attempt's state is :class:`~genobatch.backends.attempt.LocalAttempt`;
what its end is reported as is :mod:`~genobatch.backends.outcome`.

Persistent launcher
-------------------
With ``launcher="persistent"`` (``genobatch server --launcher persistent``), host attempts are
started by one long-lived process per data directory instead (:mod:`~genobatch.backends.launcher`:
one ``posix_spawn`` per attempt, its exit status and ``wait4`` usage written to the same
``exit_status`` file, starts and ends reported over a Unix socket that the watcher reads, see
:mod:`~genobatch.backends.launcher_client`). It outlives the server like the wrappers do; a
restarted server connects to it and adopts what it still runs. Attempts of a ``job_user`` or in a
container keep the wrapper, which can change user and proxy the runtime.

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
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from genobatch.backends.adoption import Adoption
from genobatch.backends.attempt import CHILD_PID_FILE, OOM_MARKER, LocalAttempt
from genobatch.backends.base import (
    AttemptExited,
    AttemptSpec,
    AttemptStarted,
    Backend,
    BackendEvent,
    EventSink,
    Inventory,
)
from genobatch.backends.cgroup import AttemptCgroup, CgroupRoot, attempt_cgroup_name
from genobatch.backends.container import container_command, container_name
from genobatch.backends.containment import SAMPLED, Containment, EndOfAttempt
from genobatch.backends.host import (
    mtime_ms,
    probe_default_signal_env,
    write_stop,
)
from genobatch.backends.launch import (
    attempt_meta,
    default_launcher_dir,
    hand_over,
    inherited_environment,
    job_environment,
    launcher_setting,
    resolve_job_user,
    write_attempt_file,
)
from genobatch.backends.launched import LaunchedAttempts
from genobatch.backends.launcher_client import LauncherClient
from genobatch.backends.monitor import Monitor
from genobatch.backends.nvml import discover_gpus
from genobatch.backends.outcome import (
    EXITED,
    FAILED_TO_START,
    OOM_REASON,
    STOPPED_BEFORE_START,
    VANISHED_RESTART,
    add_kernel_peak,
    exit_fields,
)
from genobatch.backends.successors import Successors
from genobatch.backends.usage import (
    ProcessTable,
    build_usage,
    read_exit_record,
)
from genobatch.backends.watcher import Watcher

# The reasons are imported from here by callers that know the backend, not its modules.
__all__ = ["FAILED_TO_START", "OOM_REASON", "VANISHED_RESTART", "WRAPPER", "LocalBackend"]

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrapper.sh")
DEFAULT_MAX_LOG_BYTES = 100 * 1024 * 1024

_MIB = 1024 * 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalBackend(Adoption, LaunchedAttempts, Successors, Backend):
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
        launcher: str | None = None,
        launcher_dir: str | None = None,
    ) -> None:
        """Configure the capacity (None: discover it) and start the watcher and monitor threads.

        ``container_runtime`` (e.g. ``"docker"``) is used for attempts with an image when it is
        found on PATH; otherwise every attempt runs on the host. ``cgroups``: put each attempt in
        its own cgroup where the server can create one (under ``genobatch/<cgroup_group>`` in its
        own cgroup); False always uses session containment and sampled memory.
        ``max_log_bytes`` caps each ``output.log`` (0: unlimited). ``job_user`` runs the commands
        as that user (the server must run as root). ``launcher``: ``wrapper`` (a shell wrapper per
        attempt) or ``persistent`` (the persistent launcher serving ``launcher_dir``); None takes
        ``$GENOBATCH_LAUNCHER``, else ``wrapper``. ``launcher_dir`` defaults to one per user and
        ``cgroup_group`` in the temporary directory.
        """
        if spawn_threads < 1:
            raise ValueError("spawn_threads must be at least 1")
        if monitor_interval_s <= 0:
            raise ValueError("monitor_interval_s must be positive")
        if max_log_bytes < 0:
            raise ValueError("max_log_bytes must not be negative")
        self._launcher_mode = launcher_setting(launcher)
        self._job_user = resolve_job_user(job_user) if job_user else None
        self._cgroups = CgroupRoot.detect(cgroup_group) if cgroups else None
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
        self._sink: EventSink | None = None
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, int], LocalAttempt] = {}
        # Successors placed ahead that this backend holds until their predecessor (the key) has
        # ended: those the launcher cannot wait for itself (a wrapper-run predecessor or successor).
        self._held: dict[tuple[str, int], tuple[AttemptSpec, LocalAttempt]] = {}
        self._closing = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=spawn_threads, thread_name_prefix="genobatch-spawn")
        self._watcher = Watcher(
            self._lock,
            self._closing,
            started=self._started,
            exited=self._on_exit,
            over_limit=self._oom_kill,
            overdue=self._kill_tree,
        )
        self._monitor = Monitor(
            self._lock,
            self._closing,
            self._attempts,
            interval_s=monitor_interval_s,
            max_log_bytes=max_log_bytes,
            over_limit=self._oom_kill,
        )
        self._launched: dict[str, LocalAttempt] = {}  # attempt dir -> attempt, guarded by _lock
        self._connect_lock = threading.Lock()
        self._launcher = LauncherClient(
            launcher_dir or default_launcher_dir(cgroup_group),
            started=self._launcher_started,
            exited=self._launcher_exited,
            lost=self._launcher_lost,
            withdrawn=self._launcher_withdrawn,
        )
        # Connected now, so that reconcile knows what a launcher left by the previous server runs.
        self._connect_launcher(start=self._launcher_mode == "persistent")
        self._watcher.start()
        self._monitor.start()

    @property
    def launcher(self) -> str:
        """How new host attempts are started: ``wrapper`` or ``persistent``."""
        return self._launcher_mode

    @property
    def hands_off(self) -> bool:
        """Successors placed ahead are taken: the launcher (or the watcher, for wrapper-run
        attempts) starts one the moment its predecessor has ended."""
        return True

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
        att = LocalAttempt(
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
            if spec.after is not None and self._hold_back(spec, att):
                return  # started by _finish of its predecessor
        self._begin(spec, att)

    def _begin(self, spec: AttemptSpec, att: LocalAttempt) -> None:
        if self._by_launcher(att):
            # Spawning is one message to the launcher: done here, without a hop to the pool.
            self._spawn(spec, att)
        else:
            self._pool.submit(self._spawn, spec, att)

    def _by_launcher(self, att: LocalAttempt) -> bool:
        return self._launcher_mode == "persistent" and self._job_user is None and not att.container

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
                held = self._held.get(att.held_behind) if att.held_behind is not None else None
                if held is not None and held[1] is att:
                    del self._held[att.held_behind]
                elif att.launched and att.after_dir and att.child_pid is None:
                    # Waiting at the launcher: dropped there if it has not started (then reported
                    # stopped before it started), else stopped once it has.
                    with contextlib.suppress(OSError):
                        self._launcher.cancel(att.attempt_dir)
                    return
                else:
                    return
            else:
                self._begin_stop(att, grace_s)
                return
        self._finish(att, None, status=STOPPED_BEFORE_START)

    def close(self) -> None:
        """Stop the threads; attempts keep running and are adopted by the next ``reconcile``.

        Attempts queued but not yet spawned are dropped (reconcile reports them vanished).
        """
        if self._closing.is_set():
            return
        self._closing.set()
        self._watcher.join()
        self._monitor.join()  # and kills the leftovers of attempts that ended since its last tick
        if self._cgroups is not None:
            self._cgroups.release()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._launcher.close()  # the launcher goes on with what runs, and exits when nothing does
        self._watcher.close()  # after the pool: a spawn still under way may yet wake it

    # -- spawning ----------------------------------------------------------------------------

    def _spawn(self, spec: AttemptSpec, att: LocalAttempt) -> None:
        try:
            self._spawn_attempt(spec, att)
        except Exception as exc:  # an unexpected error must still end the attempt exactly once
            log.exception("spawning %s failed", att.key)
            self._finish(att, None, reason=f"CannotStartContainerError: {exc}", status=FAILED_TO_START)

    def _spawn_attempt(self, spec: AttemptSpec, att: LocalAttempt) -> None:
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
        if self._launcher_mode == "persistent" and self._job_user is None and not att.container:
            self._launch(spec, att, command, env)
            return
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
        self._watcher.watch(att, None, pipe_r)

    def _new_cgroup(self, spec: AttemptSpec, att: LocalAttempt) -> AttemptCgroup | None:
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

    def _started(self, att: LocalAttempt, child_pid: int) -> None:
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
            "pid": att.wrapper_pid if not att.launched else child_pid,
            "child_pid": child_pid,
            "runtime": att.runtime,
            "image": att.image,
            "hostname": self._hostname,
            "attempt_dir": att.attempt_dir,
        }
        info.update(att.containment_fields())
        if att.launched:
            info["launcher_pid"] = self._launcher.launcher_pid
        elif self._job_user is not None:
            info["user"] = self._job_user.name
        if att.container:
            info["container_name"] = att.container
        self._emit(AttemptStarted(att.job_id, att.attempt, att.started_ms, info))
        with self._lock:
            if att.stop_grace is not None and att.state == "running":
                self._begin_stop(att, att.stop_grace)

    def _write_spec_file(self, spec: AttemptSpec, att: LocalAttempt, command: list[str]) -> None:
        """Write ``attempt.json`` (see :func:`~genobatch.backends.launch.write_attempt_file`)."""
        launcher = "persistent" if att.launched else "wrapper"
        fields = {"runtime": att.runtime, "container_name": att.container, "launcher": launcher}
        fields.update(hostname=self._hostname, created_ms=att.created_ms, **att.containment_fields())
        write_attempt_file(att.attempt_dir, attempt_meta(spec, att.attempt_dir, command, fields))

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

    def _mark_done(self, att: LocalAttempt) -> bool:
        """Mark ``att`` done and forget it; False if it already was (its end is reported once)."""
        with self._lock:
            if att.state == "done":
                return False
            att.state = "done"
            if self._attempts.get(att.key) is att:
                del self._attempts[att.key]
        return True

    def _finish(
        self,
        att: LocalAttempt,
        exit_code: int | None,
        *,
        reason: str | None = None,
        status: str = EXITED,
        usage: dict | None = None,
        at_ms: int | None = None,
    ) -> None:
        """Mark the attempt done and emit its AttemptExited, exactly once."""
        if not self._mark_done(att):
            return
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
        self._pass_on(att)

    def _on_exit(self, att: LocalAttempt) -> None:
        """The wrapper has ended: reap it, read its exit record and report (watcher thread, which
        has read the wrapper's pipe to the end first)."""
        att.reap()
        record = read_exit_record(att.attempt_dir)
        if att.state == "starting":  # the command never started
            if record is None and att.launched and not os.path.exists(os.path.join(att.attempt_dir, CHILD_PID_FILE)):
                self._not_started(att)  # the launcher went away before spawning it (it was waiting)
                return
            if record is not None and record.status == "notfound":
                reason = f"CannotStartContainerError: executable file not found in $PATH: {att.executable}"
            elif record is not None and record.status == "nocgroup":
                reason = str(exit_fields(record, False)[1])
            else:
                starter = "launcher" if att.launched else "wrapper"
                reason = f"CannotStartContainerError: the {starter} ended before starting the command"
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
            self._monitor.sweep_later(att.attempt_dir, att.leader(), att.created_ms)
        self._monitor.cap_log(att)  # what was written since the monitor's last look
        exit_code, reason, status = exit_fields(record, att.oom or end.out_of_memory, att.launched)
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
        add_kernel_peak(usage, end, att.oom or end.out_of_memory)
        self._finish(att, exit_code, reason=reason, status=status, usage=usage, at_ms=end_ms)

    # -- signals -----------------------------------------------------------------------------

    def _begin_stop(self, att: LocalAttempt, grace_s: float) -> None:
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
            att.signal(signal.SIGTERM)
        self._watcher.schedule_kill(att, grace_s)

    def _kill_tree(self, att: LocalAttempt, table: ProcessTable | None = None) -> None:
        """SIGKILL the command's group and every other process of the attempt (its cgroup, or
        its session and descendants)."""
        att.signal(signal.SIGKILL)
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

    def _oom_kill(self, att: LocalAttempt, why: str, table: ProcessTable | None = None) -> None:
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
