"""End to end: a real Snakemake drives genobatch through the unmodified aws-batch executor plugin.

Snakemake 9 with ``snakemake-executor-plugin-aws-batch`` (0.2.x) submits every rule as an AWS Batch
job to the genobatch server (reached through botocore's ``AWS_ENDPOINT_URL_BATCH``); inputs and
outputs live in S3, served on loopback by ``moto_server`` and used through
``snakemake-storage-plugin-s3``. Each job genobatch runs is the plugin's real command:
``pip install --target .snakemake/pip-deployments snakemake-storage-plugin-s3`` (needs PyPI),
``python -m snakemake --deploy-sources s3://...`` (pulls the workflow tarball from S3), then
``python -m snakemake --target-jobs RULE: ... --mode remote``. See snakemake/NOTES.md.

The plugin swallows every exception raised while polling DescribeJobs and just polls again, so a
server bug shows up as a hang: each snakemake run has a deadline, is aborted as soon as its log
shows a polling error, and a failure prints the snakemake log plus what genobatch says about the
jobs (and the tail of their output logs under the data directory).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

_NEEDED = ("snakemake", "snakemake_executor_plugin_aws_batch", "snakemake_storage_plugin_s3")
_MISSING = [name for name in _NEEDED if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.slow,
    # two workflows of a few Batch jobs each; every job pip-installs the S3 plugin (~10 s)
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        bool(_MISSING),
        reason=(
            f"Snakemake e2e needs {', '.join(_MISSING)} importable: pip install snakemake "
            "snakemake-executor-plugin-aws-batch snakemake-storage-plugin-s3"
        ),
    ),
]

HERE = Path(__file__).resolve().parent
SNAKEFILE = HERE / "snakemake" / "Snakefile"

QUEUE = "default"
JOB_ROLE = "arn:aws:iam::123456789012:role/genobatch-e2e"  # required by the plugin, recorded only
MOTO_KEY, MOTO_SECRET = "moto-e2e", "moto-e2e-secret"  # moto accepts any credentials
INPUT_TEXT = "hello\nworld\n"

SNAKEMAKE_TIMEOUT_S = 360  # per snakemake run; a healthy one takes 20-60 s
# The plugin logs these (and carries on) when a Batch call raises.
POLL_ERROR = "Error getting job status"
CLEANUP_ERRORS = ("failed to terminate Batch job", "failed to deregister Batch job definition")
SUBMITTED_RE = re.compile(
    r"AWS Batch job submitted: \{'job_name:': '(?P<name>snakejob-(?P<rule>\w+)-[0-9a-f-]{36})', "
    r"'jobId': '(?P<id>[^']+)'"
)


# --------------------------------------------------------------------------------------- moto S3
@dataclass
class MotoS3:
    endpoint: str
    log: Path

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=MOTO_KEY,
            aws_secret_access_key=MOTO_SECRET,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory):
    """``moto_server`` (moto[server]) on a free loopback port, for the S3 side of the workflow."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    s3 = MotoS3(endpoint=f"http://127.0.0.1:{port}", log=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"moto_server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                s3.client().list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer within 60 s:\n{log.read_text(errors='replace')}")
                time.sleep(0.2)
        yield s3
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# ------------------------------------------------------------------------------------- helpers
def _batch(server):
    """The harness's client when it has one (it checks every response against botocore's shapes)."""
    if callable(getattr(server, "client", None)):
        return server.client()
    import boto3

    return boto3.client(
        "batch",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key or "genobatch-e2e",
        aws_secret_access_key=server.secret_key or "genobatch-e2e",
    )


@dataclass
class Run:
    returncode: int | None
    log: str
    reason: str | None  # why the run was aborted (timeout / polling error), else None

    def submitted(self) -> dict[str, list[str]]:
        """rule -> Batch job ids, from the plugin's debug line (needs --verbose)."""
        jobs: dict[str, list[str]] = {}
        for m in SUBMITTED_RE.finditer(self.log):
            jobs.setdefault(m["rule"], []).append(m["id"])
        return jobs


