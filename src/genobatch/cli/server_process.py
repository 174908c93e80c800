"""The server process of a data directory, seen from the CLI: is it running, start it detached, stop it.

"Running" means holding the data directory's server lock (:mod:`genobatch.lock`), which the kernel
releases when the server dies however it dies; ``server.json`` alone can be stale (left by a
server that was killed) and is only trusted while the lock is held.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from genobatch.cli.client import read_server_file
from genobatch.cli.errors import CliError
from genobatch.config import Settings
from genobatch.lock import LOCK_FILE, is_locked, read_lock_owner

LOG_FILE = "server.log"
HEALTH_PATH = "/genobatch/v1/health"


def healthy(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether something answers genobatch's (unauthenticated) health check at ``endpoint``."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + HEALTH_PATH, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass(frozen=True)
class ServerState:
    """What is known about the server of one data directory."""

    data_dir: Path
    running: bool  # a process holds the data directory's server lock
    pid: int | None
    info: dict[str, Any]  # server.json (possibly stale when not running)

    @property
    def endpoint(self) -> str | None:
        """Where the running server listens (None while it starts, or when none runs)."""
        return self.info.get("endpoint") if self.running else None

    @property
    def stale_file(self) -> bool:
        """A ``server.json`` left by a server that did not shut down cleanly."""
        return not self.running and bool(self.info)


def server_state(data_dir: Path) -> ServerState:
    """Probe the data directory's lock and read what its server recorded."""
    lock = data_dir / LOCK_FILE
    try:
        running = is_locked(lock)
    except PermissionError:
        raise CliError(f"cannot read {lock}: permission denied (is the server another user's?)") from None
    info = read_server_file(data_dir)
    pid = read_lock_owner(lock).get("pid") if running else None
    if running and info.get("pid") not in (None, pid):
        info = {}  # written by an earlier server: the current one has not announced itself yet
    return ServerState(data_dir, running, pid if isinstance(pid, int) else None, info)


def data_dir_flag(data_dir: Path, default: Path) -> str:
    """``--data-dir X `` for messages, or nothing when ``data_dir`` is the default one."""
    return "" if data_dir == default else f"--data-dir {data_dir} "


def start_detached(data_dir: Path, options: list[str], timeout: float = 60.0) -> ServerState:
    """Start ``genobatch server`` in the background, logging to ``data_dir/server.log``.

    Returns once it answers its health check at the endpoint it announced. A server that exits
    first (port taken, another server on the data directory) is reported with its own error.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = data_dir / LOG_FILE
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start_offset = os.lseek(log_fd, 0, os.SEEK_END)
    command = [sys.executable, "-m", "genobatch", "server", "--data-dir", str(data_dir), *options]
    try:
        # A new session: the server must not die with the terminal or the shell that started it.
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"the server did not start: {_new_errors(log_path, start_offset)}")
        info = read_server_file(data_dir)
        if info.get("pid") == proc.pid and healthy(str(info.get("endpoint", ""))):
            return ServerState(data_dir, True, proc.pid, info)
        time.sleep(0.1)
    raise CliError(f"the server (pid {proc.pid}) did not answer within {timeout:g} s; see {log_path}")


def _new_errors(log_path: Path, offset: int) -> str:
    """The ``error:`` lines a failed server wrote to its log, else the log's last lines."""
    try:
        with log_path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return f"see {log_path}"
    errors = [line.removeprefix("error: ") for line in text.splitlines() if line.startswith("error: ")]
    lines = errors or text.strip().splitlines()[-5:]
    return "\n".join(lines) + f"\n(log: {log_path})"


def stop_server(state: ServerState, timeout: float) -> float:
    """SIGTERM the running server and wait until it has exited; returns the seconds it took."""
    if state.pid is None:
        raise CliError(f"a server holds the lock of {state.data_dir} but has not recorded its pid; try again")
    started = time.monotonic()
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # exited meanwhile
    except PermissionError:
        raise CliError(f"not allowed to stop the server (pid {state.pid}): it runs as another user") from None
    lock = state.data_dir / LOCK_FILE
    while time.monotonic() - started < timeout:
        if not is_locked(lock) and not _alive(state.pid):
            return time.monotonic() - started
        time.sleep(0.1)
    raise CliError(
        f"the server (pid {state.pid}) is still running {timeout:g} s after SIGTERM; "
        f"see {state.data_dir / LOG_FILE}, or end it with: kill -9 {state.pid}"
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def remove_stale_file(data_dir: Path) -> None:
    """Remove a ``server.json`` whose server is gone, so that the CLI stops aiming at it."""
    Settings(data_dir=data_dir).server_file.unlink(missing_ok=True)
