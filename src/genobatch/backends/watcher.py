"""The local backend's watcher thread: one :mod:`selectors` loop that notices starts, ends and kills.

It watches

* the pipes on which wrappers report the command's pid (a full line: the attempt runs);
* ``pidfd_open`` descriptors of the wrappers (readable: the wrapper has ended). Pidfds work for
  processes that are not our children, so adopted attempts take the same path; where pidfds are
  missing, our own wrappers are polled with ``waitpid`` and adopted ones through ``/proc``;
* the OOM eventfds of cgroup v1 attempts, so that such an attempt is killed the moment it
  reaches its memory limit;
* the persistent launcher's socket, where it reports the starts and ends of the attempts it runs
  (:meth:`Watcher.add_source`);
* the heap of pending SIGKILL escalations of stops: the select timeout is the next deadline.

Only the watcher thread touches the selector and the descriptors; other threads hand it work
through a queue and wake it through a pipe. What an event *means* (emitting ``AttemptStarted``
or ``AttemptExited``, killing an attempt) is the backend's, reached through the callbacks.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable

from genobatch.backends.attempt import LocalAttempt
from genobatch.backends.host import alive

log = logging.getLogger(__name__)

_POLL_INTERVAL_S = 0.1  # how often wrappers without a pidfd are looked at


class Watcher:
    """The thread that turns wrappers' pipes, pidfds, OOM eventfds and kill deadlines into calls."""

    def __init__(
        self,
        lock: threading.Lock,
        closing: threading.Event,
        *,
        started: Callable[[LocalAttempt, int], None],
        exited: Callable[[LocalAttempt], None],
        over_limit: Callable[[LocalAttempt, str], None],
        overdue: Callable[[LocalAttempt], None],
    ) -> None:
        """Prepare the selector; the thread runs from :meth:`start` until ``closing`` is set.

        ``lock`` is the backend's: it guards the kill heap and the attempts' states. Called from
        the watcher thread: ``started(attempt, command_pid)`` once the wrapper reported the
        command's pid, ``exited(attempt)`` once the wrapper has ended (its pipe already read to
        the end), ``over_limit(attempt, why)`` when a cgroup v1 attempt hit its memory limit,
        and ``overdue(attempt)`` when a stop's grace period has run out.
        """
        self._lock = lock
        self._closing = closing
        self._started = started
        self._exited = exited
        self._over_limit = over_limit
        self._overdue = overdue
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._to_watch: deque[tuple[LocalAttempt, int | None, int | None]] = deque()
        self._new_sources: deque[tuple[int, Callable[[], bool]]] = deque()
        self._polled: list[LocalAttempt] = []
        self._kills: list[tuple[float, int, LocalAttempt]] = []  # heap, guarded by _lock
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._loop, name="genobatch-watch", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to end (``closing`` must be set); wakes it first."""
        self.wake()
        self._thread.join()

    def close(self) -> None:
        """Close every descriptor still watched and the selector (after :meth:`join`)."""
        for key in list(self._selector.get_map().values()):
            if key.data is not None and key.data[0] != "source":  # sources belong to their owner
                os.close(key.fd)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def wake(self) -> None:
        """Interrupt the thread's select, so that it looks at new work (any thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def watch(self, att: LocalAttempt, pidfd: int | None, pipe_fd: int | None) -> None:
        """Hand an attempt's wrapper (its pidfd if already open, its pid pipe) to the watcher."""
        self._to_watch.append((att, pidfd, pipe_fd))
        self.wake()

    def add_source(self, fd: int, on_readable: Callable[[], bool]) -> None:
        """Have ``on_readable()`` called (watcher thread) once now and then whenever ``fd`` is
        readable, until it returns False; ``fd`` is then no longer watched (the persistent
        launcher's socket). It must not block when nothing is to be read."""
        self._new_sources.append((fd, on_readable))
        self.wake()

    def end(self, att: LocalAttempt) -> None:
        """The attempt has ended (watcher thread only; for attempts started by the launcher,
        whose end it reports): finish with its descriptors, then let the backend report."""
        self._ended(att)

    def forget(self, att: LocalAttempt) -> None:
        """Stop watching an attempt that never started (watcher thread only)."""
        self._close_oom_fd(att)

    def schedule_kill(self, att: LocalAttempt, delay_s: float) -> None:
        """Have ``overdue(att)`` called in ``delay_s`` seconds unless it is due sooner; lock held."""
        deadline = time.monotonic() + delay_s
        if att.kill_at is None or deadline < att.kill_at:
            att.kill_at = deadline
            heapq.heappush(self._kills, (deadline, next(self._seq), att))
            self.wake()

    # -- the thread ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self._once()
            except Exception:  # keep watching whatever happened to one attempt
                log.exception("watcher iteration failed")
                time.sleep(0.05)

    def _once(self) -> None:
        with self._lock:
            timeout = max(0.0, self._kills[0][0] - time.monotonic()) if self._kills else None
        if self._polled:
            timeout = _POLL_INTERVAL_S if timeout is None else min(timeout, _POLL_INTERVAL_S)
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_r, 4096):
                        pass
                continue
            kind, att = key.data
            if kind == "source":
                if not att():
                    self._selector.unregister(key.fd)
                continue
            # An earlier event of this batch may have closed this descriptor already.
            if kind == "pipe" and att.pipe_fd == key.fd:
                self._read_pipe(att)
            elif kind == "exit" and att.pidfd == key.fd:
                self._selector.unregister(key.fd)
                os.close(key.fd)
                att.pidfd = None
                self._ended(att)
            elif kind == "oom" and att.oom_fd == key.fd:
                with contextlib.suppress(OSError):
                    os.eventfd_read(key.fd)
                cgroup = att.containment.cgroup if att.containment else None
                if cgroup is not None and cgroup.out_of_memory():
                    self._over_limit(att, "reached its memory limit")
        while self._new_sources:
            fd, on_readable = self._new_sources.popleft()
            # Called once at once: the source may hold data it received before it was handed over.
            if on_readable():
                self._selector.register(fd, selectors.EVENT_READ, ("source", on_readable))
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
            if att.launched:
                continue  # its end is reported by the launcher, not seen on a pidfd
            if pidfd is None and att.wrapper_pid is not None:
                try:
                    pidfd = os.pidfd_open(att.wrapper_pid)
                except ProcessLookupError:  # a non-child that is already gone
                    self._ended(att)
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

    def _ended(self, att: LocalAttempt) -> None:
        """The wrapper has ended: finish with its descriptors, then let the backend report."""
        # Whatever the wrapper wrote on the pipe is there now: AttemptStarted goes out first.
        while att.pipe_fd is not None:
            self._read_pipe(att)
        self._close_oom_fd(att)
        self._exited(att)

    def _close_oom_fd(self, att: LocalAttempt) -> None:
        """Stop watching the attempt's OOM eventfd."""
        if att.oom_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(att.oom_fd)
            os.close(att.oom_fd)
            att.oom_fd = None

    def _read_pipe(self, att: LocalAttempt) -> None:
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
            return  # no pid: the wrapper ended first; the backend reports the failed start
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
                self._ended(att)
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
            self._overdue(att)