def _snakemake_env(server, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SNAKEMAKE_"))}
    bindir = os.path.dirname(sys.executable)
    env.update(
        # the Batch client of the plugin: boto3 default chain, endpoint from the env
        AWS_ENDPOINT_URL_BATCH=server.endpoint,
        AWS_ACCESS_KEY_ID=server.access_key or "genobatch-e2e",
        AWS_SECRET_ACCESS_KEY=server.secret_key or "genobatch-e2e",
        AWS_DEFAULT_REGION=server.region,
        AWS_REGION=server.region,
        AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        # the job runs `pip` and `python -m snakemake` from PATH: make them this interpreter's.
        # PATH reaches the job through --envvars (job definition environment).
        PATH=bindir + os.pathsep + env.get("PATH", os.defpath),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _run_snakemake(server, s3: MotoS3, workdir: Path, prefix: str, targets: list[str]) -> Run:
    cmd = [
        sys.executable, "-m", "snakemake", *targets,
        "--snakefile", "Snakefile",
        "--executor", "aws-batch",
        "--aws-batch-region", server.region,
        "--aws-batch-job-queue", QUEUE,
        "--aws-batch-job-role", JOB_ROLE,
        "--envvars", "PATH", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT",
        "--default-storage-provider", "s3",
        "--default-storage-prefix", prefix,
        # endpoint/region/keys are env_var settings: snakemake hands them to each job as
        # SNAKEMAKE_STORAGE_S3_* in the job definition's environment.
        "--storage-s3-endpoint-url", s3.endpoint,
        "--storage-s3-access-key", MOTO_KEY,
        "--storage-s3-secret-key", MOTO_SECRET,
        "--jobs", "2",
        "--verbose",
        "--printshellcmds",
        "--nocolor",
    ]  # fmt: skip
    log_path = workdir / "snakemake.out"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=_snakemake_env(server, workdir),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + SNAKEMAKE_TIMEOUT_S
    reason = None
    while proc.poll() is None:
        text = log_path.read_text(errors="replace")
        if POLL_ERROR in text:
            reason = f"the plugin's DescribeJobs call raised ('{POLL_ERROR}'); it would poll forever"
        elif time.monotonic() > deadline:
            reason = f"snakemake did not finish within {SNAKEMAKE_TIMEOUT_S} s (hang?)"
        if reason:
            _abort(proc)
            break
        time.sleep(1)
    return Run(proc.returncode, log_path.read_text(errors="replace"), reason)


def _abort(proc: subprocess.Popen) -> None:
    """SIGINT first: snakemake then cancels its jobs (TerminateJob + DeregisterJobDefinition)."""
    for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _describe(batch, job_ids: list[str]) -> dict[str, dict]:
    if not job_ids:
        return {}
    return {j["jobId"]: j for j in batch.describe_jobs(jobs=job_ids)["jobs"]}


def _diagnostics(server, run: Run, job_ids: list[str]) -> str:
    parts = [f"--- snakemake (rc={run.returncode}, aborted: {run.reason}) log tail ---", run.log[-15000:]]
    try:
        batch = _batch(server)
        for job_id, job in _describe(batch, job_ids).items():
            container = job.get("container", {})
            parts.append(
                f"--- genobatch job {job_id} {job.get('jobName')}: status={job.get('status')} "
                f"statusReason={job.get('statusReason')!r} exitCode={container.get('exitCode')} "
                f"reason={container.get('reason')!r} attempts={len(job.get('attempts', []))}"
            )
    except Exception as e:  # diagnostics must not hide the real failure
        parts.append(f"--- DescribeJobs for diagnostics failed: {e!r}")
    if callable(getattr(server, "log", None)):
        parts.append("--- genobatch server log (tail) ---")
        parts.append(server.log())
    data_dir = Path(server.data_dir)
    for job_id in job_ids:
        logs = [p for p in data_dir.rglob("*.log") if job_id in str(p)][:3] if data_dir.is_dir() else []
        for p in logs:
            parts.append(f"--- {p} (tail) ---")
            parts.append(p.read_text(errors="replace")[-4000:])
    return "\n".join(parts)


def _check(cond: bool, what: str, server, run: Run, job_ids: list[str]) -> None:
    if not cond:
        pytest.fail(f"{what}\n{_diagnostics(server, run, job_ids)}", pytrace=False)


def _list_jobs(batch, status: str) -> list[dict]:
    summaries: list[dict] = []
    for page in batch.get_paginator("list_jobs").paginate(jobQueue=QUEUE, jobStatus=status):
        summaries.extend(page["jobSummaryList"])
    return summaries


def _definitions_inactive(batch, jobs: dict[str, dict]) -> dict[str, str]:
    """jobDefinition ARN -> status, for the definitions the plugin registered for ``jobs``."""
    arns = sorted({j["jobDefinition"] for j in jobs.values()})
    described = batch.describe_job_definitions(jobDefinitions=arns)["jobDefinitions"]
    return {d["jobDefinitionArn"]: d["status"] for d in described}


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    workdir = tmp_path / "wf"
    workdir.mkdir()
    shutil.copy(SNAKEFILE, workdir / "Snakefile")
    return workdir


@pytest.fixture
def bucket(moto_s3) -> str:
    name = f"genobatch-e2e-{uuid.uuid4().hex[:12]}"
    moto_s3.client().create_bucket(Bucket=name)
    return name


# --------------------------------------------------------------------------------------- tests
def test_two_rule_workflow_runs_on_genobatch(genobatch_server, moto_s3, bucket, workflow_dir):
    s3 = moto_s3.client()
    s3.put_object(Bucket=bucket, Key="run/data/input.txt", Body=INPUT_TEXT.encode())

    run = _run_snakemake(genobatch_server, moto_s3, workflow_dir, f"s3://{bucket}/run", [])
    submitted = run.submitted()
    ids = [i for rule_ids in submitted.values() for i in rule_ids]
    check = lambda cond, what: _check(cond, what, genobatch_server, run, ids)  # noqa: E731

    check(run.reason is None and run.returncode == 0, "snakemake did not complete the workflow")
    check(
        sorted(submitted) == ["summarize", "upper"] and all(len(v) == 1 for v in submitted.values()),
        f"expected one Batch job per remote rule (upper, summarize), saw {submitted}",
    )

    # outputs landed in S3
    upper = s3.get_object(Bucket=bucket, Key="run/results/upper.txt")["Body"].read().decode()
    summary = s3.get_object(Bucket=bucket, Key="run/results/summary.txt")["Body"].read().decode()
    check(upper == INPUT_TEXT.upper(), f"results/upper.txt is {upper!r}")
    summarize_id = submitted["summarize"][0]
    expected = f"lines=2\n{INPUT_TEXT.upper()}batch_job_id={summarize_id}\n"
    check(summary == expected, f"results/summary.txt is {summary!r}, expected {expected!r}")

    # genobatch's view: both jobs SUCCEEDED, and stayed so after the plugin's TerminateJob
    batch = _batch(genobatch_server)
    jobs = _describe(batch, ids)
    check(set(jobs) == set(ids), f"DescribeJobs returned {sorted(jobs)} for {ids}")
    for job_id, job in jobs.items():
        check(job["status"] == "SUCCEEDED", f"job {job_id} ({job['jobName']}) is {job['status']}")
        check(job.get("container", {}).get("exitCode") == 0, f"job {job_id} exitCode is not 0")
        command = job.get("container", {}).get("command", [])
        check(
            command[:2] == ["/bin/bash", "-c"] and "-m snakemake" in command[2],
            f"job {job_id} container.command is {command!r}",
        )
    succeeded = {s["jobId"] for s in _list_jobs(batch, "SUCCEEDED")}
    check(set(ids) <= succeeded, f"ListJobs(SUCCEEDED) on {QUEUE!r} lacks some of {ids}")

    # the plugin's cleanup went through: no logged errors, definitions deregistered
    for marker in CLEANUP_ERRORS:
        check(marker not in run.log, f"the plugin logged '{marker}'")
    statuses = _definitions_inactive(batch, jobs)
    check(
        len(statuses) == 2 and set(statuses.values()) == {"INACTIVE"},
        f"job definitions after the run: {statuses}",
    )


def test_failing_rule_fails_the_workflow_and_the_job(genobatch_server, moto_s3, bucket, workflow_dir):
    run = _run_snakemake(genobatch_server, moto_s3, workflow_dir, f"s3://{bucket}/run", ["fail"])
    submitted = run.submitted()
    ids = [i for rule_ids in submitted.values() for i in rule_ids]
    check = lambda cond, what: _check(cond, what, genobatch_server, run, ids)  # noqa: E731

    check(run.reason is None, "snakemake was aborted")
    check(run.returncode not in (0, None), "snakemake exited 0 although rule 'fail' exits 1")
    check(list(submitted) == ["fail"] and len(submitted["fail"]) == 1, f"submitted jobs: {submitted}")
    check("Error in rule fail" in run.log, "snakemake did not report the failed rule")
    check("AWS Batch job failed" in run.log, "the plugin did not see the Batch job fail")

    batch = _batch(genobatch_server)
    (job_id,) = submitted["fail"]
    job = _describe(batch, [job_id]).get(job_id)
    check(job is not None, f"DescribeJobs does not know job {job_id}")
    check(job["status"] == "FAILED", f"job {job_id} is {job['status']}, expected FAILED")
    check(job.get("container", {}).get("exitCode") == 1, f"job {job_id} exitCode is not 1")
    check(bool(job.get("statusReason")), f"job {job_id} FAILED without a statusReason")
    failed = {s["jobId"] for s in _list_jobs(batch, "FAILED")}
    check(job_id in failed, f"ListJobs(FAILED) on {QUEUE!r} lacks {job_id}")

    for marker in CLEANUP_ERRORS:
        check(marker not in run.log, f"the plugin logged '{marker}'")
    statuses = _definitions_inactive(batch, {job_id: job})
    check(list(statuses.values()) == ["INACTIVE"], f"job definition after the run: {statuses}")

    # The S3 plugin deletes a bucket that it leaves empty (here: after removing the workflow
    # source archive), so a missing bucket also means "no outputs".
    s3 = moto_s3.client()
    try:
        left = s3.list_objects_v2(Bucket=bucket, Prefix="run/results/").get("Contents", [])
    except s3.exceptions.NoSuchBucket:
        left = []
    check(not left, f"the failing rule left outputs: {[o['Key'] for o in left]}")
