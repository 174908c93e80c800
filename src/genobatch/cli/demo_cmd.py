"""``genobatch demo``: the main job - genomics samples through a real pipeline on the embedded engine.

It starts the embedded server if none answers, registers the example pipeline's job definitions and
submits one run through the AWS Batch API like any user workload, shows live progress (jobs per
state, samples done, cost so far), and ends with the run report. Ctrl-C terminates the run's jobs.
Every invocation is a new run in its own directory, so re-running is safe.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import cost_tables, fetch_summary
from genobatch.cli.errors import CliError
from genobatch.cli.report_cmd import write_run_report
from genobatch.cli.server_process import LOG_FILE, data_dir_flag, healthy, server_state, start_detached
from genobatch.config import default_data_dir
from genobatch.report import units
from genobatch.report.results import RunResults, metric_text

pass_client = click.make_pass_decorator(Client)
POLL_S = 0.5


def ensure_server(client: Client, console: Console) -> None:
    """Start this data directory's server in the background (``server --detach``) unless one answers."""
    if healthy(client.endpoint):
        return
    url = urlsplit(client.endpoint)
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        raise CliError(f"no genobatch server at {client.endpoint} (only a loopback server is started here)")
    state = start_detached(client.data_dir, ["--port", str(url.port)])
    console.print(f"started the embedded genobatch server (pid {state.pid}, log in {client.data_dir / LOG_FILE})")


def server_note(client: Client) -> str:
    """The closing line: the server outlives the demo, and how to stop it."""
    state = server_state(client.data_dir)
    stop = f"genobatch {data_dir_flag(client.data_dir, default_data_dir())}server stop"
    if state.running and state.endpoint and state.endpoint.rstrip("/") == client.endpoint:
        return f"the genobatch server (pid {state.pid}, {state.endpoint}) keeps running; stop it with: {stop}"
    return f"the genobatch server at {client.endpoint} keeps running"


class RunProgress(Progress):
    """Rich progress bars (the run's jobs, samples, one row per stage) with a one-line footer under them."""

    footer: Text = Text("")

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self.footer


def _counts(counts: dict[str, int]) -> str:
    """``2 running, 1 failed``: the states worth a glance (finished work is in the bar)."""
    return ", ".join(
        f"{counts[state]} {state.lower()}"
        for state in ("RUNNABLE", "STARTING", "RUNNING", "FAILED")
        if counts.get(state)
    )


def stage_counts(client: Client, job_ids: dict[str, str]) -> dict[str, dict[str, int]]:
    """Jobs per state of each stage: an array parent's status summary, or a plain job's status (one DescribeJobs)."""
    counts: dict[str, dict[str, int]] = {}
    stage_of = {job_id: stage for stage, job_id in job_ids.items()}
    for job in client.batch.describe_jobs(jobs=list(job_ids.values()))["jobs"]:
        summary = job.get("arrayProperties", {}).get("statusSummary")
        counts[stage_of[job["jobId"]]] = dict(summary) if summary else {job["status"]: 1}
    return counts


def _footer(cost: dict) -> Text:
    return Text(
        f"cost so far {units.money(cost['attributedUsd'])} attributed, {units.money(cost['billedUsd'])} billed",
        style="dim",
    )


