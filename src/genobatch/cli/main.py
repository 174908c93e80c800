"""The ``genobatch`` command: a click group whose subcommands live in the ``*_cmd`` modules.

Global options say which server and data directory to use; they are turned into a lazy
:class:`~genobatch.cli.client.Client` that every subcommand receives as its context object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from genobatch import __version__
from genobatch.cli import (
    bench_cmd,
    console_cmd,
    cost_cmd,
    demo_cmd,
    jobs_cmd,
    logs_cmd,
    native_cmd,
    report_cmd,
    resources_cmd,
    server_cmd,
    simulate_cmd,
    submit_cmd,
    workflow_cmd,
)
from genobatch.cli.client import DEFAULT_ENDPOINT, Client
from genobatch.cli.errors import translated_errors
from genobatch.config import default_data_dir


class GenobatchGroup(click.Group):
    """A group that reports botocore and connection failures as one ``error:`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand with API and transport exceptions translated for the user."""

        def endpoint() -> str:
            # ctx.obj is set by the group callback, which runs inside super().invoke().
            client = ctx.obj
            return client.endpoint if isinstance(client, Client) else DEFAULT_ENDPOINT

        def unknown_key_hint() -> str:
            client = ctx.obj
            return client.unknown_key_hint() if isinstance(client, Client) else ""

        with translated_errors(endpoint, unknown_key_hint):
            return super().invoke(ctx)


@click.group(
    cls=GenobatchGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GENOBATCH_HOME",
    help="Data directory with credentials and server.json [env GENOBATCH_HOME; default ~/.genobatch].",
)
@click.option(
    "--endpoint",
    envvar="GENOBATCH_ENDPOINT",
    help=f"Server URL [env GENOBATCH_ENDPOINT; default from server.json, else {DEFAULT_ENDPOINT}].",
)
@click.option("--region", help="Region to sign requests for [default: the server's, else $AWS_REGION].")
@click.version_option(__version__, prog_name="genobatch")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, endpoint: str | None, region: str | None) -> None:
    """genobatch: AWS Batch semantics and API, running jobs on this machine.

    Start a server with `genobatch server`, then submit with `genobatch submit NAME -- COMMAND`.
    boto3 and the AWS CLI work against it too: see `genobatch credentials`.
    """
    ctx.obj = Client((data_dir or default_data_dir()).expanduser(), endpoint, region)


for module in (
    server_cmd,
    submit_cmd,
    jobs_cmd,
    logs_cmd,
    resources_cmd,
    cost_cmd,
    report_cmd,
    demo_cmd,
    bench_cmd,
    console_cmd,
    native_cmd,
):
    for command in module.COMMANDS:
        cli.add_command(command)
cli.add_command(simulate_cmd.simulate)
cli.add_command(workflow_cmd.workflow)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="genobatch")
