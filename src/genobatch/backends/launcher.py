"""The persistent launcher: one small single-threaded process per data directory that starts the
local backend's attempts and records their ends; it outlives the server.

Run as ``python -m genobatch.backends.launcher DIR`` (by :mod:`~genobatch.backends.launcher_client`,
which starts it when none runs). It daemonises, holds ``DIR/launcher.lock`` for its whole life (so
there is at most one per directory), listens on ``DIR/launcher.sock`` (a Unix socket in a 0700
directory; peers of another uid are refused) and exits once no server is connected and no attempt
of its runs.

Per attempt it costs one ``posix_spawn`` (a vfork + one exec: no shell, no ``setsid``/``env``/
``taskset`` processes) and one ``wait4``:

* before the spawn, the launcher itself moves into the attempt's cgroup, onto its CPUs and into
  ``ATTEMPT_DIR/work``; the child inherits all three from its first instruction; the launcher moves
  back right after. It is single-threaded, so nothing else runs meanwhile;
* the child gets its own session (``setsid``), default dispositions for every signal, an empty
  signal mask, ``/dev/null`` as stdin and ``output.log`` (appended) as stdout and stderr;
* ``child.pid`` is created just before the spawn and the pid written into it as it starts (its
  mtime is the attempt's start, as with the wrapper). An attempt without ``child.pid`` was never
  spawned: a restarted server may start it again (it is not a failed attempt);
* a request ``after`` another attempt's directory (a successor placed ahead, issue 9) waits while
  that attempt runs here and is spawned the moment it is reaped, right after its ``exit_status`` is
  written and whatever it left in its cgroup is killed: no round trip to the server in between;
* once reaped, ``exit_status`` is written in the wrapper's format (see ``wrapper.sh``): the exit code
  (128+N when killed by signal N), ``status=`` notes, two lines as the shell's ``times`` prints
  them (the launcher's own share, always zero, then the reaped command tree's user and system CPU
  from ``wait4``), the tree's I/O counters (the launcher's ``/proc/self/io`` across that one
  ``wait4``: a reaped child's counters are added to its parent's), ``maxrss_kb`` from ``wait4``
  (an upper bound only: a vfork child keeps the launcher's image as its peak until it execs) and
  last ``end``. The file is written before the server is told, so a status is never lost once
  the server has been told, and a launcher killed before writing it leaves no record: the server
  reports such an attempt as vanished, never with a made-up code.

Protocol (JSON, one object per line). The server sends ``{"op": "spawn", "dir", "argv", "env",
"cpus", "cgroup", "after"}`` (``cgroup``: the ``cgroup.procs`` file to join, or null; ``after``:
the directory of the attempt to wait for, or null) and ``{"op": "cancel", "dir"}`` (drop a
request still waiting). The launcher sends every connected server ``{"ev": "hello", "pid",
"running": {dir: pid}, "waiting": {dir: after}}`` when it connects (having first acted on every
request already received, so that what it lists is complete), then ``{"ev": "started", "dir",
"pid"}``, ``{"ev": "exited", "dir"}`` (after ``exit_status`` is written; also for an attempt that
could not start, whose record says why) and ``{"ev": "withdrawn", "dir"}`` (a cancelled request
that had not started: nothing was run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import time

LOCK_FILE = "launcher.lock"
SOCKET_FILE = "launcher.sock"
LOG_FILE = "launcher.log"
FIRST_CLIENT_S = 30.0  # a launcher nobody connects to goes away after this long
SEND_TIMEOUT_S = 10.0

_ATTEMPT_LOG = "output.log"
_CHILD_PID = "child.pid"
_EXIT_FILE = "exit_status"
_NOT_FOUND_EXIT = 127
_NO_CGROUP_EXIT = 125
_CANNOT_EXEC_EXIT = 126
_IO_KEYS = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes")


class _Spawner:
    """``posix_spawn`` through libc with *every* signal set to its default in the child.

    ``os.posix_spawn`` cannot: its signal sets are built with ``sigaddset``, which refuses glibc's
    two internal signals (32 and 33), and glibc's spawn leaves those two *ignored* in the child
    unless they are in the set of signals to default - so every job would start with them
    ignored. A set with every bit on (as ``sigfillset`` would be without glibc's exclusions)
    avoids that; the attributes are built once and reused for every spawn.
    """

    _SETSIGDEF, _SETSIGMASK, _SETSID = 0x04, 0x08, 0x80  # glibc's spawn.h flags
    _SIGSET_BYTES = 128

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._libc = libc
        self._attr = ctypes.create_string_buffer(1024)  # posix_spawnattr_t is 336 bytes on x86-64
        every = ctypes.create_string_buffer(b"\xff" * self._SIGSET_BYTES, self._SIGSET_BYTES)
        none = ctypes.create_string_buffer(self._SIGSET_BYTES)
        flags = ctypes.c_short(self._SETSIGDEF | self._SETSIGMASK | self._SETSID)
        for rc in (
            libc.posix_spawnattr_init(self._attr),
            libc.posix_spawnattr_setsigdefault(self._attr, every),
            libc.posix_spawnattr_setsigmask(self._attr, none),
            libc.posix_spawnattr_setflags(self._attr, flags),
        ):
            if rc != 0:
                raise OSError(rc, os.strerror(rc))

    def spawn(self, path: str, argv: list[str], env: dict[str, str], log_path: str) -> int:
        """Start ``path`` in a new session, stdin /dev/null, stdout and stderr appended to
        ``log_path``, default signals, empty mask; the pid, or OSError (the exec's own errno)."""
        libc = self._libc
        actions = ctypes.create_string_buffer(1024)  # posix_spawn_file_actions_t: 80 bytes
        libc.posix_spawn_file_actions_init(actions)
        try:
            libc.posix_spawn_file_actions_addopen(actions, 0, b"/dev/null", os.O_RDONLY, 0)
            libc.posix_spawn_file_actions_addopen(
                actions, 1, os.fsencode(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666
            )
            libc.posix_spawn_file_actions_adddup2(actions, 1, 2)
            c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
            items = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
            c_env = (ctypes.c_char_p * (len(items) + 1))(*items, None)
            pid = ctypes.c_int()
            rc = libc.posix_spawn(ctypes.byref(pid), os.fsencode(path), actions, self._attr, c_argv, c_env)
        finally:
            libc.posix_spawn_file_actions_destroy(actions)
        if rc != 0:
            raise OSError(rc, os.strerror(rc), path)
        return pid.value


def _times_line(seconds_user: float, seconds_sys: float) -> str:
    """One line as the shell's ``times`` prints it (``usage.read_exit_record`` parses it)."""
    return f"{int(seconds_user // 60)}m{seconds_user % 60:.6f}s {int(seconds_sys // 60)}m{seconds_sys % 60:.6f}s"


def _read_io() -> dict[str, int]:
    """The launcher's ``/proc/self/io`` counters (they include every child it has reaped)."""
    try:
        with open("/proc/self/io", "rb") as fh:
            text = fh.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in _IO_KEYS and value.strip().isdigit():
            out[key] = int(value)
    return out


def _own_cgroup_dirs() -> dict[int, str]:
    """The directories of the launcher's own cgroups: {1: memory hierarchy, 2: unified}, where mounted."""
    from genobatch.backends.cgroup import _mounts, _own_cgroups, _under_mount  # one definition of the layout

    own, found = _own_cgroups(), {}
    for root, point, fstype, options in _mounts():
        if fstype == "cgroup2" and "" in own and 2 not in found:
            found[2] = _under_mount(root, point, own[""])
        elif fstype == "cgroup" and "memory" in options.split(",") and 1 not in found:
            for key, path in own.items():
                if "memory" in key.split(","):
                    found[1] = _under_mount(root, point, path)
    return found


class Launcher:
    """The launcher's state and its single-threaded event loop."""

    def __init__(self, directory: str, listener: socket.socket) -> None:
        self.directory = directory
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.clients: dict[socket.socket, bytearray] = {}
        self.running: dict[int, str] = {}  # pid -> attempt dir
        self.cgroup_of: dict[int, str] = {}  # pid -> the cgroup.procs file it was started in
        self.waiting: dict[str, dict] = {}  # attempt dir still running -> the request waiting for it
        self.waits_on: dict[str, str] = {}  # waiting request's dir -> the dir it waits for
        self.host_cpus = frozenset(os.sched_getaffinity(0))
        self.home_cgroups = _own_cgroup_dirs()
        self.pid = os.getpid()
        self.spawner = _Spawner()
        self.ever_connected = False
        self.started = time.monotonic()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r = wake_r
        # SIGCHLD only writes a byte to the pipe; the loop reaps (a handler, not SIG_IGN, which
        # would make the kernel reap the children and lose their statuses).
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        self.selector.register(listener, selectors.EVENT_READ, "listen")

    # -- the loop ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Run until no server is connected and no attempt runs."""
        while True:
            self.reap()
            idle = not self.clients and not self.running
            if idle and (self.ever_connected or time.monotonic() - self.started > FIRST_CLIENT_S):
                return
            for key, _ in self.selector.select(1.0):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                elif key.data == "listen":
                    self.accept()
                else:
                    self.read_client(key.fileobj)  # type: ignore[arg-type]

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid not in (0, os.getuid()):  # it would run commands as us: only our own user or root
            conn.close()
            return
        # Blocking with a timeout: recv is only called once readable, and the messages are tiny.
        conn.settimeout(SEND_TIMEOUT_S)
        # Requests a (dead) server sent before this one connected are acted on first, so that the
        # hello lists every attempt that runs or waits: what it omits was never received.
        for key, _ in self.selector.select(0):
            if key.data == "client":
                self.read_client(key.fileobj)  # type: ignore[arg-type]
        self.reap()
        self.clients[conn] = bytearray()
        self.ever_connected = True
        self.selector.register(conn, selectors.EVENT_READ, "client")
        hello = {
            "ev": "hello",
            "pid": self.pid,
            "running": {d: p for p, d in self.running.items()},
            "waiting": dict(self.waits_on),
        }
        self.send(conn, hello)

    def drop(self, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        self.clients.pop(conn, None)
        conn.close()

    def read_client(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.drop(conn)
            return
        buf = self.clients[conn]
        buf += chunk
        while True:
            end = buf.find(b"\n")
            if end < 0:
                break
            line = bytes(buf[:end])
            del buf[: end + 1]
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if isinstance(request, dict) and request.get("op") == "spawn":
                self.spawn(request)
            elif isinstance(request, dict) and request.get("op") == "cancel":
                self.cancel(str(request.get("dir")))
            self.reap()  # a short job may already be over: tell the server early

    def send(self, conn: socket.socket, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        try:
            conn.sendall(data)
        except OSError:  # gone, or reads nothing for SEND_TIMEOUT_S: it is dropped
            self.drop(conn)

    def broadcast(self, message: dict) -> None:
        for conn in list(self.clients):
            self.send(conn, message)

    # -- attempts ----------------------------------------------------------------------------

    def spawn(self, request: dict) -> None:
        """Start one attempt as the request describes (or hold it until the attempt it is to follow
        has ended); report it started, or ended if it cannot start."""
        attempt_dir = str(request["dir"])
        after = request.get("after")
        if after and (after in self.waits_on or after in self.running.values()) and after not in self.waiting:
            self.waiting[after] = request
            self.waits_on[attempt_dir] = after
            return
        argv = [str(a) for a in request["argv"]]
        env = {str(k): str(v) for k, v in request["env"].items()}
        work = os.path.join(attempt_dir, "work")
        log_path = os.path.join(attempt_dir, _ATTEMPT_LOG)
        # Found like the shell's `command -v`, with the job's own PATH, relative to its work dir.
        executable = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", os.defpath))
        if executable is None:
            self.note(log_path, f"genobatch: {argv[0]}: executable file not found in $PATH\n")
            self.record(attempt_dir, _NOT_FOUND_EXIT, ["status=notfound"])
            return
        cpus = frozenset(int(c) for c in request.get("cpus") or ()) or self.host_cpus
        cgroup = request.get("cgroup")
        pinned = cpus != self.host_cpus
        pid_file = None
        try:
            os.makedirs(work, exist_ok=True)
            # Before the spawn: an attempt with no child.pid was certainly never spawned.
            pid_file = open(os.path.join(attempt_dir, _CHILD_PID), "w")  # noqa: SIM115 - closed below
            os.chdir(work)
            if pinned:
                os.sched_setaffinity(0, cpus)
            if cgroup:
                try:
                    with open(cgroup, "w") as fh:
                        fh.write("0")
                except OSError as exc:
                    self.note(log_path, f"genobatch: cannot join the attempt's cgroup ({exc}); not started\n")
                    self.record(attempt_dir, _NO_CGROUP_EXIT, ["status=nocgroup"])
                    return
            pid = self.spawner.spawn(executable, argv, env, log_path)
        except OSError as exc:
            if pid_file is not None:
                pid_file.close()
            code = _NOT_FOUND_EXIT if exc.errno == errno.ENOENT else _CANNOT_EXEC_EXIT
            self.note(log_path, f"genobatch: {argv[0]}: {exc.strerror}\n")
            self.record(attempt_dir, code, ["status=notfound"] if code == _NOT_FOUND_EXIT else [])
            return
        finally:
            self.go_home(cgroup, pinned)
        self.running[pid] = attempt_dir
        if cgroup:
            self.cgroup_of[pid] = cgroup
        with pid_file:
            pid_file.write(f"{pid}\n")
        self.broadcast({"ev": "started", "dir": attempt_dir, "pid": pid})

    def cancel(self, attempt_dir: str) -> None:
        """Drop a request still waiting for its predecessor; the one waiting for it, if any, now
        waits for that predecessor instead (the server relinks it the same way)."""
        after = self.waits_on.pop(attempt_dir, None)
        if after is None:
            return  # started already (its reports follow), or unknown
        del self.waiting[after]
        follower = self.waiting.pop(attempt_dir, None)
        if follower is not None:
            self.waiting[after] = follower
            self.waits_on[str(follower["dir"])] = after
        self.broadcast({"ev": "withdrawn", "dir": attempt_dir})

    def follow(self, attempt_dir: str, cgroup: str | None) -> None:
        """The attempt of ``attempt_dir`` was reaped: start the request waiting for it, if any, on
        the devices it leaves - once whatever it left running in its cgroup is killed."""
        request = self.waiting.pop(attempt_dir, None)
        if request is None:
            return
        self.waits_on.pop(str(request["dir"]), None)
        leftovers: list[str] = []
        if cgroup:
            # Gone already if the server has ended the attempt meanwhile (then nothing is left).
            with contextlib.suppress(OSError), open(cgroup) as fh:
                leftovers = fh.read().split()
            for pid in leftovers:
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        self.spawn(request)

    def go_home(self, cgroup: str | None, pinned: bool) -> None:
        """Back to the launcher's own cgroup, CPUs and directory after a spawn."""
        if cgroup:
            version = 2 if os.path.exists(os.path.join(os.path.dirname(cgroup), "cgroup.controllers")) else 1
            home = self.home_cgroups.get(version)
            if home is not None:
                try:
                    with open(os.path.join(home, "cgroup.procs"), "w") as fh:
                        fh.write("0")
                except OSError as exc:
                    # Staying in an attempt's cgroup would get the launcher killed with it.
                    print(f"cannot return to {home}: {exc}; exiting", file=sys.stderr, flush=True)
                    os._exit(70)
        if pinned:
            os.sched_setaffinity(0, self.host_cpus)
        os.chdir(self.directory)

    def reap(self) -> None:
        """Reap every ended child: record its exit, then tell the servers."""
        while self.running:
            before = _read_io()
            try:
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            after = _read_io()
            attempt_dir = self.running.pop(pid, None)
            cgroup = self.cgroup_of.pop(pid, None)
            if attempt_dir is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            io = [f"{k}={max(0, after[k] - before.get(k, 0))}" for k in _IO_KEYS if k in after]
            times = [_times_line(0, 0), _times_line(rusage.ru_utime, rusage.ru_stime)]
            self.record(attempt_dir, code, [*times, *io, f"maxrss_kb={rusage.ru_maxrss}"], started=True)
            self.follow(attempt_dir, cgroup)

    def record(self, attempt_dir: str, code: int, notes: list[str], started: bool = False) -> None:
        """Write ``exit_status`` (one write; valid once its ``end`` line is there), then report."""
        try:
            with open(os.path.join(attempt_dir, _EXIT_FILE), "w") as fh:
                fh.write("\n".join([str(code), *notes, "end"]) + "\n")
        except OSError as exc:  # the attempt directory was removed under us: the server reports it
            print(f"cannot record the exit of {attempt_dir}: {exc}", file=sys.stderr, flush=True)
        self.broadcast({"ev": "exited", "dir": attempt_dir, "started": started})
        if not started:
            self.follow(attempt_dir, None)  # it could not start: the devices are free for the next

    @staticmethod
    def note(log_path: str, text: str) -> None:
        with contextlib.suppress(OSError), open(log_path, "a") as fh:
            fh.write(text)


def _daemonize(directory: str) -> socket.socket | None:
    """Fork into the background holding the lock and the listening socket; the foreground process
    exits 0 once the socket accepts connections (or another launcher holds the lock)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    lock_fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None  # another launcher serves this directory
    os.chdir(directory)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET_FILE)  # a dead launcher's; we hold the lock
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(SOCKET_FILE)  # relative: a long directory path would not fit sun_path
    listener.listen(64)
    listener.setblocking(False)
    if os.fork() != 0:
        os._exit(0)  # the socket is listening: the starter may connect
    os.setsid()  # no terminal, no process group of the server's: a signal to it does not reach us
    log_fd = os.open(LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null)
    os.close(log_fd)
    # lock_fd stays open (and locked) for the rest of the process's life.
    return listener


def main(argv: list[str] | None = None) -> int:
    """``python -m genobatch.backends.launcher DIR``: serve DIR's socket in the background."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m genobatch.backends.launcher DIR", file=sys.stderr)
        return 2
    directory = os.path.abspath(args[0])
    listener = _daemonize(directory)
    if listener is None:
        return 0
    # Signals the server's terminal or group might send are not for us; SIGTERM still ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} launcher {os.getpid()} serving {directory}", flush=True)
    Launcher(directory, listener).serve()
    with contextlib.suppress(OSError):
        os.unlink(SOCKET_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
