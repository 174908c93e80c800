"""SubmitJob -> RUNNING latency on an idle server (target: p50 <= 100 ms).

For each of N jobs (``sleep 0.05``, 1 vCPU / 64 MiB), one at a time so capacity is always idle:
t0 is taken just before SubmitJob, then two latencies are recorded:

* ``polled``: t0 until DescribeJobs first shows RUNNING (polled every ``--poll-ms``), which is what
  a client can observe: process started *and* the state committed and served by the API. A job
  seen already SUCCEEDED/FAILED first counts as a miss (its polled value would be an over-estimate).
* ``startedAt``: the job's ``startedAt`` (set when the backend knows the command's pid) minus the
  client-side t0 in epoch ms. Same host, same clock; it is free of polling granularity but says
  nothing about when the API showed RUNNING.

Tight polling competes with the server for CPU (2-core hosts especially), so ``--passive`` polls
only every 50 ms and reports ``startedAt`` alone, without that disturbance.

``--clients N`` measures SubmitJob throughput instead: N client processes (one boto3 client each)
submit ``-n`` jobs each as fast as they can, all at once, to a queue whose only compute environment
is DISABLED (the jobs stay RUNNABLE, so what is measured is the submit path alone: HTTP, SigV4,
validation, the engine's batch and commit, the response). It prints the aggregate rate and the
round trip's p50/p99. The clients share the host's CPUs with the server, so it also prints the
clients' own CPU per call (boto3 building, signing and parsing each call costs milliseconds too)
and what the host allows: ``cores / (client CPU + server CPU per call)`` calls per second if every
core did nothing else, and ``1 / server CPU per call`` for the server alone (one Python process: its
threads share one GIL, so about one core). ``--py-spy OUT`` profiles the current tree's first burst.

Run: ``python bench/submit_latency.py [-n 200] [--poll-ms 3] [--passive] [--db postgresql://...]``
``python bench/submit_latency.py --clients 8 -n 250`` (throughput)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from array_throughput import py_spy_hook, thread_cpu
from launcher import filesystem_probe, load_average, machine_info, now_ms, percentile, register_definition, server_for

FINAL = ("SUCCEEDED", "FAILED")


def one_job(
    client, definition: str, poll_s: float, passive: bool, timeout_s: float = 30, data_dir: Path | None = None
) -> dict:
    """Submit one job, time it to RUNNING, and wait for it to end (so the next one finds idle capacity).

    With ``data_dir`` (the server's), also when the local backend began starting the attempt
    (``attempt.json``'s ``created_ms``) and when the command was spawned (``child.pid``'s mtime).
    """
    t0_ms = now_ms()
    t0 = time.perf_counter()
    job_id = client.submit_job(jobName="latency", jobQueue="default", jobDefinition=definition)["jobId"]
    submit_s = time.perf_counter() - t0
    polled_ms = None
    missed = False
    deadline = t0 + timeout_s
    interval = 0.05 if passive else poll_s
    while True:
        detail = client.describe_jobs(jobs=[job_id])["jobs"][0]
        status = detail["status"]
        if not passive and polled_ms is None and not missed:
            if status == "RUNNING":
                polled_ms = (time.perf_counter() - t0) * 1000
                # Once RUNNING was seen, tight polling would only steal CPU from the job's exit path.
                interval = 0.02
            elif status in FINAL:
                missed = True
        if status in FINAL:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"job {job_id} not final after {timeout_s}s: {status}")
        time.sleep(interval)
    if status != "SUCCEEDED":
        raise RuntimeError(f"job {job_id} ended {status}: {detail.get('statusReason')}")
    run = {
        "polled_ms": polled_ms,
        "missed": missed,
        "started_ms": detail["startedAt"] - t0_ms,
        "created_ms": detail["createdAt"] - t0_ms,
        "submit_ms": submit_s * 1000,
    }
    if data_dir is not None:
        attempt_dir = data_dir / "jobs" / job_id / "1"
        with contextlib.suppress(OSError, ValueError, KeyError):
            run["dispatch_ms"] = json.loads((attempt_dir / "attempt.json").read_text())["created_ms"] - t0_ms
        with contextlib.suppress(OSError):
            run["spawned_ms"] = (attempt_dir / "child.pid").stat().st_mtime_ns / 1e6 - t0_ms
    return run


def hold_queue(client) -> str:
    """A job queue whose only compute environment is DISABLED: jobs submitted to it stay RUNNABLE."""
    client.create_compute_environment(computeEnvironmentName="bench-hold", type="UNMANAGED", state="DISABLED")
    client.create_job_queue(
        jobQueueName="bench-hold",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "bench-hold"}],
    )
    return "bench-hold"


def _submit_burst(server, queue: str, definition: str, count: int, barrier, results) -> None:
    """One client process: wait for the others, submit ``count`` jobs, report the round trips and
    the process's own CPU seconds during the burst."""
    client = server.client()
    client.describe_job_queues(jobQueues=[queue])  # connection and signer warm before the burst
    barrier.wait()
    begun = time.perf_counter()
    cpu_begun = time.process_time()
    latencies = []
    for index in range(count):
        t0 = time.perf_counter()
        client.submit_job(jobName=f"burst-{index}", jobQueue=queue, jobDefinition=definition)
        latencies.append((time.perf_counter() - t0) * 1000)
    results.put((begun, time.perf_counter(), latencies, time.process_time() - cpu_begun))


@dataclass
class Burst:
    """One burst's figures: rate, every round trip, and CPU ms per call (server, its threads, clients)."""

    rate: float
    latencies: list[float]
    server_cpu_ms: float
    client_cpu_ms: float
    thread_cpu_ms: dict[str, float]

    def host_bound(self) -> float:
        """Calls per second the host's cores allow if they did nothing but this burst's work."""
        return len(os.sched_getaffinity(0)) * 1000 / (self.server_cpu_ms + self.client_cpu_ms)


def throughput(server, clients: int, per_client: int, profile=None) -> Burst:
    """One burst of ``clients`` x ``per_client`` SubmitJob calls against ``server``."""
    client = server.client()
    queue = hold_queue(client)
    definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()
    workers = [
        context.Process(target=_submit_burst, args=(server, queue, definition, per_client, barrier, results))
        for _ in range(clients)
    ]
    finish = profile(server.pid) if profile is not None else None
    process = psutil.Process(server.pid)
    cpu_before = sum(process.cpu_times()[:2])
    threads_before = thread_cpu(server.pid)
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    server_cpu = sum(process.cpu_times()[:2]) - cpu_before
    threads_after = thread_cpu(server.pid)
    if finish is not None:
        finish()
    for worker in workers:
        worker.join()
    began = min(outcome[0] for outcome in outcomes)
    ended = max(outcome[1] for outcome in outcomes)
    latencies = [value for outcome in outcomes for value in outcome[2]]
    calls = len(latencies)
    threads = {
        name: 1000 * (after - threads_before.get(name, 0.0)) / calls
        for name, after in threads_after.items()
        if after - threads_before.get(name, 0.0) > 0.005
    }
    return Burst(
        rate=calls / (ended - began),
        latencies=latencies,
        server_cpu_ms=1000 * server_cpu / calls,
        client_cpu_ms=1000 * sum(outcome[3] for outcome in outcomes) / calls,
        thread_cpu_ms=threads,
    )


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<28} (no samples)"
    cells = [percentile(values, q) for q in (50, 90, 99)] + [max(values)]
    p50, p90, p99, top = cells
    return (
        f"{name:<28} n={len(values):<4} p50 {p50:7.1f}  p90 {p90:7.1f}  p99 {p99:7.1f}  max {top:7.1f}  "
        f"mean {statistics.fmean(values):7.1f} ms"
    )


