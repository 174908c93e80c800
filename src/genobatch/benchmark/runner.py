"""Running a benchmark plan through the normal AWS Batch API and scheduler.

For every tool x configuration x target x repeat the runner submits one *instance run*: an array
job with one child per shard (a plain job when there is one shard), on the target's queue. A local
target is a compute environment the runner creates that slices this host (``maxvCpus`` = the
slice's vCPUs, billed as the plan's instance type); CPU affinity and GPU pinning enforce the slice.
Instance runs go one at a time, so no run's timing is perturbed by another on the same host.

Each shard's command is rendered into ``<run>/<tool>/<configuration>/<target>/r<repeat>/shard-<i>.sh``;
the job definition runs the script of its ``AWS_BATCH_JOB_ARRAY_INDEX``. Afterwards the runner reads
every child's ``startedAt``/``stoppedAt`` from DescribeJobs and its log from the native API, parses
the tool's metrics, measures each shard's work, and records :class:`~.results.ShardResult` s in
``shards.json``: everything the aggregation and the report need is recomputable from there and the API.

**FPGAs.** AWS Batch has no FPGA resource type (``resourceRequirements`` takes ``GPU``, ``VCPU`` and
``MEMORY``; genobatch refuses anything else, as AWS does), and its scheduler never counts FPGAs: on AWS,
F1/F2 jobs get the device through ``containerProperties.linuxParameters.devices`` (the instance's FPGA
device nodes, which depend on its AMI and driver) and are kept one per chip by their vCPU and memory
requests. So a tool's FPGAs travel inside the wire contract as the job definition tag
``genobatch:fpgas`` (what the job needs, for whoever reads the definition), and the runner assigns the
slots itself: shard ``i`` of a tool with ``f`` FPGAs per shard gets slots ``i*f .. i*f+f-1``, exported
to its command as ``GENOBATCH_FPGAS`` (comma-separated, like ``CUDA_VISIBLE_DEVICES``), with the
target's FPGA model (from the catalog) as ``GENOBATCH_FPGA_MODEL``. Instance runs go one at a time, so
the shards running at once hold disjoint slots. What is NOT enforced: the scheduler does not place by
FPGAs, and a job submitted outside the runner gets no slot; nothing stops a command from opening a
slot it was not given (a local "slot" is a number, not a device).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genobatch.benchmark.parsers import ParserError, parse_metrics
from genobatch.benchmark.plan import Plan, Tool, resolve_target
from genobatch.benchmark.results import ShardResult, Target
from genobatch.benchmark.sharding import measure_work, shard_files
from genobatch.cost.catalog import Catalog

BENCH_TAG = "genobatch:bench"
FPGAS_TAG = "genobatch:fpgas"  # a job definition's FPGAs per job: AWS Batch has no FPGA resource type
POLL_S = 0.25
IMAGE = "genobatch/benchmark:local"  # recorded only: local targets run the command on the host


def resource_name(plan: Plan, suffix: str) -> str:
    """``bench-<plan>-<suffix>``, within AWS Batch's 128-character name limit."""
    return f"bench-{plan.name}-{suffix}"[:128]


@dataclass(frozen=True)
class InstanceRun:
    """One array job: a tool x configuration on a target, one repeat."""

    tool: Tool
    configuration: str
    target: Target
    repeat: int
    directory: Path
    shards: int

    @property
    def label(self) -> str:
        return f"{self.tool.name}/{self.configuration}@{self.target.name} #{self.repeat + 1}"


def ensure_targets(batch: Any, plan: Plan, catalog: Catalog) -> dict[str, Target]:
    """Create (or update) each local slice's compute environment and every target's queue."""
    targets = {}
    existing = {ce["computeEnvironmentName"] for ce in batch.describe_compute_environments()["computeEnvironments"]}
    queues = {q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]}
    for spec in plan.targets:
        environment = spec.compute_environment or resource_name(plan, spec.name)
        if spec.local is not None:
            resources = {
                "type": "SPOT" if spec.purchase == "spot" else "EC2",
                "maxvCpus": spec.local.vcpus,
                "instanceTypes": [spec.instance_type],
                "subnets": [],
            }
            if environment in existing:
                batch.update_compute_environment(
                    computeEnvironment=environment, computeResources={"maxvCpus": spec.local.vcpus}
                )
            else:
                batch.create_compute_environment(
                    computeEnvironmentName=environment,
                    type="MANAGED",
                    computeResources=resources,
                    tags={"genobatch:region": spec.region, BENCH_TAG: plan.name},
                )
        queue = resource_name(plan, spec.name)
        if queue not in queues:
            batch.create_job_queue(
                jobQueueName=queue,
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
            )
        targets[spec.name] = resolve_target(spec, catalog, compute_environment=environment)
    return targets


