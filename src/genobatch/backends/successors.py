"""The local backend's successors placed ahead (issue 9's hand-off, :mod:`genobatch.core.handoff`).

A mixin of :class:`~genobatch.backends.local.LocalBackend`, kept apart so that each module stays
about one thing. A successor (``AttemptSpec.after``) starts the moment the attempt it follows has
ended: the persistent launcher waits for it itself when it runs both (``att.after_dir``); else this
backend holds it (``_held``, by the predecessor's key) and starts it from the predecessor's
``_finish``. One that is withdrawn, or whose predecessor never ran, passes its place on; one that
never started is reported as :class:`~genobatch.backends.base.AttemptNotStarted`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING

from genobatch.backends.attempt import LocalAttempt
from genobatch.backends.base import AttemptNotStarted, AttemptSpec, BackendEvent

if TYPE_CHECKING:
    from genobatch.backends.launcher_client import LauncherClient


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Successors:
    """Holding, withdrawing and passing on successors; uses the backend's lock and attempt table."""

    _lock: threading.Lock
    _closing: threading.Event
    _attempts: dict[tuple[str, int], LocalAttempt]
    _held: dict[tuple[str, int], tuple[AttemptSpec, LocalAttempt]]
    _launcher: LauncherClient

    if TYPE_CHECKING:  # the backend's own, used here

        def _emit(self, event: BackendEvent) -> None: ...
        def _begin(self, spec: AttemptSpec, att: LocalAttempt) -> None: ...
        def _by_launcher(self, att: LocalAttempt) -> bool: ...

    def _hold_back(self, spec: AttemptSpec, att: LocalAttempt) -> bool:
        """A successor placed ahead (lock held): True if this backend holds it until its
        predecessor ends; False to start it now - the predecessor has ended, or the launcher
        runs both and waits itself (``att.after_dir``)."""
        att.after_key = spec.after
        predecessor = self._attempts.get(spec.after)
        if predecessor is None or predecessor.state == "done":
            return False
        if predecessor.launched and self._by_launcher(att):
            att.after_dir = predecessor.attempt_dir
            return False
        att.held_behind = spec.after
        self._held[spec.after] = (spec, att)
        return True

    def withdraw(self, job_id: str, attempt: int) -> None:
        """Drop a successor that has not started: AttemptNotStarted follows (from the watcher
        thread when the launcher held it); one that started is left alone."""
        with self._lock:
            att = self._attempts.get((job_id, attempt))
            if att is None or att.state == "done" or att.child_pid is not None:
                return
            held = self._held.get(att.held_behind) if att.held_behind is not None else None
            if held is not None and held[1] is att:
                del self._held[att.held_behind]
            elif not (att.launched and att.after_dir):
                return
        if held is not None:
            self._not_started(att)
            return
        with contextlib.suppress(OSError):  # the launcher has gone: its loss is reported anyway
            self._launcher.cancel(att.attempt_dir)

    def _pass_on(self, att: LocalAttempt) -> None:
        """``att`` is over: start the successor this backend held behind it - or, if ``att``
        never started and its own predecessor still runs, hold that successor behind the
        predecessor instead (as the launcher relinks one it holds)."""
        with self._lock:
            follower = self._held.pop(att.key, None)
            if follower is None:
                return
            predecessor = self._attempts.get(att.after_key) if att.after_key is not None else None
            never_ran = att.child_pid is None and att.wrapper_pid is None
            if never_ran and predecessor is not None and predecessor.state != "done":
                self._held[att.after_key] = follower
                follower[1].held_behind = att.after_key
                return
            follower[1].held_behind = None
        if not self._closing.is_set():
            self._begin(*follower)  # its devices are free now

    def _not_started(self, att: LocalAttempt) -> None:
        """Forget an attempt that never started and report it so (not a failed attempt)."""
        if not self._mark_done(att):
            return
        cgroup = att.containment.cgroup if att.containment else None
        if cgroup is not None and cgroup.exists():
            cgroup.remove()
        self._emit(AttemptNotStarted(att.job_id, att.attempt, _now_ms()))
        self._pass_on(att)
