"""The real genobatch server as a subprocess on loopback, and helpers to drive it.

The store is SQLite by default. With ``GENOBATCH_TEST_POSTGRES=postgresql://user@host/db`` (set
by ``.ci/run`` for its second pass) every server gets its own fresh database on that PostgreSQL
server instead, so the whole suite runs against both.

Every boto3 client made here checks every response it parses against botocore's output shape
for the operation (an ``after-call`` hook), so each end-to-end test also proves response shapes.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from shapes import assert_matches_output_shape

POSTGRES = os.environ.get("GENOBATCH_TEST_POSTGRES")
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database_url() -> str | None:
    """A new empty PostgreSQL database when the suite runs against PostgreSQL, else None (SQLite)."""
    if not POSTGRES:
        return None
    import psycopg

    name = "gb_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


@dataclass
class Server:
    """A running ``genobatch server`` process and how to talk to it."""

    data_dir: Path
    port: int
    db_url: str | None
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials(self) -> dict:
        return json.loads((self.data_dir / "credentials.json").read_text())["keys"][0]

    @property
    def access_key(self) -> str:
        return self.credentials["access_key_id"]

    @property
    def secret_key(self) -> str:
        return self.credentials["secret_access_key"]

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "genobatch", "server", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.db_url:
            cmd += ["--db", self.db_url]
        return cmd + self.args

    def start(self, timeout: float = 30) -> Server:
        first = not (self.data_dir / "credentials.json").exists()
        for _ in range(3):
            if self._start_once(timeout):
                return self
            if not first:
                break
            # The port, free when picked, was taken meanwhile (another worker's server): a first
            # start has no clients yet, so it may move to another port.
            self.port = free_port()
        raise RuntimeError(f"server exited early:\n{self.log()}")

    def _start_once(self, timeout: float) -> bool:
        """Start the process and wait until *it* answers the health check; False if it exited
        because its port was taken, else RuntimeError if it exited or did not answer in time."""
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "already in use" in self.log():
                    return False
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/genobatch/v1/health", timeout=1) as response:
                    # Another process may hold the port until this one binds it: only ours counts.
                    if response.status == 200 and json.loads(response.read()).get("pid") == self.proc.pid:
                        return True
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(timeout=30)

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def client(self, service: str = "batch", **overrides):
        """A boto3 client of ``service`` (batch, logs, stepfunctions) for this server; every
        successful response is checked against that service's botocore output shape."""
        options = {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "config": Config(retries={"max_attempts": 2, "mode": "standard"}),
        }
        options.update(overrides)
        client = boto3.client(service, **options)
        client.meta.events.register("after-call", functools.partial(_check_shape, service=service))
        return client

    def console_session(self) -> requests.Session:
        """A browser-like HTTP session signed in to the web console through its login form."""
        http = requests.Session()
        response = http.post(
            self.endpoint + "/console/login",
            data={"access_key_id": self.access_key, "secret_access_key": self.secret_key, "next": "/"},
            headers={"Origin": self.endpoint},
            allow_redirects=False,
        )
        assert response.status_code == 303, response.text[:500]
        return http

    def native(self, path: str, **params) -> dict:
        """GET one of genobatch's native endpoints, signed like the CLI signs it."""
        from genobatch.cli.client import SigningKey
        from genobatch.cli.native import signed_get

        key = SigningKey(self.access_key, self.secret_key, "test harness")
        return signed_get(self.endpoint, "/genobatch/v1" + path, params, self.region, key)

    def env(self) -> dict[str, str]:
        """Environment for the AWS CLI or another client process pointed at this server."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_ENDPOINT_URL_BATCH=self.endpoint,
        )
        return env


def _check_shape(http_response, parsed, model, service: str, **_kwargs) -> None:
    if http_response.status_code == 200:
        assert_matches_output_shape(model.name, parsed, service=service)


def launch(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Server:
    data_dir = tmp_path_factory.mktemp("genobatch")
    return Server(data_dir, free_port(), fresh_database_url(), list(args)).start()


def wait_for(client, job_id: str, statuses=("SUCCEEDED", "FAILED"), timeout: float = 60) -> dict:
    """Poll DescribeJobs until the job is in one of ``statuses``; return its detail."""
    deadline = time.monotonic() + timeout
    detail = None
    while time.monotonic() < deadline:
        jobs = client.describe_jobs(jobs=[job_id])["jobs"]
        if jobs and jobs[0]["status"] in statuses:
            return jobs[0]
        detail = jobs[0] if jobs else None
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not in {statuses} after {timeout}s; last: {detail}")


def spot_queue(client, prefix: str, instance_type: str = "m5.xlarge", max_vcpus: int = 2) -> tuple[str, str]:
    """A new job queue on a new SPOT compute environment billed as ``instance_type``: (queue, CE) names."""
    ce = f"{prefix}-ce-{uuid.uuid4().hex[:6]}"
    client.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        computeResources={"type": "SPOT", "maxvCpus": max_vcpus, "subnets": [], "instanceTypes": [instance_type]},
    )
    queue = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    return queue, ce


def queue_on_backend(client, prefix: str, tags: dict[str, str], max_vcpus: int = 64) -> tuple[str, str]:
    """A new job queue on a new compute environment with these backend tags: (queue, CE) names."""
    ce = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.create_compute_environment(
        computeEnvironmentName=ce,
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": max_vcpus, "subnets": [], "instanceTypes": ["m5.large"]},
        tags=tags,
    )
    queue = f"q-{ce}"
    client.create_job_queue(
        jobQueueName=queue, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}]
    )
    return queue, ce


def shell_definition(client, name: str, script: str, memory: int = 64) -> str:
    """Register a 1-vCPU job definition that runs ``sh -c script``; return its ARN."""
    return client.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["sh", "-c", script],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": str(memory)}],
        },
    )["jobDefinitionArn"]


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a CLI a test will Ctrl-C: SIGINT at its default and unblocked, as a shell
    starts a foreground command. A child inherits an ignored or blocked SIGINT from the test
    process, whatever state the runner (a pytest-xdist worker) or an earlier test left it in."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def run_cli(server: Server, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``genobatch ARGS`` against ``server`` as a user would; asserts it succeeded."""
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(server.data_dir), "--endpoint", server.endpoint]
    result = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, env={"COLUMNS": "200", **server.env()}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def cli_logs(server: Server, job_id: str) -> str:
    """A job's log as ``genobatch logs`` prints it (asserts the command succeeded)."""
    return run_cli(server, "logs", job_id, timeout=60).stdout


