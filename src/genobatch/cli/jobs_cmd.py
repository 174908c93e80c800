"""Commands about jobs that exist: ``jobs`` (list), ``describe``, ``cancel`` and ``terminate``."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
from botocore.exceptions import ClientError

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError, client_error
from genobatch.cli.job_view import job_view
from genobatch.cli.native import path_segment
from genobatch.cli.render import jobs_table, print_json, stdout_console

ALL_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids per call
USAGE_THREADS = 8  # native job details fetched at once for the listing's CPU and memory columns


def all_queues(client: Client) -> list[str]:
    """Every job queue's name (DescribeJobQueues, all pages)."""
    names = []
    for page in client.batch.get_paginator("describe_job_queues").paginate():
        names += [queue["jobQueueName"] for queue in page.get("jobQueues", [])]
    return names


def list_jobs(client: Client, statuses: Iterable[str], queue: str | None, array_job_id: str | None) -> list[dict]:
    """ListJobs summaries for each status (of ``queue``, every queue when None, or an array's children).

    ListJobs answers for one queue and one status at a time (RUNNING when none is given), hence one
    query per pair. A job that changes status between two queries can appear in both; the later
    query, for the later status, wins. Each summary gets ``jobQueue`` (ListJobs leaves it out).
    """
    paginator = client.batch.get_paginator("list_jobs")
    if array_job_id:
        scopes = [{"arrayJobId": array_job_id}]
    else:
        scopes = [{"jobQueue": name} for name in ([queue] if queue else all_queues(client))]
    statuses = list(statuses)
    found: dict[str, dict] = {}
    for scope in scopes:
        for status in statuses:
            for page in paginator.paginate(jobStatus=status, **scope):
                for job in page.get("jobSummaryList", []):
                    found[job["jobId"]] = {"jobQueue": scope.get("jobQueue"), **job}
    return list(found.values())


#: A whole job id (a UUID), with an array child's ``:index``.
WHOLE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d+)?$", re.IGNORECASE)
#: The short form narrow listings print (``5c02350b…:1``, typed with or without the ellipsis): at least 4 digits.
SHORT_ID = re.compile(r"^(?P<prefix>[0-9a-f][0-9a-f-]{3,35})(?:…|\.\.\.)?(?P<index>:\d+)?$", re.IGNORECASE)


def resolve_job_id(client: Client, given: str) -> str:
    """The whole id of ``given``: itself when it is whole (or not id-like: the API then says what is wrong), else
    the one job whose id starts with the short form ``genobatch jobs`` printed in a narrow terminal.

    Ids are UUIDs, so a short form is never a job's own id; like git's short hashes it must be unambiguous,
    which costs one listing of every queue - only ever for a short form. Array children are not in queue
    listings, so ``5c02350b…:1`` resolves the parent and keeps the index."""
    match = None if WHOLE_ID.match(given) else SHORT_ID.match(given)
    if match is None:
        return given
    prefix = match.group("prefix").lower()
    found = sorted(
        {job["jobId"] for job in list_jobs(client, ALL_STATUSES, None, None) if job["jobId"].startswith(prefix)}
    )
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise CliError(
            f"job id {given!r} is ambiguous: {len(found)} jobs start with {prefix} ({shown}); give more of it"
        )
    return found[0] + (match.group("index") or "") if found else given


def resolve_job_ids(client: Client, given: Iterable[str]) -> list[str]:
    """``resolve_job_id`` for each id, in order."""
    return [resolve_job_id(client, job_id) for job_id in given]