def throughput_main(args: argparse.Namespace, store: str) -> None:
    """``--clients``: bursts against the current tree (and the baseline's, alternating), with ratios."""
    variants = [("baseline", args.baseline_src), ("current", None)] if args.baseline_src else [("current", None)]
    bursts: dict[str, list[Burst]] = {name: [] for name, _ in variants}
    for repeat in range(args.repeats):
        # The order alternates each repeat (ABBA): on a shared host the second server of a pair
        # often meets a different load than the first.
        for name, src in variants if repeat % 2 == 0 else variants[::-1]:
            profile = None
            if args.py_spy and name == "current" and repeat == 0:
                profile = py_spy_hook(args.py_spy, 200, args.py_spy_mode)
            with server_for(args.db, src=src) as server:
                burst = throughput(server, args.clients, args.jobs, profile)
            bursts[name].append(burst)
            threads = ", ".join(f"{thread} {ms:.2f}" for thread, ms in sorted(burst.thread_cpu_ms.items()))
            print(
                f"genobatch[{store}, {name}] burst {repeat + 1}: {args.clients} clients x {args.jobs} jobs, "
                f"{burst.rate:.0f} calls/s; round trip p50 {percentile(burst.latencies, 50):.1f} ms, "
                f"p99 {percentile(burst.latencies, 99):.1f} ms; CPU ms/call: server {burst.server_cpu_ms:.2f} "
                f"({threads}), clients {burst.client_cpu_ms:.2f}; load {load_average()}"
            )
    cores = len(os.sched_getaffinity(0))
    medians: dict[str, dict[str, float]] = {}
    for name, _ in variants:
        runs = bursts[name]
        median = {
            "rate": statistics.median(b.rate for b in runs),
            "server": statistics.median(b.server_cpu_ms for b in runs),
            "client": statistics.median(b.client_cpu_ms for b in runs),
            "bound": statistics.median(b.host_bound() for b in runs),
        }
        medians[name] = median
        print(
            f"genobatch[{store}, {name}] median {median['rate']:.0f} calls/s; CPU ms/call: server "
            f"{median['server']:.2f}, clients {median['client']:.2f}"
        )
        print(
            f"  host allows at most {median['bound']:.0f} calls/s ({cores} cores / (server + clients' CPU per "
            f"call)); the server alone, on one core (one GIL), {1000 / median['server']:.0f} calls/s"
        )
        print(summary(f"  {name} round trip", [value for b in runs for value in b.latencies]))
    if args.baseline_src:
        current, baseline = medians["current"], medians["baseline"]
        print(
            f"ratio current/baseline: {current['rate'] / baseline['rate']:.2f}x calls/s, "
            f"{current['server'] / baseline['server']:.2f}x server CPU per call, "
            f"{current['client'] / baseline['client']:.2f}x clients' CPU per call (medians)"
        )
    print(f"# load at end {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--jobs", type=int, default=200, help="measured jobs (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured jobs first (default 5)")
    parser.add_argument("--poll-ms", type=float, default=3, help="DescribeJobs interval until RUNNING (default 3)")
    parser.add_argument("--passive", action="store_true", help="poll every 50 ms; report startedAt only")
    parser.add_argument("--command", default="sleep 0.05", help="job command (default 'sleep 0.05')")
    parser.add_argument("--db", help="database URL; postgresql://... gets a fresh database (default SQLite)")
    parser.add_argument(
        "--clients", type=int, default=0, help="measure SubmitJob throughput with this many client processes instead"
    )
    parser.add_argument(
        "--baseline-src",
        metavar="DIR",
        help="alternate runs against a server run from this source tree (baseline) and the current one, "
        "--repeats times each, and print the ratios (bursts with --clients, -n sequential jobs without)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs (bursts) per variant (default 1)")
    parser.add_argument("--py-spy", metavar="OUT", help="with --clients: profile the current tree's first burst")
    parser.add_argument("--py-spy-mode", choices=("wall", "cpu", "gil"), default="gil", help="(default gil)")
    args = parser.parse_args()

    info = machine_info()
    print(
        f"# {info['date']}  commit {info['commit']}  {info['cpu']} x{info['affinity']}  python {info['python']}  "
        f"load {info['load']}"
    )
    print(f"# filesystem {filesystem_probe()}")
    store = "SQLite" if not args.db else args.db.split("://", 1)[0]
    if args.clients:
        throughput_main(args, store)
        return
    latency_main(args, store)


