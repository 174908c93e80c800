"""Workflow overhead: a Step Functions Map over N items, each a trivial ``batch:submitJob.sync`` task.

The baseline is the same N jobs (``true``, 1 vCPU / 64 MiB, so as many at a time as the host has
cores) submitted directly as one AWS Batch array job on the same queue: the jobs' own run time at
the queue's capacity, plus the Batch API's own overhead. The workflow does the same work through
the Step Functions API: one StartExecution, the Map submits one job per item (MaxConcurrency 0,
unlimited), waits for each and collects the DescribeJobs outputs. Overhead = workflow time minus
baseline time, as a fraction of the baseline; the goal is under 20 %.

A third run submits the same jobs with one SubmitJob each and no workflow ("individual"): it
separates what the workflow layer costs (workflow / individual) from what N separate jobs cost the
engine compared with N children of one array (individual / array).

Each is timed by the client from the first request to the first poll (every 100 ms) that sees the
end, on a fresh server each (so none inherits another's rows); repeats alternate the order. The
server-side durations (the array parent's ``stoppedAt - createdAt``, the execution's ``stopDate -
startDate``) are printed too, and the CPU time of the server's threads.

The issue's own words for the baseline, "the jobs' own run time at the queue's capacity", are also
computed literally for every mode: the sum of the jobs' ``stoppedAt - startedAt`` divided by the
slots the queue has (the host's CPUs, each job taking 1 vCPU). For jobs this trivial that is about
a second, so by it every mode, the array too, is mostly per-job overhead: the engine's (issue 9).

Run: ``python bench/workflow_map.py [--size 1000] [--repeats 3] [--db postgresql://...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from array_throughput import py_spy_hook, thread_cpu
from botocore.config import Config
from launcher import REGION, filesystem_probe, load_average, machine_info, register_definition, run_array, server_for

POLL_S = 0.1  # the client's polling is harness cost; both modes poll alike, coarse enough to stay small
ROLE = "arn:aws:iam::123456789012:role/bench"


def sfn_client(server):
    access_key, secret_key = server.credentials()
    return boto3.client(
        "stepfunctions",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def own_run_time(client, size: int, **listing: str) -> float:
    """The jobs' own run time at the queue's capacity: their summed run times over the slots.
    ``listing`` selects them for ListJobs (``arrayJobId=`` an array's children, else the queue's jobs)."""
    ids: list[str] = []
    for page in client.get_paginator("list_jobs").paginate(jobStatus="SUCCEEDED", **listing):
        ids += [job["jobId"] for job in page["jobSummaryList"]]
    runs = []
    for start in range(0, len(ids), 100):
        described = client.describe_jobs(jobs=ids[start : start + 100])["jobs"]
        runs += [job["stoppedAt"] - job["startedAt"] for job in described]
    assert len(runs) == size, (len(runs), size)
    return sum(runs) / 1000 / len(os.sched_getaffinity(0))


def baseline(db: str | None, size: int, timeout_s: float) -> dict:
    with server_for(db) as server:
        client = server.client()
        definition = register_definition(client, ["true"])
        before = thread_cpu(server.pid)
        parent, detail, wall = run_array(client, "default", definition, size, timeout_s, POLL_S)
        cpu = thread_cpu(server.pid)
        assert detail["status"] == "SUCCEEDED", detail
        own = own_run_time(client, size, arrayJobId=parent)
    return {
        "wall": wall,
        "own": own,
        "server": (detail["stoppedAt"] - detail["createdAt"]) / 1000,
        "cpu": sum(cpu.values()) - sum(before.values()),
    }


def individual(db: str | None, size: int, timeout_s: float) -> dict:
    """The same jobs submitted one SubmitJob each, without a workflow: separates what the workflow
    layer costs from what N separate jobs cost the engine compared with N children of one array."""
    with server_for(db) as server:
        client = server.client()
        definition = register_definition(client, ["true"])
        before = thread_cpu(server.pid)
        began = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:  # the workflow submits concurrently too
            ids = list(
                pool.map(
                    lambda i: client.submit_job(jobName="item", jobQueue="default", jobDefinition=definition)["jobId"],
                    range(size),
                )
            )
        waiting, last, deadline = set(ids), {}, time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for start in range(0, len(waiting), 100):
                for job in client.describe_jobs(jobs=sorted(waiting)[start : start + 100])["jobs"]:
                    if job["status"] in ("SUCCEEDED", "FAILED"):
                        last[job["jobId"]] = job
            waiting -= set(last)
            time.sleep(0.1)
        wall = time.perf_counter() - began
        cpu = thread_cpu(server.pid)
        own = own_run_time(client, size, jobQueue="default")
    assert not waiting and all(job["status"] == "SUCCEEDED" for job in last.values())
    first = min(job["createdAt"] for job in last.values())
    return {
        "wall": wall,
        "own": own,
        "server": (max(job["stoppedAt"] for job in last.values()) - first) / 1000,
        "cpu": sum(cpu.values()) - sum(before.values()),
    }


def workflow(db: str | None, size: int, timeout_s: float, profile=None) -> dict:
    with server_for(db) as server:
        client, sfn = server.client(), sfn_client(server)
        definition = register_definition(client, ["true"])
        task = {
            "Type": "Task",
            "Resource": "arn:aws:states:::batch:submitJob.sync",
            "Parameters": {"JobName": "item", "JobQueue": "default", "JobDefinition": definition},
            "ResultSelector": {"id.$": "$.JobId"},
            "End": True,
        }
        machine = {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": 0,
                    "ItemProcessor": {"StartAt": "Job", "States": {"Job": task}},
                    "End": True,
                }
            },
        }
        arn = sfn.create_state_machine(name="bench", definition=json.dumps(machine), roleArn=ROLE)["stateMachineArn"]
        document = json.dumps({"items": list(range(size))})
        finish_profile = profile(server.pid) if profile else None
        before = thread_cpu(server.pid)
        began = time.perf_counter()
        execution = sfn.start_execution(stateMachineArn=arn, input=document)["executionArn"]
        deadline = time.monotonic() + timeout_s
        while True:
            described = sfn.describe_execution(executionArn=execution, includedData="METADATA_ONLY")
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        wall = time.perf_counter() - began
        cpu = thread_cpu(server.pid)
        if finish_profile:
            finish_profile()
        assert described["status"] == "SUCCEEDED", described
        own = own_run_time(client, size, jobQueue="default")
    return {
        "wall": wall,
        "own": own,
        "server": (described["stopDate"] - described["startDate"]).total_seconds(),
        "cpu": sum(cpu.values()) - sum(before.values()),
        "threads": {k: round(cpu[k] - before.get(k, 0.0), 2) for k in cpu if cpu[k] - before.get(k, 0.0) > 0.05},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", help="a PostgreSQL URL (a fresh database per server); default SQLite")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--py-spy", metavar="OUT", help="profile the first workflow run's server with py-spy into OUT")
    parser.add_argument("--py-spy-mode", choices=("wall", "cpu", "gil"), default="gil")
    parser.add_argument("--only-workflow", action="store_true", help="run the workflow alone (for profiling)")
    args = parser.parse_args()
    print(json.dumps({**machine_info(), "filesystem": filesystem_probe()}))
    runs: dict[str, list[dict]] = {"baseline": [], "individual": [], "workflow": []}
    for repeat in range(args.repeats):
        order = (baseline, workflow, individual) if repeat % 2 == 0 else (workflow, baseline, individual)
        for kind in (workflow,) if args.only_workflow else order:
            load = load_average()
            if kind is workflow and args.py_spy and repeat == 0:
                result = workflow(args.db, args.size, args.timeout, py_spy_hook(args.py_spy, 100, args.py_spy_mode))
            else:
                result = kind(args.db, args.size, args.timeout)
            runs[kind.__name__].append(result)
            print(
                f"repeat {repeat + 1} {kind.__name__:9s} wall {result['wall']:.3f} s, server {result['server']:.3f} s, "
                f"jobs' own run time at capacity {result['own']:.3f} s, "
                f"server CPU {result['cpu']:.2f} s, load {load} {result.get('threads', '')}",
                flush=True,
            )
    if args.only_workflow:
        return
    base_runs, flow_runs = runs["baseline"], runs["workflow"]
    base = statistics.median(r["wall"] for r in base_runs)
    flow = statistics.median(r["wall"] for r in flow_runs)
    alone = statistics.median(r["wall"] for r in runs["individual"])
    print(
        f"size {args.size}: baseline (array) median {base:.3f} s, workflow (Map of .sync tasks) median {flow:.3f} s; "
        f"ratio {flow / base:.3f}, overhead {100 * (flow - base) / base:+.1f} % (goal < 20 %)"
    )
    print(
        f"individual SubmitJob calls (no workflow) median {alone:.3f} s: workflow / individual "
        f"{flow / alone:.3f}, individual / array {alone / base:.3f}"
    )
    per_repeat = [
        f"{100 * (f['wall'] - b['wall']) / b['wall']:+.1f} %" for b, f in zip(base_runs, flow_runs, strict=True)
    ]
    print("overhead per repeat: " + ", ".join(per_repeat))
    for kind, results in runs.items():
        shares = [f"{100 * (r['wall'] - r['own']) / r['wall']:.0f} %" for r in results]
        print(f"{kind}: share of the wall time beyond the jobs' own run time at capacity: " + ", ".join(shares))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