def last_attempt_usage(client: Client, jobs: list[dict]) -> dict[str, dict]:
    """Measured usage (``cpu_time_ms``, ``peak_rss``) and ``timedOut`` of each started job's last attempt, from
    the native job detail. A job whose detail cannot be read (removed meanwhile) just has no usage shown."""
    # An array parent has no attempt of its own (its children do); children carry an index beside the size.
    parents = {job["jobId"] for job in jobs if "index" not in (job.get("arrayProperties") or {"index": None})}
    started = [job["jobId"] for job in jobs if job.get("startedAt") and job["jobId"] not in parents]

    def one(job_id: str) -> tuple[str, dict]:
        try:
            detail = client.native_get(f"/genobatch/v1/jobs/{path_segment(job_id)}")
        except CliError:
            return job_id, {}
        attempts = detail.get("attempts") or [{}]
        return job_id, {**(attempts[-1].get("usage") or {}), "timedOut": attempts[-1].get("timedOut", False)}

    if not started:
        return {}
    with ThreadPoolExecutor(max_workers=min(USAGE_THREADS, len(started))) as pool:
        return dict(pool.map(one, started))


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
@click.option("-q", "--queue", help="Only this job queue (name or ARN). Default: every queue.")
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
@click.option("-w", "--wide", is_flag=True, help="Whole job ids even in a narrow terminal.")
@click.pass_obj
def jobs(
    client: Client,
    queue: str | None,
    statuses: tuple[str, ...],
    all_statuses: bool,
    array_job_id: str | None,
    name: str | None,
    limit: int,
    as_json: bool,
    wide: bool,
) -> None:
    """List jobs of every queue (or one), or an array job's children, with elapsed time, CPU time and peak memory.

    A job killed at its memory limit shows OOM beside its status, one stopped at its timeout TIMEOUT.
    Below 120 columns ids are shortened (`--wide` or `--json` for whole ones).
    """
    if statuses and all_statuses:
        raise click.UsageError("--status and --all exclude each other")
    wanted = [s.upper() for s in statuses] if statuses else list(ALL_STATUSES)
    if array_job_id:
        array_job_id = resolve_job_id(client, array_job_id)
    found = list_jobs(client, wanted, queue, array_job_id)
    # An unknown id lists no children; an empty table would read as an array without any.
    if array_job_id and not found and not client.batch.describe_jobs(jobs=[array_job_id]).get("jobs"):
        raise CliError(f"no such job: {array_job_id}")
    selected = select_jobs(found, name, limit, by_index=array_job_id is not None)
    if as_json:
        print_json(selected)
        return
    console = stdout_console()
    prefix = None
    if array_job_id:
        parent = client.batch.describe_jobs(jobs=[array_job_id]).get("jobs") or [{}]
        prefix = (parent[0].get("tags") or {}).get("genobatch:sample-prefix")
    table = jobs_table(
        selected,
        last_attempt_usage(client, selected),
        width=console.width,
        show_queue=not queue and not array_job_id and len({job.get("jobQueue") for job in selected}) > 1,
        full_ids=wide,
        sample_prefix=prefix,
    )
    console.print(table)
    if len(selected) < len(found) and not name:
        click.echo(f"({len(found) - len(selected)} more; raise --limit to see them)", err=True)


def native_detail(client: Client, job_id: str) -> dict | None:
    """The native job detail (how each attempt ran), or None where the server cannot give it."""
    try:
        return client.native_get(f"/genobatch/v1/jobs/{path_segment(job_id)}")
    except CliError:
        return None


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
    """Show jobs in detail: status, attempts, container, array.

    A JOBID is whole, or the start `genobatch jobs` shows in a narrow terminal (5c02350b…, 5c02350b…:1)."""
    job_ids = tuple(resolve_job_ids(client, job_ids))
    found = describe_jobs(client, list(dict.fromkeys(job_ids)))
    if as_json:
        print_json(found)
    else:
        console = stdout_console()
        for job in found:
            console.print(job_view(job, native_detail(client, job["jobId"])))
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
    """Cancel jobs that have not started yet (whole ids, or the unambiguous start `genobatch jobs` shows)."""
    stop_each(resolve_job_ids(client, job_ids), client.batch.cancel_job, reason, "cancelled")


@click.command("terminate")
@click.argument("job_ids", nargs=-1, required=True, metavar="JOBID...")
@click.option("--reason", default="Terminated with genobatch terminate", show_default=True)
@click.pass_obj
def terminate(client: Client, job_ids: tuple[str, ...], reason: str) -> None:
    """Terminate jobs, stopping running ones (whole ids, or the unambiguous start `genobatch jobs` shows)."""
    stop_each(resolve_job_ids(client, job_ids), client.batch.terminate_job, reason, "terminated")


COMMANDS = (jobs, describe, cancel, terminate)