def latency_runs(args: argparse.Namespace, src: str | None) -> list[dict]:
    """``-n`` sequential jobs on a fresh server (run from ``src``, or the current tree)."""
    with server_for(args.db, src=src) as server:
        client = server.client()
        definition = register_definition(client, args.command.split(), vcpus=1, memory_mib=64)
        for _ in range(args.warmup):
            one_job(client, definition, args.poll_ms / 1000, args.passive)
        return [
            one_job(client, definition, args.poll_ms / 1000, args.passive, data_dir=server.data_dir)
            for _ in range(args.jobs)
        ]


def latency_main(args: argparse.Namespace, store: str) -> None:
    """Sequential jobs on an idle server: the stages from t0 to RUNNING (and the baseline's, alternating)."""
    variants = [("baseline", args.baseline_src), ("current", None)] if args.baseline_src else [("current", None)]
    runs: dict[str, list[dict]] = {name: [] for name, _ in variants}
    for repeat in range(args.repeats):
        order = variants if repeat % 2 == 0 else variants[::-1]  # ABBA: the host drifts
        for name, src in order:
            print(f"# {name} repeat {repeat + 1}: load {load_average()}", flush=True)
            runs[name].extend(latency_runs(args, src))
    mode = "passive (50 ms polls)" if args.passive else f"polling every {args.poll_ms:g} ms"
    key = "started_ms" if args.passive else "polled_ms"
    medians = {}
    for name, _ in variants:
        done = runs[name]
        print(f"genobatch[{store}, {name}] {len(done)} sequential jobs of {args.command!r}, {mode}; ms from t0:")
        print(summary("SubmitJob round trip", [run["submit_ms"] for run in done]))
        print(summary("createdAt - t0 (engine batch)", [run["created_ms"] for run in done]))
        print(summary("attempt being started - t0", [run["dispatch_ms"] for run in done if "dispatch_ms" in run]))
        print(summary("command spawned - t0", [run["spawned_ms"] for run in done if "spawned_ms" in run]))
        print(summary("startedAt - t0", [run["started_ms"] for run in done]))
        if not args.passive:
            shown = [run["polled_ms"] for run in done if run["polled_ms"] is not None]
            print(summary("DescribeJobs shows RUNNING", shown))
            missed = sum(run["missed"] for run in done)
            if missed:
                print(f"({missed} jobs were final before a poll saw RUNNING; left out of the polled row)")
        medians[name] = percentile([run[key] for run in done if run[key] is not None], 50)
        print(f"target p50 <= 100 ms: {'met' if medians[name] <= 100 else 'NOT met'} ({medians[name]:.1f} ms, {key})")
    if args.baseline_src:
        print(f"ratio current/baseline, p50 of {key}: {medians['current'] / medians['baseline']:.2f}x")
    print(f"# load at end {load_average()}")


if __name__ == "__main__":
    main()
