"""Slurm backend: N trivial array children through genobatch -> Slurm, against raw ``sbatch --array``.

Both run on the same single-node cluster (scripts/slurm-cluster.sh) in the same run, alternating
when repeated, so they share the cluster's configuration and the host's drift:

* **raw**: one ``sbatch --array=0-(N-1)`` of ``true`` (1 CPU, 64 MiB, one output file per task,
  as genobatch gives each attempt), timed from the sbatch call until ``squeue`` shows no task of
  the array left (polled every 0.2 s);
* **genobatch**: a fresh server with a compute environment tagged ``genobatch:backend=slurm``
  (``maxvCpus`` = N, so genobatch hands every child to Slurm at once) and one array job of N
  children running ``true`` with the same resources, timed from SubmitJob until DescribeJobs shows
  the parent SUCCEEDED (polled every 0.2 s). Each child is one Slurm job (see backends/slurm.py).

The requirement (issue 8) is genobatch's rate at >= 0.8x the raw rate. The cluster's own
statistics (``sdiag``: jobs started, main scheduler cycles) are printed for each measurement.

With ``--singles``, N separate ``sbatch`` calls (4 at a time) are timed as well: what the children
would cost Slurm as jobs of their own, genobatch's way before it used job arrays.

Run: ``python bench/slurm_throughput.py [--size 2000] [--repeats 1] [--singles]`` as root (it starts the
cluster if needed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from launcher import BenchServer, load_average, machine_info, register_definition, run_array

POLL_S = 0.2
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-cluster.sh"


def start_cluster() -> str:
    """Start (or find) the cluster; set SLURM_CONF for this process and the servers it starts."""
    done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, check=True)
    conf = re.search(r"export SLURM_CONF=(\S+)", done.stdout)
    if conf is None:
        sys.exit(f"slurm-cluster.sh start printed no SLURM_CONF: {done.stdout} {done.stderr}")
    os.environ["SLURM_CONF"] = conf[1]
    return conf[1]


def slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


def jobs_started() -> int:
    """Slurm's own count of jobs started since its statistics were last reset (``sdiag``)."""
    found = re.search(r"Jobs started:\s+(\d+)", slurm("sdiag"))
    return int(found[1]) if found else -1


