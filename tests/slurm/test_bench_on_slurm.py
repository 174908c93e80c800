"""``genobatch bench run`` with a target that names a compute environment on Slurm.

The same plan, runner and report as on local slices: one target is a local 1-vCPU slice, the other
an existing Slurm compute environment billed as a c6i.large. Its shards really run as Slurm jobs
(Slurm's accounting is the evidence), and the report compares both targets' outputs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import launch, queue_on_backend, run_cli
from slurm_jobs import accounted_names

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "bench"

PLAN = """
name: align-on-slurm
dataset:
  files: [data/align/sample*/reads_1.fastq.gz]
  work: reads
tools:
  - name: minimap2
    command: >-
      {python} -m genobatch.examples.benchmark.align --reference data/align/reference/genome.fa
      --output-dir {{output_dir}} --threads {{threads}} {{inputs}}
    resources: {{vcpus: 1, memory: 1024}}
    parser: {{regex: '([\\d.]+) pairs/s', metric: pairs_per_s, unit: pairs/s}}
    outputs: ["*.bam"]
targets:
  - name: laptop
    local: {{vcpus: 1}}
    instance_type: c6i.large
    price_per_hour: 0.0425
  - name: cluster
    compute_environment: {environment}
    instance_type: c6i.large
sharding: per-vcpu
repeats: 1
"""


def test_a_benchmark_target_on_a_slurm_compute_environment(slurm_cluster, tmp_path_factory, tmp_path):
    server = launch(tmp_path_factory, "--cpus", "2")
    try:
        batch = server.client()
        _, environment = queue_on_backend(
            batch, "bench-slurm", {"genobatch:backend": "slurm", "genobatch:slurm-partition": "batch"}, max_vcpus=2
        )
        subprocess.run(
            [sys.executable, "-m", "genobatch.examples.benchmark.prepare", "align", str(tmp_path / "data" / "align")],
            check=True,
            capture_output=True,
        )
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN.format(python=sys.executable, environment=environment))
        result = run_cli(server, "bench", "run", str(plan), "--out", str(tmp_path / "runs"))
        run_id = Path(re.search(r"results in\s+(\S+)", result.stdout).group(1)).name

        # The cluster target's shards (2: a c6i.large has 2 vCPUs) ran on Slurm, each once.
        shard_jobs = []
        for queue in [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]]:
            for summary in batch.list_jobs(jobQueue=queue, jobStatus="SUCCEEDED")["jobSummaryList"]:
                detail = batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]
                if detail["tags"].get("genobatch:bench") == run_id:
                    shard_jobs.append((detail["tags"]["genobatch:bench-target"], detail))
        [cluster_job] = [detail for target, detail in shard_jobs if target == "cluster"]
        size = cluster_job["arrayProperties"]["size"]
        assert size == 2
        expected = {f"gb_{cluster_job['jobId']}_{i}_1": 1 for i in range(size)}
        deadline = time.monotonic() + 20  # accounting records arrive a moment after the ends
        while accounted_names(f"gb_{cluster_job['jobId']}_") != expected:
            assert time.monotonic() < deadline, accounted_names(f"gb_{cluster_job['jobId']}_")
            time.sleep(0.5)
        [laptop_job] = [detail for target, detail in shard_jobs if target == "laptop"]
        assert not accounted_names(f"gb_{laptop_job['jobId']}")  # the local slice's shard never went to Slurm

        # One report for both targets, and the outputs compared across them: identical BAMs.
        html = (tmp_path / "runs" / run_id / "report" / "benchmark.html").read_text()
        targets = set(re.findall(r'<tr class="summary-row"[^>]*data-target="([^"]+)"', html))
        assert targets == {"laptop", "cluster"}
        verdicts = re.findall(r'data-tool="minimap2" data-output="([^"]+)"\s+data-identical="(\w+)"', html)
        assert verdicts and all(identical == "true" for _, identical in verdicts), verdicts
    finally:
        server.stop()
