"""The human-readable view of one ``DescribeJobs`` job for ``genobatch describe``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from genobatch.cli.render import command_line, resources, styled_status, text, timestamp

# The order AWS Batch moves jobs through, so array summaries read left to right.
STATUS_ORDER = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def fields_grid(rows: list[tuple[str, str]]) -> Table:
    """Two-column ``label  value`` grid; rows whose value is missing are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    # Folded, not cut: an ARN or log stream name cut to "genobatch…" at 80 columns cannot be copied.
    grid.add_column(overflow="fold")
    for label, value in rows:
        if value not in ("", "-"):
            grid.add_row(label, value)
    return grid


def array_summary(array: Mapping[str, Any]) -> str:
    """``size 10 · SUCCEEDED 7 · RUNNING 3`` for a parent, ``index 4`` for a child."""
    if "index" in array:
        return f"index {array['index']}"
    parts = [f"size {array['size']}"] if "size" in array else []
    summary = array.get("statusSummary") or {}
    for status in STATUS_ORDER:
        if summary.get(status):
            parts.append(f"{styled_status(status)} {summary[status]}")
    return " · ".join(parts)


def dependencies(depends_on: list[Mapping[str, Any]] | None) -> str:
    """``id (N_TO_N), id`` from ``dependsOn``."""
    parts = []
    for dep in depends_on or ():
        kind = f" ({dep['type']})" if dep.get("type") else ""
        parts.append(f"{escape(str(dep.get('jobId')))}{kind}")
    return ", ".join(parts)


def key_values(pairs: Mapping[str, Any] | None) -> str:
    """``K=V`` lines from a mapping (parameters, tags)."""
    return "\n".join(f"{escape(str(k))}={escape(str(v))}" for k, v in (pairs or {}).items())


def environment(variables: list[Mapping[str, str]] | None) -> str:
    """``NAME=value`` lines from a container's ``environment`` list."""
    return "\n".join(f"{escape(v.get('name', ''))}={escape(v.get('value', ''))}" for v in variables or ())


def job_fields(job: Mapping[str, Any]) -> Table:
    """Status, placement, timing and relations of the job."""
    status = styled_status(job.get("status"))
    if job.get("statusReason"):
        status += f"  {escape(job['statusReason'])}"
    retry = (job.get("retryStrategy") or {}).get("attempts")
    timeout = (job.get("timeout") or {}).get("attemptDurationSeconds")
    return fields_grid(
        [
            ("status", status),
            ("queue", text(job.get("jobQueue"))),
            ("definition", text(job.get("jobDefinition"))),
            ("created", timestamp(job.get("createdAt"))),
            ("started", timestamp(job.get("startedAt"))),
            ("stopped", timestamp(job.get("stoppedAt"))),
            ("array", array_summary(job.get("arrayProperties") or {})),
            ("depends on", dependencies(job.get("dependsOn"))),
            ("parameters", key_values(job.get("parameters"))),
            ("tags", key_values(job.get("tags"))),
            ("max attempts", text(retry)),
            ("timeout", f"{timeout} s" if timeout else ""),
        ]
    )


def container_fields(container: Mapping[str, Any]) -> Table:
    """What ran: image, command, resources, environment and how it ended."""
    return fields_grid(
        [
            ("image", text(container.get("image"))),
            ("command", text(command_line(container.get("command")))),
            (
                "resources",
                resources(container.get("resourceRequirements"), container.get("vcpus"), container.get("memory")),
            ),
            ("environment", environment(container.get("environment"))),
            ("exit code", text(container.get("exitCode"))),
            ("reason", text(container.get("reason"))),
            ("log stream", text(container.get("logStreamName"))),
        ]
    )


def attempts_table(attempts: list[Mapping[str, Any]]) -> Table:
    """One row per finished attempt, oldest first, as ``DescribeJobs`` lists them."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("#", "STARTED", "STOPPED", "EXIT", "REASON", "STATUS REASON"):
        table.add_column(column)
    for number, attempt in enumerate(attempts, start=1):
        container = attempt.get("container") or {}
        table.add_row(
            str(number),
            timestamp(attempt.get("startedAt")),
            timestamp(attempt.get("stoppedAt")),
            text(container.get("exitCode")),
            text(container.get("reason")),
            text(attempt.get("statusReason")),
        )
    return table


def ran_how(attempt: Mapping[str, Any], image: str | None) -> str:
    """Where and how one attempt ran, from the native detail's ``execution``: in the image through a container
    runtime, or on the host (the image only recorded), on Slurm, or on AWS Batch."""
    execution = attempt.get("execution") or {}
    where = f" on {escape(str(execution['hostname']))}" if execution.get("hostname") else ""
    if execution.get("slurm_job_id"):
        partition = (
            f" (partition {escape(str(execution['slurm_partition']))})" if execution.get("slurm_partition") else ""
        )
        return f"Slurm job {escape(str(execution['slurm_job_id']))}{partition}{where}"
    if execution.get("remote_job_id"):
        kind = f" on {escape(str(execution['instance_type']))}" if execution.get("instance_type") else ""
        return f"AWS Batch job {escape(str(execution['remote_job_id']))}{kind}"
    runtime = execution.get("runtime")
    if runtime and runtime != "host":
        return f"in the image {escape(str(image or execution.get('image') or '?'))} with {escape(str(runtime))}{where}"
    if runtime == "host":
        # "host" is what `genobatch submit` records when no image was named: there is no image to speak of.
        recorded = f"the image {escape(str(image))} was recorded, not used: " if image and image != "host" else ""
        return f"on the host{where}, as a plain process ({recorded}no container runtime configured)"
    return "not started" if not attempt.get("startedAt") else "-"


def execution_table(detail: Mapping[str, Any]) -> Table:
    """Per attempt: how it ran (image or host), pinned CPUs/GPUs and measured CPU time and peak memory."""
    from genobatch.cli.render import cpu_clock, memory

    table = Table(box=None, header_style="bold", pad_edge=False)
    # "CPU IDS": the host CPUs the attempt was pinned to; "CPUS 0" read as "no CPUs".
    for column in ("#", "RAN", "CPU IDS", "CPU TIME", "MAXMEM"):
        table.add_column(column, overflow="fold")
    for attempt in detail.get("attempts") or []:
        usage = attempt.get("usage") or {}
        table.add_row(
            str(attempt.get("attempt")),
            ran_how(attempt, detail.get("image")),
            text(",".join(str(c) for c in attempt.get("cpus") or []) or None),
            cpu_clock(usage.get("cpu_time_ms")),
            memory(usage.get("peak_rss")),
        )
    return table


def job_view(job: Mapping[str, Any], detail: Mapping[str, Any] | None = None) -> RenderableType:
    """A panel titled with the job's name and id holding everything ``describe`` shows; ``detail`` (the native
    job detail) adds how each attempt ran."""
    parts: list[RenderableType] = [job_fields(job)]
    container = job.get("container")
    if container:
        parts += ["", "[bold underline]container[/]", container_fields(container)]
    attempts = job.get("attempts") or []
    if attempts:
        parts += ["", "[bold underline]attempts[/]", attempts_table(attempts)]
    if detail and detail.get("attempts"):
        parts += ["", "[bold underline]execution[/]", execution_table(detail)]
    title = f"[bold]{escape(str(job.get('jobName')))}[/]  {escape(str(job.get('jobId')))}"
    return Panel(Group(*parts), title=title, title_align="left", expand=False)
