"""The pipeline as AWS Batch requests: job definitions to register and the DAG of SubmitJob calls for one run.

Nothing here is genobatch-specific: it speaks to whatever boto3 Batch client it is given, exactly as a user's own
workflow code would - one job definition per stage, array jobs with one child per sample, and N_TO_N dependencies
so sample 3's alignment starts as soon as sample 3's reads exist, not when every sample's do:

    reference ──> simulate[N] ──> align[N] ──> sort[N] ──┬──> call[N] ──> evaluate[N]
                                                         └──> stats[N]

A one-sample run uses plain jobs and plain dependencies, since AWS Batch arrays have at least two children.
"""

from __future__ import annotations

import os
import re
from typing import Any

from genobatch.trace import SAMPLE_PREFIX_TAG, SAMPLE_TAG

from . import STAGES
from .layout import SAMPLE_PREFIX, sample_name

PREFIX = "genobatch-demo-"
#: Recorded as the definitions' image; genobatch's local backend runs the command on the host unless configured
#: with a container runtime, in which case an image with genobatch installed under this name would be used.
IMAGE = "genobatch/pipeline:local"
MODULE = "genobatch.examples.pipeline"

#: Each stage's upstream stages; every edge is N_TO_N between per-sample arrays, except from ``reference``.
DAG: dict[str, tuple[str, ...]] = {
    "reference": (),
    "simulate": ("reference",),
    "align": ("simulate",),
    "sort": ("align",),
    "call": ("sort",),
    "stats": ("sort",),
    "evaluate": ("call",),
}

#: (vCPUs, MiB) per stage, from measured peaks at the defaults (200 kb, 30x): read simulation holds the reads as
#: numpy matrices (~190 MB), the others stay under 70 MB. Memory is a hard limit in genobatch, so each has headroom
#: for a genome a few times larger.
RESOURCES: dict[str, tuple[int, int]] = {
    "reference": (1, 512),
    "simulate": (1, 1024),
    "align": (1, 512),
    "sort": (1, 512),
    "call": (1, 512),
    "stats": (1, 512),
    "evaluate": (1, 256),
}

#: Stage-specific arguments, as ``Ref::`` placeholders filled from each job's parameters.
ARGUMENTS: dict[str, list[str]] = {
    "reference": ["--samples", "Ref::samples", "--seed", "Ref::seed"],
    "simulate": ["--coverage", "Ref::coverage"],
}

#: Definition defaults for the parameters; ``run_dir`` has none on purpose, every run must name its own.
DEFAULT_PARAMETERS = {"samples": "1", "seed": "1", "coverage": "30"}


def definition_name(stage: str) -> str:
    return f"{PREFIX}{stage}"


def job_definitions(python: str) -> list[dict[str, Any]]:
    """RegisterJobDefinition requests, one per stage, running ``python -m genobatch.examples.pipeline <stage>``.

    ``python`` is the interpreter on the hosts that run the jobs (``sys.executable`` for genobatch's local backend).
    A stage that raises exits 1 and is not retried (the same inputs would fail the same way); any other end - killed
    for memory, by a signal, or with its host - is retried once, which is safe because stages publish outputs
    atomically and recompute them identically.
    """
    requests = []
    for stage in STAGES:
        vcpus, memory = RESOURCES[stage]
        command = [python, "-m", MODULE, stage, "--run-dir", "Ref::run_dir", *ARGUMENTS.get(stage, [])]
        requests.append(
            {
                "jobDefinitionName": definition_name(stage),
                "type": "container",
                "parameters": dict(DEFAULT_PARAMETERS),
                "containerProperties": {
                    "image": IMAGE,
                    "command": command,
                    "environment": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": str(vcpus)},
                        {"type": "MEMORY", "value": str(memory)},
                    ],
                },
                "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "1", "action": "EXIT"}]},
                "timeout": {"attemptDurationSeconds": 900},
                "tags": {"genobatch:example": "pipeline", "genobatch:stage": stage},
            }
        )
    return requests


def register_job_definitions(batch_client: Any, python: str) -> dict[str, str]:
    """Register (a new revision of) every stage's definition; returns the definition ARNs by stage."""
    arns = {}
    for stage, request in zip(STAGES, job_definitions(python), strict=True):
        arns[stage] = batch_client.register_job_definition(**request)["jobDefinitionArn"]
    return arns


def submit_run(
    batch_client: Any,
    queue: str,
    run_id: str,
    run_dir: str,
    samples: int,
    coverage: float,
    seed: int,
    tags: dict[str, str],
) -> dict[str, str]:
    """Submit one run's DAG to ``queue`` with the registered ``genobatch-demo-*`` definitions; returns job ids by
    stage (per-sample stages are array jobs, their children ``<id>:<sample>``).

    Every job carries the run's parameters (so DescribeJobs shows what produced its outputs) and the tags
    ``genobatch:run`` and ``genobatch:stage`` on top of ``tags``. ``run_dir`` is made absolute: jobs run in their
    own working directories.
    """
    if samples < 1:
        raise ValueError("a run needs at least one sample")
    parameters = {
        "run_dir": os.path.abspath(run_dir),
        "samples": str(samples),
        "seed": str(seed),
        "coverage": f"{coverage:g}",
    }
    # Job names allow letters, digits, hyphens and underscores (128 at most), starting with a letter or digit.
    name = re.sub(r"[^A-Za-z0-9_-]", "-", run_id).lstrip("-_")[:100] or "run"
    job_ids: dict[str, str] = {}
    for stage in STAGES:  # in dependency order: each stage's upstream ids exist when it is submitted
        request: dict[str, Any] = {
            "jobName": f"{name}-{stage}",
            "jobQueue": queue,
            "jobDefinition": definition_name(stage),
            "parameters": parameters,
            "tags": {**tags, "genobatch:run": run_id, "genobatch:stage": stage, **_sample_tags(stage, samples)},
        }
        if DAG[stage]:
            request["dependsOn"] = [_dependency(job_ids[upstream], upstream, samples) for upstream in DAG[stage]]
        if stage != "reference" and samples > 1:
            request["arrayProperties"] = {"size": samples}
        job_ids[stage] = batch_client.submit_job(**request)["jobId"]
    return job_ids


def _sample_tags(stage: str, samples: int) -> dict[str, str]:
    """Tags that tell genobatch's trace which sample a job works on (for cost per sample)."""
    if stage == "reference":
        return {}  # one job for the whole run: its cost is the run's, not a sample's
    if samples == 1:
        return {SAMPLE_TAG: sample_name(0)}
    return {SAMPLE_PREFIX_TAG: SAMPLE_PREFIX}


def _dependency(job_id: str, upstream: str, samples: int) -> dict[str, str]:
    """N_TO_N between two per-sample arrays (child i waits for child i); a plain dependency on the reference job
    (every child waits for it) and between the plain jobs of a one-sample run."""
    if upstream == "reference" or samples == 1:
        return {"jobId": job_id}
    return {"jobId": job_id, "type": "N_TO_N"}
