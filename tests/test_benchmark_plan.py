"""The benchmark plan (validation with errors naming the field), log parsers, sharding and work counts.

Parser inputs are the end-of-run lines dorado and guppy print (see docs in
``genobatch.benchmark.parsers``), with and without log prefixes; sharding and work counts run on
small files written here, with every expected figure counted by hand.
"""

from __future__ import annotations

import bz2
import copy
import gzip
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from genobatch.benchmark import plan as plan_module
from genobatch.benchmark.equivalence import DEFAULT_IGNORE
from genobatch.benchmark.parsers import (
    NoMetricsFound,
    ParserError,
    RegexParser,
    metric_names,
    parse_dorado,
    parse_guppy,
    parse_metrics,
    parse_regex,
    rate_metrics,
)
from genobatch.benchmark.plan import (
    DEFAULT_OVERHEAD_S,
    PlanError,
    load_plan,
    parse_plan,
    resolve_target,
)
from genobatch.benchmark.results import Target
from genobatch.benchmark.sharding import count_records, measure_work, shard_files, split_by_size
from genobatch.cost.catalog import load_catalog

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

# ---------------------------------------------------------------- plans


def _plan_document() -> dict[str, Any]:
    """Every key of the plan, as the module docstring shows it."""
    return {
        "name": "ont-basecalling",
        "dataset": {"files": ["pod5/*.pod5"], "work": {"metric": "samples_called"}},
        "tools": [
            {
                "name": "guppy",
                "version": 6.5,
                "command": "guppy_basecaller -i {inputs} -s {output_dir} --num_callers {threads} {args}",
                "configurations": [
                    {"name": "hac", "args": "-c dna_r10.4.1_e8.2_400bps_hac.cfg"},
                    {"name": "sup", "args": ["-c", "dna r10 sup.cfg"]},
                ],
                "resources": {"vcpus": 8, "memory": 30000, "gpus": 1},
                "parser": "guppy",
                "outputs": ["pass/*.fastq"],
                "equivalence": {"ignore": ["^@RG"]},
            }
        ],
        "targets": [
            {
                "name": "g5-12xlarge",
                "compute_environment": "gpu-ce",
                "instance_type": "g5.12xlarge",
                "gpus_per_instance": 4,
                "purchase": "spot",
                "region": "us-east-1",
            },
            {"name": "laptop", "local": {"vcpus": 8, "gpus": 1}, "instance_type": "g5.xlarge"},
        ],
        "sharding": "per-gpu",
        "repeats": 3,
        "extrapolate": {"name": "30x human genome", "units": 98.967e9},
        "overhead_s": 600,
        "recommend": {"workloads": 10, "deadline_h": 24, "budget_usd": 500},
    }


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    (tmp_path / "pod5").mkdir()
    for i in range(4):
        (tmp_path / "pod5" / f"reads_{i}.pod5").write_bytes(b"x" * (10 + i))
    return tmp_path


def _write(plan_dir: Path, document: dict[str, Any]) -> Path:
    path = plan_dir / "plan.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_complete_plan_loads(plan_dir: Path) -> None:
    plan = load_plan(_write(plan_dir, _plan_document()))
    assert plan.name == "ont-basecalling"
    assert plan.path == (plan_dir / "plan.yaml").resolve()
    assert [p.name for p in plan.input_files] == [f"reads_{i}.pod5" for i in range(4)]
    assert plan.work_unit == "samples_called"
    assert plan.workload_name == "30x human genome"
    assert plan.extrapolate is not None and plan.extrapolate.workload_units == 98.967e9
    guppy = plan.tool("guppy")
    assert guppy.version == "6.5"  # YAML's float read back as text
    assert guppy.parser == "guppy"
    assert guppy.configuration("sup").args == "-c 'dna r10 sup.cfg'"
    assert guppy.equivalence.patterns == (*DEFAULT_IGNORE, "^@RG")
    assert plan.target("g5-12xlarge").purchase == "spot"
    assert plan.recommend.workloads == 10 and plan.recommend.deadline_h == 24


def test_the_documented_example_plan_is_valid(plan_dir: Path) -> None:
    doc = plan_module.__doc__ or ""
    example = doc.split("(every key; those with a default may be left out)::", 1)[1].split("**Command", 1)[0]
    plan = parse_plan(yaml.safe_load(textwrap.dedent(example)), plan_dir)
    assert plan.sharding == "per-gpu" and plan.recommend.budget_usd == 500
    assert plan.tool("guppy").configuration("sup").args == "-c dna_r10.4.1_e8.2_400bps_sup.cfg"
    assert plan.target("g5-12xlarge").compute_environment == "gpu-ce"


