"""How long the web console's pages take for a run of N jobs, against the API's run summary.

Starts a real server (``--no-auth``, loopback), runs one array of N (2,000) ``true`` children
tagged as a run, then times each console page (median of ``--repeats`` GETs) and prints it with
its ratio to the baseline: ``GET /genobatch/v1/runs?run=..&trace=1``, the native API call
``genobatch report`` makes for the same run (the console's run page computes that summary and more).
Also printed: the timeline's JSON size, the time to the first event of the live stream (one
tick of the queue counts and the changed-jobs query), and one tick of a run page's stream (the
narrow-column progress query, timed in this process on the server's store).
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from launcher import machine_info, register_definition, server_for


def timed_get(url: str, repeats: int) -> tuple[float, int]:
    """Median seconds of ``repeats`` GETs of ``url``, and the response size in bytes."""
    times, size = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            size = len(response.read())
        times.append(time.perf_counter() - began)
    return statistics.median(times), size


def first_event(url: str) -> float:
    """Seconds from opening the event stream to its first complete ``event:`` message."""
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        for raw in response:
            if raw.startswith(b"data: "):
                return time.perf_counter() - began
    raise RuntimeError("the stream ended without an event")


def run_stream_tick(server, parent: str, repeats: int) -> float:
    """Median seconds of the run stream's per-second check (``run_progress``) on the server's store."""
    from genobatch.console.runs import run_progress
    from genobatch.run import Selector
    from genobatch.store.database import open_database

    database = open_database(server.db_url or f"sqlite:///{server.data_dir}/genobatch.db")
    arn_prefix = server.client().describe_jobs(jobs=[parent])["jobs"][0]["jobArn"].rsplit("/", 1)[0] + "/"
    times = []
    try:
        with database.connect() as conn:
            for _ in range(repeats):
                began = time.perf_counter()
                run_progress(conn, Selector.parse(run="bench"), arn_prefix)
                times.append(time.perf_counter() - began)
    finally:
        database.dispose()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2000, help="array children in the run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", help="PostgreSQL server URL (a fresh database is made); SQLite by default")
    args = parser.parse_args()
    info = machine_info()
    print(f"# {info['date']} commit {info['commit']} cpu {info['cpu']} nproc {info['nproc']} load {info['load']}")
    with server_for(args.db, no_auth=True) as server:
        client = server.client()
        definition = register_definition(client, ["true"])
        parent = client.submit_job(
            jobName="console-bench",
            jobQueue="default",
            jobDefinition=definition,
            arrayProperties={"size": args.size},
            tags={"genobatch:run": "bench"},
        )["jobId"]
        while client.describe_jobs(jobs=[parent])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
            time.sleep(0.5)
        base = server.endpoint
        baseline, baseline_size = timed_get(f"{base}/genobatch/v1/runs?run=bench&trace=1", args.repeats)
        print(
            f"run of {args.size} jobs; baseline GET /genobatch/v1/runs?trace=1: {baseline * 1000:.0f} ms "
            f"({baseline_size / 1024:.0f} KiB)"
        )
        for label, path in (
            ("run page", "/console/run?run=bench"),
            ("timeline JSON", "/console/run/timeline.json?run=bench"),
            ("queues page", "/"),
            ("jobs page (run filter)", "/console/jobs?run=bench"),
            ("array children page", f"/console/jobs?parent={parent}"),
        ):
            seconds, size = timed_get(base + path, args.repeats)
            print(f"{label:24s} {seconds * 1000:8.0f} ms  {seconds / baseline:5.2f}x baseline  {size / 1024:7.0f} KiB")
        print(f"{'live stream first event':24s} {first_event(base + '/console/events') * 1000:8.0f} ms")
        print(f"{'run stream, one tick':24s} {run_stream_tick(server, parent, args.repeats) * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
