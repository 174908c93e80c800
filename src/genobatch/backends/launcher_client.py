"""The server's side of the persistent launcher (:mod:`genobatch.backends.launcher`): finding or
starting it, sending it attempts, and turning its reports into calls.

One client per backend. Its socket is read by the backend's watcher thread (:meth:`on_readable`);
spawn requests are sent from the spawn pool (:meth:`spawn`). What the reports *mean* is the
backend's, reached through four callbacks: ``started(attempt_dir, pid)``, ``exited(attempt_dir)``
(after the launcher wrote ``exit_status``), ``withdrawn(attempt_dir)`` (a cancelled request that
had not started) and ``lost()`` (the launcher's connection ended: every attempt not yet reported
ended is over as far as this server can know).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from genobatch.backends.launcher import SOCKET_FILE

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10.0
_MAX_SUN_PATH = 100  # sun_path holds 108 bytes; longer paths go through /proc/self/fd


class LauncherUnavailable(OSError):
    """The launcher could not be reached or started."""


class LauncherClient:
    """A connection to the launcher of one directory."""

    def __init__(
        self,
        directory: str,
        *,
        started: Callable[[str, int], None],
        exited: Callable[[str], None],
        lost: Callable[[], None],
        withdrawn: Callable[[str], None] | None = None,
    ) -> None:
        """Remember the callbacks; nothing is connected until :meth:`connect`."""
        self.directory = os.path.abspath(directory)
        self._started, self._exited, self._lost = started, exited, lost
        self._withdrawn = withdrawn or (lambda _dir: None)
        self._lock = threading.Lock()  # guards _sock, _running, _buf
        self._send_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._running: dict[str, int] = {}  # attempt dir -> pid, as the launcher reported
        self._waiting: dict[str, str] = {}  # attempt dir the launcher holds -> the dir it waits on
        self.launcher_pid: int | None = None

    # -- connection ----------------------------------------------------------------------------

    def connect(self, *, start: bool = True) -> bool:
        """Connect to the directory's launcher, starting one if none runs and ``start`` is set.

        Returns False if none runs and ``start`` is not set. Raises :class:`LauncherUnavailable`
        if one could not be started or did not answer.
        """
        with self._lock:
            if self._sock is not None:
                return True
        for _ in range(3):
            sock = self._try_connect()
            if sock is None:
                if not start:
                    return False
                self._start_launcher()
                sock = self._try_connect()
                if sock is None:
                    continue
            hello, rest = self._read_hello(sock)
            if hello is None:  # it was exiting as we connected: start another
                sock.close()
                continue
            with self._lock:
                self._sock = sock
                self._buf = bytearray(rest)
                self._running = {str(d): int(p) for d, p in (hello.get("running") or {}).items()}
                self._waiting = {str(d): str(a) for d, a in (hello.get("waiting") or {}).items()}
                self.launcher_pid = int(hello["pid"])
            return True
        raise LauncherUnavailable(f"no launcher answers on {self.directory}")

    def fileno(self) -> int:
        """The socket's descriptor (for the watcher's selector); -1 when not connected."""
        sock = self._sock
        return sock.fileno() if sock is not None else -1

    def close(self) -> None:
        """Disconnect; the launcher exits once no server is connected and nothing of it runs."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _socket_path(self) -> tuple[str, int | None]:
        path = os.path.join(self.directory, SOCKET_FILE)
        if len(path.encode()) < _MAX_SUN_PATH:
            return path, None
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{dir_fd}/{SOCKET_FILE}", dir_fd

    def _try_connect(self) -> socket.socket | None:
        try:
            path, dir_fd = self._socket_path()
        except OSError:
            return None  # no directory yet: no launcher
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_CONNECT_TIMEOUT_S)
            sock.connect(path)
        except OSError:
            sock.close()
            return None
        finally:
            if dir_fd is not None:
                os.close(dir_fd)
        return sock

    def _start_launcher(self) -> None:
        """Run ``python -m genobatch.backends.launcher DIR``; it returns once its socket listens."""
        env = dict(os.environ)
        # The launcher must import this very genobatch, also when the server runs from a source tree.
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "genobatch.backends.launcher", self.directory],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                timeout=_CONNECT_TIMEOUT_S * 3,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise LauncherUnavailable(f"cannot start the launcher in {self.directory}: {exc}") from exc
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-500:]
            raise LauncherUnavailable(f"the launcher in {self.directory} failed to start: {detail}")

    @staticmethod
    def _read_hello(sock: socket.socket) -> tuple[dict | None, bytes]:
        """The launcher's first line, and whatever it sent after it (reports that
        :meth:`on_readable` is to process first)."""
        deadline = time.monotonic() + _CONNECT_TIMEOUT_S
        buf = bytearray()
        while b"\n" not in buf:
            if time.monotonic() > deadline:
                return None, b""
            try:
                chunk = sock.recv(1 << 16)
            except OSError:
                return None, b""
            if not chunk:
                return None, b""
            buf += chunk
        end = buf.index(b"\n")
        try:
            hello = json.loads(bytes(buf[:end]))
        except ValueError:
            return None, b""
        if not isinstance(hello, dict) or hello.get("ev") != "hello":
            return None, b""
        return hello, bytes(buf[end + 1 :])

    # -- requests ------------------------------------------------------------------------------

    def spawn(
        self,
        attempt_dir: str,
        argv: list[str],
        env: dict[str, str],
        cpus: list[int],
        cgroup: str | None,
        after: str | None = None,
    ) -> None:
        """Ask the launcher to start an attempt, once the attempt in ``after`` (a directory) has
        ended if that one still runs there (see the module doc of the launcher).

        Raises :class:`LauncherUnavailable` (an OSError) if the request cannot be sent; the
        backend then reports a failed start.
        """
        message = {"op": "spawn", "dir": attempt_dir, "argv": argv, "env": env, "cpus": cpus, "cgroup": cgroup}
        if after is not None:
            message["after"] = after
        self._send(message)

    def cancel(self, attempt_dir: str) -> None:
        """Ask the launcher to drop a request still waiting (answered by ``withdrawn``, or not at
        all if it has started). Raises :class:`LauncherUnavailable` if it cannot be sent."""
        self._send({"op": "cancel", "dir": attempt_dir})

    def _send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self._send_lock:
            sock = self._sock
            if sock is None:
                raise LauncherUnavailable("not connected to the launcher")
            sock.sendall(data)

    def running_pid(self, attempt_dir: str, adopt: Callable[[int], None]) -> bool:
        """If the launcher runs ``attempt_dir``, call ``adopt(pid)`` and return True.

        ``adopt`` runs under the lock that orders it before any later ``exited`` report of the
        attempt, so an attempt adopted here gets that report, and one that ended before is not
        adopted (its ``exit_status`` is already written).
        """
        return self._adopt_listed(self._running, attempt_dir, adopt)

    def waiting(self, attempt_dir: str, adopt: Callable[[str], None]) -> bool:
        """If the launcher holds ``attempt_dir`` until another attempt ends, call
        ``adopt(that attempt's dir)`` and return True (under the lock that orders it before the
        attempt's later reports)."""
        return self._adopt_listed(self._waiting, attempt_dir, adopt)

    def _adopt_listed(self, listed: dict, attempt_dir: str, adopt: Callable) -> bool:
        """``adopt(listed[attempt_dir])`` under the report lock if the launcher listed it."""
        with self._lock:
            value = listed.get(attempt_dir)
            if value is None:
                return False
            adopt(value)
            return True

    # -- reports (watcher thread) ----------------------------------------------------------------

    def on_readable(self) -> bool:
        """Read what the launcher sent and act on each complete report (watcher thread).

        Returns False once the connection is over (EOF: ``lost`` has been called, or closed).
        Never blocks, so it may also be called when nothing is to be read (to process reports
        received with the greeting).
        """
        sock = self._sock
        if sock is None:
            return False
        try:
            # os.read, not sock.recv: a socket with a timeout polls for up to that long before
            # reading (the descriptor itself is non-blocking, so this returns at once).
            chunk: bytes | None = os.read(sock.fileno(), 1 << 16)
        except (BlockingIOError, InterruptedError):
            chunk = None
        except OSError:
            chunk = b""
        if chunk == b"":
            log.warning("the launcher in %s has gone (pid %s)", self.directory, self.launcher_pid)
            self.close()
            self._lost()
            return False
        if chunk:
            self._buf += chunk
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                return True
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._dispatch(json.loads(line))

    def _dispatch(self, event: dict) -> None:
        kind, attempt_dir = event.get("ev"), str(event.get("dir"))
        if kind == "started":
            pid = int(event["pid"])
            with self._lock:
                self._running[attempt_dir] = pid
                self._waiting.pop(attempt_dir, None)
            self._started(attempt_dir, pid)
        elif kind == "exited":
            with self._lock:
                self._running.pop(attempt_dir, None)
                self._waiting.pop(attempt_dir, None)
            self._exited(attempt_dir)
        elif kind == "withdrawn":
            with self._lock:
                self._waiting.pop(attempt_dir, None)
            self._withdrawn(attempt_dir)
