"""The benchmark plan: what to run, on what, how to count the work and what to conclude - a YAML file.

A complete plan (every key; those with a default may be left out)::

    name: ont-basecalling                 # letters, digits, - and _ (it names AWS Batch jobs)
    dataset:
      files: [pod5/*.pod5]                # paths or globs, relative to this file; each must match
      work: {metric: samples_called}      # bytes | reads | bases | samples | {metric: NAME}
    tools:
      - name: guppy
        version: 6.5.7                    # optional, recorded with the results
        command: >-
          guppy_basecaller -i {inputs} -s {output_dir} -x cuda:all --num_callers {threads} {args}
        configurations:                   # default: one configuration "default" with no args
          - {name: hac, args: -c dna_r10.4.1_e8.2_400bps_hac.cfg}
          - {name: sup, args: [-c, dna_r10.4.1_e8.2_400bps_sup.cfg]}   # a list is shell-quoted
        resources: {vcpus: 8, memory: 30000, gpus: 1}   # per shard; default 1 vCPU, 2048 MiB, 0 GPUs, 0 FPGAs
        parser: guppy                     # dorado | guppy | {regex: ..., metric: NAME, unit: ...}
        outputs: ["pass/*.fastq"]         # globs relative to {output_dir}, compared across targets
        equivalence: {ignore: ["^@RG"], defaults: true, ignore_phase: false}
    targets:
      - name: g5-12xlarge
        compute_environment: gpu-ce       # an existing compute environment, or else:
        # local: {vcpus: 48, gpus: 4, memory: 180000}   # a host slice the runner creates
        instance_type: g5.12xlarge        # what it bills as (the price catalog's type)
        gpus_per_instance: 4              # default: the local slice's GPUs, else the catalog's
        # fpgas_per_instance: 2           # likewise for FPGAs (local: {vcpus: 2, fpgas: 2})
        purchase: spot                    # on-demand (default) | spot
        region: us-west-2                 # pricing region, default us-east-1
        # price_per_hour: 5.67            # optional: overrides the catalog
    sharding: per-gpu                     # per-gpu | per-fpga | per-vcpu | {shards: N}; default {shards: 1}
    repeats: 3                            # instance runs per tool x configuration x target; default 3
    extrapolate: {name: 30x human genome, units: 98.967e9}   # or {samples: N}; default: the data set
    overhead_s: 600                       # per instance run: boot + image pull; default 600
    recommend: {workloads: 10, deadline_h: 24, budget_usd: 500}   # workloads default 1

**Command placeholders** (``str.format`` syntax; a literal brace is ``{{`` or ``}}``; a format spec
such as ``{shard:03d}`` is allowed): ``{inputs}`` the shard's input paths, space-joined and
shell-quoted (required: without it every shard would do the same work); ``{output_dir}`` the shard's
output directory; ``{threads}``, ``{gpus}``, ``{fpgas}``, ``{memory}`` the tool's vCPUs, GPUs, FPGAs and MiB per shard
(the job is pinned to its GPUs, so ``cuda:all`` means its own); ``{shard}`` the 0-based shard index;
``{args}`` the configuration's arguments, inserted as written.

**Shards per instance run** (:meth:`Plan.shards_for`): ``per-gpu`` = target GPUs // tool GPUs per
shard (one shard per GPU, as the seed ran one job per GPU); ``per-fpga`` = target FPGAs // tool FPGAs
per shard (DRAGEN runs one process per FPGA chip, seed 004); ``per-vcpu`` = target vCPUs // tool vCPUs
per shard; ``{shards: N}`` = N.

**FPGAs** are not an AWS Batch resource type (``resourceRequirements`` knows ``GPU``, ``VCPU`` and
``MEMORY`` only), so a tool's ``resources.fpgas`` travels as the job definition tag ``genobatch:fpgas``
(see :mod:`.runner`), and the runner, not the scheduler, hands each shard its FPGA slots
(``GENOBATCH_FPGAS``): instance runs go one at a time and the shards of one run get disjoint slots.
A target's FPGAs come from ``fpgas_per_instance``, the local slice's ``fpgas``, or the catalog's type.

**Equivalence**: outputs are compared after dropping the provenance header lines that differ between
identical runs, :data:`.equivalence.DEFAULT_IGNORE` - ``##fileDate=``, ``##source=``, VCF header
lines whose key ends a tool's version or command line (``##bcftools_callVersion=``,
``##GATKCommandLine=``; ``##INFO``/``##FILTER``/``##FORMAT`` definitions are always compared),
``@PG`` (SAM/BAM program records) and samtools stats' version and command-line comments. ``ignore``
adds patterns; ``defaults: false`` drops the defaults. VCF/BCF outputs are also compared as calls
(records equal as VCF content: QUAL ``60`` = ``60.00000``, INFO keys in any order); ``ignore_phase:
true`` makes ``0|1`` and ``0/1`` the same genotype there.

**overhead_s = 600**: seconds charged on top of every measured instance run. The seed observed 10-13
min to pull its multi-GB CUDA basecaller images onto a fresh instance, plus 1-2 min of boot; 600 s is
the low end, so teams that cache images are not overcharged, yet far from the zero the seed assumed.
Set 0 for warm instances or images baked into the AMI.
"""

