"""Commands about the server itself: ``server`` (run one), ``init`` and ``credentials``."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

import click

from genobatch.cli.client import Client, SigningKey, load_primary_key, read_server_file
from genobatch.cli.errors import CliError
from genobatch.config import DEFAULT_PORT, DEFAULT_REGION, Settings, default_data_dir


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (overrides the global --data-dir).",
)
@click.option("--db", envvar="GENOBATCH_DB", help="SQLAlchemy database URL [default: SQLite in the data dir].")
@click.option("--no-auth", is_flag=True, help="Accept unsigned requests (trusted networks only).")
@click.option("--cpus", type=click.IntRange(1), help="CPUs jobs may use [default: all of the host's].")
@click.option("--memory", type=click.IntRange(1), help="Memory (MiB) jobs may use [default: the host's].")
@click.option("--gpus", type=click.IntRange(0), help="GPUs jobs may use [default: those detected].")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="Region in ARNs and signatures.")
@click.option(
    "--container-runtime",
    type=click.Choice(["docker", "podman"]),
    help="Run jobs' images with this runtime [default: run commands on the host].",
)
@click.pass_obj
def server(
    client: Client,
    host: str,
    port: int,
    data_dir: Path | None,
    db: str | None,
    no_auth: bool,
    cpus: int | None,
    memory: int | None,
    gpus: int | None,
    region: str,
    container_runtime: str | None,
) -> None:
    """Run a server in the foreground (until Ctrl-C or SIGTERM)."""
    settings = Settings(
        data_dir=(data_dir or client.data_dir).expanduser(),
        db_url=db,
        host=host,
        port=port,
        auth=not no_auth,
        region=region,
        cpus=cpus,
        memory_mib=memory,
        gpus=gpus,
        container_runtime=container_runtime,
    )
    try:
        from genobatch.server import serve
    except ModuleNotFoundError as exc:
        if exc.name != "genobatch.server":
            raise
        raise CliError("this installation has no genobatch server module") from None
    # serve() handles SIGINT itself; suppressing here keeps a second Ctrl-C from printing a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        serve(settings)


def export_lines(key: SigningKey, endpoint: str, region: str) -> str:
    """Shell ``export`` lines that point boto3 and the AWS CLI at the server.

    Both region variables: botocore reads AWS_DEFAULT_REGION, newer SDKs AWS_REGION.
    """
    variables = {
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_BATCH": endpoint,
        # Job logs over CloudWatch Logs' API (genobatch.api.logs). SDKs name the variable after the
        # service id "CloudWatch Logs", not the endpoint prefix "logs".
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": endpoint,
    }
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())


@click.command("init")
@click.pass_obj
def init(client: Client) -> None:
    """Create the data directory and access key; show how to use them."""
    key = load_primary_key(client.data_dir)
    running = read_server_file(client.data_dir).get("endpoint")
    click.echo(f"data directory:  {client.data_dir}")
    click.echo(f"credentials:     {key.source}")
    click.echo(f"access key id:   {key.access_key_id}")
    click.echo("")
    if running:
        click.echo(f"a server is running at {running}")
    else:
        # Only mention --data-dir when the default (which honours $GENOBATCH_HOME) would miss it.
        custom = client.data_dir != default_data_dir()
        data_flag = f" --data-dir {shlex.quote(str(client.data_dir))}" if custom else ""
        click.echo(f"start the server with:  genobatch{data_flag} server")
        click.echo("(its first start creates the compute environment and job queue 'default')")
    click.echo("")
    click.echo("to use boto3 or the AWS CLI against it:")
    click.echo(export_lines(key, client.endpoint, client.region))


@click.command("credentials")
@click.option("--export", "export_only", is_flag=True, help='Print only the export lines: eval "$(...)".')
@click.pass_obj
def credentials(client: Client, export_only: bool) -> None:
    """Print the access key and settings for boto3 and the AWS CLI."""
    lines = export_lines(client.key, client.endpoint, client.region)
    if export_only:
        click.echo(lines)
        return
    click.echo(f"access key id:      {client.key.access_key_id}")
    click.echo(f"secret access key:  {client.key.secret_access_key}")
    click.echo(f"region:             {client.region}")
    click.echo(f"endpoint:           {client.endpoint}")
    click.echo(f"(from {client.key.source})")
    click.echo("")
    click.echo(lines)


COMMANDS = (server, init, credentials)
