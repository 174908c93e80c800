"""The server lock: at most one genobatch server per data directory and per database.

Two servers on one store would each schedule the same queued jobs and run them twice, so a server
takes two locks before it opens the store, and refuses to start when either is held:

* the **data directory**: an exclusive ``flock`` on ``<data_dir>/server.lock``. The kernel drops it
  when the holder's process ends however it ends (``kill -9`` included), so a crashed server never
  leaves it stuck. The file keeps the holder's pid for ``genobatch server status|stop``.
* the **database**, where it can be shared by servers with different data directories: for
  PostgreSQL a session-level advisory lock held on a dedicated connection for the server's life
  (released by PostgreSQL when that connection ends, crash included); for a SQLite file outside the
  data directory a ``flock`` on ``<file>.lock`` beside it. The default SQLite file lives in the data
  directory, whose lock already covers it.

File descriptors are opened close-on-exec (Python's default), so jobs the server starts never
inherit a lock: a job that outlives a crashed server must not keep the next one from starting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

LOCK_FILE = "server.lock"
# A probe by `genobatch server status|stop` holds the lock for an instant; retrying this long
# keeps such a probe from being mistaken for a running server.
ACQUIRE_PATIENCE_S = 2.0
# The two int4 keys of the PostgreSQL advisory lock: "gb" and "srv" in ASCII, arbitrary but fixed.
# Advisory locks are per database, so this key locks exactly the database the server uses.
PG_LOCK_KEYS = (0x6762, 0x737276)


class LockHeld(RuntimeError):
    """Another server holds the lock; the message says which server and what to do."""


def read_lock_owner(path: Path) -> dict[str, Any]:
    """What the holder of a lock file wrote into it (pid, endpoint), or ``{}``."""
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def describe_owner(owner: dict[str, Any]) -> str:
    """``pid 123, http://127.0.0.1:8741`` from what a lock holder recorded."""
    parts = []
    if owner.get("pid"):
        parts.append(f"pid {owner['pid']}")
    if owner.get("endpoint"):
        parts.append(str(owner["endpoint"]))
    if owner.get("data_dir"):
        parts.append(f"data dir {owner['data_dir']}")
    return ", ".join(parts) or "owner unknown"


def try_flock(path: Path, patience_s: float = 0.0) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created 0600 if absent), or None if held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + patience_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def is_locked(path: Path) -> bool:
    """Whether a process holds the flock on ``path`` (a momentary probe; False if no file)."""
    try:
        # Read-only is enough for flock, and works on a lock file another user's server created.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _write_owner(fd: int, owner: dict[str, Any]) -> None:
    data = json.dumps(owner).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@dataclass
class ServerLock:
    """The locks one server holds for its whole life; :meth:`release` (or exit) drops them."""

    data_dir: Path
    owner: dict[str, Any]
    _fds: list[int] = field(default_factory=list)
    _pg: Connection | None = None

    @classmethod
    def acquire(cls, data_dir: Path, database_url: str, owner: dict[str, Any]) -> ServerLock:
        """Take the data directory's lock and the database's; :class:`LockHeld` if either is held."""
        lock = cls(data_dir, owner)
        try:
            lock._lock_file(data_dir / LOCK_FILE, f"data directory {data_dir}")
            lock._lock_database(data_dir, database_url)
        except BaseException:
            lock.release()
            raise
        return lock

    def _lock_file(self, path: Path, what: str) -> None:
        fd = try_flock(path, ACQUIRE_PATIENCE_S)
        if fd is None:
            holder = describe_owner(read_lock_owner(path))
            raise LockHeld(
                f"another genobatch server is running on {what} ({holder}); two servers on one store would "
                f"run the same jobs twice. Stop it first (genobatch --data-dir {self.data_dir} server stop) "
                "or use another data directory and database."
            )
        self._fds.append(fd)
        _write_owner(fd, self.owner)

    def _lock_database(self, data_dir: Path, database_url: str) -> None:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            database = url.database
            if not database or database == ":memory:":
                return
            path = Path(database).expanduser().resolve()
            if path.parent != data_dir.expanduser().resolve():
                path.parent.mkdir(parents=True, exist_ok=True)  # as opening the store would
                self._lock_file(path.with_name(path.name + ".lock"), f"database {path}")
        elif url.get_backend_name() == "postgresql":
            self._lock_postgres(url)

    def _lock_postgres(self, url: Any) -> None:
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        # application_name is how a refused server can name the holder (pg_stat_activity shows it).
        name = f"genobatch pid={self.owner.get('pid')} {self.owner.get('endpoint', '')}"[:63]
        engine = create_engine(url, poolclass=NullPool, connect_args={"application_name": name})
        # AUTOCOMMIT: a session-level advisory lock needs no transaction, and an open one would keep
        # PostgreSQL from vacuuming for the server's whole life.
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + ACQUIRE_PATIENCE_S
        while True:
            keys = {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]}
            if conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), keys).scalar():
                self._pg = conn
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        holder = conn.execute(
            text(
                "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a AND l.objid = :b"
            ),
            keys,
        ).first()
        conn.close()
        engine.dispose()
        who = f" ({holder[0]}, from {holder[1] or 'a local socket'})" if holder else ""
        safe_url = url.render_as_string(hide_password=True)
        raise LockHeld(
            f"another genobatch server is using the database {safe_url}{who}; two servers on one store "
            "would run the same jobs twice. Stop it first, or give this server its own database."
        )

    def announce(self, **changes: Any) -> None:
        """Update what the data directory's lock file says about its holder (e.g. the bound port)."""
        self.owner.update(changes)
        if self._fds:
            _write_owner(self._fds[0], self.owner)

    def release(self) -> None:
        """Drop every lock (the kernel and PostgreSQL would also drop them when the process ends)."""
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.close()
            self._pg = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no stale pid for `server status` to read
                os.close(fd)
        self._fds.clear()