from __future__ import annotations

import glob
import re
import shlex
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo
from pydantic.functional_validators import AfterValidator, PlainValidator, field_validator, model_validator

from genobatch import plan_file
from genobatch.benchmark.equivalence import DEFAULT_IGNORE
from genobatch.benchmark.parsers import ParserSpec, RegexParser, metric_names, parser_spec
from genobatch.benchmark.results import Target
from genobatch.benchmark.sharding import Work, work_spec
from genobatch.cost.catalog import Catalog

DEFAULT_OVERHEAD_S = 600.0
DEFAULT_REPEATS = 3
PLACEHOLDERS: tuple[str, ...] = ("inputs", "output_dir", "threads", "gpus", "fpgas", "memory", "shard", "args")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SAMPLE = {
    "inputs": "a.fq b.fq",
    "output_dir": "out",
    "threads": 1,
    "gpus": 1,
    "fpgas": 1,
    "memory": 1,
    "shard": 0,
    "args": "",
}
_PER_DEVICE = ("per-gpu", "per-fpga", "per-vcpu")


class PlanError(plan_file.PlanError):
    """An invalid benchmark plan (see :class:`genobatch.plan_file.PlanError`)."""

    kind = "benchmark plan"


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a valid name: use 1-64 letters, digits, - and _ (it names jobs)")
    return value


def _sharding(value: Any) -> str | int:
    if value in _PER_DEVICE:
        return str(value)
    count = value.get("shards") if isinstance(value, dict) and set(value) == {"shards"} else value
    if isinstance(count, int) and not isinstance(count, bool):
        if count < 1:
            raise ValueError(f"shards must be at least 1, not {count}")
        return count
    raise ValueError(f"{value!r}: use per-gpu, per-fpga, per-vcpu or {{shards: N}}")


def _unique(names: list[str], what: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} names must be unique: {', '.join(repeated)} repeated")


Name = Annotated[str, AfterValidator(_name)]


class _Model(BaseModel):
    # Unknown keys are errors: a misspelt "purchse: spot" must not silently bill on-demand.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir") or Path.cwd())


def _glob(pattern: str, base: Path) -> list[Path]:
    # root_dir, not base / pattern: a base directory with [ or * in its name must not act as a glob.
    matches = sorted(glob.glob(pattern, root_dir=base, recursive=True))
    return [(base / m).resolve() for m in matches if (base / m).is_file()]


