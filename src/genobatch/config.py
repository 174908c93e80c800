"""Settings of a genobatch server, from flags and environment variables.

Precedence: command-line flag, then environment variable, then default. The data directory holds
the SQLite database, the credentials and every attempt's working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8741
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


def default_data_dir() -> Path:
    """``$GENOBATCH_HOME`` if set, else ``~/.genobatch``."""
    env = os.environ.get("GENOBATCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".genobatch"


@dataclass(frozen=True)
class Settings:
    """Everything a server process needs to start."""

    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str | None = None  # None: SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    auth: bool = True
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT
    # Local backend inventory overrides; None means "discover from the host".
    cpus: int | None = None
    memory_mib: int | None = None
    gpus: int | None = None
    container_runtime: str | None = None  # "docker" or "podman"; None runs on the host
    stop_grace_s: float = 30.0
    # Local backend: run jobs' commands as this user (the server must be root); cap each attempt's
    # output.log at this many MiB (0: no cap).
    job_user: str | None = None
    max_log_mib: int = 100
    # Local backend: "persistent" (one launcher process per data directory that outlives the
    # server; see genobatch.backends.launcher) or "wrapper" (a shell wrapper per attempt).
    launcher: str = "persistent"
    # --no-auth on an address other hosts can reach hands them command execution: refused unless set.
    allow_unauthenticated_remote: bool = False
    # Retention of finished jobs' attempt directories (see genobatch.retention); None keeps forever.
    keep_logs_s: float | None = 30 * 86400.0
    keep_logs_jobs: int | None = 10_000
    keep_work_s: float | None = 86400.0
    keep_records_s: float | None = 3600.0
    retention_interval_s: float = 600.0
    # Opt-in per-operation quotas of the wire API, calls per second (see genobatch.api.rate_limit).
    api_rate_limits: dict[str, float] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the store."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'genobatch.db'}"

    @property
    def jobs_dir(self) -> Path:
        """Where attempt directories live: ``jobs/<job id>/<attempt>/``."""
        return self.data_dir / "jobs"

    @property
    def server_file(self) -> Path:
        """Written by a running server: its endpoint and pid, so the CLI finds it."""
        return self.data_dir / "server.json"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"
