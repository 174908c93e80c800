"""``genobatch logs``: a job attempt's output, from the native logs endpoint.

The endpoint pages through the log by byte offset and says when the attempt has finished
(``complete``), so following is: print each chunk, move to ``nextOffset``, poll until complete.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError
from genobatch.cli.jobs_cmd import resolve_job_id
from genobatch.cli.native import path_segment

POLL_INTERVAL_S = 1.0
WAITING = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING")


def logs_path(job_id: str) -> str:
    """The native endpoint path of a job's log."""
    return f"/genobatch/v1/jobs/{path_segment(job_id)}/logs"


def fetch_chunk(client: Client, job_id: str, attempt: int | None, offset: int) -> dict[str, Any]:
    """One page of the log from ``offset``; ``attempt`` None lets the server pick the latest."""
    return client.native_get(logs_path(job_id), {"attempt": attempt, "offset": offset})


def why_waiting(job: dict[str, Any]) -> str:
    """One line on why a job has no output yet: its status and what it waits for."""
    status, reason = job.get("status"), job.get("statusReason")
    if status == "PENDING":
        dependencies = [dep.get("jobId", "?") for dep in job.get("dependsOn") or []]
        what = f"its dependencies ({', '.join(dependencies)})" if dependencies else "its dependencies"
        return f"{job['jobId']} is PENDING: waiting for {what} to succeed"
    if status == "RUNNABLE":
        queue = str(job.get("jobQueue", "")).rsplit("/", 1)[-1]
        why = reason or f"waiting for capacity in queue {queue} (every vCPU, GPU or MiB it needs is in use)"
        return f"{job['jobId']} is RUNNABLE: {why}"
    return f"{job['jobId']} is {status}" + (f": {reason}" if reason else "")


def check_loggable(client: Client, job_id: str) -> dict[str, Any] | None:
    """The job's DescribeJobs item (None if it has none); an array parent has no log of its own, so that is an
    error saying what to do instead."""
    found = client.batch.describe_jobs(jobs=[job_id]).get("jobs") or []
    if not found:
        return None
    job = found[0]
    array = job.get("arrayProperties") or {}
    if "size" in array and "index" not in array:
        size = array["size"]
        raise CliError(
            f"{job_id} is an array job of {size} children; each child has its own log: "
            f"genobatch logs {job_id}:0 (children 0 to {size - 1}; genobatch jobs --array {job_id} lists them)"
        )
    return job


def wait_for_start(client: Client, job_id: str, follow: bool) -> bool:
    """A job with no attempt yet: say why it waits (on stderr, again whenever that changes); with ``follow``, poll
    until it starts. Returns whether there may be a log to read now."""
    job = check_loggable(client, job_id)
    said = ""
    while job is not None and job.get("status") in WAITING:
        line = why_waiting(job)
        if line != said:
            click.echo(f"genobatch: {line}", err=True)
            said = line
        if not follow:
            return False
        time.sleep(POLL_INTERVAL_S)
        job = (client.batch.describe_jobs(jobs=[job_id]).get("jobs") or [None])[0]
    return True


def say_no_output(client: Client, job_id: str, attempt: int | None) -> None:
    """An attempt that printed nothing: say so, and how it ended, on stderr (silence read as a broken command)."""
    job = (client.batch.describe_jobs(jobs=[job_id]).get("jobs") or [{}])[0]
    attempts = job.get("attempts") or [{}]
    number = attempt if attempt and attempt <= len(attempts) else len(attempts)
    ended = attempts[number - 1]
    container = ended.get("container") or {}
    exit_code = container.get("exitCode")
    parts = [
        job.get("status") if number == len(attempts) else None,  # the job's status is its last attempt's
        None if exit_code is None else f"exit code {exit_code}",
        container.get("reason") or ended.get("statusReason"),
    ]
    how = ", ".join(str(part) for part in parts if part)
    which = f"attempt {attempt}" if attempt else "the attempt"
    click.echo(f"genobatch: {which} of {job_id} wrote no output" + (f" ({how})" if how else ""), err=True)


def stream_log(client: Client, job_id: str, attempt: int | None, follow: bool) -> None:
    """Write the log to stdout as it is read; with ``follow``, keep polling until it is complete.

    A job without an attempt yet gets one line on why it waits (an array parent: which logs to read instead)."""
    offset = 0
    checked = False
    written = 0
    while True:
        chunk = fetch_chunk(client, job_id, attempt, offset)
        if chunk.get("attempt") is None and attempt is None and not checked:
            checked = True
            if not wait_for_start(client, job_id, follow):
                return
            continue
        if chunk.get("removed"):
            click.echo(f"genobatch: {chunk['removed']}", err=True)
        data = chunk.get("data") or ""
        if data:
            # Raw write, not rich: log text must come out byte for byte, brackets and all.
            sys.stdout.write(data)
            sys.stdout.flush()
            written += len(data)
        # Pin the attempt the server chose, so a retry starting mid-follow does not switch logs.
        attempt = chunk.get("attempt") or attempt
        offset = int(chunk.get("nextOffset", offset + len(data.encode())))
        if chunk.get("complete"):
            if not written and not offset:
                say_no_output(client, job_id, attempt)
            return
        if not data:
            if not follow:
                return
            time.sleep(POLL_INTERVAL_S)


@click.command("logs")
@click.argument("job_id", metavar="JOBID")
@click.option("--attempt", type=click.IntRange(1), help="Which attempt (1-based); default the latest.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the attempt finishes.")
@click.pass_obj
def logs(client: Client, job_id: str, attempt: int | None, follow: bool) -> None:
    """Print a job attempt's output (stdout and stderr).

    JOBID is whole, or the start `genobatch jobs` shows in a narrow terminal (5c02350b…:1)."""
    try:
        stream_log(client, resolve_job_id(client, job_id), attempt, follow)
    except KeyboardInterrupt:
        # Ctrl-C is how one stops following; it is not an error.
        click.echo("", err=True)


COMMANDS = (logs,)