def register_tools(batch: Any, plan: Plan) -> dict[str, str]:
    """One job definition per tool: run the shard script of this array index."""
    arns = {}
    for tool in plan.tools:
        requirements = [
            {"type": "VCPU", "value": str(tool.resources.vcpus)},
            {"type": "MEMORY", "value": str(tool.resources.memory)},
        ]
        if tool.resources.gpus:
            requirements.append({"type": "GPU", "value": str(tool.resources.gpus)})
        tags = {BENCH_TAG: plan.name, "genobatch:bench-tool-version": str(tool.version or "")}
        if tool.resources.fpgas:
            tags[FPGAS_TAG] = str(tool.resources.fpgas)
        response = batch.register_job_definition(
            jobDefinitionName=resource_name(plan, tool.name),
            type="container",
            parameters={"run": "."},
            containerProperties={
                "image": IMAGE,
                "command": ["sh", "-c", 'exec sh "$0/shard-${AWS_BATCH_JOB_ARRAY_INDEX:-0}.sh"', "Ref::run"],
                "resourceRequirements": requirements,
            },
            tags=tags,
        )
        arns[tool.name] = response["jobDefinitionArn"]
    return arns


def instance_runs(plan: Plan, targets: dict[str, Target], directory: Path) -> Iterator[InstanceRun]:
    """Every instance run of the plan, repeats interleaved so drift over time hits all targets alike."""
    for repeat in range(plan.repeats):
        for tool in plan.tools:
            for configuration in tool.configurations:
                for spec in plan.targets:
                    target = targets[spec.name]
                    run_dir = directory / tool.name / configuration.name / target.name / f"r{repeat}"
                    yield InstanceRun(tool, configuration.name, target, repeat, run_dir, plan.shards_for(target, tool))


def write_shard_scripts(plan: Plan, run: InstanceRun) -> list[list[Path]]:
    """Render each shard's command into ``shard-<i>.sh``; returns each shard's input files."""
    shards = shard_files(plan.input_files, run.shards)
    run.directory.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        output_dir = run.directory / f"shard-{shard.index}"
        output_dir.mkdir(exist_ok=True)
        command = run.tool.render(run.configuration, [str(p) for p in shard.files], str(output_dir), shard.index)
        script = f"set -e\ncd {shlex.quote(str(plan.path.parent if plan.path else Path.cwd()))}\n"
        script += fpga_exports(run, shard.index) + f"{command}\n"
        (run.directory / f"shard-{shard.index}.sh").write_text(script)
    return [list(shard.files) for shard in shards]


def fpga_slots(run: InstanceRun, shard: int) -> list[int]:
    """The FPGA slots shard ``shard`` of ``run`` holds: disjoint across the run's shards, within the target's."""
    per_shard = run.tool.resources.fpgas
    slots = list(range(shard * per_shard, (shard + 1) * per_shard))
    if slots and slots[-1] >= run.target.fpgas:
        raise ValueError(
            f"{run.label}: shard {shard} needs FPGA slots {slots[0]}-{slots[-1]} but target "
            f"{run.target.name!r} has {run.target.fpgas} FPGA(s)"
        )
    return slots


def fpga_exports(run: InstanceRun, shard: int) -> str:
    """The shell lines giving a shard its FPGA slots and model (nothing for a tool without FPGAs)."""
    slots = fpga_slots(run, shard)
    if not slots:
        return ""
    model = shlex.quote(run.target.fpga_model)
    return f"export GENOBATCH_FPGAS={','.join(map(str, slots))} GENOBATCH_FPGA_MODEL={model}\n"


def submit(batch: Any, plan: Plan, run: InstanceRun, definition: str, run_id: str) -> str:
    request: dict[str, Any] = {
        "jobName": resource_name(plan, f"{run.tool.name}-{run.configuration}-{run.target.name}-r{run.repeat}")[:128],
        "jobQueue": resource_name(plan, run.target.name),
        "jobDefinition": definition,
        "parameters": {"run": str(run.directory)},
        "tags": {
            BENCH_TAG: run_id,
            "genobatch:bench-tool": run.tool.name,
            "genobatch:bench-configuration": run.configuration,
            "genobatch:bench-target": run.target.name,
            "genobatch:bench-repeat": str(run.repeat),
        },
    }
    if run.shards > 1:
        request["arrayProperties"] = {"size": run.shards}
    return batch.submit_job(**request)["jobId"]


