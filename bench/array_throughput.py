"""Array-job throughput: one array of N trivial children through genobatch, against the floor.

The floor is what the host itself needs to run N ``true`` processes with full parallelism
(``seq N | xargs -P <nproc> -n1 true``); genobatch does the same work plus the API, the store and
the scheduling, so the ratio genobatch/floor is its overhead. The requirement is a ratio within 10x.

genobatch is timed from just before SubmitJob to the first DescribeJobs (polled every ~20 ms)
that shows the parent SUCCEEDED, on a fresh server with a fresh data dir for every repeat. The
server's own view (parent ``stoppedAt - createdAt``) is printed too; it excludes the polling
granularity and the HTTP round trips.

Run: ``python bench/array_throughput.py [--size 2000] [--repeats 3] [--db postgresql://...]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from launcher import machine_info, now_ms, register_definition, server_for

POLL_S = 0.02


def floor_once(size: int, parallel: int) -> float:
    """Seconds for the host to run ``size`` ``true`` processes, ``parallel`` at a time."""
    start = time.perf_counter()
    subprocess.run(f"seq {size} | xargs -P {parallel} -n1 true", shell=True, check=True)
    return time.perf_counter() - start


def genobatch_once(size: int, db_url: str | None, timeout_s: float, profile_hook=None) -> dict:  # noqa: ANN001
    """One fresh server, one array job of ``size`` ``true`` children; timings in seconds.

    ``profile_hook(pid)`` (optional) is called with the server pid right before the submit and
    must return a callable that is invoked once the parent is final (used by ``--py-spy``).
    """
    with server_for(db_url) as server:
        client = server.client()
        definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
        # One untimed call first, so the connection and the signer are warm before t0.
        client.describe_job_queues(jobQueues=["default"])
        finish_profile = profile_hook(server.pid) if profile_hook else None
        t0_ms = now_ms()
        start = time.perf_counter()
        job_id = client.submit_job(
            jobName="throughput", jobQueue="default", jobDefinition=definition, arrayProperties={"size": size}
        )["jobId"]
        submitted = time.perf_counter() - start
        polls = 0
        deadline = start + timeout_s
        while True:
            detail = client.describe_jobs(jobs=[job_id])["jobs"][0]
            polls += 1
            if detail["status"] in ("SUCCEEDED", "FAILED"):
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"array not final after {timeout_s}s: {detail.get('arrayProperties')}")
            time.sleep(POLL_S)
        if finish_profile:
            finish_profile()
        if detail["status"] != "SUCCEEDED":
            raise RuntimeError(f"array ended {detail['status']}: {detail.get('arrayProperties')}; {failed_sample(client, job_id)}")
        return {
            "wall_s": elapsed,
            "submit_s": submitted,
            "server_s": (detail["stoppedAt"] - detail["createdAt"]) / 1000,
            "client_to_created_ms": detail["createdAt"] - t0_ms,
            "polls": polls,
        }


def failed_sample(client, job_id: str) -> str:  # noqa: ANN001
    """Why the first failed child failed, so a failing benchmark says more than "FAILED"."""
    failed = client.list_jobs(arrayJobId=job_id, jobStatus="FAILED", maxResults=1)["jobSummaryList"]
    if not failed:
        return "no failed child listed"
    child = client.describe_jobs(jobs=[failed[0]["jobId"]])["jobs"][0]
    attempts = child.get("attempts") or [{}]
    return f"first failed child: {child.get('statusReason')!r}, last attempt {attempts[-1]}"


def py_spy_hook(output: str, rate: int):  # noqa: ANN201 - returns the hook for genobatch_once
    """A profile hook that runs ``py-spy record`` on the server for the duration of the array."""

    def hook(pid: int):  # noqa: ANN202
        cmd = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--threads", "--idle", "-o", output]
        if output.endswith(".txt"):
            cmd += ["--format", "raw"]
        elif output.endswith(".json"):
            cmd += ["--format", "speedscope"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)  # py-spy needs a moment to attach before the interesting part begins

        def finish() -> None:
            # SIGINT makes py-spy stop sampling and write its output.
            proc.send_signal(2)
            _, err = proc.communicate(timeout=60)
            if proc.returncode not in (0, None, -2):
                print(f"py-spy exited {proc.returncode}: {err.decode(errors='replace')[-500:]}", file=sys.stderr)

        return finish

    return hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="array size (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="genobatch repeats (default 3); the floor runs 2x this")
    parser.add_argument("--db", help="database URL; postgresql://... gets a fresh database per repeat (default SQLite)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for one array (default 240)")
    parser.add_argument("--py-spy", metavar="OUT", help="profile the server of the first repeat with py-spy into OUT")
    parser.add_argument("--py-spy-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    args = parser.parse_args()

    parallel = len(os.sched_getaffinity(0))
    info = machine_info()
    print(f"# {info['date']}  commit {info['commit']}  {info['cpu']} x{parallel}  python {info['python']}")
    store = "SQLite" if not args.db else args.db.split("://", 1)[0]

    floors = [floor_once(args.size, parallel) for _ in range(2 * args.repeats)]
    floor = statistics.median(floors)
    print(f"floor: seq {args.size} | xargs -P {parallel} -n1 true: " + " ".join(f"{f:.3f}" for f in floors))
    print(f"floor median: {floor:.3f} s ({args.size / floor:.0f} processes/s)")

    runs = []
    for repeat in range(args.repeats):
        hook = py_spy_hook(args.py_spy, args.py_spy_rate) if args.py_spy and repeat == 0 else None
        run = genobatch_once(args.size, args.db, args.timeout, hook)
        runs.append(run)
        print(
            f"genobatch[{store}] repeat {repeat + 1}: submit->SUCCEEDED {run['wall_s']:.3f} s "
            f"(SubmitJob call {run['submit_s'] * 1000:.0f} ms, server stoppedAt-createdAt {run['server_s']:.3f} s, "
            f"{run['polls']} polls)"
        )
    wall = statistics.median(run["wall_s"] for run in runs)
    server_view = statistics.median(run["server_s"] for run in runs)
    print(f"genobatch[{store}] median: {wall:.3f} s ({args.size / wall:.0f} jobs/s); server view {server_view:.3f} s")
    ratio = wall / floor
    verdict = "within" if ratio <= 10 else "NOT within"
    print(f"ratio genobatch/floor: {ratio:.2f}x ({verdict} 10x)")


if __name__ == "__main__":
    main()
