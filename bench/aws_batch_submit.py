"""AWS Batch backend: N array children forwarded to a remote AWS Batch under the SubmitJob quota.

Two real servers on loopback. The *remote* stands in for AWS Batch and enforces AWS's quota
(``--api-rate-limit SubmitJob=50``: HTTP 429 ``TooManyRequestsException`` above it). The *front*
has a compute environment tagged ``genobatch:backend=aws-batch`` pointing at the remote; the user
submits one array job of N children to the front, which submits one remote job per child.

Measured, in the same run:

* **baseline**: a plain boto3 client submitting ``--baseline`` jobs straight to the remote as fast
  as the quota lets it (boto3's standard retries, which back off on 429): the rate a well-behaved
  client gets;
* **genobatch**: the forwarding rate the remote saw (remote jobs' ``createdAt``, first to last),
  the end-to-end time until the parent SUCCEEDED on the front, how many calls were throttled
  (the front's log) and that none of it reached the user: every child SUCCEEDED, none failed, and
  every child exists exactly once remotely (counted by name).

Run: ``python bench/aws_batch_submit.py [--size 10000] [--quota 50] [--baseline 1000]``
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from botocore.config import Config
from launcher import BenchServer, load_average, machine_info, now_ms, register_definition, run_array

POLL_S = 0.5


def _client(server: BenchServer, retries: dict):
    import boto3

    access_key, secret_key = server.credentials()
    return boto3.client(
        "batch",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries=retries, max_pool_connections=16),
    )


def remote_created(remote: BenchServer, prefix: str) -> list[tuple[str, int]]:
    """(name, createdAt) of every remote job whose name starts with ``prefix``, any status."""
    client = remote.client()
    pages = client.get_paginator("list_jobs").paginate(
        jobQueue="default", filters=[{"name": "JOB_NAME", "values": [prefix + "*"]}]
    )
    return [(job["jobName"], job["createdAt"]) for page in pages for job in page["jobSummaryList"]]


def rate(created: list[int]) -> float:
    """Jobs per second between the first and the last creation."""
    if len(created) < 2:
        return float("nan")
    return (len(created) - 1) / ((max(created) - min(created)) / 1000)


def baseline(remote: BenchServer, count: int) -> dict:
    """A plain boto3 client (standard retries back off on 429) submitting straight to the remote."""
    client = _client(remote, {"mode": "standard", "total_max_attempts": 20})
    definition = register_definition(client, ["true"])
    throttled = 0

    def count_throttles(response=None, **_kwargs) -> None:  # every attempt's answer; decides nothing
        nonlocal throttled
        if response is not None and response[0] is not None and response[0].status_code == 429:
            throttled += 1

    client.meta.events.register_first("needs-retry.batch.SubmitJob", count_throttles)
    began = time.perf_counter()
    for i in range(count):
        client.submit_job(jobName=f"base_{i}", jobQueue="default", jobDefinition=definition)
    wall = time.perf_counter() - began
    created = [at for _, at in remote_created(remote, "base_")]
    return {
        "count": count,
        "wall_s": wall,
        "client_rate": count / wall,
        "remote_rate": rate(created),
        "throttled": throttled,
    }


def forwarded(front: BenchServer, remote: BenchServer, size: int, max_vcpus: int, timeout_s: float) -> dict:
    client = front.client()
    client.create_compute_environment(
        computeEnvironmentName="remote-aws",
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": max_vcpus, "subnets": [], "instanceTypes": ["m5.large"]},
        tags={
            "genobatch:backend": "aws-batch",
            "genobatch:aws-batch-job-queue": "default",
            "genobatch:aws-batch-endpoint": remote.endpoint,
            "genobatch:aws-batch-region": "us-east-1",
            "genobatch:aws-profile": "bench-remote",
        },
    )
    client.create_job_queue(
        jobQueueName="burst", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "remote-aws"}]
    )
    definition = register_definition(client, ["true"])
    began_ms = now_ms()
    parent, detail, wall = run_array(client, "burst", definition, size, timeout_s, POLL_S)
    summary = detail.get("arrayProperties", {}).get("statusSummary", {})
    names = remote_created(remote, f"gb_{parent}_")
    per_name = Counter(name for name, _ in names)
    expected = {f"gb_{parent}_{i}_1" for i in range(size)}
    return {
        "status": detail.get("status"),
        "summary": summary,
        "wall_s": wall,
        "remote_jobs": len(names),
        "remote_twice": sum(1 for n in per_name.values() if n > 1),
        "remote_missing": len(expected - set(per_name)),
        "remote_rate": rate([at for _, at in names]),
        "first_remote_after_s": (min(at for _, at in names) - began_ms) / 1000 if names else float("nan"),
    }


def throttled_calls(front: BenchServer) -> int | None:
    """The front's own count of throttled (and retried) calls, from its log."""
    counts = [int(m) for m in re.findall(r"(\d+) throttled calls", front.log_tail(200_000))]
    return max(counts) if counts else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000, help="array children forwarded (2..10000)")
    parser.add_argument("--quota", type=float, default=50.0, help="the remote's SubmitJob calls per second")
    parser.add_argument("--baseline", type=int, default=1000, help="jobs the plain boto3 client submits")
    parser.add_argument("--max-vcpus", type=int, default=1024, help="maxvCpus of the forwarding environment")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()

    info = machine_info()
    print(f"# {info['date']} commit {info['commit']} nproc {info['nproc']} load {info['load']}", flush=True)
    # Data directories of its own (not /tmp/genobatch-bench-*, which other benchmarks clean up).
    with tempfile.TemporaryDirectory(prefix="gb-aws-bench-", dir="/var/tmp") as home:
        limit = ["--api-rate-limit", f"SubmitJob={args.quota:g}", "--cpus", "2"]
        with BenchServer(extra_args=limit, data_dir=Path(home, "remote")) as remote:
            access_key, secret_key = remote.credentials()
            Path(home, "credentials").write_text(
                f"[bench-remote]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"
            )
            Path(home, "config").write_text("[profile bench-remote]\nregion = us-east-1\n")
            os.environ.update(AWS_SHARED_CREDENTIALS_FILE=f"{home}/credentials", AWS_CONFIG_FILE=f"{home}/config")
            base = baseline(remote, args.baseline)
            print(
                f"baseline: plain boto3 submitted {base['count']} in {base['wall_s']:.1f} s: "
                f"{base['client_rate']:.1f}/s (remote createdAt rate {base['remote_rate']:.1f}/s, "
                f"{base['throttled']} answers 429, retried by boto3), "
                f"quota {args.quota:g}/s",
                flush=True,
            )
            with BenchServer(extra_args=["--cpus", "2"], data_dir=Path(home, "front")) as front:
                result = forwarded(front, remote, args.size, args.max_vcpus, args.timeout)
                front.stop()  # its engine logs the final throttle count on the way down
                throttled = throttled_calls(front)
    print(
        f"genobatch: {args.size} children -> parent {result['status']} {result['summary']} in "
        f"{result['wall_s']:.1f} s; remote saw {result['remote_jobs']} jobs "
        f"({result['remote_twice']} twice, {result['remote_missing']} missing) at {result['remote_rate']:.1f}/s "
        f"(first after {result['first_remote_after_s']:.2f} s); throttled calls retried: {throttled}",
        flush=True,
    )
    print(
        f"ratios: forwarding / quota = {result['remote_rate'] / args.quota:.3f}; "
        f"forwarding / plain boto3 = {result['remote_rate'] / base['remote_rate']:.3f}; load {load_average()}",
        flush=True,
    )
    ok = (
        result["status"] == "SUCCEEDED"
        and result["summary"].get("FAILED", 0) == 0
        and result["remote_twice"] == 0
        and result["remote_missing"] == 0
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