def wait_environment_status(client, name: str, status: str, timeout: float = 30) -> dict:
    """Poll DescribeComputeEnvironments until ``name`` has ``status``; return its description."""
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"][0]
        if described["status"] == status or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    assert described["status"] == status, described
    return described


def submit_array_and_dependent(client, queue: str, size: int) -> tuple[str, str]:
    """An array whose children echo who and where they are, and a job depending on it; both waited for.

    Returns (array id, dependent id); the array, each child and the dependent all SUCCEEDED.
    """
    child = shell_definition(
        client, "child", 'echo "child $AWS_BATCH_JOB_ARRAY_INDEX of $AWS_BATCH_JOB_ID on $AWS_BATCH_CE_NAME"'
    )
    array = client.submit_job(jobName="arr", jobQueue=queue, jobDefinition=child, arrayProperties={"size": size})
    after = client.submit_job(
        jobName="after", jobQueue=queue, jobDefinition=child, dependsOn=[{"jobId": array["jobId"]}]
    )
    assert wait_for(client, array["jobId"], timeout=120)["status"] == "SUCCEEDED"
    assert wait_for(client, after["jobId"], timeout=60)["status"] == "SUCCEEDED"
    children = client.describe_jobs(jobs=[f"{array['jobId']}:{i}" for i in range(size)])["jobs"]
    assert {c["status"] for c in children} == {"SUCCEEDED"}
    return array["jobId"], after["jobId"]


def execution_jobs(batch, execution_arn: str) -> list[dict]:
    """Every job a Step Functions execution submitted to the default queue, found through the Batch
    API by its ``genobatch:execution`` tag."""
    ids = []
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
        for page in batch.get_paginator("list_jobs").paginate(jobQueue="default", jobStatus=status):
            ids += [job["jobId"] for job in page["jobSummaryList"]]
    jobs = []
    for start in range(0, len(ids), 100):
        jobs += batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]
    return [job for job in jobs if job.get("tags", {}).get("genobatch:execution") == execution_arn]