class NeverPlaced(Exception):
    """An instance run whose job the scheduler can never place (``MISCONFIGURATION:...``): it would wait forever."""

    def __init__(self, job_id: str, reason: str, label: str = "") -> None:
        super().__init__(f"{job_id}: {reason}")
        self.job_id, self.reason, self.label = job_id, reason, label or job_id


def misconfiguration(batch: Any, detail: dict, shards: int) -> str | None:
    """The ``MISCONFIGURATION:...`` reason a RUNNABLE job (or its first array child) waits with, if any."""
    if detail["status"] != "RUNNABLE":
        return None
    reason = detail.get("statusReason") or ""
    if not reason and shards > 1:
        child = batch.describe_jobs(jobs=[f"{detail['jobId']}:0"])["jobs"]
        reason = (child[0].get("statusReason") or "") if child else ""
    return reason if reason.startswith("MISCONFIGURATION") else None


def wait(batch: Any, job_id: str, on_poll: Callable[[dict], None] | None = None, shards: int = 1) -> dict:
    """Poll until the job ends. A job the scheduler can never place (a plan asking for GPUs a server does not
    have) would wait forever, as on AWS Batch: it is terminated and :class:`NeverPlaced` raised instead."""
    while True:
        detail = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        if on_poll:
            on_poll(detail)
        if detail["status"] in ("SUCCEEDED", "FAILED"):
            return detail
        reason = misconfiguration(batch, detail, shards)
        if reason:
            batch.terminate_job(jobId=job_id, reason=f"genobatch bench: {reason}")
            raise NeverPlaced(job_id, reason, detail.get("jobName", ""))
        time.sleep(POLL_S)


def child_ids(job_id: str, shards: int) -> list[str]:
    return [job_id] if shards == 1 else [f"{job_id}:{i}" for i in range(shards)]


def read_log(native_get: Callable[[str, dict], dict], job_id: str) -> str:
    """The whole log of the job's last attempt, through the native API."""
    chunks, offset = [], 0
    while True:
        page = native_get(f"/genobatch/v1/jobs/{job_id}/logs", {"offset": offset})
        chunks.append(page["data"])
        if page["nextOffset"] == offset or page.get("complete"):
            return "".join(chunks)
        offset = page["nextOffset"]


def collect(
    batch: Any,
    native_get: Callable[[str, dict], dict],
    plan: Plan,
    run: InstanceRun,
    job_id: str,
    inputs: list[list[Path]],
) -> list[ShardResult]:
    """ShardResults of a finished instance run, from DescribeJobs and the logs."""
    ids = child_ids(job_id, run.shards)
    details = {
        d["jobId"]: d
        for start in range(0, len(ids), 100)
        for d in batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]
    }
    kind = plan.dataset.work.kind
    results = []
    for shard, child in enumerate(ids):
        detail = details[child]
        try:
            metrics = parse_metrics(run.tool.parser, read_log(native_get, child)) if run.tool.parser else {}
        except ParserError:
            metrics = {}  # the aggregation notes the missing figures; a failed parse never reads as zero
        work = measure_work(inputs[shard], kind) if kind != "metric" else 0.0
        results.append(
            ShardResult(
                tool=run.tool.name,
                configuration=run.configuration,
                target=run.target.name,
                repeat=run.repeat,
                shard=shard,
                job_id=child,
                status=detail["status"],
                start_ms=detail.get("startedAt"),
                stop_ms=detail.get("stoppedAt"),
                work=work,
                metrics=metrics,
                output_dir=str(run.directory / f"shard-{shard}"),
            )
        )
    return results


def new_run_id(plan: Plan) -> str:
    return f"{plan.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def save(directory: Path, plan: Plan, run_id: str, targets: dict[str, Target], shards: list[ShardResult]) -> None:
    """``run.json`` (plan path, targets) and ``shards.json``: the inputs of ``genobatch bench report``."""
    document = {
        "run_id": run_id,
        "plan": str(plan.path),
        "created": datetime.now(UTC).isoformat(),
        "targets": {name: asdict(target) for name, target in targets.items()},
    }
    (directory / "run.json").write_text(json.dumps(document, indent=2))
    (directory / "shards.json").write_text(json.dumps([asdict(s) for s in shards], indent=2))


def load(directory: Path) -> tuple[dict, dict[str, Target], list[ShardResult]]:
    """The saved run: (run document, targets, shard results)."""
    document = json.loads((directory / "run.json").read_text())
    targets = {name: Target(**values) for name, values in document["targets"].items()}
    shards = [ShardResult(**values) for values in json.loads((directory / "shards.json").read_text())]
    return document, targets, shards
