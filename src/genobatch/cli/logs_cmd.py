"""``genobatch logs``: a job attempt's output, from the native logs endpoint.

The endpoint pages through the log by byte offset and says when the attempt has finished
(``complete``), so following is: print each chunk, move to ``nextOffset``, poll until complete.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from genobatch.cli.client import Client
from genobatch.cli.native import path_segment

POLL_INTERVAL_S = 1.0


def logs_path(job_id: str) -> str:
    """The native endpoint path of a job's log."""
    return f"/genobatch/v1/jobs/{path_segment(job_id)}/logs"


def fetch_chunk(client: Client, job_id: str, attempt: int | None, offset: int) -> dict[str, Any]:
    """One page of the log from ``offset``; ``attempt`` None lets the server pick the latest."""
    return client.native_get(logs_path(job_id), {"attempt": attempt, "offset": offset})


def stream_log(client: Client, job_id: str, attempt: int | None, follow: bool) -> None:
    """Write the log to stdout as it is read; with ``follow``, keep polling until it is complete."""
    offset = 0
    while True:
        chunk = fetch_chunk(client, job_id, attempt, offset)
        if chunk.get("removed"):
            click.echo(f"genobatch: {chunk['removed']}", err=True)
        data = chunk.get("data") or ""
        if data:
            # Raw write, not rich: log text must come out byte for byte, brackets and all.
            sys.stdout.write(data)
            sys.stdout.flush()
        # Pin the attempt the server chose, so a retry starting mid-follow does not switch logs.
        attempt = chunk.get("attempt") or attempt
        offset = int(chunk.get("nextOffset", offset + len(data.encode())))
        if chunk.get("complete"):
            return
        if not data:
            if not follow:
                return
            time.sleep(POLL_INTERVAL_S)


@click.command("logs")
@click.argument("job_id", metavar="JOBID")
@click.option("--attempt", type=click.IntRange(1), help="Which attempt (1-based); default the latest.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the attempt finishes.")
@click.pass_obj
def logs(client: Client, job_id: str, attempt: int | None, follow: bool) -> None:
    """Print a job attempt's output (stdout and stderr)."""
    try:
        stream_log(client, job_id, attempt, follow)
    except KeyboardInterrupt:
        # Ctrl-C is how one stops following; it is not an error.
        click.echo("", err=True)


COMMANDS = (logs,)
