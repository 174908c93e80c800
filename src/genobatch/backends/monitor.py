"""The local backend's monitor thread: periodic usage samples, memory limits, log caps, sweeps.

Every ``interval_s`` it

* reads each running attempt's cgroup (working set for the usage peak, and an OOM kill that the
  watcher's eventfd missed: cgroup v2, an adopted attempt, or one that hit its limit before the
  fd was registered);
* for attempts without a cgroup (and not in a container, whose memory is the runtime's to
  enforce), makes *one* pass over ``/proc`` for all of them: PSS per command tree, and a kill of
  each tree over its memory limit;
* caps each running attempt's ``output.log`` (see :func:`~genobatch.backends.host.cap_log`);
* kills the leftovers of attempts under session containment that ended since its last look:
  finding them takes a look at every process on the host, so it is done once per interval for
  all of them instead of once per attempt on the watcher thread.

Nothing is read while nothing runs. Killing is the backend's, through ``over_limit``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from genobatch.backends.attempt import LocalAttempt
from genobatch.backends.cgroup import AttemptCgroup
from genobatch.backends.containment import sweep_sessions
from genobatch.backends.host import cap_log
from genobatch.backends.usage import ProcessTable, sample_members, sample_tree, scan_processes

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


class Monitor:
    """The thread that samples running attempts, enforces sampled memory limits and caps logs."""

    def __init__(
        self,
        lock: threading.Lock,
        closing: threading.Event,
        attempts: dict[tuple[str, int], LocalAttempt],
        *,
        interval_s: float,
        max_log_bytes: int,
        over_limit: Callable[[LocalAttempt, str, ProcessTable | None], None],
    ) -> None:
        """Prepare the thread; it runs from :meth:`start` until ``closing`` is set.

        ``attempts`` is the backend's table, read under ``lock`` (the backend's). ``max_log_bytes``
        caps each ``output.log`` (0: unlimited). ``over_limit(attempt, why, table)`` is called
        from the monitor thread for an attempt over its memory limit (``table``: the /proc scan
        it was found in, or None).
        """
        self._lock = lock
        self._closing = closing
        self._attempts = attempts
        self._interval = interval_s
        self._max_log_bytes = max_log_bytes
        self._over_limit = over_limit
        self._log_lock = threading.Lock()
        # Ended attempts under session containment whose leftovers are to be killed.
        self._sweeps: list[tuple[str, int | None, int | None]] = []  # guarded by _lock
        self._thread = threading.Thread(target=self._loop, name="genobatch-monitor", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end (``closing`` must be set), then kill the leftovers of the
        attempts that ended since its last look."""
        self._thread.join()
        sweep_sessions(self._sweeps)
        self._sweeps = []

    def sweep_later(self, attempt_dir: str, leader: int | None, created_ms: int | None) -> None:
        """Have the leftovers of an ended attempt under session containment killed on the next
        tick (see :func:`~genobatch.backends.containment.sweep_sessions`)."""
        with self._lock:
            self._sweeps.append((attempt_dir, leader, created_ms))

    def cap_log(self, att: LocalAttempt) -> None:
        """Keep the attempt's log under the cap; the monitor and the watcher (at the attempt's
        end) both do, one at a time, or two cuts could interleave."""
        if self._max_log_bytes:
            with self._log_lock:
                att.log_dropped = cap_log(att.attempt_dir, self._max_log_bytes, att.log_dropped)

    # -- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closing.wait(self._interval):
            try:
                self._once()
            except Exception:
                log.exception("monitor iteration failed")

    def _once(self) -> None:
        with self._lock:
            running = [a for a in self._attempts.values() if a.state == "running"]
            sweeps, self._sweeps = self._sweeps, []
        sweep_sessions(sweeps)
        if not running:
            return  # no /proc scan at all while nothing runs
        sampled = []
        for att in running:
            self.cap_log(att)
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
                self._over_limit(att, f"uses {sample.rss // _MIB} MiB (PSS) > {att.memory_mib} MiB", table)

    def _sample_cgroup(self, att: LocalAttempt, cgroup: AttemptCgroup) -> None:
        """The kernel's figures: the working set for the usage peak; an OOM the eventfd missed
        (cgroup v2, an adopted attempt, or one that hit its limit before the fd was registered)."""
        working_set = cgroup.working_set_bytes()
        if working_set is not None:
            att.usage.add(sample_members(cgroup.pids(), working_set))
        if cgroup.out_of_memory():
            self._over_limit(att, "reached its memory limit (cgroup)", None)