def raw_array(size: int) -> dict:
    """One ``sbatch --array`` of ``size`` tasks, until none is left in squeue."""
    logs = tempfile.mkdtemp(prefix="slurm-raw-")
    try:
        started_before = jobs_started()
        began = time.perf_counter()
        job = slurm(
            "sbatch",
            "--parsable",
            f"--array=0-{size - 1}",
            "--cpus-per-task=1",
            "--mem=64M",
            f"--output={logs}/%A_%a.log",
            "--wrap",
            "true",
        ).strip()
        submitted = time.perf_counter() - began
        while slurm("squeue", "-h", "-j", job, "-t", "PD,R,CG,CF", "-o", "%i").strip():
            time.sleep(POLL_S)
        wall = time.perf_counter() - began
        deadline = time.monotonic() + 30  # accounting records arrive a moment after the ends
        while (states := slurm("sacct", "-n", "-X", "-P", "-j", job, "-o", "State").split()).count(
            "COMPLETED"
        ) < size and time.monotonic() < deadline:
            time.sleep(1)
        return {
            "wall_s": wall,
            "submit_s": submitted,
            "rate": size / wall,
            "completed": states.count("COMPLETED"),
            "slurm_started": jobs_started() - started_before,
        }
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def raw_singles(size: int, parallel: int = 4) -> dict:
    """``size`` separate ``sbatch`` calls, ``parallel`` at a time: what each child costs Slurm as a
    job of its own (genobatch's way without job arrays), until none is left in squeue."""
    logs = tempfile.mkdtemp(prefix="slurm-singles-")
    name = f"singles-{os.getpid()}"
    try:
        started_before = jobs_started()
        began = time.perf_counter()
        subprocess.run(
            f"seq 0 {size - 1} | xargs -P {parallel} -I{{}} sbatch --parsable --job-name={name} --cpus-per-task=1"
            f" --mem=64M --output={logs}/{{}}.log --wrap true",
            shell=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        submitted = time.perf_counter() - began
        while slurm("squeue", "-h", "-n", name, "-t", "PD,R,CG,CF", "-o", "%i").strip():
            time.sleep(POLL_S)
        wall = time.perf_counter() - began
        return {
            "wall_s": wall,
            "submit_s": submitted,
            "rate": size / wall,
            "slurm_started": jobs_started() - started_before,
        }
    finally:
        shutil.rmtree(logs, ignore_errors=True)


def through_genobatch(size: int, timeout_s: float) -> dict:
    """One array job of ``size`` children on a slurm compute environment of a fresh server."""
    with BenchServer(extra_args=["--cpus", "2"]) as server:
        client = server.client()
        client.create_compute_environment(
            computeEnvironmentName="slurm",
            type="MANAGED",
            computeResources={"type": "EC2", "maxvCpus": size, "subnets": [], "instanceTypes": ["m5.large"]},
            tags={"genobatch:backend": "slurm", "genobatch:slurm-partition": "batch"},
        )
        client.create_job_queue(
            jobQueueName="slurm", priority=1, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "slurm"}]
        )
        definition = register_definition(client, ["true"], vcpus=1, memory_mib=64)
        started_before = jobs_started()
        _, detail, wall = run_array(client, "slurm", definition, size, timeout_s, POLL_S)
        summary = detail.get("arrayProperties", {}).get("statusSummary", {})
        cpu = psutil.Process(server.pid).cpu_times()
        return {
            # The server's own CPU, and that of the Slurm commands it ran (sbatch, squeue, sacct, scancel).
            "server_cpu_s": round(cpu.user + cpu.system, 1),
            "slurm_commands_cpu_s": round(cpu.children_user + cpu.children_system, 1),
            "wall_s": wall,
            "rate": size / wall,
            "status": detail.get("status"),
            "succeeded": summary.get("SUCCEEDED", 0),
            "slurm_started": jobs_started() - started_before,
            "server_stopped_minus_created_s": (detail.get("stoppedAt", 0) - detail.get("createdAt", 0)) / 1000,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per genobatch measurement, seconds")
    parser.add_argument(
        "--singles", action="store_true", help="also time N separate sbatch calls (the cost of no job arrays)"
    )
    args = parser.parse_args()
    conf = start_cluster()
    node = slurm("sinfo", "-h", "-N", "-o", "%N %c CPUs %m MiB %G").strip()
    print(f"cluster: {conf} ({node}); machine: {machine_info()}; load {load_average()}")
    ratios = []
    for repeat in range(args.repeats):
        order = ("raw", "genobatch") if repeat % 2 == 0 else ("genobatch", "raw")
        order += ("singles",) if args.singles else ()
        measure = {
            "raw": lambda: raw_array(args.size),
            "genobatch": lambda: through_genobatch(args.size, args.timeout),
            "singles": lambda: raw_singles(args.size),
        }
        results = {}
        for which in order:
            results[which] = measure[which]()
            print(f"repeat {repeat + 1} {which}: {results[which]}", flush=True)
        ratio = results["genobatch"]["rate"] / results["raw"]["rate"]
        ratios.append(ratio)
        raw, ours = results["raw"]["rate"], results["genobatch"]["rate"]
        print(
            f"repeat {repeat + 1}: raw {raw:.1f} jobs/s, genobatch {ours:.1f} jobs/s, ratio {ratio:.2f}x"
            f" (requirement >= 0.80x); load {load_average()}",
            flush=True,
        )
        if args.singles:
            print(f"repeat {repeat + 1}: separate sbatch calls {results['singles']['rate']:.1f} jobs/s", flush=True)
    print(f"ratios: {', '.join(f'{r:.2f}x' for r in ratios)}")


if __name__ == "__main__":
    main()
