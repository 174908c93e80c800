"""What the local backend knows about processes on this host: pid files, /proc checks, attempt logs.

These defend against pid reuse after a restart (a pid must still run *this* attempt's wrapper, or
carry its marker variable, before it is adopted or killed). The ``stop`` file makes a stop outlive
the server; :func:`cap_log` bounds an attempt's log.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import psutil

LOG_FILE = "output.log"
STOP_FILE = "stop"  # the SIGKILL deadline of a stop in progress (epoch ms), written before SIGTERM
MARKER_ENV = "GENOBATCH_ATTEMPT_DIR"  # identifies an attempt's processes in /proc/<pid>/environ


def read_log(attempt_dir: str, offset: int = 0, limit: int | None = None) -> tuple[bytes, int]:
    """Read an attempt's combined stdout/stderr from ``offset``; return (data, next offset).

    A log that does not exist yet reads as empty, so callers can poll from the start.
    """
    try:
        with open(os.path.join(attempt_dir, LOG_FILE), "rb") as fh:
            fh.seek(max(0, offset))
            data = fh.read() if limit is None else fh.read(max(0, limit))
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def cap_log(attempt_dir: str, max_bytes: int, dropped_before: int = 0) -> int:
    """Keep ``output.log`` near ``max_bytes``; return how many bytes it has dropped in all.

    The job writes the log directly (its stdout and stderr are the file, opened for appending),
    so nothing can block it or make its writes fail. When the file grows past ``max_bytes``, its
    first half (the head: how the job started, its first error) stays in place, the middle is cut
    out and a marker line says how much was dropped, followed by the latest quarter (the tail:
    how it ended). The job's next writes append after that, because appends always go to the
    current end. Output appended in the instant between reading the tail and cutting is lost
    with the middle. A reader following the log by offset sees it shrink at each cut.
    """
    path = os.path.join(attempt_dir, LOG_FILE)
    try:
        size = os.stat(path).st_size
    except OSError:
        return dropped_before
    if max_bytes <= 0 or size <= max_bytes:
        return dropped_before
    head, tail_len = max_bytes // 2, max_bytes // 4
    with open(path, "r+b") as fh:
        fh.seek(max(head, size - tail_len))
        tail = fh.read()
        end = fh.tell()
        fh.truncate(head)
    dropped = dropped_before + max(0, end - head - len(tail))
    # Find the start of a line, so the tail begins cleanly.
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        dropped += newline + 1
        tail = tail[newline + 1 :]
    marker = f"\n[genobatch: output.log is capped at {max_bytes} bytes; {dropped} bytes dropped here]\n"
    with open(path, "ab") as fh:  # appends, like the job's own writes
        fh.write(marker.encode() + tail)
    return dropped


def write_stop(attempt_dir: str, kill_at_ms: int) -> None:
    """Record that the attempt is being stopped and when SIGKILL is due (epoch milliseconds)."""
    with open(os.path.join(attempt_dir, STOP_FILE), "w", encoding="ascii") as fh:
        fh.write(f"{kill_at_ms}\n")


def read_stop(attempt_dir: str) -> int | None:
    """The SIGKILL deadline of a stop in progress; 0 (at once) if the file is torn; None if none."""
    path = os.path.join(attempt_dir, STOP_FILE)
    if not os.path.exists(path):
        return None
    deadline = read_int(path)
    return 0 if deadline is None else deadline


def read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def mtime_ms(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns // 1_000_000
    except OSError:
        return None


def is_wrapper_of(pid: int, attempt_dir: str) -> bool:
    """True if ``pid`` runs wrapper.sh for ``attempt_dir`` (defeats pid reuse after a restart)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = [a.decode(errors="replace") for a in fh.read().split(b"\0")]
    except OSError:
        return False
    for i, arg in enumerate(args[:-1]):
        if os.path.basename(arg) == "wrapper.sh":
            return args[i + 1] == attempt_dir
    return False


def find_wrapper(attempt_dir: str) -> int | None:
    """Look for the wrapper of ``attempt_dir`` among all processes (its pid file is missing)."""
    for name in os.listdir("/proc"):
        if name.isdigit() and is_wrapper_of(int(name), attempt_dir):
            return int(name)
    return None


def carries_marker(pid: int, attempt_dir: str) -> bool:
    """True if ``pid`` was started with this attempt's marker variable (so it is ours to kill)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return False
    return f"{MARKER_ENV}={attempt_dir}".encode() in environ.split(b"\0")


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return int(raw[raw.rfind(b")") + 2 :].split()[1])


def probe_default_signal_env() -> str:
    """The path of an ``env`` that supports ``--default-signal`` (GNU coreutils >= 8.31), or ""."""
    env = shutil.which("env")
    if env is None:
        return ""
    try:
        probe = subprocess.run([env, "--default-signal", "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return env if probe.returncode == 0 else ""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