def follow(client: Client, run_id: str, job_ids: dict[str, str], samples: int, console: Console) -> dict:
    """Live progress until every job of the run is final; returns the last summary.

    A bar for the run's jobs (counts, elapsed time, what runs or failed), one for samples (counted as each
    finishes all its stages) and one per stage, from the API's run summary and one DescribeJobs of the
    stages' jobs per poll.
    """
    columns = (
        TextColumn("{task.description:<9}", style="bold"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with RunProgress(*columns, console=console, transient=False, expand=True) as bar:
        jobs_task = bar.add_task("jobs", total=None, note="")
        samples_task = bar.add_task("samples", total=samples, note="")
        stage_tasks = {stage: bar.add_task(f" {stage}", total=None, note="") for stage in job_ids}
        while True:
            summary = fetch_summary(client, {"run": run_id})
            progress = summary["progress"]
            done = progress["jobs"].get("SUCCEEDED", 0) + progress["jobs"].get("FAILED", 0)
            bar.update(jobs_task, total=progress["total"], completed=done, note=_counts(progress["jobs"]))
            bar.update(samples_task, completed=progress["samplesDone"])
            for stage, counts in stage_counts(client, job_ids).items():
                finished = counts.get("SUCCEEDED", 0) + counts.get("FAILED", 0)
                bar.update(stage_tasks[stage], total=sum(counts.values()), completed=finished, note=_counts(counts))
            bar.footer = _footer(summary["cost"])
            if progress["total"] and done == progress["total"]:
                bar.refresh()
                return summary
            time.sleep(POLL_S)


def terminate_run(client: Client, job_ids: dict[str, str], console: Console) -> None:
    """Ctrl-C: terminate every job of the run (queued ones are cancelled, running ones stopped)."""
    for job_id in job_ids.values():
        client.batch.terminate_job(jobId=job_id, reason="Cancelled by the user (Ctrl-C in genobatch demo)")
    console.print(f"[yellow]terminated the run's {len(job_ids)} jobs[/]")


#: The published metrics the closing table shows (all of them are in the report).
SUMMARY_METRICS = ("precision", "recall", "f1", "genotype_concordance", "coverage")


def results_table(results: RunResults) -> Table:
    """Per sample: status and the headline metrics the pipeline published (a failed sample says so)."""
    table = Table(title="Results per sample", title_justify="left")
    table.add_column("sample")
    table.add_column("status")
    shown = [m for m in SUMMARY_METRICS if m in results.metrics]
    for metric in shown:
        table.add_column(metric.replace("_", " ").replace("genotype concordance", "GT concord."), justify="right")
    for sample in results.samples:
        status = f"[red]{sample.status}[/]" if sample.status == "FAILED" else sample.status
        table.add_row(sample.sample, status, *[metric_text(sample.metrics.get(m), results.units.get(m)) for m in shown])
    return table


@click.command()
@click.option("--samples", "-n", default=4, show_default=True, type=click.IntRange(1, 10_000), help="Samples to run.")
@click.option("--coverage", default=30.0, show_default=True, type=click.FloatRange(1, 500), help="Read depth.")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the simulated genomes and reads.")
@click.option("--queue", default="default", show_default=True, help="Job queue to submit to.")
@click.option(
    "--run-dir", type=click.Path(file_okay=False, path_type=Path), help="Where outputs go [<data dir>/runs/<run>]."
)
@pass_client
def demo(client: Client, samples: int, coverage: float, seed: int, queue: str, run_dir: Path | None) -> None:
    """Run genomics samples through a real pipeline (simulate, align, sort, call, stats, evaluate) as Batch jobs.

    The server it starts, if none runs, keeps running afterwards: stop it with `genobatch server stop`.
    """
    console = Console()
    ensure_server(client, console)
    try:
        _run_demo(client, console, samples, coverage, seed, queue, run_dir)
    finally:
        console.print(server_note(client), soft_wrap=True, markup=False, highlight=False)


def _run_demo(
    client: Client, console: Console, samples: int, coverage: float, seed: int, queue: str, run_dir: Path | None
) -> None:
    from genobatch.examples.pipeline.layout import DECLARED_OUTPUTS
    from genobatch.examples.pipeline.plan import register_job_definitions, submit_run

    run_id = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    run_dir = (run_dir or client.data_dir / "runs" / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    register_job_definitions(client.batch, sys.executable)
    job_ids = submit_run(client.batch, queue, run_id, str(run_dir), samples, coverage, seed, tags={})
    console.print(f"run [bold]{run_id}[/]: {samples} samples at {coverage:g}x, outputs in {run_dir}")
    try:
        summary = follow(client, run_id, job_ids, samples, console)
    except KeyboardInterrupt:
        terminate_run(client, job_ids, console)
        raise SystemExit(130) from None
    for table in cost_tables(summary):
        console.print(table)
    results = RunResults.from_document(client.native_get("/genobatch/v1/runs/results", {"run": run_id}))
    console.print(results_table(results))
    for error in results.errors:
        console.print(f"[red]failed[/] {error.name}: {error.reason}", soft_wrap=True, highlight=False)
    report = write_run_report(client, run_id, run_dir / "report", outputs=run_dir, declared_outputs=DECLARED_OUTPUTS)
    console.print(f"report: [bold]{report.html}[/] (also {report.xlsx.name}, {report.trace_tsv.name})")
    failed = summary["progress"]["jobs"].get("FAILED", 0)
    if failed:
        raise CliError(f"{failed} jobs of run {run_id} failed; see `genobatch jobs` and the report")


COMMANDS = [demo]
