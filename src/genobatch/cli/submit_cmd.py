"""``genobatch submit``: SubmitJob from flags, with an ad-hoc definition for bare commands.

``genobatch submit NAME -- COMMAND...`` needs no job definition: one named ``genobatch-adhoc``
(image ``host``, so the command runs on the host) is registered the first time and reused while
it stays identical, and the command goes in ``containerOverrides``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError
from genobatch.cli.render import print_json

ADHOC_DEFINITION = "genobatch-adhoc"
ADHOC_CONTAINER: dict[str, Any] = {
    "image": "host",
    "resourceRequirements": [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "1024"},
    ],
}
DEPENDENCY_TYPES = ("N_TO_N", "SEQUENTIAL")


def parse_pair(value: str, option: str) -> tuple[str, str]:
    """``K=V`` as ``(K, V)``; V may itself hold ``=``."""
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
    return key, val


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """Repeated ``K=V`` options as a dict (later ones win, as in a shell)."""
    return dict(parse_pair(v, option) for v in values)


def pairs_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """Click callback: parse ``K=V`` while parsing arguments, before any request is made."""
    return parse_pairs(values, f"--{param.name}")


def dependencies_option(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[dict]:
    """Click callback: ``--depends-on`` values as ``dependsOn`` entries."""
    return [parse_dependency(v) for v in values]


def parse_dependency(value: str) -> dict[str, str]:
    """``ID`` or ``ID:N_TO_N`` / ``ID:SEQUENTIAL`` as a ``dependsOn`` entry.

    Only a known type after the last ``:`` is split off, because array child ids
    (``<parent>:<index>``) contain a ``:`` themselves.
    """
    job_id, sep, kind = value.rpartition(":")
    if sep and kind.upper() in DEPENDENCY_TYPES:
        if not job_id:
            raise click.BadParameter(f"no job id in {value!r}", param_hint="--depends-on")
        return {"jobId": job_id, "type": kind.upper()}
    return {"jobId": value}


def resource_requirements(vcpus: float | None, memory: int | None, gpus: int | None) -> list[dict[str, str]]:
    """The ``resourceRequirements`` override for the flags given (empty when none were)."""
    found = []
    if vcpus is not None:
        found.append({"type": "VCPU", "value": f"{vcpus:g}"})
    if memory is not None:
        found.append({"type": "MEMORY", "value": str(memory)})
    if gpus is not None:
        found.append({"type": "GPU", "value": str(gpus)})
    return found


def container_overrides(
    command: tuple[str, ...], env: Mapping[str, str], requirements: list[dict[str, str]]
) -> dict[str, Any]:
    """``containerOverrides`` holding only what the user set, so the definition supplies the rest."""
    overrides: dict[str, Any] = {}
    if command:
        overrides["command"] = list(command)
    if env:
        overrides["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    if requirements:
        overrides["resourceRequirements"] = requirements
    return overrides


def requirement_set(container: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Resource requirements as comparable ``(type, value)`` pairs, whatever their order."""
    return {(str(r.get("type")), str(r.get("value"))) for r in container.get("resourceRequirements") or ()}


def is_adhoc_definition(definition: Mapping[str, Any]) -> bool:
    """Whether an existing revision is the one we would register (so it can be reused)."""
    container = definition.get("containerProperties") or {}
    return (
        definition.get("type") == "container"
        and container.get("image") == ADHOC_CONTAINER["image"]
        and requirement_set(container) == requirement_set(ADHOC_CONTAINER)
    )


def adhoc_definition(client: Client) -> str:
    """The ARN of an active, identical ``genobatch-adhoc`` revision, registering one if none is."""
    pages = client.batch.get_paginator("describe_job_definitions").paginate(
        jobDefinitionName=ADHOC_DEFINITION, status="ACTIVE"
    )
    revisions = [d for page in pages for d in page.get("jobDefinitions", [])]
    for definition in sorted(revisions, key=lambda d: d.get("revision", 0), reverse=True):
        if is_adhoc_definition(definition):
            return definition["jobDefinitionArn"]
    response = client.batch.register_job_definition(
        jobDefinitionName=ADHOC_DEFINITION, type="container", containerProperties=ADHOC_CONTAINER
    )
    return response["jobDefinitionArn"]


def submit_request(name: str, queue: str, definition: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The SubmitJob request from the command's options; absent options are left out entirely."""
    request: dict[str, Any] = {"jobName": name, "jobQueue": queue, "jobDefinition": definition}
    requirements = resource_requirements(options["vcpus"], options["memory"], options["gpus"])
    overrides = container_overrides(options["command"], options["env"], requirements)
    optional: dict[str, Any] = {
        "containerOverrides": overrides,
        "arrayProperties": {"size": options["array_size"]} if options["array_size"] else None,
        "dependsOn": options["depends_on"],
        "parameters": options["parameter"],
        "retryStrategy": {"attempts": options["attempts"]} if options["attempts"] else None,
        "timeout": {"attemptDurationSeconds": options["timeout"]} if options["timeout"] else None,
        "schedulingPriorityOverride": options["priority"],
        "tags": options["tag"],
    }
    request.update({k: v for k, v in optional.items() if v not in (None, {}, [])})
    return request


@click.command("submit")
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-q", "--queue", default="default", show_default=True, help="Job queue name or ARN.")
@click.option("-d", "--definition", help="Job definition (name, name:revision or ARN).")
@click.option("--array-size", type=click.IntRange(2, 10000), help="Submit an array job of this many children.")
@click.option(
    "--depends-on",
    multiple=True,
    callback=dependencies_option,
    metavar="ID[:N_TO_N|SEQUENTIAL]",
    help="Wait for this job (repeatable).",
)
@click.option("--vcpus", type=click.FloatRange(0, min_open=True), help="vCPUs (overrides the definition).")
@click.option("--memory", type=click.IntRange(1), help="Memory in MiB (overrides the definition).")
@click.option("--gpus", type=click.IntRange(0), help="GPUs (overrides the definition).")
@click.option(
    "-e", "--env", multiple=True, callback=pairs_option, metavar="K=V", help="Environment variable (repeatable)."
)
@click.option(
    "-p", "--parameter", multiple=True, callback=pairs_option, metavar="K=V", help="Ref::parameter value (repeatable)."
)
@click.option("--attempts", type=click.IntRange(1, 10), help="Retry strategy: attempts in total.")
@click.option("--timeout", type=click.IntRange(1), metavar="SECONDS", help="Per-attempt time limit.")
@click.option("--priority", type=int, help="Scheduling priority override (fair-share queues).")
@click.option("--tag", multiple=True, callback=pairs_option, metavar="K=V", help="Tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole SubmitJob response as JSON.")
@click.pass_obj
def submit(client: Client, name: str, definition: str | None, queue: str, as_json: bool, **options: Any) -> None:
    """Submit job NAME; print its id.

    Give a job definition with --definition, or just a command after --:

    \b
        genobatch submit hello -- echo hello world
    """
    if definition is None:
        if not options["command"]:
            raise CliError("give a job definition (--definition) or a command after --")
        definition = adhoc_definition(client)
    response = client.batch.submit_job(**submit_request(name, queue, definition, options))
    if as_json:
        print_json(response)
    else:
        click.echo(response["jobId"])


COMMANDS = (submit,)
