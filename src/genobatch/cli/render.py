"""Tables and formatting shared by the listing commands.

Values come straight from Batch API responses (timestamps in epoch milliseconds, resources as
``resourceRequirements`` lists), so the helpers here accept exactly those shapes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Terminal-independent width used when output is piped, so ``genobatch jobs | grep`` gets one
# line per row instead of rich's 80-column wrapping.
PIPE_WIDTH = 240

STATUS_STYLES = {
    "SUBMITTED": "white",
    "PENDING": "yellow",
    "RUNNABLE": "cyan",
    "STARTING": "blue",
    "RUNNING": "bold blue",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "VALID": "green",
    "INVALID": "red",
    "ENABLED": "green",
    "DISABLED": "yellow",
    "ACTIVE": "green",
    "INACTIVE": "dim",
}


def stdout_console() -> Console:
    """A console on stdout; wide when not a terminal unless ``COLUMNS`` says how wide (a user's explicit width
    wins, piped or not). Built per call so tests' captured stdout is used."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return Console(width=int(columns), highlight=False)
    return Console(width=max(PIPE_WIDTH, shutil.get_terminal_size().columns), highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON, no colour, boto3's ``ResponseMetadata`` dropped."""
    if isinstance(data, Mapping):
        data = {k: v for k, v in data.items() if k != "ResponseMetadata"}
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def timestamp(ms: int | None, compact: bool = False) -> str:
    """Local time of an epoch-milliseconds value; ``compact`` drops the date for today's times."""
    if not ms:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000)
    if compact and moment.date() == datetime.now().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def styled_status(status: str | None) -> str:
    """The status as rich markup, coloured by how it is going."""
    if not status:
        return "-"
    return f"[{STATUS_STYLES.get(status, 'white')}]{escape(status)}[/]"


def text(value: Any) -> str:
    """A cell: ``-`` for missing values, markup-escaped otherwise (names and reasons are user text)."""
    if value is None or value == "":
        return "-"
    return escape(str(value))


def resources(requirements: Iterable[Mapping[str, str]] | None, vcpus: Any = None, memory: Any = None) -> str:
    """``resourceRequirements`` (or the legacy ``vcpus``/``memory``) as ``2 vCPU, 4096 MiB, 1 GPU``."""
    found = {r.get("type"): r.get("value") for r in requirements or ()}
    vcpu = found.get("VCPU", vcpus)
    mem = found.get("MEMORY", memory)
    parts = []
    if vcpu is not None:
        parts.append(f"{vcpu} vCPU")
    if mem is not None:
        parts.append(f"{mem} MiB")
    if found.get("GPU") is not None:
        parts.append(f"{found['GPU']} GPU")
    return ", ".join(parts) or "-"


def command_line(command: Iterable[str] | None) -> str:
    """A command list as one readable line (not shell-exact; for display only)."""
    return " ".join(command or ()) or "-"


#: Ids shown in narrow listings: the first 8 hex digits identify a job among thousands (as git's short hashes do).
SHORT_ID = 8
OOM_MARK = "OutOfMemoryError"
TIMEOUT_MARK = "exceeded timeout"


def short_id(job_id: str) -> str:
    """``1a2b3c4d…:7`` for ``1a2b3c4d-...-...:7``: the start of the UUID and the array index."""
    parent, sep, index = job_id.partition(":")
    return (parent[:SHORT_ID] + "…" if len(parent) > SHORT_ID + 1 else parent) + sep + index


def clock(ms: float | None) -> str:
    """``H:MM:SS`` (``D-HH:MM:SS`` past a day), as ``sacct`` prints elapsed and CPU time; ``-`` when unknown."""
    if ms is None or ms < 0:
        return "-"
    seconds = int(round(ms / 1000))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}" if days else f"{hours}:{minutes:02d}:{secs:02d}"


def cpu_clock(ms: float | None) -> str:
    """CPU time as ``sacct``'s TotalCPU reads: ``M:SS.s`` under an hour (a short job's 0.4 s is not ``0:00:00``),
    ``H:MM:SS`` from an hour up; ``-`` when unknown."""
    if ms is None or ms < 0:
        return "-"
    if ms >= 3_600_000:
        return clock(ms)
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes)}:{seconds:04.1f}"


def memory(size: float | None) -> str:
    """Peak memory in ``sacct``'s style: ``512K``, ``37M``, ``1.5G``; ``-`` when unknown."""
    if size is None:
        return "-"
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{int(size)}B"


def ended_how(job: Mapping[str, Any], usage: Mapping[str, Any] | None = None) -> str:
    """``OOM`` or ``TIMEOUT`` when the job's last attempt ended so, else ``""`` (shown beside its status)."""
    reasons = " ".join(
        str(value or "") for value in (job.get("statusReason"), (job.get("container") or {}).get("reason"))
    )
    if OOM_MARK in reasons:
        return "OOM"
    if TIMEOUT_MARK in reasons or (usage or {}).get("timedOut"):
        return "TIMEOUT"
    return ""


def job_name(job: Mapping[str, Any], sample_prefix: str | None = None) -> str:
    """The name, with ``[size]`` on an array parent and ``[index] sample`` on a child."""
    array = job.get("arrayProperties") or {}
    name = str(job.get("jobName") or "-")
    if "index" in array:
        sample = f" {sample_prefix}{array['index']}" if sample_prefix else ""
        return f"{name}[{array['index']}]{sample}"
    if "size" in array:
        return f"{name} [{array['size']}]"
    return name


