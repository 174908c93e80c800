"""What the local backend knows about processes on this host: pid files, /proc checks, attempt logs.

These defend against pid reuse after a restart (a pid must still run *this* attempt's wrapper, or
carry its marker variable, before it is adopted or killed).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import psutil

LOG_FILE = "output.log"
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
