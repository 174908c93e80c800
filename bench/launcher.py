"""Start and stop a real ``genobatch server`` for the benchmarks, and make boto3 clients for it.

Self-contained on purpose: the benchmarks must not import from ``tests/``, and they must measure
the server exactly as a user runs it (``python -m genobatch server`` in its own process), so the
numbers include the HTTP stack, SigV4 checking and the store - not an in-process shortcut.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

REGION = "us-east-1"
HEALTH_PATH = "/genobatch/v1/health"
# A source tree to run the server from instead of the installed (editable) one, e.g. a clean
# ``git archive HEAD`` export: the working tree may be mid-edit while a benchmark runs.
SRC_ENV = "GENOBATCH_BENCH_SRC"


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def now_ms() -> int:
    """Epoch milliseconds, the unit of the Batch API's ``createdAt``/``startedAt``/``stoppedAt``."""
    return time.time_ns() // 1_000_000


@dataclass
class BenchServer:
    """A ``genobatch server`` subprocess on loopback with its own (by default temporary) data dir.

    Use as a context manager; the temporary data dir is removed on exit unless ``keep`` is set.
    """

    db_url: str | None = None
    no_auth: bool = False
    extra_args: list[str] = field(default_factory=list)
    data_dir: Path | None = None
    keep: bool = False
    port: int = 0
    proc: subprocess.Popen | None = None
    _owns_dir: bool = False
    drop_database: Callable[[], None] | None = None  # drops the fresh PostgreSQL database, if one was made
    src: str | None = None  # a source tree to run this server from (overrides $GENOBATCH_BENCH_SRC)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's pid (for py-spy)."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "server.log"

    def start(self, timeout: float = 60) -> BenchServer:
        """Launch the server and block until its health endpoint answers 200."""
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="genobatch-bench-"))
            self._owns_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "genobatch", "server", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.db_url:
            cmd += ["--db", self.db_url]
        if self.no_auth:
            cmd.append("--no-auth")
        cmd += self.extra_args
        env = dict(os.environ)
        src = self.src or os.environ.get(SRC_ENV)
        if src:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        # The log goes to a file, not a pipe: a pipe nobody drains would eventually block the server.
        with open(self.log_path, "ab") as log:
            # A new session so a Ctrl-C on the benchmark does not reach the server before we stop it.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early (rc {self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.endpoint + HEALTH_PATH, timeout=1) as response:
                    # Only this process counts (another may hold the port until it binds it); a
                    # baseline tree older than the pid in the answer is taken at its word.
                    if response.status == 200 and json.loads(response.read()).get("pid") in (None, self.proc.pid):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"server did not become healthy within {timeout}s:\n{self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) the server and wait for it; harmless if it already ended."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 4000) -> str:
        if self.data_dir is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def credentials(self) -> tuple[str, str]:
        """(access key id, secret) from the data dir; the server writes them on first start."""
        assert self.data_dir is not None
        key = json.loads((self.data_dir / "credentials.json").read_text())["keys"][0]
        return key["access_key_id"], key["secret_access_key"]

    def client(self, service: str = "batch"):  # boto3 clients have no importable static type
        """A boto3 client (Batch by default; ``logs`` for CloudWatch Logs) for this server, with
        retries kept low so errors are not hidden."""
        access_key, secret_key = self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=4),
        )

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        if self.drop_database is not None:
            # Best effort: a leftover empty database is harmless, a traceback here would hide results.
            with contextlib.suppress(Exception):
                self.drop_database()
        if self._owns_dir and not self.keep and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def fresh_postgres_database(base_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database on the PostgreSQL server of ``base_url``; return (url, drop).

    Each measurement gets its own database, so an earlier run's rows never slow a later one.
    """
    import psycopg  # only needed when PostgreSQL is measured

    name = "gb_bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base_url.rsplit("/", 1)[0] + "/" + name, drop


def server_for(db_url: str | None, **kwargs: object) -> BenchServer:
    """A BenchServer on SQLite (``db_url`` None) or on a fresh database of a PostgreSQL server."""
    if db_url and db_url.startswith("postgresql"):
        url, drop = fresh_postgres_database(db_url)
        return BenchServer(db_url=url, drop_database=drop, **kwargs)
    return BenchServer(db_url=db_url, **kwargs)


def register_definition(client, command: list[str], vcpus: int = 1, memory_mib: int = 64) -> str:
    """Register a container job definition running ``command``; return its ARN.

    The image is never pulled: without ``--container-runtime`` the local backend runs the command
    on the host, which is what the benchmarks are meant to measure.
    """
    response = client.register_job_definition(
        jobDefinitionName="bench-" + uuid.uuid4().hex[:8],
        type="container",
        containerProperties={
            "image": "public.ecr.aws/docker/library/busybox",
            "command": command,
            "resourceRequirements": [
                {"type": "VCPU", "value": str(vcpus)},
                {"type": "MEMORY", "value": str(memory_mib)},
            ],
        },
    )
    return response["jobDefinitionArn"]


def run_array(
    client, queue: str, definition: str, size: int, timeout_s: float, poll_s: float
) -> tuple[str, dict, float]:
    """Submit an array of ``size`` children and poll until the parent ends (or ``timeout_s``).

    Returns (parent id, its last DescribeJobs detail, wall seconds from SubmitJob to the end).
    """
    began = time.perf_counter()
    parent = client.submit_job(
        jobName="bench-array", jobQueue=queue, jobDefinition=definition, arrayProperties={"size": size}
    )["jobId"]
    deadline = time.monotonic() + timeout_s
    detail: dict = {}
    while time.monotonic() < deadline:
        detail = client.describe_jobs(jobs=[parent])["jobs"][0]
        if detail["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(poll_s)
    return parent, detail, time.perf_counter() - began


def machine_info() -> dict[str, str]:
    """Facts about the host that the numbers depend on, for RESULTS.md."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    if os.environ.get(SRC_ENV):
        # An exported tree has no git metadata: the README's recipe leaves a COMMIT file beside src/.
        marker = Path(os.environ[SRC_ENV]).parent / "COMMIT"
        label = marker.read_text().strip() if marker.exists() else "unknown commit"
        commit = f"{label} (exported tree {os.environ[SRC_ENV]})"
    else:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            repo = Path(__file__).resolve().parent.parent
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout.strip()
            # The installed package is the working tree, which may be ahead of HEAD: say so.
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout.strip()
            if dirty:
                commit += "+dirty-src"
    return {
        "nproc": str(os.cpu_count()),
        "affinity": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load": load_average(),
    }


def filesystem_probe(directory: str | None = None, count: int = 200) -> str:
    """Mean ms of a ``mkdir`` and of a small file's create + write + close in ``directory`` (the
    temporary directory, where the benchmarks' data directories go): each attempt makes three
    directories and a few small files, and a VM's disk can turn 5-10x slower at these after heavy
    writes (bench/RESULTS.md), which moves every number here."""
    base = tempfile.mkdtemp(prefix="gb-fs-probe-", dir=directory)
    try:
        began = time.perf_counter()
        for index in range(count):
            os.mkdir(os.path.join(base, str(index)))
        made = time.perf_counter()
        for index in range(count):
            with open(os.path.join(base, str(index), "f"), "w") as fh:
                fh.write("x" * 400)
        written = time.perf_counter()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    where = directory or tempfile.gettempdir()
    return f"{where}: mkdir {(made - began) / count * 1000:.3f} ms, small file {(written - made) / count * 1000:.3f} ms"


def load_average() -> str:
    """The 1/5/15-minute load averages: on a shared host they say how far to trust a run."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation, like numpy's default."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
