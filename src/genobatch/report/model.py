"""The report's input: everything a run report shows, as plain data.

The report is a pure rendering of a :class:`RunData`; nothing here reads the store or the clock, so
the same data always renders the same files. Units follow Nextflow's raw trace: times are epoch
milliseconds, durations milliseconds, sizes bytes, requested ``memory`` MiB, money USD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from genobatch.report.results import RunResults


@dataclass(frozen=True)
class RunInfo:
    """Who, when and where: the header of the report."""

    run_id: str
    title: str
    created: datetime
    region: str
    #: Where the prices came from (e.g. "AWS Price List API, on-demand") and when they were read.
    pricing_source: str = ""
    pricing_date: str = ""
    #: One sentence per price that is an estimate (a spot price = on-demand x a fraction), shown prominently.
    pricing_estimates: tuple[str, ...] = ()


@dataclass(frozen=True)
class TraceRecord:
    """One attempt of one job, with the fields users know from Nextflow's trace file.

    ``task_id`` is the Batch job id (Nextflow's ``native_id`` on AWS Batch), so the attempts of a
    retried job share it and differ in ``attempt``. ``status`` is whatever the caller uses (genobatch's
    trace speaks Nextflow's COMPLETED/FAILED); the report only counts and colours it.
    """

    task_id: str
    name: str
    status: str
    attempt: int = 1
    exit: int | None = None
    submit: int | None = None
    start: int | None = None
    complete: int | None = None
    duration: int | None = None
    realtime: int | None = None
    pct_cpu: float | None = None
    peak_rss: int | None = None
    peak_vmem: int | None = None
    rchar: int | None = None
    wchar: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None
    queue: str = ""
    compute_environment: str = ""
    hostname: str | None = None
    cpus: int = 1
    memory: int = 0
    gpus: int = 0
    job_definition: str = ""
    sample: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    attributed_cost: float = 0.0

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any], **overrides: Any) -> TraceRecord:
        """Build from a trace dict (``genobatch.trace.trace_records``); unknown keys are ignored.

        Ignoring extra keys lets the trace grow fields without breaking the report; ``overrides``
        supplies what the trace does not carry, typically ``attributed_cost``.
        """
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values.update(overrides)
        # A None cost or string field means "not measured"; the dataclass defaults say it better.
        for key in ("attributed_cost", "queue", "compute_environment", "job_definition", "tags"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    @property
    def requested_memory_bytes(self) -> int:
        """The memory request in bytes, to compare with ``peak_rss``."""
        return self.memory * 1024 * 1024

    @property
    def cpu_pct_of_request(self) -> float | None:
        """Measured CPU as a percentage of the vCPUs requested (100 = every requested vCPU busy)."""
        if self.pct_cpu is None or self.cpus <= 0:
            return None
        return self.pct_cpu / self.cpus

    @property
    def memory_pct_of_request(self) -> float | None:
        """Peak resident memory as a percentage of the memory requested."""
        if self.peak_rss is None or self.memory <= 0:
            return None
        return 100.0 * self.peak_rss / self.requested_memory_bytes


@dataclass(frozen=True)
class ComputeEnvironmentCost:
    """What the capacity behind one compute environment cost, used or not.

    The instance shape (vCPUs, MiB, GPUs of ``instance_type``) is optional; given, right-sizing
    re-prices attempts the way genobatch attributes cost: by the largest share of the instance an
    attempt requests.
    """

    compute_environment: str
    instance_seconds: float
    billed_cost: float
    instance_type: str = ""
    instance_vcpus: int | None = None
    instance_memory_mib: int | None = None
    instance_gpus: int = 0

    @classmethod
    def from_summary(cls, environment: Mapping[str, Any]) -> ComputeEnvironmentCost:
        """One of ``cost.computeEnvironments`` in the run summary (``GET /genobatch/v1/runs``)."""
        return cls(
            compute_environment=environment["name"],
            instance_seconds=environment["billedInstanceSeconds"],
            billed_cost=environment["billedUsd"],
            instance_type=environment["instanceType"] or "",
            instance_vcpus=environment["instanceVcpus"],
            instance_memory_mib=environment["instanceMemoryMib"],
            instance_gpus=environment["instanceGpus"],
        )

    def share(self, cpus: float, memory_mib: float, gpus: int) -> float | None:
        """The fraction of one instance a request takes (its largest relative part, at most 1)."""
        if not self.instance_vcpus or not self.instance_memory_mib:
            return None
        fractions = [cpus / self.instance_vcpus, memory_mib / self.instance_memory_mib]
        if self.instance_gpus:
            fractions.append(gpus / self.instance_gpus)
        return min(1.0, max(fractions))


@dataclass(frozen=True)
class SampleCost:
    """One row of the per-sample cost table (the EC2 / S3 / data transfer split of a cloud bill)."""

    sample: str
    compute: float
    storage: float
    transfer: float
    total: float


@dataclass(frozen=True)
class RightSizingPolicy:
    """How advice is derived from measured peaks, and how a smaller request would change cost.

    ``cpu_cost_share`` is used only where the compute environment's instance shape is unknown: the
    part of an attempt's attributed cost taken to follow its vCPUs (the rest follows memory).
    """

    cpu_headroom: float = 1.1
    memory_headroom: float = 1.2
    memory_step_mib: int = 256
    cpu_cost_share: float = 0.5


#: How per-sample compute is derived when nothing else is said (the API's attributed costs, as given).
ATTRIBUTED_BASIS = (
    "Compute per sample is the sample's attributed cost (its jobs' share of the instances, by request) plus an "
    "even share of run-level jobs; capacity no job used is not in it."
)


@dataclass(frozen=True)
class RunData:
    """Everything one run report shows."""

    info: RunInfo
    trace: list[TraceRecord]
    billed: list[ComputeEnvironmentCost] = field(default_factory=list)
    samples: list[SampleCost] = field(default_factory=list)
    policy: RightSizingPolicy = field(default_factory=RightSizingPolicy)
    #: What the jobs published (metrics per sample) and the failed jobs; None: not collected.
    results: RunResults | None = None
    #: One paragraph saying what the per-sample costs are built on (attributed or billed shares, what
    #: storage and transfer count); shown above the per-sample table.
    sample_cost_basis: str = ATTRIBUTED_BASIS