def test_defaults_are_documented_values(plan_dir: Path) -> None:
    document = _plan_document()
    document["dataset"]["work"] = "bytes"
    for key in ("sharding", "repeats", "extrapolate", "overhead_s", "recommend"):
        del document[key]
    tool = document["tools"][0]
    for key in ("configurations", "resources", "parser", "outputs", "equivalence", "version"):
        del tool[key]
    plan = parse_plan(document, plan_dir)
    assert plan.repeats == 3 and plan.overhead_s == DEFAULT_OVERHEAD_S == 600
    assert plan.sharding == 1
    assert plan.extrapolate is None and plan.workload_name == "the benchmark data set"
    assert plan.recommend.workloads == 1 and plan.recommend.deadline_h is None
    tool = plan.tools[0]
    assert [c.name for c in tool.configurations] == ["default"]
    assert (tool.resources.vcpus, tool.resources.memory, tool.resources.gpus) == (1, 2048, 0)
    assert tool.equivalence.patterns == DEFAULT_IGNORE


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("name", "has space", "name", "not a valid name"),
        ("dataset.files", ["missing/*.fq"], "dataset.files", "matches no file"),
        ("dataset.work", "gigabases", "dataset.work", "not a kind of work"),
        ("dataset.work", {"metric": "reads"}, "", "parser reports"),
        ("tools", [], "tools", "at least 1"),
        ("tools.0.command", "guppy -s {output_dir}", "tools[0].command", "{inputs}"),
        ("tools.0.command", "run {inputs} {thread}", "tools[0].command", "unknown placeholder(s) {thread}"),
        ("tools.0.command", "awk '{print}' {inputs}", "tools[0].command", "unknown placeholder(s) {print}"),
        ("tools.0.command", "run {inputs", "tools[0].command", "malformed template"),
        ("tools.0.command", "run {inputs:03d}", "tools[0].command", "cannot be filled in"),
        ("tools.0.configurations.1.name", "hac", "tools[0]", "configuration names must be unique"),
        ("tools.0.resources.vcpus", 0, "tools[0].resources.vcpus", "greater than or equal to 1"),
        ("tools.0.resources.memory", "lots", "tools[0].resources.memory", "integer"),
        ("tools.0.resources.gpus", -1, "tools[0].resources.gpus", "greater than or equal to 0"),
        ("tools.0.parser", "bonito", "tools[0].parser", "unknown parser 'bonito'"),
        ("tools.0.parser", {"regex": "Reads: (\\d+"}, "tools[0].parser", "needs both regex and metric"),
        ("tools.0.parser", {"regex": "Reads: (\\d+", "metric": "reads"}, "tools[0].parser", "does not compile"),
        ("tools.0.parser", {"regex": "Reads: \\d+", "metric": "reads"}, "tools[0].parser", "no group"),
        ("tools.0.parser", {"regex": "(\\d+)", "metric": "n", "units": "x"}, "tools[0].parser", "unknown key(s) units"),
        ("tools.0.outputs", ["/abs/out.vcf"], "tools[0].outputs", "relative"),
        ("tools.0.equivalence.ignore", ["^##(fileDate"], "tools[0].equivalence.ignore", "ignore[0]"),
        ("targets.0.purchase", "reserved", "targets[0].purchase", "'on-demand' or 'spot'"),
        ("targets.0.purchse", "spot", "targets[0].purchse", "did you mean purchase?"),
        ("targets.0.instance_type", _DELETE, "targets[0].instance_type", "required"),
        ("targets.0.local", {"vcpus": 4}, "targets[0]", "exactly one"),
        ("targets.1.local.vcpus", 0, "targets[1].local.vcpus", "greater than or equal to 1"),
        ("targets.1.gpus_per_instance", 4, "targets[1]", "the slice must have the GPUs"),
        ("targets.1.name", "g5-12xlarge", "", "target names must be unique"),
        ("targets.1.local.gpus", 0, "", "target 'laptop' has no GPUs"),
        ("sharding", "per-node", "sharding", "use per-gpu, per-fpga, per-vcpu or {shards: N}"),
        ("sharding", {"shards": 0}, "sharding", "shards must be at least 1"),
        ("sharding", {"shards": 2, "per": 1}, "sharding", "use per-gpu, per-fpga, per-vcpu or {shards: N}"),
        ("repeats", 0, "repeats", "greater than or equal to 1"),
        ("extrapolate", {"units": 5}, "extrapolate", "name the workload"),
        ("extrapolate", {"samples": 96}, "", "needs dataset.work: samples"),
        ("overhead_s", -1, "overhead_s", "greater than or equal to 0"),
        ("recommend.deadline_h", 0, "recommend.deadline_h", "greater than 0"),
        ("recommend.workloads", 0, "recommend.workloads", "greater than or equal to 1"),
    ],
)
def test_each_invalid_field_is_named(plan_dir: Path, path: str, value: Any, field: str, words: str) -> None:
    document = _plan_document()
    _set(document, path, value)
    with pytest.raises(PlanError) as caught:
        load_plan(_write(plan_dir, document))
    problems = caught.value.problems
    assert any(where == field and words in problem for where, problem in problems), problems
    assert words in str(caught.value) and "invalid benchmark plan" in str(caught.value)


