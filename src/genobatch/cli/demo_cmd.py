"""``genobatch demo``: the main job - genomics samples through a real pipeline on the embedded engine.

It starts the embedded server if none answers, registers the example pipeline's job definitions and
submits one run through the AWS Batch API like any user workload, shows live progress (jobs per
state, samples done, cost so far), and ends with the run report. Ctrl-C terminates the run's jobs.
Every invocation is a new run in its own directory, so re-running is safe.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import cost_tables, fetch_summary, usd
from genobatch.cli.errors import CliError
from genobatch.cli.report_cmd import write_run_report
from genobatch.cli.server_process import LOG_FILE, data_dir_flag, healthy, server_state, start_detached
from genobatch.config import default_data_dir

pass_client = click.make_pass_decorator(Client)
POLL_S = 0.5
STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


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


def _status_line(progress: dict, cost: dict) -> str:
    counts = progress["jobs"]
    states = " ".join(f"{state.lower()} {counts[state]}" for state in STATES if counts.get(state))
    return (
        f"{states} | samples {progress['samplesDone']}/{progress['samples']} "
        f"| cost so far {usd(cost['attributedUsd'])} attributed, {usd(cost['billedUsd'])} billed"
    )


def follow(client: Client, run_id: str, console: Console) -> dict:
    """Live progress until every job of the run is final; returns the last summary."""
    columns = (
        TextColumn("[bold]jobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("", total=None)
        while True:
            summary = fetch_summary(client, {"run": run_id})
            progress = summary["progress"]
            done = progress["jobs"].get("SUCCEEDED", 0) + progress["jobs"].get("FAILED", 0)
            bar.update(
                task, total=progress["total"], completed=done, description=_status_line(progress, summary["cost"])
            )
            if progress["total"] and done == progress["total"]:
                return summary
            time.sleep(POLL_S)


def terminate_run(client: Client, job_ids: dict[str, str], console: Console) -> None:
    """Ctrl-C: terminate every job of the run (queued ones are cancelled, running ones stopped)."""
    for job_id in job_ids.values():
        client.batch.terminate_job(jobId=job_id, reason="Cancelled by the user (Ctrl-C in genobatch demo)")
    console.print(f"[yellow]terminated the run's {len(job_ids)} jobs[/]")


def evaluation_table(run_dir: Path, samples: int) -> list[tuple[str, float, float]]:
    """(sample, precision, recall) from each sample's evaluation.json."""
    from genobatch.examples.pipeline.layout import sample_name

    rows = []
    for index in range(samples):
        path = run_dir / sample_name(index) / "evaluation.json"
        if path.exists():
            result = json.loads(path.read_text())
            rows.append((sample_name(index), result["precision"], result["recall"]))
    return rows


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
    from genobatch.examples.pipeline.plan import register_job_definitions, submit_run

    run_id = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    run_dir = (run_dir or client.data_dir / "runs" / run_id).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    register_job_definitions(client.batch, sys.executable)
    job_ids = submit_run(client.batch, queue, run_id, str(run_dir), samples, coverage, seed, tags={})
    console.print(f"run [bold]{run_id}[/]: {samples} samples at {coverage:g}x, outputs in {run_dir}")
    try:
        summary = follow(client, run_id, console)
    except KeyboardInterrupt:
        terminate_run(client, job_ids, console)
        raise SystemExit(130) from None
    for table in cost_tables(summary):
        console.print(table)
    for sample, precision, recall in evaluation_table(run_dir, samples):
        console.print(f"{sample}: precision {precision:.3f} recall {recall:.3f}")
    report = write_run_report(client, run_id, run_dir / "report", outputs=run_dir)
    console.print(f"report: [bold]{report.html}[/] (also {report.xlsx.name}, {report.trace_tsv.name})")
    failed = summary["progress"]["jobs"].get("FAILED", 0)
    if failed:
        raise CliError(f"{failed} jobs of run {run_id} failed; see `genobatch jobs` and the report")


COMMANDS = [demo]
