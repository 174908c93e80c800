"""``genobatch workflow``: run the genomics pipeline as a Step Functions workflow, watch it, redrive it.

Everything goes through the Step Functions API (boto3's ``stepfunctions`` client) on the server's
endpoint, as it would with ``aws stepfunctions ...``; these commands only save typing:

    genobatch workflow run [--samples 3]     # definitions + state machine if needed, start, follow
    genobatch workflow status EXECUTION_ARN  # status, error, the states that failed
    genobatch workflow redrive EXECUTION_ARN # re-run only what failed, then follow
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from genobatch.cli.client import Client
from genobatch.cli.cost_cmd import fetch_summary, usd
from genobatch.cli.demo_cmd import ensure_server
from genobatch.cli.errors import CliError
from genobatch.examples.workflows import genomics
from genobatch.workflow.batch_task import run_id

pass_client = click.make_pass_decorator(Client)


POLL_S = 1.0


def _console() -> Console:
    """Output whose ARNs, paths and commands stay whole on one line (soft wrap), to be copied."""
    return Console(highlight=False, soft_wrap=True)


@cache
def _sfn(client: Client) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=client.endpoint,
        region_name=client.region,
        aws_access_key_id=client.key.access_key_id,
        aws_secret_access_key=client.key.secret_access_key,
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=60),
    )


def _progress_line(client: Client, run: str, status: str) -> str:
    summary = fetch_summary(client, {"run": run})
    jobs = summary["progress"]["jobs"]
    counts = ", ".join(f"{count} {state.lower()}" for state, count in sorted(jobs.items())) or "no jobs yet"
    return f"{status}: jobs {counts}; cost so far {usd(summary['cost']['attributedUsd'])}"


def follow(client: Client, console: Console, arn: str) -> dict:
    """Poll DescribeExecution until the execution ends, printing progress when it changes."""
    run = run_id(arn)
    last = ""
    while True:
        described = _sfn(client).describe_execution(executionArn=arn)
        line = _progress_line(client, run, described["status"])
        if line != last:
            console.print(line)
            last = line
        if described["status"] != "RUNNING":
            return described
        time.sleep(POLL_S)


def _closing(console: Console, described: dict) -> None:
    arn = described["executionArn"]
    run = run_id(arn)  # the genobatch:run tag of the execution's jobs
    console.print(f"execution [bold]{arn}[/] {described['status']}")
    if described["status"] != "SUCCEEDED":
        console.print(f"  error: {described.get('error')}: {described.get('cause')}")
        if described.get("redriveStatus") == "REDRIVABLE":
            console.print(f"  fix the cause, then re-run only what failed: genobatch workflow redrive {arn}")
    console.print(f"  its cost: genobatch cost --run {run}   (report: genobatch report {run})")
    console.print(f"  history: aws stepfunctions get-execution-history --execution-arn {arn}")


@click.group("workflow")
def workflow() -> None:
    """Step Functions workflows on genobatch (the API works with boto3 and `aws stepfunctions` too)."""


@workflow.command("run")
@click.option("--samples", default=3, show_default=True, type=click.IntRange(1, 1000), help="samples in the Map")
@click.option("--coverage", default=30.0, show_default=True, type=click.FloatRange(min=0.1), help="read depth")
@click.option("--seed", default=1, show_default=True, type=int, help="seed of the synthetic genome and reads")
@click.option(
    "--genome-size", default=genomics.DEFAULT_GENOME_SIZE, show_default=True, type=click.IntRange(2000), help="bases"
)
@click.option("--queue", default="default", show_default=True, help="job queue the stages run on")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), help="outputs [default: a new dir]")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the execution to its end")
@pass_client
def run(
    client: Client,
    samples: int,
    coverage: float,
    seed: int,
    genome_size: int,
    queue: str,
    run_dir: Path | None,
    wait: bool,
) -> None:
    """Run the demo pipeline as a state machine: per sample align -> Parallel { call -> evaluate ; stats }."""
    console = _console()
    ensure_server(client, console)
    genomics.register_job_definitions(client.batch, sys.executable)
    machine = genomics.ensure_state_machine(_sfn(client))
    name = f"genomics-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = (run_dir or client.data_dir / "runs" / name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    document = genomics.execution_input(str(run_dir), queue, samples, seed, coverage, genome_size)
    arn = _sfn(client).start_execution(stateMachineArn=machine, name=name, input=json.dumps(document))["executionArn"]
    console.print(f"started [bold]{arn}[/]: {samples} samples, outputs in {run_dir}; run {run_id(arn)}")
    if not wait:
        console.print(f"follow it with: genobatch workflow status {arn}")
        return
    described = follow(client, console, arn)
    _closing(console, described)
    if described["status"] != "SUCCEEDED":
        raise SystemExit(1)


@workflow.command("status")
@click.argument("execution_arn")
@pass_client
def status(client: Client, execution_arn: str) -> None:
    """An execution's status and, if it failed, which states failed and why."""
    console = _console()
    described = _sfn(client).describe_execution(executionArn=execution_arn)
    console.print(_progress_line(client, run_id(execution_arn), described["status"]))
    failed = []
    for page in _sfn(client).get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            if event["type"] in ("TaskFailed", "MapIterationFailed", "ExecutionFailed"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                failed.append(f"  {event['id']} {event['type']}: {details.get('error', '')} {details.get('cause', '')}")
    for line in failed[-10:]:
        console.print(line)
    _closing(console, described)


@workflow.command("redrive")
@click.argument("execution_arn")
@click.option("--wait/--no-wait", default=True, show_default=True, help="follow the execution to its end")
@pass_client
def redrive(client: Client, execution_arn: str, wait: bool) -> None:
    """RedriveExecution: re-run only the failed or aborted states (and Map iterations), keeping what succeeded."""
    console = _console()
    try:
        _sfn(client).redrive_execution(executionArn=execution_arn)
    except _sfn(client).exceptions.ExecutionNotRedrivable as error:
        raise CliError(error.response["Error"]["Message"]) from None
    console.print(f"redriven: {execution_arn}")
    if wait:
        described = follow(client, console, execution_arn)
        _closing(console, described)
        if described["status"] != "SUCCEEDED":
            raise SystemExit(1)


COMMANDS = [workflow]
