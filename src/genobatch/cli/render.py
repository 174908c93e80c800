"""Tables and formatting shared by the listing commands.

Values come straight from Batch API responses (timestamps in epoch milliseconds, resources as
``resourceRequirements`` lists), so the helpers here accept exactly those shapes.
"""

from __future__ import annotations

import json
import shutil
import sys
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
    """A console on stdout; wide when not a terminal. Built per call so tests' captured stdout is used."""
    if sys.stdout.isatty():
        return Console(highlight=False)
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


def jobs_table(summaries: Iterable[Mapping[str, Any]]) -> Table:
    """The ``genobatch jobs`` table from ``ListJobs`` summaries."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("JOB ID", no_wrap=True)
    table.add_column("NAME")
    table.add_column("STATUS", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("STARTED", no_wrap=True)
    table.add_column("STOPPED", no_wrap=True)
    table.add_column("EXIT", justify="right")
    table.add_column("REASON")
    for job in summaries:
        array = job.get("arrayProperties") or {}
        name = job.get("jobName")
        if "size" in array and "index" not in array:
            name = f"{name} [{array['size']}]"  # the parent of an array job: show how many children
        exit_code = (job.get("container") or {}).get("exitCode")
        table.add_row(
            text(job.get("jobId")),
            text(name),
            styled_status(job.get("status")),
            timestamp(job.get("createdAt"), compact=True),
            timestamp(job.get("startedAt"), compact=True),
            timestamp(job.get("stoppedAt"), compact=True),
            text(exit_code),
            text(job.get("statusReason")),
        )
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
