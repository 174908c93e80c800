"""``genobatch native GET PATH [KEY=VALUE]...``: any of genobatch's native endpoints, signed, as JSON.

The native endpoints (``/genobatch/v1/...``) are SigV4-signed like the Batch API, which makes them
awkward to reach with curl; this command signs with the data directory's key, so every endpoint is a
one-liner, including ones added later.
"""

from __future__ import annotations

import click

from genobatch.cli.client import Client
from genobatch.cli.errors import CliError
from genobatch.cli.native import path_segment
from genobatch.cli.render import print_json

NATIVE_PREFIX = "/genobatch/v1/"


def native_path(path: str) -> str:
    """``jobs/ID`` or ``/genobatch/v1/jobs/ID`` -> ``/genobatch/v1/jobs/ID``, each segment quoted."""
    relative = path.strip().removeprefix(NATIVE_PREFIX.rstrip("/")).strip("/")
    if not relative:
        raise CliError(f"give the endpoint's path, e.g. runs or {NATIVE_PREFIX}jobs/JOBID")
    return NATIVE_PREFIX + "/".join(path_segment(segment) for segment in relative.split("/"))


def query_params(pairs: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` words as a query; a word without ``=`` is an error naming it."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"query parameter {pair!r} must be KEY=VALUE (e.g. run=demo-1 or trace=1)")
        params[key] = value
    return params


@click.command("native")
@click.argument("method", type=click.Choice(["GET"], case_sensitive=False), metavar="GET")
@click.argument("path")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE]...")
@click.pass_obj
def native(client: Client, method: str, path: str, params: tuple[str, ...]) -> None:
    """Call one of genobatch's native endpoints, signed with your key, and print its JSON.

    \b
    Endpoints (PATH may leave out /genobatch/v1/):
      GET jobs/JOBID                      attempts: where and how each ran, usage
      GET jobs/JOBID/logs [attempt=N] [offset=K]
      GET runs run=RUN|tag=K=V|queue=Q [trace=1]    progress and cost
      GET runs/results run=RUN|tag=K=V|queue=Q      published results, failed jobs
      GET health
    """
    print_json(client.native_get(native_path(path), query_params(params)))


COMMANDS = (native,)
