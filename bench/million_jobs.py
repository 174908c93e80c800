"""A million queued jobs (issue 9): API latency, server memory and restart time, and the core's cost per event.

Two servers, each a real ``python -m genobatch server`` on its own data dir (SQLite unless ``--db``):

* **baseline**: a nearly empty server (one small array and a few single jobs, so the calls have
  something to find);
* **filled**: ``--jobs N`` queued jobs submitted through the API - arrays of 10,000 children (AWS's
  limit) and ``N / 100`` single jobs from ``--clients`` client processes - to a job queue whose only
  compute environment is DISABLED, so every job stays queued (RUNNABLE).

On each, the same calls are timed one at a time (``--samples`` of each): SubmitJob (one single job),
DescribeJobs of 100 random known ids (array children and single jobs), ListJobs pages of the queue
(RUNNABLE, 100 per page, following nextToken from random starting pages) and of one array's
children (by arrayJobId, RUNNABLE). Then the server's RSS, and restart to serving: ``kill -9``,
start it again on the same data dir, until the first ListJobs answers.

``--core`` adds the pure scheduling core alone (no server, no store): per event - one attempt
exits, the next queued job is placed and started - with 1,000 / 100,000 / N jobs queued, each size
in its own process (so one size's memory does not weigh on the next).

Run: ``python bench/million_jobs.py --jobs 100000`` (about 1 minute of filling per 100,000 jobs
on 2 cores) or ``--jobs 1000000 --core``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from launcher import BenchServer, load_average, machine_info, percentile, register_definition, server_for

ARRAY_MAX = 10_000
HOLD = "bench-hold"
LOG_GROUP = "/aws/batch/job"


def hold_queue(client) -> str:
    """A job queue whose only compute environment is DISABLED: jobs submitted to it stay RUNNABLE."""
    client.create_compute_environment(computeEnvironmentName=HOLD, type="UNMANAGED", state="DISABLED")
    client.create_job_queue(
        jobQueueName=HOLD, priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": HOLD}]
    )
    return HOLD


def plan(jobs: int) -> tuple[list[int], int]:
    """(array sizes, single jobs) adding up to ``jobs``: 1 % single jobs, the rest in arrays of up
    to 10,000 children (an array has at least 2)."""
    singles = max(1, jobs // 100)
    left = jobs - singles
    arrays = [ARRAY_MAX] * (left // ARRAY_MAX)
    rest = left - sum(arrays)
    if rest >= 2:
        arrays.append(rest)
    else:
        singles += rest
    return arrays, singles


def _submit_singles(server: BenchServer, definition: str, count: int, prefix: str, results) -> None:
    """One client process: submit ``count`` single jobs; report their ids."""
    client = server.client()
    ids = [
        client.submit_job(jobName=f"{prefix}-{index}", jobQueue=HOLD, jobDefinition=definition)["jobId"]
        for index in range(count)
    ]
    results.put(ids)


def fill(server: BenchServer, definition: str, jobs: int, clients: int) -> dict:
    """Submit ``jobs`` queued jobs; return the ids and the time it took per kind."""
    client = server.client()
    arrays, singles = plan(jobs)
    began = time.perf_counter()
    parents = []
    array_seconds = []
    for number, size in enumerate(arrays):
        t0 = time.perf_counter()
        parent = client.submit_job(
            jobName=f"array-{number}", jobQueue=HOLD, jobDefinition=definition, arrayProperties={"size": size}
        )["jobId"]
        array_seconds.append(time.perf_counter() - t0)
        parents.append((parent, size))
        if (number + 1) % 10 == 0:
            print(
                f"  {number + 1}/{len(arrays)} arrays submitted, {time.perf_counter() - began:.0f} s, "
                f"load {load_average()}",
                flush=True,
            )
    arrays_done = time.perf_counter()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    share = [singles // clients + (1 if index < singles % clients else 0) for index in range(clients)]
    workers = [
        context.Process(target=_submit_singles, args=(server, definition, count, f"single{index}", results))
        for index, count in enumerate(share)
        if count
    ]
    for worker in workers:
        worker.start()
    single_ids = [job_id for _ in workers for job_id in results.get(timeout=3600)]
    for worker in workers:
        worker.join()
    ended = time.perf_counter()
    return {
        "parents": parents,
        "singles": single_ids,
        "arrays_s": arrays_done - began,
        "array_submit_s": array_seconds,
        "singles_s": ended - arrays_done,
        "total_s": ended - began,
        "queued": sum(arrays) + singles,
    }


def random_ids(filled: dict, count: int, rng: random.Random) -> list[str]:
    """``count`` known job ids: array children (in proportion) and single jobs."""
    children = sum(size for _, size in filled["parents"])
    singles = filled["singles"]
    ids = set()
    while len(ids) < count:
        if filled["parents"] and rng.random() < children / (children + len(singles)):
            parent, size = rng.choice(filled["parents"])
            ids.add(f"{parent}:{rng.randrange(size)}")
        else:
            ids.add(rng.choice(singles))
    return list(ids)


def timed(call) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000


def measure_calls(
    server: BenchServer, definition: str, filled: dict, samples: int, seed: int
) -> dict[str, list[float]]:
    """Round trips (ms) of each call, one at a time."""
    rng = random.Random(seed)
    client = server.client()
    client.list_jobs(jobQueue=HOLD, jobStatus="RUNNABLE", maxResults=1)  # connection warm
    out: dict[str, list[float]] = {"SubmitJob": [], "DescribeJobs (100 ids)": [], "ListJobs queue page": []}
    out["ListJobs array page"] = []
    out["GetJobQueueSnapshot"] = []

    def describe() -> None:
        ids = random_ids(filled, 100, rng)
        found = client.describe_jobs(jobs=ids)["jobs"]
        if len(found) != len(ids):
            raise RuntimeError(f"DescribeJobs found {len(found)} of {len(ids)} known jobs")

    tokens: list[str | None] = [None]

    def list_queue() -> None:
        token = rng.choice(tokens)
        kwargs = {"nextToken": token} if token else {}
        page = client.list_jobs(jobQueue=HOLD, jobStatus="RUNNABLE", maxResults=100, **kwargs)
        if not page["jobSummaryList"]:
            raise RuntimeError("ListJobs of the queue returned an empty page")
        if page.get("nextToken") and len(tokens) < 1000:
            tokens.append(page["nextToken"])

    def list_array() -> None:
        parent, size = rng.choice(filled["parents"])
        page = client.list_jobs(arrayJobId=parent, jobStatus="RUNNABLE", maxResults=100)
        if len(page["jobSummaryList"]) != min(100, size):
            raise RuntimeError(f"ListJobs of array {parent} returned {len(page['jobSummaryList'])} children")

    for index in range(samples):
        out["SubmitJob"].append(
            timed(lambda i=index: client.submit_job(jobName=f"probe-{i}", jobQueue=HOLD, jobDefinition=definition))
        )
        out["DescribeJobs (100 ids)"].append(timed(describe))
        out["ListJobs queue page"].append(timed(list_queue))
        out["ListJobs array page"].append(timed(list_array))
        out["GetJobQueueSnapshot"].append(timed(lambda: client.get_job_queue_snapshot(jobQueue=HOLD)))
    # A pass over every stored job (no index from log streams to jobs): timed a few times only.
    logs = server.client("logs")
    out["DescribeLogStreams (prefix, 3 calls)"] = [
        timed(lambda: logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix="bench")) for _ in range(3)
    ]
    return out


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def restart(server: BenchServer) -> float:
    """kill -9 the server, start it on the same data dir and port; seconds until a ListJobs answers."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    began = time.perf_counter()
    server.start(timeout=600)
    client = server.client()
    while True:
        try:
            client.list_jobs(jobQueue=HOLD, jobStatus="RUNNABLE", maxResults=1)
            return time.perf_counter() - began
        except Exception:  # noqa: BLE001 - not serving yet
            time.sleep(0.05)