def _reason(job: Mapping[str, Any]) -> str | None:
    """The reason a listing shows: the container's says what happened (OutOfMemoryError: ...), the job's often
    only that it exited; a success's ("Essential container in task exited") says nothing, so none."""
    if job.get("status") == "SUCCEEDED":
        return None
    return (job.get("container") or {}).get("reason") or job.get("statusReason") or None


def jobs_table(
    summaries: Iterable[Mapping[str, Any]],
    usage: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    width: int = PIPE_WIDTH,
    show_queue: bool = False,
    full_ids: bool = False,
    sample_prefix: str | None = None,
    now_ms: float | None = None,
) -> Table:
    """The ``genobatch jobs`` table from ``ListJobs`` summaries, like ``sacct``: elapsed, CPU time, peak memory.

    ``usage`` maps job ids to their last attempt's measured usage (``cpu_time_ms``, ``peak_rss``,
    ``timedOut``). Below 120 columns ids are shortened (``--wide`` keeps them whole), and the queue and
    start time left out; name, status, exit code and reason always stay, the name and reason wrapping if
    they must.
    """
    usage = usage or {}
    narrow = width < 120
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("JOB ID", no_wrap=True, overflow="fold" if full_ids else "ellipsis")
    table.add_column("NAME", overflow="fold", min_width=8, ratio=3)
    show_queue = show_queue and not narrow  # below 120 columns the queue gives way to name and reason
    if show_queue:
        table.add_column("QUEUE", overflow="fold", min_width=5, ratio=1)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("EXIT", justify="right", no_wrap=True)
    if not narrow:
        table.add_column("STARTED", no_wrap=True)
    table.add_column("ELAPSED", justify="right", no_wrap=True)
    table.add_column("CPU", justify="right", no_wrap=True)
    table.add_column("MAXMEM", justify="right", no_wrap=True)
    summaries = list(summaries)
    if any(_reason(job) for job in summaries):
        table.add_column("REASON", overflow="fold", min_width=12, ratio=2)
    else:
        # No reason to show: a flexible REASON column would still take two fifths of the spare width from the
        # names (at 120 columns a 38-character demo name wrapped onto three lines beside an empty column).
        table.add_column("REASON", no_wrap=True)
    for job in summaries:
        job_id = str(job.get("jobId"))
        measured = usage.get(job_id) or {}
        started, stopped = job.get("startedAt"), job.get("stoppedAt")
        elapsed = (stopped or now_ms) - started if started else None
        status = styled_status(job.get("status"))
        how = ended_how(job, measured)
        if how:
            status += f" [bold red]{how}[/]"
        row = [escape(job_id if full_ids or not narrow else short_id(job_id)), text(job_name(job, sample_prefix))]
        if show_queue:
            row.append(text(str(job.get("jobQueue") or "-").rsplit("/", 1)[-1]))
        row += [status, text((job.get("container") or {}).get("exitCode"))]
        if not narrow:
            row.append(timestamp(started, compact=True))
        row += [
            clock(elapsed),
            cpu_clock(measured.get("cpu_time_ms")),
            memory(measured.get("peak_rss")),
            text(_reason(job)) if _reason(job) else "",
        ]
        table.add_row(*row)
    return table


def queues_table(queues: Iterable[Mapping[str, Any]]) -> Table:
    """``genobatch queues`` from ``DescribeJobQueues``."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "STATE", "STATUS", "PRIORITY", "COMPUTE ENVIRONMENTS", "REASON"):
        table.add_column(column)
    for queue in queues:
        order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda e: e.get("order", 0))
        environments = ", ".join(e.get("computeEnvironment", "").rsplit("/", 1)[-1] for e in order)
        table.add_row(
            text(queue.get("jobQueueName")),
            styled_status(queue.get("state")),
            styled_status(queue.get("status")),
            text(queue.get("priority")),
            text(environments),
            text(queue.get("statusReason")),
        )
    return table


def compute_environments_table(environments: Iterable[Mapping[str, Any]]) -> Table:
    """``genobatch compute-environments`` from ``DescribeComputeEnvironments``."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "TYPE", "STATE", "STATUS", "MAX VCPUS", "REASON"):
        table.add_column(column)
    for env in environments:
        compute = env.get("computeResources") or {}
        kind = env.get("type") or "-"
        if compute.get("type"):
            kind = f"{kind}/{compute['type']}"
        table.add_row(
            text(env.get("computeEnvironmentName")),
            text(kind),
            styled_status(env.get("state")),
            styled_status(env.get("status")),
            text(compute.get("maxvCpus")),
            text(env.get("statusReason")),
        )
    return table


def definitions_table(definitions: Iterable[Mapping[str, Any]]) -> Table:
    """``genobatch definitions`` from ``DescribeJobDefinitions``."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "REV", "TYPE", "STATUS", "IMAGE", "RESOURCES", "COMMAND"):
        table.add_column(column)
    for definition in definitions:
        container = definition.get("containerProperties") or {}
        table.add_row(
            text(definition.get("jobDefinitionName")),
            text(definition.get("revision")),
            text(definition.get("type")),
            styled_status(definition.get("status")),
            text(container.get("image")),
            resources(container.get("resourceRequirements"), container.get("vcpus"), container.get("memory")),
            text(command_line(container.get("command"))),
        )
    return table
