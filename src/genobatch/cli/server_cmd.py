"""Commands about the server itself: ``server`` (run one; ``status``, ``stop``), ``init``, ``credentials``."""

from __future__ import annotations

import contextlib
import shlex
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from genobatch.cli.client import Client, SigningKey, load_primary_key, read_server_file
from genobatch.cli.errors import CliError
from genobatch.cli.server_process import (
    LOG_FILE,
    data_dir_flag,
    healthy,
    remove_stale_file,
    server_state,
    start_detached,
    stop_server,
)
from genobatch.config import DEFAULT_PORT, DEFAULT_REGION, Settings, default_data_dir

FOREVER = ("forever", "never", "unlimited")
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType):
    """``30d``, ``12h``, ``10m``, ``90s`` or plain seconds; ``forever`` (None) where allowed."""

    name = "duration"

    def __init__(self, allow_forever: bool = True) -> None:
        self.allow_forever = allow_forever

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        """Seconds as a float, or None for ``forever``."""
        if value is None or isinstance(value, float | int):
            return value
        text = str(value).strip().lower()
        if self.allow_forever and text in FOREVER:
            return None
        number, unit = (text[:-1], text[-1]) if text[-1:] in UNITS_S else (text, "s")
        try:
            seconds = float(number) * UNITS_S[unit]
        except ValueError:
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            forever = " or 'forever'" if self.allow_forever else ""
            self.fail(f"{value!r} is not a duration like 30d, 12h, 10m or 90s{forever}", param, ctx)
        return seconds


