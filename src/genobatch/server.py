"""``genobatch server``: one process owning all state - store, engine, local backend, HTTP API.

Start-up runs in an order that keeps a failed start from harming anything: files private to the
user (umask 077); refuse ``--no-auth`` on a reachable address; take the server lock (one server per
data directory and database, :mod:`genobatch.lock`) before the store is opened; bind the port; only
then open the store, start the engine and announce the server in ``server.json``. A start that
fails at any step has written nothing another server relies on. SIGTERM and SIGINT both stop the
engine and remove ``server.json`` before the process exits.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import ipaddress
import json
import logging
import os
import signal
import socket
import stat
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

import uvicorn

from genobatch.api.app import create_app
from genobatch.api.compute_environments import create_compute_environment
from genobatch.api.job_queues import create_job_queue
from genobatch.backends.cgroup import server_cgroup_group
from genobatch.backends.local import LocalBackend
from genobatch.config import Settings
from genobatch.credentials import KeyStore
from genobatch.engine import Engine
from genobatch.lock import LockHeld, ServerLock
from genobatch.retention import Policy, Retention
from genobatch.store import catalog
from genobatch.store.database import open_database
from genobatch.workflow.runner import WorkflowRunner

log = logging.getLogger("genobatch.server")
DEFAULT_NAME = "default"
BACKLOG = 2048
GRACEFUL_SHUTDOWN_S = 3
# Files earlier versions created world-readable; tightened at start (the umask covers new ones).
PRIVATE_FILES = (
    "credentials.json",
    "genobatch.db",
    "genobatch.db-wal",
    "genobatch.db-shm",
    "server.json",
    "server.log",
)


class ServerStartError(RuntimeError):
    """The server cannot start; the message says why and what to do (shown without a traceback)."""


class Terminated(BaseException):  # noqa: N818 - named for the signal, like KeyboardInterrupt
    """SIGTERM arrived: unwinds like KeyboardInterrupt so that cleanup runs.

    uvicorn re-raises a signal it handled once it has shut down, and SIGTERM's default action
    would end the process before the engine is stopped and ``server.json`` removed.
    """


def ensure_defaults(engine: Engine) -> None:
    """First start: a local compute environment sized to the host and a queue, both ``default``.

    Created through the same handlers as the API, so they are ordinary, editable resources.
    """
    with engine.database.connect() as conn:
        if catalog.list_documents(conn, "compute-environment") or catalog.list_documents(conn, "job-queue"):
            return
    cpus = len(engine.backend.inventory().cpus)
    compute_environment = {
        "computeEnvironmentName": DEFAULT_NAME,
        "type": "MANAGED",
        "state": "ENABLED",
        "computeResources": {"type": "EC2", "minvCpus": 0, "maxvCpus": cpus, "instanceTypes": ["optimal"]},
    }
    engine.call(create_compute_environment, compute_environment).result(timeout=30)
    queue = {
        "jobQueueName": DEFAULT_NAME,
        "state": "ENABLED",
        "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": DEFAULT_NAME}],
    }
    engine.call(create_job_queue, queue).result(timeout=30)
    log.info("created the default compute environment (%d vCPUs) and job queue", cpus)


def build_engine(settings: Settings) -> Engine:
    """Open the store and start the engine with the local backend."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.database_url)
    try:
        backend = LocalBackend(
            cpus=settings.cpus,
            memory_mib=settings.memory_mib,
            gpus=settings.gpus,
            container_runtime=settings.container_runtime,
            cgroup_group=server_cgroup_group(str(settings.data_dir)),
            max_log_bytes=settings.max_log_mib * 1024 * 1024,
            job_user=settings.job_user,
            launcher=settings.launcher,
            launcher_dir=str(settings.data_dir / "launcher"),
        )
    except ValueError as exc:  # e.g. --job-user names no user
        raise ServerStartError(str(exc)) from None
    except OSError as exc:  # e.g. the persistent launcher could not be started
        raise ServerStartError(f"local backend: {exc}") from None
    engine = Engine(settings, database, backend)
    engine.start()
    ensure_defaults(engine)
    return engine


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (every address it names is loopback)."""
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_exposure(settings: Settings) -> None:
    """Refuse ``--no-auth`` on a non-loopback address unless explicitly allowed; warn loudly if so.

    Without authentication every request is accepted, and SubmitJob runs any command as the
    server's user: on a reachable address that is remote command execution for anyone.
    """
    if settings.auth or is_loopback(settings.host):
        return
    user = getpass.getuser()
    if not settings.allow_unauthenticated_remote:
        raise ServerStartError(
            f"--no-auth with --host {settings.host} would let anyone who can reach port {settings.port} run "
            f"commands on this machine as {user}. Keep authentication on, listen on 127.0.0.1, or pass "
            "--allow-unauthenticated-remote if every host on that network is trusted."
        )
    log.warning(
        "AUTHENTICATION IS OFF on %s (not a loopback address): anyone who can reach it can run commands as %s",
        settings.endpoint,
        user,
    )


def make_private(data_dir: Path) -> None:
    """umask 077, and the data directory created 0700 if absent.

    The umask covers every file and directory the server writes from now on: database, logs,
    credentials, attempt directories.
    """
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def secure_data_dir(data_dir: Path) -> None:
    """Tighten files earlier versions left world-readable, and warn if the data directory is open.

    The data directory's own mode is only reported: widening or narrowing it is the operator's decision
    (another user may have been given access on purpose).
    """
    for name in PRIVATE_FILES:
        path = data_dir / name
        with contextlib.suppress(FileNotFoundError):
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(0o600)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "data directory %s has mode %o: other users may read or list job logs and files in it; "
            "run `chmod 700 %s` unless they should",
            data_dir,
            mode,
            data_dir,
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is announced; a clear error if the port is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerStartError(
                f"port {port} on {host} is already in use, by another program or by the genobatch server of "
                "another data directory (`genobatch --data-dir DIR server status` tells); "
                "choose another port with --port"
            ) from None
        raise ServerStartError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def write_server_file(settings: Settings, started_at: float) -> None:
    """Announce the server to the CLI: written once the port is bound, replaced atomically."""
    info = {
        "endpoint": settings.endpoint,
        "pid": os.getpid(),
        "region": settings.region,
        "auth": settings.auth,
        "data_dir": str(settings.data_dir),
        "database": _safe_url(settings.database_url),
        "started_at": started_at,
    }
    tmp = settings.server_file.with_name(f".server.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, settings.server_file)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    # A second SIGTERM while cleaning up ends the process at once, as one would expect.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Running attempts survive a stop and are adopted on restart.

    Raises :class:`ServerStartError` (nothing changed) when the server cannot start.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    make_private(settings.data_dir)
    check_exposure(settings)
    started_at = time.time()
    owner = {"pid": os.getpid(), "endpoint": settings.endpoint, "data_dir": str(settings.data_dir)}
    try:
        lock = ServerLock.acquire(settings.data_dir, settings.database_url, owner)
    except LockHeld as exc:
        raise ServerStartError(str(exc)) from None
    secure_data_dir(settings.data_dir)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        # We hold the lock, so a server.json left here is from a server that died without cleanup.
        settings.server_file.unlink(missing_ok=True)
        sock = bind_socket(settings.host, settings.port)
        settings = replace(settings, port=sock.getsockname()[1])
        lock.announce(endpoint=settings.endpoint)  # the real port when --port 0 let the kernel choose
        _run(settings, sock, started_at)
        log.info("genobatch server stopped")
    except (Terminated, KeyboardInterrupt):
        log.info("genobatch server stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        lock.release()


def _run(settings: Settings, sock: socket.socket, started_at: float) -> None:
    keys = KeyStore.load_or_create(settings.data_dir)
    engine = build_engine(settings)
    workflows = WorkflowRunner(engine)  # Step Functions executions; after the engine, whose jobs they run
    workflows.start()
    policy = Policy(settings.keep_logs_s, settings.keep_logs_jobs, settings.keep_work_s, settings.keep_records_s)
    retention = Retention(settings.data_dir, settings.jobs_dir, engine.database, policy, settings.retention_interval_s)
    retention.start()
    try:
        app = create_app(engine, keys.secret_for if settings.auth else None, workflows)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            backlog=BACKLOG,
            # Requests still open this long after a stop began are cancelled: the console's live
            # streams never end by themselves, and would otherwise hold the stop forever.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        server = uvicorn.Server(config)
        app.state.stopping = lambda: server.should_exit  # the console ends its live streams on a stop
        write_server_file(settings, started_at)
        log.info(
            "genobatch serving the AWS Batch API at %s (auth %s, pid %d)",
            settings.endpoint,
            "on" if settings.auth else "off",
            os.getpid(),
        )
        server.run(sockets=[sock])
    finally:
        retention.stop()
        workflows.stop()
        engine.stop()
        settings.server_file.unlink(missing_ok=True)
        sock.close()
