"""The harness's data: what one shard did, and what a benchmark concluded.

Shared by the runner (which records :class:`ShardResult`), the aggregation (which produces
:class:`TargetSummary` and :class:`Recommendation`), the equivalence check
(:class:`EquivalenceResult`) and the report (:class:`BenchmarkResults`). Times are seconds unless a
name says otherwise; money is USD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Target:
    """Where a benchmark ran and what it is billed as."""

    name: str
    compute_environment: str
    instance_type: str
    region: str
    purchase: str  # "on-demand" | "spot"
    price_per_hour: float
    price_source: str
    price_as_of: str
    vcpus: int  # vCPUs of the instance (local targets: of the host slice)
    gpus: int = 0  # GPUs per instance
    fpgas: int = 0  # FPGAs per instance (local targets: the slots the runner hands out)
    fpga_model: str = ""  # the catalog's FPGA model of the instance type, "" when none or unknown
    price_estimated: bool = False  # an estimated price (spot = on-demand x a fraction), labelled in reports


@dataclass(frozen=True)
class ShardResult:
    """One shard of one instance run: one array child."""

    tool: str
    configuration: str
    target: str
    repeat: int  # 0-based
    shard: int  # 0-based array index
    job_id: str
    status: str  # SUCCEEDED | FAILED
    start_ms: int | None
    stop_ms: int | None
    work: float  # measured units of work in this shard's input (bytes, reads, bases, samples, ...)
    metrics: dict[str, float] = field(default_factory=dict)  # parsed from the tool's output, e.g. samples_per_s
    output_dir: str = ""

    @property
    def seconds(self) -> float | None:
        if self.start_ms is None or self.stop_ms is None:
            return None
        return (self.stop_ms - self.start_ms) / 1000


@dataclass(frozen=True)
class Spread:
    """Median and range of a figure over repeats."""

    median: float
    low: float
    high: float


@dataclass(frozen=True)
class TargetSummary:
    """One tool x configuration on one target, over its repeats."""

    tool: str
    configuration: str
    target: Target
    repeats: int
    shards: int
    runtime_s: Spread  # instance run time = the longest shard (billed until the last job ends)
    shard_spread_s: Spread  # longest - shortest shard within an instance run
    stragglers: list[str]  # human-readable: which shard of which repeat, how much slower than the median
    work: float  # units of work per instance run
    work_unit: str
    throughput_measured: Spread  # work / instance run time (includes start-up and model loading)
    throughput_tool: Spread | None  # sum over shards of the tool's own rate (excludes model loading)
    tool_rate_unit: str | None
    cost_per_unit: Spread  # per unit of work, per-second billing, overhead included
    runtime_per_workload_h: Spread
    cost_per_workload: Spread
    failed_shards: int = 0
    cost_per_run: Spread | None = None  # billed cost of the measured instance run itself, overhead included
    notes: list[str] = field(default_factory=list)  # repeats left out and why, missing tool rates


@dataclass(frozen=True)
class Recommendation:
    """The cheapest target meeting a deadline, and the fastest within a budget, for N workloads."""

    workloads: int
    deadline_h: float | None
    budget_usd: float | None
    cheapest_within_deadline: str | None  # "tool/configuration@target"
    fastest_within_budget: str | None
    explanation: list[str]


@dataclass(frozen=True)
class Difference:
    """How one target's output differs from the reference target's."""

    target: str
    differing_records: int
    only_in_reference: int
    only_in_target: int
    first: list[tuple[str, str]]  # (reference record, target record), a few


@dataclass(frozen=True)
class CallsComparison:
    """The second level of sameness, for VCF/BCF outputs: are the records equal as VCF content?"""

    same: bool  # present on every target with equal canonical records
    digests: dict[str, str]  # target -> digest of the canonical records
    records: dict[str, int]  # target -> records (calls) read
    differences: list[Difference] = field(default_factory=list)
    phase_ignored: bool = False  # whether 0|1 and 0/1 counted as the same genotype


@dataclass(frozen=True)
class EquivalenceResult:
    """One output of one tool, compared across targets after normalisation.

    ``identical``, ``digests`` and ``differences`` are the first level: the normalised records (provenance
    header lines removed) are identical. ``calls`` is the second level, for variant calls only.
    """

    tool: str
    output: str  # path relative to the shard's output directory; "shard-3/calls.vcf" when per shard
    reference_target: str
    digests: dict[str, str]  # target -> normalised content digest
    identical: bool
    differences: list[Difference] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)  # target -> normalised records read
    comparison: str = "file with file"  # what was compared with what (per shard, or shards merged)
    calls: CallsComparison | None = None


@dataclass(frozen=True)
class BenchmarkResults:
    """Everything the benchmark report shows."""

    plan_name: str
    run_id: str
    created: datetime
    workload_name: str
    workload_units: float
    work_unit: str
    overhead_s: float
    summaries: list[TargetSummary]
    recommendation: Recommendation
    equivalence: list[EquivalenceResult]
    shards: list[ShardResult] = field(default_factory=list)