class Count(click.ParamType):
    """A non-negative number of jobs, or ``unlimited`` (None)."""

    name = "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        """The count, or None for ``unlimited``."""
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in FOREVER:
            return None
        if not text.isdigit():
            self.fail(f"{value!r} is not a number of jobs or 'unlimited'", param, ctx)
        return int(text)


def _check_rate_limits(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # Kept as text (so --detach passes it on as given); parsed again into the settings.
    from genobatch.api.rate_limit import parse_limits

    try:
        parse_limits(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _rate_limits(value: str | None) -> dict[str, float]:
    from genobatch.api.rate_limit import parse_limits  # the API's modules load only for a server

    return parse_limits(value)


def _duration_text(seconds: float | None) -> str:
    return "forever" if seconds is None else f"{seconds:g}s"


@click.group("server", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (overrides the global --data-dir).",
)
@click.option("--db", envvar="GENOBATCH_DB", help="SQLAlchemy database URL [default: SQLite in the data dir].")
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept unsigned requests (only on a loopback --host, unless also --allow-unauthenticated-remote).",
)
@click.option(
    "--allow-unauthenticated-remote",
    is_flag=True,
    help="Allow --no-auth on a non-loopback --host: anyone reaching the port can run commands.",
)
@click.option("--cpus", type=click.IntRange(1), help="CPUs jobs may use [default: all of the host's].")
@click.option("--memory", type=click.IntRange(1), help="Memory (MiB) jobs may use [default: the host's].")
@click.option("--gpus", type=click.IntRange(0), help="GPUs jobs may use [default: those detected].")
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="Region in ARNs and signatures.")
@click.option(
    "--container-runtime",
    type=click.Choice(["docker", "podman"]),
    help="Run jobs' images with this runtime [default: run commands on the host].",
)
@click.option(
    "--job-user",
    envvar="GENOBATCH_JOB_USER",
    help="Run jobs' commands as this user, not as the server's (the server must run as root).",
)
@click.option(
    "--launcher",
    type=click.Choice(["persistent", "wrapper"]),
    default="persistent",
    show_default=True,
    envvar="GENOBATCH_LAUNCHER",
    help="How host jobs are started: one persistent launcher process, or a shell wrapper per attempt.",
)
@click.option(
    "--max-log-mib",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    envvar="GENOBATCH_MAX_LOG_MIB",
    help="Cap each attempt's output.log (head and tail kept, the middle cut); 0: no cap.",
)
@click.option(
    "--keep-logs",
    type=Duration(),
    default="30d",
    show_default=True,
    envvar="GENOBATCH_KEEP_LOGS",
    help="Keep a finished job's attempt directories (logs) this long after it ended, or 'forever'.",
)
@click.option(
    "--keep-logs-jobs",
    type=Count(),
    default="10000",
    show_default=True,
    envvar="GENOBATCH_KEEP_LOGS_JOBS",
    help="Keep the attempt directories of at most this many finished jobs (the newest), or 'unlimited'.",
)
@click.option(
    "--keep-work",
    type=Duration(),
    default="1d",
    show_default=True,
    envvar="GENOBATCH_KEEP_WORK",
    help="Delete a finished attempt's work directory this long after its job ended, or 'forever'.",
)
@click.option(
    "--keep-records",
    type=Duration(),
    default="1h",
    show_default=True,
    envvar="GENOBATCH_KEEP_RECORDS",
    help="Delete a finished attempt's bookkeeping files (the store has it all) this long after it ended, or 'forever'.",
)
@click.option(
    "--retention-interval",
    type=Duration(allow_forever=False),
    default="10m",
    show_default=True,
    help="How often the retention policy runs.",
)
@click.option(
    "--api-rate-limit",
    callback=_check_rate_limits,
    envvar="GENOBATCH_API_RATE_LIMIT",
    help="Throttle wire API operations as AWS does (HTTP 429), e.g. SubmitJob=50 or SubmitJob=50,ListJobs=20.",
)
@click.option(
    "--detach",
    is_flag=True,
    help="Start in the background (log in DATA_DIR/server.log); return once it answers.",
)
@click.pass_context
def server(ctx: click.Context, data_dir: Path | None, detach: bool, **options: Any) -> None:
    """Run a server in the foreground (until Ctrl-C or SIGTERM), or --detach it; see also its commands.

    One server per data directory and database: a second one refuses to start.
    """
    client: Client = ctx.obj
    if data_dir is not None:
        client = client.with_data_dir(data_dir.expanduser())
        ctx.obj = client
    if ctx.invoked_subcommand is not None:
        given = [
            param.opts[0]
            for param in ctx.command.params
            if param.name != "data_dir" and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
        ]
        if given:
            raise click.UsageError(
                f"{', '.join(given)}: options for starting a server, not for `server {ctx.invoked_subcommand}`"
            )
        return
    if detach:
        _start_detached(ctx, client)
        return
    settings = Settings(
        data_dir=client.data_dir,
        db_url=options["db"],
        host=options["host"],
        port=options["port"],
        auth=not options["no_auth"],
        allow_unauthenticated_remote=options["allow_unauthenticated_remote"],
        region=options["region"],
        cpus=options["cpus"],
        memory_mib=options["memory"],
        gpus=options["gpus"],
        container_runtime=options["container_runtime"],
        job_user=options["job_user"],
        max_log_mib=options["max_log_mib"],
        launcher=options["launcher"],
        keep_logs_s=options["keep_logs"],
        keep_logs_jobs=options["keep_logs_jobs"],
        keep_work_s=options["keep_work"],
        keep_records_s=options["keep_records"],
        retention_interval_s=options["retention_interval"],
        api_rate_limits=_rate_limits(options["api_rate_limit"]),
    )
    try:
        from genobatch.server import ServerStartError, serve
    except ModuleNotFoundError as exc:
        if exc.name != "genobatch.server":
            raise
        raise CliError("this installation has no genobatch server module") from None
    # serve() handles SIGINT itself; suppressing here keeps a second Ctrl-C from printing a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            serve(settings)
        except ServerStartError as exc:
            raise CliError(str(exc)) from None


def _start_detached(ctx: click.Context, client: Client) -> None:
    """Re-run this command without --detach as a background process, with the same options."""
    state = server_state(client.data_dir)
    if state.running:
        where = state.endpoint or "starting"
        raise CliError(f"a genobatch server is already running for {client.data_dir} (pid {state.pid}, {where})")
    options: list[str] = []
    for param in ctx.command.params:
        given = ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE
        if param.name in ("data_dir", "detach") or not given:
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Option) and param.is_flag:
            options += [param.opts[0]] if value else []
        elif isinstance(param.type, Duration):
            options += [param.opts[0], _duration_text(value)]
        else:
            options += [param.opts[0], "unlimited" if value is None else str(value)]
    started = start_detached(client.data_dir, options)
    click.echo(f"genobatch server running at {started.endpoint} (pid {started.pid}, data dir {client.data_dir})")
    click.echo(f"log: {client.data_dir / LOG_FILE}")
    click.echo(f"stop it with: genobatch {data_dir_flag(client.data_dir, default_data_dir())}server stop")


@server.command("status")
@click.pass_obj
def server_status(client: Client) -> None:
    """Say whether this data directory's server runs: pid, endpoint, uptime (exit status 3 if not)."""
    state = server_state(client.data_dir)
    if not state.running:
        stale = f" (server.json of pid {state.info.get('pid')} is stale: that server did not shut down)"
        click.echo(f"no genobatch server is running for {client.data_dir}{stale if state.stale_file else ''}")
        raise SystemExit(3)
    info = state.info
    click.echo(f"genobatch server running (pid {state.pid})")
    if not info:
        click.echo("  starting: it has not announced its endpoint yet")
        return
    answering = "answering" if healthy(str(info["endpoint"])) else "NOT answering"
    click.echo(f"  endpoint:  {info['endpoint']} ({answering})")
    click.echo(f"  data dir:  {client.data_dir}")
    if info.get("database"):
        click.echo(f"  database:  {info['database']}")
    click.echo(f"  auth:      {'on' if info.get('auth', True) else 'OFF'}")
    if isinstance(info.get("started_at"), int | float):
        uptime = int(time.time() - info["started_at"])
        click.echo(f"  uptime:    {uptime // 3600}h {uptime // 60 % 60:02d}m {uptime % 60:02d}s")
    if (client.data_dir / LOG_FILE).exists():  # a foreground server logs to its terminal instead
        click.echo(f"  log:       {client.data_dir / LOG_FILE}")


@server.command("stop")
@click.option("--timeout", type=click.FloatRange(0), default=60, show_default=True, help="Seconds to wait.")
@click.pass_obj
def server_stop(client: Client, timeout: float) -> None:
    """Stop this data directory's server (SIGTERM) and wait until it has exited.

    Jobs it runs keep running; the next server of this data directory adopts them.
    """
    state = server_state(client.data_dir)
    if not state.running:
        if state.stale_file:
            remove_stale_file(client.data_dir)
            click.echo(
                f"no genobatch server was running for {client.data_dir}; "
                f"removed the stale server.json of pid {state.info.get('pid')}"
            )
        else:
            click.echo(f"no genobatch server is running for {client.data_dir}")
        return
    took = stop_server(state, timeout)
    where = f", {state.endpoint}" if state.endpoint else ""
    click.echo(f"stopped the genobatch server (pid {state.pid}{where}) in {took:.1f} s")


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
        # Step Functions (genobatch.api.stepfunctions): the service id is "SFN".
        "AWS_ENDPOINT_URL_SFN": endpoint,
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
        click.echo(f"start the server with:  genobatch{data_flag} server   (or in the background: server --detach)")
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
