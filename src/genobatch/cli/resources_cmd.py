"""Commands for the resources jobs run on: compute environments, job queues, job definitions.

``create``/``register`` send request bodies from files unchanged (the same fields as the AWS API),
so a setup written for AWS Batch works here and vice versa. ``queues``, ``compute-environments``
and ``definitions`` list them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import click
from botocore.exceptions import ParamValidationError

from genobatch.cli.client import Client
from genobatch.cli.render import (
    compute_environments_table,
    definitions_table,
    print_json,
    queues_table,
    stdout_console,
)
from genobatch.cli.resource_files import ResourceFileError, load_requests

FILE_ARGUMENT = click.argument("file", metavar="FILE", type=str)


def send_each(source: str, call: Callable[..., dict[str, Any]], describe: Callable[[dict[str, Any]], str]) -> None:
    """Send every request in ``source`` with ``call`` and print one line per resource made.

    botocore validates each request against the Batch model before sending; its complaint is
    re-raised naming the file and item so the user knows where to look.
    """
    requests = load_requests(source)
    for number, request in enumerate(requests, start=1):
        try:
            response = call(**request)
        except ParamValidationError as exc:
            where = f"item {number}: " if len(requests) > 1 else ""
            raise ResourceFileError(source, f"{where}{exc}") from None
        click.echo(describe(response))


@click.group("create")
def create() -> None:
    """Create compute environments and job queues from files."""


@create.command("compute-environment")
@FILE_ARGUMENT
@click.pass_obj
def create_compute_environment(client: Client, file: str) -> None:
    """Create the compute environment(s) in FILE (CreateComputeEnvironment request bodies)."""
    send_each(
        file,
        client.batch.create_compute_environment,
        lambda r: f"created compute environment {r.get('computeEnvironmentName')} ({r.get('computeEnvironmentArn')})",
    )


@create.command("job-queue")
@FILE_ARGUMENT
@click.pass_obj
def create_job_queue(client: Client, file: str) -> None:
    """Create the job queue(s) in FILE (CreateJobQueue request bodies)."""
    send_each(
        file,
        client.batch.create_job_queue,
        lambda r: f"created job queue {r.get('jobQueueName')} ({r.get('jobQueueArn')})",
    )


@click.group("register")
def register() -> None:
    """Register job definitions from files."""


@register.command("job-definition")
@FILE_ARGUMENT
@click.pass_obj
def register_job_definition(client: Client, file: str) -> None:
    """Register the job definition(s) in FILE (RegisterJobDefinition request bodies)."""
    send_each(
        file,
        client.batch.register_job_definition,
        lambda r: (
            f"registered job definition {r.get('jobDefinitionName')}:{r.get('revision')} ({r.get('jobDefinitionArn')})"
        ),
    )


def paginate(client: Client, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item under ``key`` across all pages of ``operation``."""
    for page in client.batch.get_paginator(operation).paginate(**params):
        yield from page.get(key, [])


@click.command("queues")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the DescribeJobQueues items as JSON.")
@click.pass_obj
def queues(client: Client, names: tuple[str, ...], as_json: bool) -> None:
    """List job queues (all, or NAMES)."""
    params = {"jobQueues": list(names)} if names else {}
    items = list(paginate(client, "describe_job_queues", "jobQueues", **params))
    if as_json:
        print_json(items)
    else:
        stdout_console().print(queues_table(items))


@click.command("compute-environments")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the DescribeComputeEnvironments items as JSON.")
@click.pass_obj
def compute_environments(client: Client, names: tuple[str, ...], as_json: bool) -> None:
    """List compute environments (all, or NAMES)."""
    params = {"computeEnvironments": list(names)} if names else {}
    items = list(paginate(client, "describe_compute_environments", "computeEnvironments", **params))
    if as_json:
        print_json(items)
    else:
        stdout_console().print(compute_environments_table(items))


@click.command("definitions")
@click.argument("name", required=False)
@click.option("--all", "include_inactive", is_flag=True, help="Include deregistered (INACTIVE) revisions.")
@click.option("--json", "as_json", is_flag=True, help="Print the DescribeJobDefinitions items as JSON.")
@click.pass_obj
def definitions(client: Client, name: str | None, include_inactive: bool, as_json: bool) -> None:
    """List job definitions (all, or the revisions of NAME).

    Only ACTIVE revisions unless --all.
    """
    params: dict[str, Any] = {} if include_inactive else {"status": "ACTIVE"}
    if name:
        params["jobDefinitionName"] = name
    items = list(paginate(client, "describe_job_definitions", "jobDefinitions", **params))
    items.sort(key=lambda d: (d.get("jobDefinitionName", ""), d.get("revision", 0)))
    if as_json:
        print_json(items)
    else:
        stdout_console().print(definitions_table(items))


COMMANDS = (create, register, queues, compute_environments, definitions)