class Dataset(_Model):
    """The input files (globs relative to the plan file) and how their work is counted."""

    files: list[str] = Field(min_length=1)
    work: Annotated[Work, PlainValidator(work_spec)]
    _paths: tuple[Path, ...] = PrivateAttr(default=())

    @field_validator("files")
    @classmethod
    def _match(cls, patterns: list[str], info: ValidationInfo) -> list[str]:
        for i, pattern in enumerate(patterns):
            if not _glob(pattern, _base_dir(info)):
                raise ValueError(f"files[{i}] {pattern!r} matches no file (relative to {_base_dir(info)})")
        return patterns

    @model_validator(mode="after")
    def _expand(self, info: ValidationInfo) -> Dataset:
        found: dict[Path, None] = {}
        for pattern in self.files:
            found.update(dict.fromkeys(_glob(pattern, _base_dir(info))))  # a file two globs match is one file
        self._paths = tuple(found)
        return self

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every input file, absolute, in glob order, each once."""
        return self._paths


class Configuration(_Model):
    """One way to run a tool: a name and the arguments that ``{args}`` stands for."""

    name: Name
    args: str = ""

    @field_validator("args", mode="before")
    @classmethod
    def _join(cls, value: Any) -> Any:
        if isinstance(value, list):
            return shlex.join(str(v) for v in value)
        return str(value) if isinstance(value, int | float) else value


class Resources(_Model):
    """What one shard requests (AWS Batch ``resourceRequirements``, FPGAs as a tag); memory in MiB."""

    vcpus: int = Field(default=1, ge=1)
    memory: int = Field(default=2048, ge=1)
    gpus: int = Field(default=0, ge=0)
    fpgas: int = Field(default=0, ge=0)


class Equivalence(_Model):
    """Header lines to drop before outputs are compared (regexes searched per line), and genotype phasing."""

    ignore: list[str] = Field(default_factory=list)
    defaults: bool = True
    ignore_phase: bool = False  # the "same calls" level: 0|1 and 0/1 count as one genotype

    @field_validator("ignore")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"ignore[{i}] {pattern!r} does not compile: {error}") from None
        return patterns

    @property
    def patterns(self) -> tuple[str, ...]:
        """The effective patterns (what :mod:`.equivalence` takes as ``ignore``): defaults, then ``ignore``."""
        return (DEFAULT_IGNORE if self.defaults else ()) + tuple(self.ignore)


class Tool(_Model):
    """A tool to benchmark: its command template, configurations, per-shard resources, parser, outputs."""

    name: Name
    version: str | None = None
    command: str
    configurations: list[Configuration] = Field(default_factory=lambda: [Configuration(name="default")], min_length=1)
    resources: Resources = Field(default_factory=Resources)
    parser: Annotated[ParserSpec | None, PlainValidator(parser_spec)] = None
    outputs: list[str] = Field(default_factory=list)
    equivalence: Equivalence = Field(default_factory=Equivalence)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value  # YAML reads "version: 0.9" as a float

    @field_validator("command")
    @classmethod
    def _placeholders(cls, command: str) -> str:
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(command) if field is not None]
        except ValueError as error:
            raise ValueError(f"malformed template ({error}); write a literal brace as {{{{ or }}}}") from None
        unknown = sorted({"{" + f + "}" for f in fields if f not in PLACEHOLDERS})
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}: use {{{'}, {'.join(PLACEHOLDERS)}}}")
        if "inputs" not in fields:
            raise ValueError("the command must use {inputs}, the shard's input files")
        try:  # a format spec that cannot apply ({inputs:03d}) fails here, not on the first run
            command.format(**_SAMPLE)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            raise ValueError(f"cannot be filled in: {error}") from None
        return command

    @field_validator("outputs")
    @classmethod
    def _relative(cls, outputs: list[str]) -> list[str]:
        for i, pattern in enumerate(outputs):
            if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
                raise ValueError(f"outputs[{i}] {pattern!r} must be relative to the output directory")
        return outputs

    @model_validator(mode="after")
    def _unique_configurations(self) -> Tool:
        _unique([c.name for c in self.configurations], "configuration")
        return self

    def configuration(self, name: str) -> Configuration:
        found = next((c for c in self.configurations if c.name == name), None)
        if found is None:
            raise KeyError(f"tool {self.name!r} has no configuration {name!r}")
        return found

    def render(self, configuration: str, inputs: list[str], output_dir: str, shard: int, *, quote: bool = True) -> str:
        """The command line for one shard; ``quote=False`` leaves inputs and output_dir as given (shell words)."""
        q = shlex.quote if quote else str
        resources = self.resources
        return self.command.format(
            inputs=" ".join(q(str(i)) for i in inputs),
            output_dir=q(str(output_dir)),
            threads=resources.vcpus,
            gpus=resources.gpus,
            fpgas=resources.fpgas,
            memory=resources.memory,
            shard=shard,
            args=self.configuration(configuration).args,
        )


class LocalSlice(_Model):
    """A slice of this host the runner creates as a local compute environment (memory in MiB)."""

    vcpus: int = Field(ge=1)
    gpus: int | None = Field(default=None, ge=0)
    fpgas: int | None = Field(default=None, ge=0)  # FPGA slots the runner hands out (GENOBATCH_FPGAS)
    memory: int | None = Field(default=None, ge=1)


class TargetSpec(_Model):
    """A target as the plan names it; :func:`resolve_target` prices it into a :class:`.results.Target`."""

    name: Name
    compute_environment: str | None = None
    local: LocalSlice | None = None
    instance_type: str
    gpus_per_instance: int | None = Field(default=None, ge=0)
    fpgas_per_instance: int | None = Field(default=None, ge=0)
    purchase: Literal["on-demand", "spot"] = "on-demand"
    region: str = "us-east-1"
    price_per_hour: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _where(self) -> TargetSpec:
        if (self.compute_environment is None) == (self.local is None):
            raise ValueError("give compute_environment (an existing one) or local (a slice to create), exactly one")
        if self.local and self.local.gpus is not None and self.gpus_per_instance not in (None, self.local.gpus):
            # Per-GPU shards beyond the slice's GPUs would queue behind each other: the run time, and
            # so the cost, would be the wrong instance's.
            raise ValueError(
                f"local.gpus ({self.local.gpus}) differs from gpus_per_instance ({self.gpus_per_instance}): "
                "the slice must have the GPUs of the instance it stands for"
            )
        if self.local and self.local.fpgas is not None and self.fpgas_per_instance not in (None, self.local.fpgas):
            raise ValueError(
                f"local.fpgas ({self.local.fpgas}) differs from fpgas_per_instance ({self.fpgas_per_instance}): "
                "the slice must have the FPGAs of the instance it stands for"
            )
        return self

    @property
    def known_gpus(self) -> int | None:
        """GPUs per instance if the plan says (the catalog decides otherwise)."""
        if self.gpus_per_instance is not None:
            return self.gpus_per_instance
        return self.local.gpus if self.local else None

    @property
    def known_fpgas(self) -> int | None:
        """FPGAs per instance if the plan says (the catalog decides otherwise)."""
        if self.fpgas_per_instance is not None:
            return self.fpgas_per_instance
        return self.local.fpgas if self.local else None


class Extrapolate(_Model):
    """The workload to price: ``{name, units}`` in the work unit, or ``{samples: N}``."""

    name: str | None = None
    units: float | None = Field(default=None, gt=0)
    samples: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Extrapolate:
        if (self.units is None) == (self.samples is None):
            raise ValueError("give units (with a name) or samples, exactly one")
        if self.units is not None and not self.name:
            raise ValueError("name the workload: {name: '30x human genome', units: 98.967e9}")
        return self

    @property
    def workload_name(self) -> str:
        return self.name or f"{self.samples} samples"

    @property
    def workload_units(self) -> float:
        return float(self.units if self.units is not None else self.samples or 0)


class Recommend(_Model):
    """What the recommendation optimises for: ``workloads`` workloads, a deadline and a budget."""

    workloads: int = Field(default=1, ge=1)
    deadline_h: float | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0)


class Plan(_Model):
    """A validated benchmark plan (see the module docstring for the YAML)."""

    name: Name
    dataset: Dataset
    tools: list[Tool] = Field(min_length=1)
    targets: list[TargetSpec] = Field(min_length=1)
    sharding: Annotated[str | int, PlainValidator(_sharding)] = 1  # "per-gpu" | "per-fpga" | "per-vcpu" | N
    repeats: int = Field(default=DEFAULT_REPEATS, ge=1)
    extrapolate: Extrapolate | None = None
    overhead_s: float = Field(default=DEFAULT_OVERHEAD_S, ge=0)
    recommend: Recommend = Field(default_factory=Recommend)
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        _unique([t.name for t in self.tools], "tool")
        _unique([t.name for t in self.targets], "target")
        work = self.dataset.work
        for tool in self.tools if work.kind == "metric" else []:
            names = metric_names(tool.parser) if tool.parser else frozenset()
            if work.metric not in names:
                have = ", ".join(sorted(names)) or "nothing: it has no parser"
                raise ValueError(
                    f"dataset.work is {{metric: {work.metric}}} but tool {tool.name!r}'s parser reports {have}"
                )
        if self.extrapolate and self.extrapolate.samples is not None and work.kind != "samples":
            raise ValueError(f"extrapolate: {{samples: N}} needs dataset.work: samples (it is {self.work_unit})")
        if self.sharding == "per-gpu":
            for tool in self.tools:
                if tool.resources.gpus < 1:
                    raise ValueError(f"sharding per-gpu: tool {tool.name!r} requests no GPU (resources.gpus)")
            for target in self.targets:
                if target.known_gpus == 0:
                    raise ValueError(f"sharding per-gpu: target {target.name!r} has no GPUs")
        if self.sharding == "per-fpga":
            for tool in self.tools:
                if tool.resources.fpgas < 1:
                    raise ValueError(f"sharding per-fpga: tool {tool.name!r} requests no FPGA (resources.fpgas)")
            for target in self.targets:
                if target.known_fpgas == 0:
                    raise ValueError(f"sharding per-fpga: target {target.name!r} has no FPGAs")
        for tool in self.tools:
            for target in self.targets if tool.resources.fpgas else []:
                fpgas = target.known_fpgas
                if fpgas is not None and fpgas < tool.resources.fpgas:
                    raise ValueError(
                        f"tool {tool.name!r} needs {tool.resources.fpgas} FPGA(s), target {target.name!r} has {fpgas}"
                    )
                if self.sharding == "per-fpga" and target.local and fpgas:
                    # Shards that do not all fit the slice's vCPUs would queue behind each other: the run
                    # time, and so the cost, would not be the instance's.
                    shards = fpgas // tool.resources.fpgas
                    if shards * tool.resources.vcpus > target.local.vcpus:
                        raise ValueError(
                            f"sharding per-fpga: target {target.name!r} runs {shards} shard(s) of tool "
                            f"{tool.name!r} at once, {shards * tool.resources.vcpus} vCPUs, but local.vcpus "
                            f"is {target.local.vcpus}"
                        )
        return self

    @property
    def path(self) -> Path | None:
        """The plan file, when loaded from one."""
        return self._path

    @property
    def input_files(self) -> tuple[Path, ...]:
        return self.dataset.paths

    @property
    def work_unit(self) -> str:
        """What one unit of work is: ``bytes``, ``reads``, ``bases``, ``samples``, or the metric's unit."""
        work = self.dataset.work
        if work.kind != "metric":
            return work.kind
        units = [t.parser.unit for t in self.tools if isinstance(t.parser, RegexParser) and t.parser.unit]
        return units[0] if units else str(work.metric)

    @property
    def workload_name(self) -> str:
        return self.extrapolate.workload_name if self.extrapolate else "the benchmark data set"

    def tool(self, name: str) -> Tool:
        found = next((t for t in self.tools if t.name == name), None)
        if found is None:
            raise KeyError(f"the plan has no tool {name!r}")
        return found

    def target(self, name: str) -> TargetSpec:
        found = next((t for t in self.targets if t.name == name), None)
        if found is None:
            raise KeyError(f"the plan has no target {name!r}")
        return found

    def shards_for(self, target: Target, tool: Tool | str) -> int:
        """How many shards one instance run of ``tool`` on ``target`` has (see the module docstring)."""
        tool = self.tool(tool) if isinstance(tool, str) else tool
        if tool.resources.fpgas > target.fpgas:  # a shard's FPGAs are slots the runner hands out
            needs = f"tool {tool.name!r} needs {tool.resources.fpgas} FPGA(s) per shard"
            problem = f"{needs}, target {target.name!r} has {target.fpgas}"
            raise PlanError(str(self._path or self.name), [("tools", problem)])
        if isinstance(self.sharding, int):
            return self.sharding
        if self.sharding == "per-gpu":
            have, per_shard, what = target.gpus, tool.resources.gpus, "GPU"
        elif self.sharding == "per-fpga":
            have, per_shard, what = target.fpgas, tool.resources.fpgas, "FPGA"
        else:
            have, per_shard, what = target.vcpus, tool.resources.vcpus, "vCPU"
        if per_shard < 1 or have // per_shard < 1:
            problem = (
                f"{self.sharding}: target {target.name!r} has {have} {what}(s), tool {tool.name!r} needs {per_shard}"
            )
            raise PlanError(str(self._path or self.name), [("sharding", problem)])
        return have // per_shard


