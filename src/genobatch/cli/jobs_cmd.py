"""Commands about jobs that exist: ``jobs`` (list), ``describe``, ``cancel`` and ``terminate``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

import click
from botocore.exceptions import ClientError

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError, client_error
from genobatch.cli.job_view import job_view
from genobatch.cli.render import jobs_table, print_json, stdout_console

ALL_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids per call


def list_jobs(client: Client, statuses: Iterable[str], queue: str, array_job_id: str | None) -> list[dict]:
    """ListJobs summaries for each status, following pages.

    ListJobs answers for one status at a time (RUNNING when none is given), hence one query per
    status. A job that changes status between two queries can appear in both; the later query,
    for the later status, wins.
    """
    paginator = client.batch.get_paginator("list_jobs")
    scope = {"arrayJobId": array_job_id} if array_job_id else {"jobQueue": queue}
    found: dict[str, dict] = {}
    for status in statuses:
        for page in paginator.paginate(jobStatus=status, **scope):
            for job in page.get("jobSummaryList", []):
                found[job["jobId"]] = job
    return list(found.values())


def select_jobs(jobs: list[dict], name: str | None, limit: int, by_index: bool) -> list[dict]:
    """Filter by name pattern (shell-style, case-insensitive), order, and keep ``limit`` rows.

    Array children read best by index; everything else newest first.
    """
    if name:
        pattern = name.lower()
        jobs = [j for j in jobs if fnmatch.fnmatchcase(str(j.get("jobName", "")).lower(), pattern)]
    if by_index:
        jobs.sort(key=lambda j: (j.get("arrayProperties") or {}).get("index", 0))
    else:
        jobs.sort(key=lambda j: j.get("createdAt") or 0, reverse=True)
    return jobs[:limit] if limit else jobs


@click.command("jobs")
@click.option("-q", "--queue", default="default", show_default=True, help="Job queue name or ARN.")
@click.option(
    "-s",
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(ALL_STATUSES, case_sensitive=False),
    help="Only jobs in this status (repeatable). Default: every status.",
)
@click.option("-a", "--all", "all_statuses", is_flag=True, help="Every status (the default without --status).")
@click.option("--array", "array_job_id", metavar="JOBID", help="List the children of this array job instead.")
@click.option("-n", "--name", help="Only job names matching this pattern (shell wildcards).")
@click.option("--limit", type=click.IntRange(0), default=100, show_default=True, help="At most this many (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the ListJobs summaries as JSON.")
@click.pass_obj
def jobs(
    client: Client,
    queue: str,
    statuses: tuple[str, ...],
    all_statuses: bool,
    array_job_id: str | None,
    name: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List jobs in a queue, or an array job's children."""
    if statuses and all_statuses:
        raise click.UsageError("--status and --all exclude each other")
    wanted = [s.upper() for s in statuses] if statuses else list(ALL_STATUSES)
    found = list_jobs(client, wanted, queue, array_job_id)
    selected = select_jobs(found, name, limit, by_index=array_job_id is not None)
    if as_json:
        print_json(selected)
        return
    stdout_console().print(jobs_table(selected))
    if len(selected) < len(found) and not name:
        click.echo(f"({len(found) - len(selected)} more; raise --limit to see them)", err=True)


def describe_jobs(client: Client, job_ids: list[str]) -> list[dict]:
    """DescribeJobs for every id, 100 at a time, in the order asked."""
    found: dict[str, dict] = {}
    for start in range(0, len(job_ids), DESCRIBE_BATCH):
        response = client.batch.describe_jobs(jobs=job_ids[start : start + DESCRIBE_BATCH])
        found.update({job["jobId"]: job for job in response.get("jobs", [])})
    return [found[i] for i in job_ids if i in found]


@click.command("describe")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOBID...")
@click.option("--json", "as_json", is_flag=True, help="Print the DescribeJobs items as JSON.")
@click.pass_obj
def describe(client: Client, job_ids: tuple[str, ...], as_json: bool) -> None:
    """Show jobs in detail: status, attempts, container, array."""
    found = describe_jobs(client, list(dict.fromkeys(job_ids)))
    if as_json:
        print_json(found)
    else:
        console = stdout_console()
        for job in found:
            console.print(job_view(job))
    missing = sorted(set(job_ids) - {job["jobId"] for job in found})
    if missing:
        raise CliError(f"no such job: {', '.join(missing)}")


def stop_each(job_ids: Iterable[str], call: Callable[..., Any], reason: str, done: str) -> None:
    """Apply CancelJob/TerminateJob to each id; report every failure, then fail once at the end.

    Carrying on past a failure matters: one finished or mistyped id should not leave the rest
    of a batch running.
    """
    failures = 0
    for job_id in job_ids:
        try:
            call(jobId=job_id, reason=reason)
        except ClientError as exc:
            failures += 1
            CliError(f"{job_id}: {client_error(exc).format_message()}").show()
            continue
        click.echo(f"{done} {job_id}")
    if failures:
        raise CliError(f"{failures} of the jobs could not be {done}")


@click.command("cancel")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOBID...")
@click.option("--reason", default="Cancelled with genobatch cancel", show_default=True)
@click.pass_obj
def cancel(client: Client, job_ids: tuple[str, ...], reason: str) -> None:
    """Cancel jobs that have not started yet."""
    stop_each(job_ids, client.batch.cancel_job, reason, "cancelled")


@click.command("terminate")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOBID...")
@click.option("--reason", default="Terminated with genobatch terminate", show_default=True)
@click.pass_obj
def terminate(client: Client, job_ids: tuple[str, ...], reason: str) -> None:
    """Terminate jobs, stopping running ones."""
    stop_each(job_ids, client.batch.terminate_job, reason, "terminated")


COMMANDS = (jobs, describe, cancel, terminate)
