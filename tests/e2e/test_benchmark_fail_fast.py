"""A benchmark plan that can never be placed fails fast with the scheduler's MISCONFIGURATION reason."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from harness import as_from_a_terminal, launch, wait_for

PLAN = """
name: never-placed
dataset:
  files: [data/signal/*.pod5]
  work: bytes
tools:
  - name: dorado-standin
    command: python3 -m genobatch.examples.benchmark.fake_dorado --output-dir {output_dir} {inputs}
    resources: {vcpus: 1, memory: 512, gpus: 1}
    parser: dorado
targets:
  - name: host
    compute_environment: default      # this server's host: no GPUs at all
    instance_type: g5.xlarge          # prices it, and says one GPU per instance
sharding: per-gpu
repeats: 1
"""


@pytest.fixture(scope="module")
def gpu_less_server(tmp_path_factory):
    server = launch(tmp_path_factory, "--gpus", "0")
    yield server
    server.stop()


def test_gpus_on_a_gpu_less_server_fail_fast_with_the_reason(gpu_less_server, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "genobatch.examples.benchmark.prepare", "signal", str(tmp_path / "data" / "signal")],
        check=True,
        capture_output=True,
    )
    (tmp_path / "plan.yaml").write_text(PLAN)
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(gpu_less_server.data_dir)]
    command += ["--endpoint", gpu_less_server.endpoint, "bench", "run", str(tmp_path / "plan.yaml")]
    started = time.monotonic()
    result = subprocess.run(
        [*command, "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**gpu_less_server.env(), "COLUMNS": "120"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    assert "can never run: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT" in result.stderr, result.stderr
    job_id = result.stderr.split("(its job ")[1].split(" ")[0]
    batch = gpu_less_server.client()
    assert wait_for(batch, job_id, timeout=30)["status"] == "FAILED"  # terminated, not left waiting


SLOW_PLAN = """
name: interrupted
dataset:
  files: [data/signal/*.pod5]
  work: bytes
tools:
  - name: sleeper
    command: python3 -c "import time; time.sleep(120)" {inputs}
    resources: {vcpus: 1, memory: 64}
targets:
  - name: host
    compute_environment: default
    instance_type: m5.large
sharding: {shards: 1}
repeats: 1
"""


def test_ctrl_c_terminates_the_benchmarks_job(gpu_less_server, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "genobatch.examples.benchmark.prepare", "signal", str(tmp_path / "data" / "signal")],
        check=True,
        capture_output=True,
    )
    (tmp_path / "plan.yaml").write_text(SLOW_PLAN)
    command = [sys.executable, "-m", "genobatch", "--data-dir", str(gpu_less_server.data_dir)]
    command += ["--endpoint", gpu_less_server.endpoint, "bench", "run", str(tmp_path / "plan.yaml")]
    bench = subprocess.Popen(
        [*command, "--out", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**gpu_less_server.env(), "COLUMNS": "120"},
        preexec_fn=as_from_a_terminal,
    )
    batch = gpu_less_server.client()
    try:
        deadline = time.monotonic() + 60
        running = []
        while not running and time.monotonic() < deadline and bench.poll() is None:
            queues = [q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]]  # the runner makes its own
            running = [j for q in queues for j in batch.list_jobs(jobQueue=q, jobStatus="RUNNING")["jobSummaryList"]]
            time.sleep(0.2)
        assert running, "the benchmark's job never started" + (bench.stdout.read() if bench.poll() is not None else "")
        bench.send_signal(signal.SIGINT)
        output = bench.communicate(timeout=60)[0]
    finally:
        bench.kill()
    assert bench.returncode == 130, output
    assert f"terminated the benchmark's running job {running[0]['jobId']}" in output
    assert wait_for(batch, running[0]["jobId"], timeout=60)["status"] == "FAILED"
