"""The simulation plan: capacity, queues, job definitions and a workload - a YAML file.

A complete plan (keys with a default may be left out; times in seconds, memory in MiB)::

    name: bactopia-67k
    region: us-east-1                       # pricing region, default us-east-1
    seeds: 5                                # simulated runs (seed 1..N); `--seeds` overrides; default 1
    compute_environments:
      - name: spot-m5
        instance_type: m5.xlarge            # the price catalog's type: its vCPUs, memory, GPUs and $/h
        purchase: spot                      # on-demand (default) | spot
        min_vcpus: 0                        # kept running from the start, never scaled down
        max_vcpus: 2048
        scaling_delay_s: 180                # launched capacity runs jobs this much later (boot)
        scale_down_after_s: 60              # an idle instance is released after this; default 60
        spot_interruptions_per_hour: 0.02   # per instance-hour (spot only); default 0
        # price_per_hour: 0.0768            # optional: overrides the catalog
    queues:
      - {name: main, priority: 1, compute_environments: [spot-m5]}
    job_definitions:
      - name: bactopia
        resources: {vcpus: 4, memory: 15000, gpus: 0}
        runtime: {lognormal: {median: 3300, sigma: 0.1}}
        # runtime: {fixed: 3300} | {normal: {mean: 3300, sd: 300}} | {empirical: [3200, 3350]}
        # runtime: {trace: {path: trace.tsv, job_definition: align, fit: empirical}}  # or fit: lognormal
        failure_rate: 0.01                  # probability that an attempt fails (exit code below)
        failure_exit_code: 1
        retry_strategy: {attempts: 3, evaluateOnExit: [{onStatusReason: "Host EC2*", action: RETRY}]}
        timeout_s: 7200                     # attemptDurationSeconds; optional
    workload:
      - name: genomes                       # job name; ids are <name>, <name>-<k> or <name>:<i>
        job_definition: bactopia
        queue: main
        count: 67000                        # independent jobs (as Nextflow submits them); default 1
        # array_size: 100                   # or one array job of 2-10,000 children
        depends_on: [{job: reference}, {job: align, type: N_TO_N}, {type: SEQUENTIAL}]
        submit_at_s: 0
        priority: 0                         # schedulingPriority

A failed attempt ends at a uniformly drawn point of its run time. A spot interruption ends every
attempt on the instance with AWS's status reason ``Host EC2 (instance <id>) terminated.`` and no
exit code; ``retry_strategy`` decides, as on AWS Batch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo
from pydantic.functional_validators import AfterValidator, field_validator, model_validator

from genobatch import plan_file
from genobatch.core import retry
from genobatch.core.job import N_TO_N, SEQUENTIAL
from genobatch.simulate import runtime
from genobatch.simulate.runtime import Distribution

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ARRAY_MIN, ARRAY_MAX = 2, 10_000  # AWS Batch's arrayProperties.size bounds
MAX_DEPENDENCIES = 20  # AWS Batch's dependsOn limit per job


class PlanError(plan_file.PlanError):
    """An invalid simulation plan (see :class:`genobatch.plan_file.PlanError`)."""

    kind = "simulation plan"


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use 1-64 letters, digits, - and _")
    return value


Name = Annotated[str, AfterValidator(_name)]


def _unique(names: list[str], what: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique: {', '.join(repeated)} repeated")


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "purchse: spot" must not silently simulate on-demand.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComputeEnvironmentSpec(_Model):
    """A managed compute environment of one instance type."""

    name: Name
    instance_type: str
    purchase: Literal["on-demand", "spot"] = "on-demand"
    min_vcpus: int = Field(default=0, ge=0)
    max_vcpus: int = Field(ge=1)
    scaling_delay_s: float = Field(default=0, ge=0)
    scale_down_after_s: float = Field(default=60, ge=0)
    spot_interruptions_per_hour: float = Field(default=0, ge=0)
    price_per_hour: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ComputeEnvironmentSpec:
        if self.min_vcpus > self.max_vcpus:
            raise ValueError(f"min_vcpus ({self.min_vcpus}) is above max_vcpus ({self.max_vcpus})")
        if self.spot_interruptions_per_hour and self.purchase != "spot":
            raise ValueError("spot_interruptions_per_hour applies to purchase: spot only")
        return self


class QueueSpec(_Model):
    """A job queue: its priority and compute environments in order."""

    name: Name
    priority: int = Field(default=1, ge=0)
    compute_environments: list[str] = Field(min_length=1, max_length=3)


class ResourcesSpec(_Model):
    """What one attempt requests: vCPUs, MiB of memory, GPUs."""

    vcpus: int = Field(default=1, ge=1)
    memory: int = Field(default=2048, ge=1)
    gpus: int = Field(default=0, ge=0)


class Normal(_Model):
    mean: float = Field(gt=0)
    sd: float = Field(ge=0)


class Lognormal(_Model):
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


class TraceFit(_Model):
    """Run times fitted from a past run's trace (``trace.tsv`` or the runs API's JSON)."""

    path: str
    job_definition: str | None = None  # default: the plan's job definition's name
    fit: Literal["empirical", "lognormal"] = "empirical"


class RuntimeSpec(_Model):
    """Exactly one of ``fixed``, ``normal``, ``lognormal``, ``empirical``, ``trace`` (seconds)."""

    fixed: float | None = Field(default=None, gt=0)
    normal: Normal | None = None
    lognormal: Lognormal | None = None
    empirical: list[Annotated[float, Field(gt=0)]] | None = Field(default=None, min_length=1)
    trace: TraceFit | None = None

    @model_validator(mode="after")
    def _one(self) -> RuntimeSpec:
        given = [
            key for key in ("fixed", "normal", "lognormal", "empirical", "trace") if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of fixed, normal, lognormal, empirical, trace" + (f" (got {given})" if given else "")
            )
        return self


class RetryStrategySpec(_Model):
    """AWS Batch's retryStrategy: attempts 1-10 and evaluateOnExit entries."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    attempts: int = Field(default=1, ge=1, le=10)
    evaluate_on_exit: list[dict[str, str]] = Field(default_factory=list, alias="evaluateOnExit", max_length=5)

    @field_validator("evaluate_on_exit")
    @classmethod
    def _entries(cls, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        for i, entry in enumerate(entries):
            unknown = set(entry) - {"action", "onExitCode", "onReason", "onStatusReason"}
            problem = f"unknown key(s) {sorted(unknown)}" if unknown else retry.validate_entry(entry)
            if problem:
                raise ValueError(f"evaluateOnExit[{i}]: {problem}")
        return entries


class JobDefinitionSpec(_Model):
    """A job definition: resources, run times, failures and retries."""

    name: Name
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    runtime: RuntimeSpec
    failure_rate: float = Field(default=0, ge=0, le=1)
    failure_exit_code: int = Field(default=1, ge=1, le=255)
    retry_strategy: RetryStrategySpec = Field(default_factory=RetryStrategySpec)
    timeout_s: int | None = Field(default=None, ge=60)  # AWS Batch: attemptDurationSeconds >= 60
    _distribution: Distribution | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _distribution_of(self, info: ValidationInfo) -> JobDefinitionSpec:
        spec = self.runtime
        if spec.fixed is not None:
            self._distribution = runtime.fixed(spec.fixed)
        elif spec.normal is not None:
            self._distribution = runtime.normal(spec.normal.mean, spec.normal.sd)
        elif spec.lognormal is not None:
            self._distribution = runtime.lognormal(spec.lognormal.median, spec.lognormal.sigma)
        elif spec.empirical is not None:
            self._distribution = runtime.empirical(spec.empirical)
        else:
            self._distribution = _fitted(spec.trace, self.name, info)
        return self

    @property
    def distribution(self) -> Distribution:
        assert self._distribution is not None  # set by the validator
        return self._distribution


def _fitted(trace: TraceFit, definition: str, info: ValidationInfo) -> Distribution:
    base = Path((info.context or {}).get("base_dir") or Path.cwd())
    path = Path(trace.path) if Path(trace.path).is_absolute() else base / trace.path
    if not path.is_file():
        raise ValueError(f"runtime.trace.path {trace.path!r}: no such file (relative to {base})")
    try:
        runs = runtime.read_trace(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"runtime.trace.path: {error}") from None
    name = trace.job_definition or definition
    seconds = [run.seconds for run in runs if run.job_definition == name]
    if not seconds:
        have = ", ".join(sorted({run.job_definition for run in runs})) or "none"
        raise ValueError(f"runtime.trace: no successful attempt of job definition {name!r} in {path} (have: {have})")
    return runtime.fit(seconds, trace.fit)


class DependencySpec(_Model):
    """A dependency on another workload entry (by name), or SEQUENTIAL within an array."""

    job: str | None = None
    type: Literal["N_TO_N", "SEQUENTIAL"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> DependencySpec:
        if self.type == SEQUENTIAL and self.job is not None:
            raise ValueError("a SEQUENTIAL dependency takes no job")
        if self.type != SEQUENTIAL and self.job is None:
            raise ValueError("job is required (the name of an earlier workload entry)")
        return self


class WorkloadSpec(_Model):
    """A submission: ``count`` plain jobs or one array job, of one job definition on one queue."""

    name: Name
    job_definition: str
    queue: str
    count: int = Field(default=1, ge=1)
    array_size: int | None = Field(default=None, ge=ARRAY_MIN, le=ARRAY_MAX)
    depends_on: list[DependencySpec] = Field(default_factory=list, max_length=MAX_DEPENDENCIES)
    submit_at_s: float = Field(default=0, ge=0)
    priority: int = Field(default=0, ge=0, le=9999)

    @model_validator(mode="after")
    def _shape(self) -> WorkloadSpec:
        if self.array_size is not None and self.count != 1:
            raise ValueError("give count (plain jobs) or array_size (one array job), not both")
        if self.array_size is None and any(d.type is not None for d in self.depends_on):
            raise ValueError("N_TO_N and SEQUENTIAL dependencies apply to array jobs only (set array_size)")
        return self


class Plan(_Model):
    """A validated simulation plan (see the module docstring for the YAML)."""

    name: Name
    region: str = "us-east-1"
    seeds: int = Field(default=1, ge=1, le=1000)
    compute_environments: list[ComputeEnvironmentSpec] = Field(min_length=1)
    queues: list[QueueSpec] = Field(min_length=1)
    job_definitions: list[JobDefinitionSpec] = Field(min_length=1)
    workload: list[WorkloadSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Plan:
        _unique([c.name for c in self.compute_environments], "compute environment")
        _unique([q.name for q in self.queues], "queue")
        _unique([d.name for d in self.job_definitions], "job definition")
        _unique([w.name for w in self.workload], "workload")
        environments = {c.name for c in self.compute_environments}
        for queue in self.queues:
            for name in queue.compute_environments:
                if name not in environments:
                    raise ValueError(f"queue {queue.name!r}: no compute environment {name!r}")
        queues, definitions = {q.name for q in self.queues}, {d.name for d in self.job_definitions}
        earlier: dict[str, WorkloadSpec] = {}
        for entry in self.workload:
            if entry.queue not in queues:
                raise ValueError(f"workload {entry.name!r}: no queue {entry.queue!r}")
            if entry.job_definition not in definitions:
                raise ValueError(f"workload {entry.name!r}: no job definition {entry.job_definition!r}")
            for dep in entry.depends_on:
                if dep.job is not None:
                    _check_dependency(entry, dep, earlier)
            earlier[entry.name] = entry
        return self

    def job_definition(self, name: str) -> JobDefinitionSpec:
        return next(d for d in self.job_definitions if d.name == name)

    @property
    def total_jobs(self) -> int:
        """Jobs that run (array children, not their parents)."""
        return sum(w.array_size or w.count for w in self.workload)


def _check_dependency(entry: WorkloadSpec, dep: DependencySpec, earlier: dict[str, WorkloadSpec]) -> None:
    target = earlier.get(dep.job or "")
    if target is None:
        raise ValueError(f"workload {entry.name!r}: depends on {dep.job!r}, which is not an earlier workload entry")
    if target.submit_at_s > entry.submit_at_s:
        raise ValueError(f"workload {entry.name!r}: depends on {dep.job!r}, which is submitted later")
    if target.count > 1:
        # AWS Batch allows 20 dependencies per job: a group of plain jobs is depended on as an array.
        raise ValueError(f"workload {entry.name!r}: {dep.job!r} is {target.count} plain jobs; make it an array")
    if dep.type == N_TO_N and target.array_size != entry.array_size:
        raise ValueError(
            f"workload {entry.name!r}: N_TO_N needs arrays of the same size "
            f"({dep.job} has {target.array_size or 'no array'}, this entry {entry.array_size})"
        )


def parse_plan(document: Any, base_dir: str | Path, source: str = "<plan>") -> Plan:
    """Validate a plan document (the YAML's data); trace paths are resolved against ``base_dir``."""
    return plan_file.validate_plan(Plan, document, base_dir, source, "name, compute_environments", PlanError)


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan file at ``path``; :class:`PlanError` names each invalid field."""
    path = Path(path)
    return parse_plan(plan_file.read_plan_document(path, PlanError), path.parent, str(path))