def resolve_target(spec: TargetSpec, catalog: Catalog, compute_environment: str | None = None) -> Target:
    """The priced :class:`.results.Target`: the $/h for its purchase type, vCPUs and GPUs per instance.

    Price: ``price_per_hour`` if the plan gives one, else the catalog's for the type, region and
    purchase (spot: the spot price, never on-demand). vCPUs: the local slice's, else the type's (0 when
    the catalog lacks it). GPUs: ``gpus_per_instance``, else the slice's, else the type's; FPGAs and
    their model likewise (``fpgas_per_instance``, the slice's ``fpgas``, the catalog's).
    ``compute_environment`` names the one the runner created for a local slice. Raises
    :class:`.catalog.CatalogError` for a type or region the catalog lacks (with close matches).
    """
    # Without a price of its own the type must be in the catalog: instance() then raises with close matches.
    known = catalog.has(spec.instance_type) or spec.price_per_hour is None
    shape = catalog.instance(spec.instance_type) if known else None
    if spec.price_per_hour is not None:
        price, source, as_of, estimated = spec.price_per_hour, f"benchmark plan (target {spec.name})", "", False
    else:
        figure = catalog.price(spec.instance_type, spec.region, spec.purchase)
        price, source, as_of, estimated = figure.value, figure.source, figure.as_of, figure.estimate
    gpus, fpgas = spec.known_gpus, spec.known_fpgas
    return Target(
        name=spec.name,
        compute_environment=spec.compute_environment or compute_environment or f"benchmark-{spec.name}",
        instance_type=spec.instance_type,
        region=spec.region,
        purchase=spec.purchase,
        price_per_hour=price,
        price_source=source,
        price_as_of=as_of,
        price_estimated=estimated,
        vcpus=spec.local.vcpus if spec.local else (shape.vcpus if shape else 0),
        gpus=gpus if gpus is not None else (shape.gpus if shape else 0),
        fpgas=fpgas if fpgas is not None else (shape.fpgas if shape else 0),
        fpga_model=(shape.fpga_model or "") if shape else "",
    )


def parse_plan(document: Any, base_dir: str | Path, source: str = "<plan>") -> Plan:
    """Validate a plan document (the YAML's data); relative file globs are resolved against ``base_dir``."""
    return plan_file.validate_plan(Plan, document, base_dir, source, "name, dataset, tools, targets", PlanError)


def load_plan(path: str | Path) -> Plan:
    """Read and validate the plan file at ``path``; :class:`PlanError` names each invalid field."""
    path = Path(path)
    plan = parse_plan(plan_file.read_plan_document(path, PlanError), path.resolve().parent, str(path))
    plan._path = path.resolve()
    return plan