def test_per_gpu_sharding_needs_tools_that_request_a_gpu(plan_dir: Path) -> None:
    document = _plan_document()
    document["tools"][0]["resources"]["gpus"] = 0
    with pytest.raises(PlanError, match="tool 'guppy' requests no GPU"):
        parse_plan(document, plan_dir)


def test_not_a_mapping_and_bad_yaml(plan_dir: Path) -> None:
    (plan_dir / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(PlanError, match="a plan is a mapping"):
        load_plan(plan_dir / "list.yaml")
    (plan_dir / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(plan_dir / "bad.yaml")


def test_globs_resolve_relative_to_the_plan_file_and_each_file_once(plan_dir: Path) -> None:
    document = _plan_document()
    document["dataset"]["files"] = ["pod5/reads_0.pod5", "pod5/*.pod5", str(plan_dir / "pod5" / "reads_1.pod5")]
    sub = plan_dir / "elsewhere"
    sub.mkdir()
    plan = parse_plan(document, plan_dir)
    names = [p.name for p in plan.input_files]
    assert names == ["reads_0.pod5", "reads_1.pod5", "reads_2.pod5", "reads_3.pod5"]


def test_shards_for_each_sharding(plan_dir: Path) -> None:
    document = _plan_document()
    plan = parse_plan(document, plan_dir)
    g5 = Target("g5", "ce", "g5.12xlarge", "us-east-1", "spot", 2.836, "", "", vcpus=48, gpus=4)
    assert plan.shards_for(g5, "guppy") == 4  # one per GPU
    document["sharding"] = "per-vcpu"
    assert parse_plan(document, plan_dir).shards_for(g5, "guppy") == 6  # 48 // 8
    document["sharding"] = {"shards": 3}
    assert parse_plan(document, plan_dir).shards_for(g5, "guppy") == 3
    document["sharding"] = "per-vcpu"
    small = Target("s", "ce", "g5.xlarge", "us-east-1", "on-demand", 1.006, "", "", vcpus=4, gpus=1)
    with pytest.raises(PlanError, match="has 4 vCPU"):
        parse_plan(document, plan_dir).shards_for(small, "guppy")


def test_render_fills_placeholders_and_quotes_paths(plan_dir: Path) -> None:
    document = _plan_document()
    document["tools"][0]["command"] = (
        "tool -t {threads} -g {gpus} -m {memory} -o {output_dir}/s{shard:02d} {args} {inputs}"
    )
    tool = parse_plan(document, plan_dir).tool("guppy")
    line = tool.render("sup", ["/d/a b.pod5", "/d/c.pod5"], "/out dir", 3)
    assert line == "tool -t 8 -g 1 -m 30000 -o '/out dir'/s03 -c 'dna r10 sup.cfg' '/d/a b.pod5' /d/c.pod5"
    assert tool.render("hac", ["$F"], "out", 0, quote=False).endswith("dna_r10.4.1_e8.2_400bps_hac.cfg $F")


def test_resolve_target_prices_spot_at_the_spot_price(plan_dir: Path) -> None:
    plan = parse_plan(_plan_document(), plan_dir)
    catalog = load_catalog()
    spot = resolve_target(plan.target("g5-12xlarge"), catalog)
    assert spot.price_per_hour == catalog.price("g5.12xlarge", "us-east-1", "spot").value
    assert spot.price_per_hour < catalog.price("g5.12xlarge", "us-east-1").value
    assert (spot.vcpus, spot.gpus, spot.compute_environment) == (48, 4, "gpu-ce")
    local = resolve_target(plan.target("laptop"), catalog, compute_environment="bench-laptop")
    assert local.price_per_hour == 1.006 and (local.vcpus, local.gpus) == (8, 1)
    assert local.compute_environment == "bench-laptop"


# ---------------------------------------------------------------- parsers

DORADO_NEW = """\
[2025-06-26 20:19:53.083] [info] cuda:0 using chunk size 12288, batch size 224
[2025-06-26 20:30:57.321] [info] > Finished in (ms): 663278
[2025-06-26 20:30:57.322] [info] > Simplex reads basecalled: 51828
[2025-06-26 20:30:57.322] [info] > Simplex reads filtered: 176
[2025-06-26 20:30:57.322] [debug] > Including Padding @ Samples/s: 3.900e+06 (95.90%)
[2025-06-26 20:30:57.322] [info] > Basecalled @ Samples/s: 3.741861e+06
[2025-06-26 20:30:57.337] [info] > Finished
"""


def test_dorado_current_format_with_timestamps() -> None:
    assert parse_dorado(DORADO_NEW) == {
        "finished_ms": 663278,
        "reads": 51828,
        "reads_filtered": 176,
        "samples_per_s": 3.741861e6,  # not the padding figure
    }


def test_dorado_bare_info_prefix_and_older_reads_line() -> None:
    text = "[info] > Reads basecalled: 1200\n[info] > Reads filtered: 3\n[info] > Basecalled @ Samples/s: 2.5e+06\n"
    assert parse_metrics("dorado", text) == {"reads": 1200, "reads_filtered": 3, "samples_per_s": 2.5e6}


def test_dorado_duplex() -> None:
    text = (
        "[info] > Simplex reads basecalled: 900\n[info] > Duplex reads basecalled: 120\n"
        "[info] > Duplex rate: 23.5%\n[info] > Basecalled @ Bases/s: 1.234e+06\n"
    )
    metrics = parse_dorado(text)
    assert metrics == {"reads": 900, "duplex_reads": 120, "duplex_rate_pct": 23.5, "bases_per_s": 1.234e6}
    assert rate_metrics("dorado") == [("samples_per_s", "samples/s"), ("bases_per_s", "bases/s")]


def test_dorado_last_summary_wins() -> None:
    text = "[info] > Simplex reads basecalled: 10\n...retry...\n[info] > Simplex reads basecalled: 12\n"
    assert parse_dorado(text)["reads"] == 12


def test_guppy_on_one_line_and_on_separate_lines() -> None:
    one = "Init time: 1348 ms\nCaller time: 527764 ms, Samples called: 3924332994, samples/s: 7.43577e+06\n"
    separate = (
        "2024-01-01T10:00:00Z Caller time: 527764 ms\n2024-01-01T10:00:00Z Samples called: 3924332994\n"
        "2024-01-01T10:00:00Z samples/s: 7.43577e+06\n"
    )
    expected = {"caller_time_ms": 527764, "samples_called": 3924332994, "samples_per_s": 7.43577e6}
    assert parse_guppy(one) == {**expected, "init_time_ms": 1348}
    assert parse_metrics("guppy", separate) == expected
    assert parse_guppy("samples/s: 41000000\n")["samples_per_s"] == 4.1e7  # no exponent: the seed's regex missed it


def test_nothing_matched_is_an_error_that_shows_the_log_tail() -> None:
    newer = "[info] > Creating basecall pipeline\n[error] CUDA out of memory\n"
    with pytest.raises(NoMetricsFound, match="CUDA out of memory") as caught:
        parse_dorado(newer)
    assert "dorado parser" in str(caught.value)
    with pytest.raises(NoMetricsFound, match="the log is empty"):
        parse_guppy("")
    # dorado's upper-case figures are not guppy's, and vice versa: no silent cross-matching.
    with pytest.raises(NoMetricsFound):
        parse_guppy(DORADO_NEW)
    with pytest.raises(NoMetricsFound):
        parse_metrics(RegexParser(r"Variants: (\d+)", "variants"), DORADO_NEW)


def test_regex_parser_groups_and_numbers() -> None:
    log = "Processed 1,234 reads\nVariants called: 10\nVariants called: 12\n"
    assert parse_regex(RegexParser(r"Processed ([\d,]+) reads", "reads"), log) == {"reads": 1234}
    assert parse_regex(RegexParser(r"(Variants) called: (?P<value>\d+)", "variants"), log) == {"variants": 12}
    named = RegexParser(r"(?P<label>\w+) (?P<vps>[\d.]+) variants/s", "vps", "variants/s")
    assert parse_metrics(named, "rate 3.5 variants/s") == {"vps": 3.5}
    assert rate_metrics(named) == [("vps", "variants/s")] and metric_names(named) == {"vps"}
    with pytest.raises(ParserError, match="not a number"):
        parse_regex(RegexParser(r"Processed (\S+) reads", "reads"), "Processed many reads")
    with pytest.raises(ParserError, match="unknown parser"):
        parse_metrics("bonito", "x")  # type: ignore[arg-type]


# ---------------------------------------------------------------- sharding and work


def test_shards_balance_bytes_not_file_count() -> None:
    sizes = {"a": 100, "b": 60, "c": 50, "d": 10, "e": 10, "f": 10}
    shards = split_by_size(sizes, 2)
    # Largest first into the lighter shard: a->0, b->1, c->1 (60<100), d->0 (100<110), e->1? no:
    # loads 110/110 after d -> e goes to shard 0 (tie: lower index), f to shard 1.
    assert [s.bytes for s in shards] == [120, 120]
    assert [[p.name for p in s.files] for s in shards] == [["a", "d", "e"], ["b", "c", "f"]]
    # The seed's equal-count split (np.array_split of the sorted list) would give 210 vs 30 bytes.


def test_sharding_is_deterministic_whatever_the_input_order(tmp_path: Path) -> None:
    files = []
    for i, size in enumerate([5, 40, 40, 7, 23, 23, 1, 16]):
        path = tmp_path / f"f{i}.fq"
        path.write_bytes(b"@" * size)
        files.append(path)
    first = shard_files(files, 3)
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    assert shard_files(shuffled, 3) == first
    # 40->0, 40->1, 23->2, 23->2, 16->0, 7->1, 5->2, 1->1: loads 56, 48, 51.
    assert [s.bytes for s in first] == [56, 48, 51]
    assert sum(len(s.files) for s in first) == 8 and [s.index for s in first] == [0, 1, 2]


def test_sharding_refuses_empty_shards_and_repeats() -> None:
    with pytest.raises(ValueError, match="8 shards but only 2 input file"):
        split_by_size({"a": 1, "b": 2}, 8)
    with pytest.raises(ValueError, match="more than once"):
        split_by_size([("a", 1), ("a", 1)], 1)
    with pytest.raises(ValueError, match="at least 1"):
        split_by_size({"a": 1}, 0)


FASTQ = "@r1\nACGT\n+\nIIII\n@r2 desc\nACGTACGTAC\n+r2\n@@@@@@@@@@\n"  # quality starting with @
FASTQ_MULTILINE = "@r1\nACGTA\nCG\n+\nIIII\nIII\n@r2\n\n+\n\n@r3\nAC\n+\n@I\n"  # wrapped, empty read, @ quality
FASTA = ">c1 first\nACGTACGT\nACG\n>c2\nAAAA\n\n"


def test_measure_work_on_fastq_fasta_and_compressed(tmp_path: Path) -> None:
    plain = tmp_path / "a.fastq"
    plain.write_text(FASTQ)
    gz = tmp_path / "b.fq.gz"
    gz.write_bytes(gzip.compress(FASTQ_MULTILINE.encode()))
    fasta = tmp_path / "c.fa"
    fasta.write_text(FASTA)
    fasta_bz2 = tmp_path / "d.fasta.bz2"
    fasta_bz2.write_bytes(bz2.compress(FASTA.encode()))
    assert count_records(plain) == (2, 14)
    assert count_records(gz) == (3, 9)  # 7 + 0 + 2
    assert count_records(fasta) == (2, 15)
    assert count_records(fasta_bz2) == (2, 15)
    files = [plain, gz, fasta]
    assert measure_work(files, "reads") == 7
    assert measure_work(files, "bases") == 38
    assert measure_work(files, "samples") == 3
    assert measure_work(files, "bytes") == len(FASTQ) + gz.stat().st_size + len(FASTA)


def test_measure_work_errors(tmp_path: Path) -> None:
    pod5 = tmp_path / "x.pod5"
    pod5.write_bytes(b"\x8bPOD\r\n\x1a\n")
    with pytest.raises(ValueError, match="not FASTQ or FASTA"):
        measure_work([pod5], "reads")
    assert measure_work([pod5], "bytes") == 8
    truncated = tmp_path / "t.fq"
    truncated.write_text("@r1\nACGT\n+\nII\n")
    with pytest.raises(ValueError, match="truncated FASTQ"):
        count_records(truncated)
    with pytest.raises(ValueError, match="metric is read from the tool's output"):
        measure_work([pod5], "metric")
    empty = tmp_path / "e.fq"
    empty.write_text("")
    assert count_records(empty) == (0, 0)


def test_plan_document_is_not_mutated(plan_dir: Path) -> None:
    document = _plan_document()
    before = copy.deepcopy(document)
    parse_plan(document, plan_dir)
    assert document == before