def recover(server: BenchServer) -> tuple[str, dict]:
    """The definition and the ids of a server filled by an earlier run (``--data-dir``), from the API."""
    client = server.client()
    definition = client.describe_job_definitions(status="ACTIVE")["jobDefinitions"][0]["jobDefinitionArn"]
    found: dict[str, list[str]] = {}
    for status in ("PENDING", "RUNNABLE"):
        found[status] = []
        for page in client.get_paginator("list_jobs").paginate(jobQueue=HOLD, jobStatus=status):
            found[status] += [summary["jobId"] for summary in page["jobSummaryList"]]
    parents = []
    for start in range(0, len(found["PENDING"]), 100):
        for detail in client.describe_jobs(jobs=found["PENDING"][start : start + 100])["jobs"]:
            parents.append((detail["jobId"], detail["arrayProperties"]["size"]))
    filled = {"parents": parents, "singles": found["RUNNABLE"], "arrays_s": 0.0, "singles_s": 0.0, "total_s": 0.0}
    filled["queued"] = sum(size for _, size in parents) + len(found["RUNNABLE"])
    return definition, filled


def run_server(label: str, args: argparse.Namespace, jobs: int, data_dir: Path | None = None) -> dict:
    """Fill a fresh server with ``jobs`` queued jobs (or reuse ``data_dir``'s) and measure it."""
    # The persistent launcher exits by itself once no server is connected and nothing runs.
    reuse = data_dir is not None and (data_dir / "credentials.json").exists()
    with server_for(args.db, data_dir=data_dir) as server:
        client = server.client()
        if reuse:
            definition, filled = recover(server)
            print(f"[{label}] reusing {filled['queued']:,} queued jobs in {data_dir}", flush=True)
        else:
            hold_queue(client)
            definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
            print(f"[{label}] filling {jobs:,} queued jobs (load {load_average()})", flush=True)
            filled = fill(server, definition, jobs, args.clients)
            print(
                f"[{label}] filled {filled['queued']:,} jobs in {filled['total_s']:.1f} s: "
                f"arrays {filled['arrays_s']:.1f} s "
                f"({len(filled['parents'])} arrays, SubmitJob of one array p50 "
                f"{statistics.median(filled['array_submit_s']) if filled['array_submit_s'] else 0:.2f} s), "
                f"{len(filled['singles']):,} single jobs {filled['singles_s']:.1f} s "
                f"({len(filled['singles']) / max(filled['singles_s'], 1e-9):.0f}/s, {args.clients} clients)",
                flush=True,
            )
        rss_before = rss_mib(server.pid)
        calls = measure_calls(server, definition, filled, args.samples, args.seed)
        rss_after = rss_mib(server.pid)
        restart_s = restart(server)
        rss_restarted = rss_mib(server.pid)
        calls_after = measure_calls(server, definition, filled, max(10, args.samples // 4), args.seed + 1)
        result = {
            "label": label,
            "jobs": filled["queued"],
            "fill": {key: filled[key] for key in ("arrays_s", "singles_s", "total_s")},
            "calls": calls,
            "calls_after_restart": calls_after,
            "rss_mib": {"filled": rss_before, "after_calls": rss_after, "restarted": rss_restarted},
            "restart_s": restart_s,
            "db_bytes": sum(f.stat().st_size for f in server.data_dir.glob("*.db*")) if not args.db else None,
        }
        return result


def report(results: list[dict]) -> None:
    names = list(results[0]["calls"])
    print("\nround trips in ms, one call at a time (p50 / p99):")
    header = f"{'call':<38}" + "".join(f"{r['label'] + ' (' + format(r['jobs'], ',') + ')':>34}" for r in results)
    print(header)
    for name in names:
        cells = []
        for r in results:
            values = r["calls"][name]
            cells.append(f"{percentile(values, 50):8.1f} / {percentile(values, 99):7.1f} (n={len(values)})")
        print(f"{name:<38}" + "".join(f"{c:>34}" for c in cells))
    for name in names:
        cells = []
        for r in results:
            values = r["calls_after_restart"][name]
            cells.append(f"{percentile(values, 50):8.1f} / {percentile(values, 99):7.1f} (n={len(values)})")
        print(f"{name + ' (restarted)':<38}" + "".join(f"{c:>34}" for c in cells))
    for r in results:
        rss = r["rss_mib"]
        db = f", database {r['db_bytes'] / 2**20:.0f} MiB" if r["db_bytes"] else ""
        print(
            f"{r['label']}: RSS {rss['filled']:.0f} MiB filled, {rss['after_calls']:.0f} MiB after the calls, "
            f"{rss['restarted']:.0f} MiB after a restart; restart to serving {r['restart_s']:.2f} s{db}"
        )
    if len(results) == 2:
        base, full = results
        for name in names:
            ratio = percentile(full["calls"][name], 99) / percentile(base["calls"][name], 99)
            print(f"ratio filled/baseline p99 {name}: {ratio:.2f}x")
        print(f"ratio filled/baseline restart: {full['restart_s'] / base['restart_s']:.2f}x")
        print(f"ratio filled/baseline RSS: {full['rss_mib']['filled'] / base['rss_mib']['filled']:.2f}x")


# ------------------------------------------------------------------------------ the core alone
def core_per_event(queued: int, events: int) -> dict:
    """Per event in the pure core with ``queued`` jobs queued: one attempt exits, the next job is
    placed and started (one vCPU, so exactly one runs at a time). Runs in the calling process."""
    from genobatch.core.action import StartAttempt
    from genobatch.core.array import expand_array
    from genobatch.core.job import Job, Resources
    from genobatch.core.pool import HostPool
    from genobatch.core.retry import ExitInfo
    from genobatch.core.scheduler import Scheduler

    scheduler = Scheduler()
    scheduler.set_pool(HostPool("host", (0,), 1024))
    scheduler.set_compute_environment("ce", "host", 1, True)
    scheduler.set_queue("q", 1, ["ce"], True)
    began = time.perf_counter()
    arrays, singles = plan(queued)
    seq = 0
    for number, size in enumerate(arrays):
        seq += 1
        parent = Job(f"array-{number}", "a", "q", seq, 0, Resources(1, 64), array_size=size)
        scheduler.submit([parent, *expand_array(parent, [])], {}, 0)
    for number in range(singles):
        seq += 1
        scheduler.submit([Job(f"single-{number}", "s", "q", seq, 0, Resources(1, 64))], {}, 0)
    scheduler.take_dirty()
    fill_s = time.perf_counter() - began
    now = 1
    running = [a for a in scheduler.schedule(now) if isinstance(a, StartAttempt)]
    scheduler.take_dirty()
    timings = []
    for _ in range(min(events, queued - 1)):
        (start,) = running
        t0 = time.perf_counter_ns()
        scheduler.started(start.job_id, start.attempt, now, {})
        now += 1
        scheduler.exited(start.job_id, start.attempt, now, ExitInfo(0, None, None, False, False), {})
        running = [a for a in scheduler.schedule(now) if isinstance(a, StartAttempt)]
        scheduler.take_dirty()
        scheduler.evict_final()
        timings.append((time.perf_counter_ns() - t0) / 1000)
        now += 1
    rss = psutil.Process().memory_info().rss / 2**20
    return {"queued": queued, "fill_s": fill_s, "per_event_us": timings, "rss_mib": rss}


def core_sizes(args: argparse.Namespace) -> None:
    sizes = sorted({1_000, 100_000, args.jobs})
    rows = []
    for size in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--core-one", str(size), "--events", str(args.events)],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [os.environ.get("GENOBATCH_BENCH_SRC"), os.environ.get("PYTHONPATH")])
                ),
            },
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(rows[0]["per_event_us"])
    print("\nscheduling core alone, per event (exit + placement of the next job + start), median of", args.events)
    for row in rows:
        median = statistics.median(row["per_event_us"])
        print(
            f"  {row['queued']:>9,} queued: {median:8.1f} us (p99 {percentile(row['per_event_us'], 99):8.1f} us), "
            f"ratio to 1,000 queued {median / base:.2f}x; building the queue {row['fill_s']:.1f} s, "
            f"process RSS {row['rss_mib']:.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="queued jobs on the filled server")
    parser.add_argument("--baseline-jobs", type=int, default=200, help="queued jobs on the baseline server")
    parser.add_argument("--clients", type=int, default=4, help="client processes submitting the single jobs")
    parser.add_argument("--samples", type=int, default=200, help="timed calls of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="database URL; postgresql://... gets a fresh database (default SQLite)")
    parser.add_argument("--core", action="store_true", help="also time the scheduling core alone")
    parser.add_argument("--core-only", action="store_true", help="only time the scheduling core")
    parser.add_argument("--events", type=int, default=2000, help="events timed per size in the core benchmark")
    parser.add_argument("--core-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the filled server's data dir, kept afterwards; if it holds a filled server already (SQLite), that "
        "one is measured again instead of filling a new one (a million jobs take minutes to submit)",
    )
    args = parser.parse_args()
    if args.core_one:
        print(json.dumps(core_per_event(args.core_one, args.events)))
        return
    info = machine_info()
    store = "SQLite" if not args.db else args.db.split("://", 1)[0]
    print(
        f"# {info['date']}  commit {info['commit']}  {info['cpu']} x{info['affinity']}  python {info['python']}  "
        f"load {info['load']}  store {store}",
        flush=True,
    )
    results = []
    if not args.core_only:
        results.append(run_server("baseline", args, args.baseline_jobs))
        results.append(run_server("filled", args, args.jobs, args.data_dir))
        report(results)
    if args.core or args.core_only:
        core_sizes(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    print(f"# load at end {load_average()}")


if __name__ == "__main__":
    main()
