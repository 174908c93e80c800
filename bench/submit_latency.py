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
round trip's p50/p99. The clients share the host's CPUs with the server.

Run: ``python bench/submit_latency.py [-n 200] [--poll-ms 3] [--passive] [--db postgresql://...]``
``python bench/submit_latency.py --clients 8 -n 250`` (throughput)
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

import psutil
from launcher import load_average, machine_info, now_ms, percentile, register_definition, server_for

FINAL = ("SUCCEEDED", "FAILED")


def one_job(client, definition: str, poll_s: float, passive: bool, timeout_s: float = 30) -> dict:
    """Submit one job, time it to RUNNING, and wait for it to end (so the next one finds idle capacity)."""
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
    return {
        "polled_ms": polled_ms,
        "missed": missed,
        "started_ms": detail["startedAt"] - t0_ms,
        "created_ms": detail["createdAt"] - t0_ms,
        "submit_ms": submit_s * 1000,
    }


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
    """One client process: wait for the others, submit ``count`` jobs, report the round trips."""
    client = server.client()
    client.describe_job_queues(jobQueues=[queue])  # connection and signer warm before the burst
    barrier.wait()
    begun = time.perf_counter()
    latencies = []
    for index in range(count):
        t0 = time.perf_counter()
        client.submit_job(jobName=f"burst-{index}", jobQueue=queue, jobDefinition=definition)
        latencies.append((time.perf_counter() - t0) * 1000)
    results.put((begun, time.perf_counter(), latencies))


def throughput(server, clients: int, per_client: int) -> tuple[float, list[float], float]:
    """(SubmitJob calls per second over the whole burst, every call's round trip in ms, the
    server's CPU ms per call)."""
    client = server.client()
    queue = hold_queue(client)
    definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients), context.Queue()
    workers = [
        context.Process(target=_submit_burst, args=(server, queue, definition, per_client, barrier, results))
        for _ in range(clients)
    ]
    process = psutil.Process(server.pid)
    cpu_before = sum(process.cpu_times()[:2])
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    server_cpu = sum(process.cpu_times()[:2]) - cpu_before
    for worker in workers:
        worker.join()
    began = min(begun for begun, _, _ in outcomes)
    ended = max(end for _, end, _ in outcomes)
    latencies = [value for _, _, values in outcomes for value in values]
    return len(latencies) / (ended - began), latencies, 1000 * server_cpu / len(latencies)


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<28} (no samples)"
    cells = [percentile(values, q) for q in (50, 90, 99)] + [max(values)]
    p50, p90, p99, top = cells
    return (
        f"{name:<28} n={len(values):<4} p50 {p50:7.1f}  p90 {p90:7.1f}  p99 {p99:7.1f}  max {top:7.1f}  "
        f"mean {statistics.fmean(values):7.1f} ms"
    )


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
        help="with --clients: alternate bursts against a server run from this source tree (baseline) and the "
        "current one, --repeats times each, and print the ratios",
    )
    parser.add_argument("--repeats", type=int, default=1, help="with --clients: bursts per variant (default 1)")
    args = parser.parse_args()

    info = machine_info()
    print(
        f"# {info['date']}  commit {info['commit']}  {info['cpu']} x{info['affinity']}  python {info['python']}  "
        f"load {info['load']}"
    )
    store = "SQLite" if not args.db else args.db.split("://", 1)[0]
    if args.clients:
        variants = [("baseline", args.baseline_src), ("current", None)] if args.baseline_src else [("current", None)]
        rates: dict[str, list[float]] = {name: [] for name, _ in variants}
        cpus: dict[str, list[float]] = {name: [] for name, _ in variants}
        all_latencies: dict[str, list[float]] = {name: [] for name, _ in variants}
        for repeat in range(args.repeats):
            for name, src in variants:
                with server_for(args.db, src=src) as server:
                    rate, latencies, cpu_ms = throughput(server, args.clients, args.jobs)
                rates[name].append(rate)
                cpus[name].append(cpu_ms)
                all_latencies[name] += latencies
                print(
                    f"genobatch[{store}, {name}] burst {repeat + 1}: {args.clients} clients x {args.jobs} jobs, "
                    f"{rate:.0f} calls/s; round trip p50 {percentile(latencies, 50):.1f} ms, "
                    f"p99 {percentile(latencies, 99):.1f} ms; server CPU {cpu_ms:.2f} ms/call"
                )
        for name, _ in variants:
            print(
                f"genobatch[{store}, {name}] median {statistics.median(rates[name]):.0f} calls/s, "
                f"server CPU {statistics.median(cpus[name]):.2f} ms/call"
            )
            print(summary(f"  {name} round trip", all_latencies[name]))
        if args.baseline_src:
            ratio = statistics.median(rates["current"]) / statistics.median(rates["baseline"])
            cpu_ratio = statistics.median(cpus["current"]) / statistics.median(cpus["baseline"])
            print(f"ratio current/baseline: {ratio:.2f}x calls/s, {cpu_ratio:.2f}x server CPU per call (medians)")
        print(f"# load at end {load_average()}")
        return
    with server_for(args.db) as server:
        client = server.client()
        definition = register_definition(client, args.command.split(), vcpus=1, memory_mib=64)
        for _ in range(args.warmup):
            one_job(client, definition, args.poll_ms / 1000, args.passive)
        runs = [one_job(client, definition, args.poll_ms / 1000, args.passive) for _ in range(args.jobs)]

    mode = "passive (50 ms polls)" if args.passive else f"polling every {args.poll_ms:g} ms"
    print(f"genobatch[{store}] {args.jobs} sequential jobs of {args.command!r}, {mode}; latencies from t0 in ms:")
    print(summary("SubmitJob round trip", [run["submit_ms"] for run in runs]))
    print(summary("createdAt - t0", [run["created_ms"] for run in runs]))
    print(summary("startedAt - t0", [run["started_ms"] for run in runs]))
    if not args.passive:
        print(summary("DescribeJobs shows RUNNING", [run["polled_ms"] for run in runs if run["polled_ms"] is not None]))
        missed = sum(run["missed"] for run in runs)
        if missed:
            print(f"({missed} jobs were final before a poll saw RUNNING; left out of the polled row)")
    key = "started_ms" if args.passive else "polled_ms"
    p50 = percentile([run[key] for run in runs if run[key] is not None], 50)
    print(f"target p50 <= 100 ms: {'met' if p50 <= 100 else 'NOT met'} ({p50:.1f} ms, {key})")


if __name__ == "__main__":
    main()
