"""The run report: files written from a hand-built run, their numbers, and the page in a real browser."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import chromium, needs_chromium
from openpyxl import load_workbook

from genobatch.report import (
    ComputeEnvironmentCost,
    ReportFiles,
    RunData,
    RunInfo,
    SampleCost,
    TraceRecord,
    write_report,
)
from genobatch.report.columns import TRACE_HEADERS
from genobatch.report.model import RightSizingPolicy
from genobatch.report.results import FailedJob, RunResults, SampleResults
from genobatch.report.rightsizing import advise, recommend_cpus, recommend_memory_mib
from genobatch.report.units import money, money_format, percent

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

MIB = 1024 * 1024
T0 = int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
XSS = "<script>alert(1)</script>"
NEXTFLOW_DEFAULT_FIELDS = [
    "task_id",
    "native_id",
    "name",
    "status",
    "exit",
    "submit",
    "duration",
    "realtime",
    "%cpu",
    "peak_rss",
    "peak_vmem",
    "rchar",
    "wchar",
]
# Requests per job definition: vCPUs, MiB.
REQUESTS = {"fastp": (4, 4096), "bwa-mem": (8, 16384), "haplotypecaller": (2, 8192)}


def attempt(
    definition: str,
    sample: str,
    seconds: tuple[int, int, int],
    pct_cpu: float,
    rss_mib: float,
    cost: float,
    number: int = 1,
    status: str = "COMPLETED",
    exit_code: int = 0,
    reason: str | None = None,
) -> TraceRecord:
    """One attempt; ``seconds`` are submit, start and complete after T0."""
    submit, start, complete = (T0 + s * 1000 for s in seconds)
    cpus, memory = REQUESTS[definition]
    return TraceRecord(
        task_id=f"job-{definition}-{sample}",
        name=f"{definition} ({sample})",
        status=status,
        attempt=number,
        exit=exit_code,
        submit=submit,
        start=start,
        complete=complete,
        duration=complete - submit,
        realtime=complete - start,
        pct_cpu=pct_cpu,
        peak_rss=int(rss_mib * MIB),
        peak_vmem=int(rss_mib * MIB * 1.5),
        rchar=10_000_000,
        wchar=5_000_000,
        read_bytes=8_000_000,
        write_bytes=4_000_000,
        queue="genomics",
        compute_environment="spot-c5" if definition == "fastp" else "spot-r5",
        hostname="node-1",
        cpus=cpus,
        memory=memory,
        job_definition=definition,
        sample=sample,
        tags={"genobatch:sample": sample, "note": XSS} if sample == "S2" else {"genobatch:sample": sample},
        reason=reason,
        attributed_cost=cost,
    )


def make_run() -> RunData:
    """Three samples through three definitions; haplotypecaller S1 fails once, bwa-mem S3 exceeds its memory."""
    trace = [
        attempt("fastp", "S1", (0, 5, 300), 180.0, 900, 0.0125),
        attempt("fastp", "S2", (0, 6, 330), 150.0, 850, 0.0131),
        attempt("fastp", "S3", (0, 7, 360), 170.0, 880, 0.0139),
        attempt("bwa-mem", "S1", (300, 400, 2000), 550.0, 12000, 0.2010),
        attempt("bwa-mem", "S2", (330, 420, 2100), 520.0, 12500, 0.2050),
        attempt("bwa-mem", "S3", (360, 430, 2200), 540.0, 17612.8, 0.2150),
        attempt("haplotypecaller", "S1", (2000, 2100, 2200), 98.0, 4000, 0.0100, 1, "FAILED", 1, "Task failed"),
        attempt("haplotypecaller", "S1", (2000, 2210, 3000), 97.0, 5000, 0.0650, 2),
        attempt("haplotypecaller", "S2", (2100, 2150, 2900), 96.0, 4800, 0.0610),
        attempt("haplotypecaller", "S3", (2200, 2250, 2950), 95.0, 4900, 0.0590),
    ]
    billed = [
        ComputeEnvironmentCost("spot-c5", 1200.0, 0.0550, "c5.xlarge"),
        # r5.4xlarge's shape is given (16 vCPU, 128 GiB); spot-c5's is not, to exercise the fallback estimate.
        ComputeEnvironmentCost("spot-r5", 5400.0, 0.9875, "r5.4xlarge", 16, 131072),
    ]
    samples = [
        SampleCost("S1", 0.2885, 0.0210, 0.0480, 0.3575),
        SampleCost("S2", 0.2791, 0.0205, 0.0470, 0.3466),
        SampleCost("S3", 0.2879, 0.0221, 0.0502, 0.3602),
    ]
    info = RunInfo(
        run_id="run-20240501-a",
        title="Bacterial WGS batch 1",
        created=datetime(2024, 5, 1, 9, 59, tzinfo=UTC),
        region="us-east-1",
        pricing_source="AWS Price List API, spot",
        pricing_date="2024-05-01",
    )
    return RunData(info=info, trace=trace, billed=billed, samples=samples, results=make_results())


METRICS = ["precision", "recall", "snv.f1", "indel.f1", "genotype_concordance", "coverage", "error_rate"]
UNITS = {"precision": "fraction", "recall": "fraction", "snv.f1": "fraction", "indel.f1": "fraction",
         "genotype_concordance": "fraction", "coverage": "x", "error_rate": "fraction"}  # fmt: skip


def make_results() -> RunResults:
    """Twelve samples in natural order (sample2 before sample10), sample7 failed with an escaped log tail."""
    samples = []
    for index in range(12):
        if index == 7:
            samples.append(SampleResults("sample7", "FAILED", {}, 6, 3, ["call (7): Essential container (exit 1)"]))
            continue
        values = [0.9987, 0.9923, 0.9991, 0.9512, 0.981, 30.21, 0.00412]
        samples.append(SampleResults(f"sample{index}", "SUCCEEDED", dict(zip(METRICS, values, strict=True)), 6, 6))
    error = FailedJob("job-7", "call (7)", "sample7", 2, 1, "Essential container in task exited", f"boom {XSS}")
    return RunResults(samples, METRICS, UNITS, ["Truth set: simulated variants."], [error], [])


@pytest.fixture(scope="module")
def run() -> RunData:
    return make_run()


@pytest.fixture(scope="module")
def files(run: RunData, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(run, tmp_path_factory.mktemp("report"))


def test_every_file_is_written(files: ReportFiles) -> None:
    names = {path.name for path in files.all()}
    assert names == {
        "report.html",
        "trace.tsv",
        "report.xlsx",
        "timeline.svg",
        "timeline.png",
        "resources.svg",
        "resources.png",
    }
    for path in files.all():
        assert path.stat().st_size > 0, path
    for png in (files.timeline_png, files.resources_png):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for svg in (files.timeline_svg, files.resources_svg):
        assert ElementTree.parse(svg).getroot().tag.endswith("svg")


def test_trace_tsv_columns_and_values(run: RunData, files: ReportFiles) -> None:
    with files.trace_tsv.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        rows = list(reader)
        assert tuple(reader.fieldnames or ()) == TRACE_HEADERS
    assert set(NEXTFLOW_DEFAULT_FIELDS) <= set(TRACE_HEADERS)
    for extra in (
        "start",
        "complete",
        "queue",
        "compute_environment",
        "hostname",
        "cpus",
        "memory",
        "gpus",
        "attempt",
        "attributed_cost",
    ):
        assert extra in TRACE_HEADERS
    assert len(rows) == len(run.trace) == 10
    failed = next(r for r in rows if r["task_id"] == "job-haplotypecaller-S1" and r["attempt"] == "1")
    assert (failed["status"], failed["exit"], failed["reason"]) == ("FAILED", "1", "Task failed")
    assert failed["submit"] == "2024-05-01T10:33:20.000Z"
    assert failed["start"] == "2024-05-01T10:35:00.000Z"
    assert failed["duration"] == "200000" and failed["realtime"] == "100000"
    assert failed["%cpu"] == "98.0"
    assert failed["memory"] == str(8192 * MIB)
    assert failed["peak_rss"] == str(4000 * MIB)
    assert failed["native_id"] == failed["task_id"]
    over = next(r for r in rows if r["task_id"] == "job-bwa-mem-S3")
    assert int(over["peak_rss"]) > int(over["memory"])
    assert sum(float(r["attributed_cost"]) for r in rows) == pytest.approx(sum(r.attributed_cost for r in run.trace))
    assert all(r["gpus"] == "0" for r in rows)


def test_workbook_numbers_equal_inputs(run: RunData, files: ReportFiles) -> None:
    book = load_workbook(files.xlsx)
    assert book.sheetnames[:6] == ["Summary", "Results", "Errors", "Trace", "Cost per sample", "Right-sizing"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True) if row[0]}
    attributed = sum(r.attributed_cost for r in run.trace)
    billed = sum(b.billed_cost for b in run.billed)
    per_sample = sum(s.total for s in run.samples) / len(run.samples)
    assert summary["Attributed cost"] == pytest.approx(attributed)
    assert summary["Billed cost"] == pytest.approx(billed)
    assert summary["Cost per sample"] == pytest.approx(per_sample)
    assert summary["Jobs"] == 9 and summary["Attempts"] == 10 and summary["Retried jobs"] == 1
    assert summary["Jobs COMPLETED"] == 9
    assert summary["Wall time"] == timedelta(seconds=3000)

    samples = list(book["Cost per sample"].iter_rows(min_row=2, max_row=5, values_only=True))
    assert [row[0] for row in samples] == ["S1", "S2", "S3", "Total"]
    total = samples[-1]
    assert total[1] == pytest.approx(sum(s.compute for s in run.samples))
    assert total[2] == pytest.approx(sum(s.storage for s in run.samples))
    assert total[3] == pytest.approx(sum(s.transfer for s in run.samples))
    assert total[4] == pytest.approx(sum(s.total for s in run.samples))

    trace = book["Trace"]
    headers = [cell.value for cell in trace[1]]
    assert headers == list(TRACE_HEADERS)
    first = dict(zip(headers, next(trace.iter_rows(min_row=2, values_only=True)), strict=True))
    assert isinstance(first["submit"], datetime) and isinstance(first["peak_rss"], int)
    assert isinstance(first["attributed_cost"], float)
    assert trace.max_row == 11
    assert trace.cell(row=2, column=headers.index("attributed_cost") + 1).number_format.startswith('"$"')

    sizing = {row[0]: row for row in book["Right-sizing"].iter_rows(min_row=2, values_only=True) if row[0] in REQUESTS}
    assert sizing["bwa-mem"][4] == 7 and sizing["bwa-mem"][7] == 21248 and sizing["bwa-mem"][8] == 1
    assert sizing["fastp"][4] == 2 and sizing["fastp"][7] == 1280


def test_right_sizing_rules() -> None:
    policy = RightSizingPolicy()
    assert recommend_cpus(1.8, policy) == 2
    assert recommend_cpus(10.0, policy) == 11
    assert recommend_cpus(0.05, policy) == 1
    assert recommend_memory_mib(900, policy) == 1280
    assert recommend_memory_mib(1, policy) == 256
    run = make_run()
    advice = {a.job_definition: a for a in advise(run.trace, policy, run.billed)}
    fastp = advice["fastp"]
    # spot-c5 has no shape: 2 of 4 vCPUs and 1280 of 4096 MiB, weighted half and half (40.625% remains).
    assert fastp.estimated_cost == pytest.approx(fastp.attributed_cost * (0.5 * 2 / 4 + 0.5 * 1280 / 4096))
    assert fastp.saving is not None and fastp.saving > 0
    bwa = advice["bwa-mem"]
    assert bwa.over_memory_attempts == 1 and "raise memory to 21248 MiB" in bwa.note
    # On a 16 vCPU / 128 GiB instance vCPUs dominate: share 8/16 -> 7/16 though memory grows to 21248 MiB.
    assert bwa.estimated_cost == pytest.approx(bwa.attributed_cost * 7 / 8)
    caller = advice["haplotypecaller"]
    assert caller.attempts == 4 and caller.recommended_cpus == 2 and caller.recommended_memory_mib == 6144
    # Memory is not its largest share (2/16 vCPU > 8192/131072), so asking for less memory saves nothing.
    assert caller.saving == pytest.approx(0.0) and "would not change" in caller.note


def test_gpu_jobs_need_the_instance_shape_for_an_estimate() -> None:
    record = replace(attempt("bwa-mem", "S1", (0, 1, 100), 100.0, 1000, 1.0), gpus=1)
    assert advise([record], RightSizingPolicy())[0].estimated_cost is None
    shape = ComputeEnvironmentCost("spot-r5", 100.0, 1.0, "g5.12xlarge", 48, 196608, 4)
    # The GPU (1 of 4) stays the largest share, so a smaller vCPU/memory request changes nothing.
    assert advise([record], RightSizingPolicy(), [shape])[0].estimated_cost == pytest.approx(1.0)


def test_trace_record_from_trace_dict() -> None:
    record = TraceRecord.from_mapping(
        {"task_id": "j1", "name": "x", "status": "COMPLETED", "attempt": 1, "cpu_time_ms": 5, "tags": {}, "queue": "q"},
        attributed_cost=0.5,
    )
    assert (record.task_id, record.queue, record.attributed_cost) == ("j1", "q", 0.5)


def test_html_is_self_contained_and_escaped(files: ReportFiles) -> None:
    page = files.html.read_text()
    references = re.findall(r"""\b(?:src|href|action|poster|data)\s*=\s*["']([^"']*)["']""", page, re.IGNORECASE)
    assert references, "expected at least the charts' local references"
    assert all(ref.startswith(("#", "data:")) for ref in references), references
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "@import" not in page and "<link" not in page and "url(http" not in page
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_is_deterministic(run: RunData, files: ReportFiles, tmp_path: Path) -> None:
    again = write_report(run, tmp_path)
    assert again.html.read_text() == files.html.read_text()
    assert again.timeline_svg.read_text() == files.timeline_svg.read_text()


def test_empty_run_renders(tmp_path: Path) -> None:
    info = RunInfo(run_id="r0", title="empty", created=datetime(2024, 1, 1, tzinfo=UTC), region="us-east-1")
    files = write_report(RunData(info=info, trace=[]), tmp_path)
    assert 'id="total-attributed" data-value="0"' in files.html.read_text()


class _Values(HTMLParser):
    """``data-value`` of every element with an id, and the root element's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str | None] = {}
        self.root: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.root = attributes
        if "id" in attributes and "data-value" in attributes:
            self.values[attributes["id"] or ""] = attributes["data-value"]


@needs_chromium
def test_console_check_catches_errors(tmp_path: Path) -> None:
    """The check below would see a broken page: an uncaught error and a blocked fetch are both logged."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'\"><img src='http://192.0.2.1/x.png'><script>throw new Error('boom')</script>"
    )
    _, console = chromium(page, tmp_path / "profile")
    assert any("Uncaught Error: boom" in line for line in console), console
    assert any("Content Security Policy" in line for line in console), console


@needs_chromium
def test_html_renders_in_chromium(run: RunData, files: ReportFiles, tmp_path: Path) -> None:
    dom, console = chromium(files.html, tmp_path / "profile")
    assert console == []
    parsed = _Values()
    parsed.feed(dom)
    assert parsed.root.get("data-script-ok") == "1", "the page's script did not run to its end"
    values = parsed.values
    assert float(values["total-attributed"] or "nan") == pytest.approx(sum(r.attributed_cost for r in run.trace))
    assert float(values["total-billed"] or "nan") == pytest.approx(sum(b.billed_cost for b in run.billed))
    per_sample = sum(s.total for s in run.samples) / len(run.samples)
    assert float(values["cost-per-sample"] or "nan") == pytest.approx(per_sample)
    assert float(values["sample-total-total"] or "nan") == pytest.approx(sum(s.total for s in run.samples))
    assert values["jobs-total"] == "9" and values["jobs-state-completed"] == "9"
    assert values["attempts-total"] == "10"
    assert values["wall-time"] == "3000000"
    assert "$0.855" in dom  # the attributed total as people read it
    assert dom.count('<tr data-task-id="') == 10


def test_money_reads_naturally_and_is_never_zero_by_rounding() -> None:
    assert [money(v) for v in (0, 0.000412, 0.0123, 0.5, 12.3, 1234.5, -0.00003)] == [
        "$0", "$0.000412", "$0.0123", "$0.50", "$12.30", "$1,234.50", "-$0.00003",
    ]  # fmt: skip
    assert money_format([0.000412, 0.2, 0.0]) == '"$"#,##0.000000'
    assert money_format([3.0]) == '"$"#,##0.00'
    assert percent(-0.0001) == "0%" and percent(-0.5) == "-50%"


def test_results_and_errors_in_the_workbook(run: RunData, files: ReportFiles) -> None:
    book = load_workbook(files.xlsx)
    sheet = book["Results"]
    headers = [cell.value for cell in sheet[1]]
    assert headers[:4] == ["Sample", "Status", "Jobs done", "Jobs"] and headers[-1] == "Failure"
    assert headers[4:6] == ["precision", "recall"] and "SNV F1" in headers and "genotype concordance" in headers
    rows = list(sheet.iter_rows(min_row=2, max_row=13))
    assert [row[0].value for row in rows] == [f"sample{i}" for i in range(12)]
    precision = rows[10][4]
    assert precision.value == pytest.approx(0.9987) and precision.number_format == "0.00%"
    coverage = rows[10][headers.index("coverage")]
    assert coverage.number_format == '0.0"x"'
    failed = rows[7]
    assert failed[1].value == "FAILED" and failed[4].value is None and "exit 1" in failed[-1].value
    assert sheet.column_dimensions["A"].width >= len("sample10") and sheet.column_dimensions["E"].width >= 10
    errors = list(book["Errors"].iter_rows(min_row=2, values_only=True))
    assert errors[0][:6] == ("job-7", "call (7)", "sample7", 2, 1, "Essential container in task exited")
    assert XSS in errors[0][6]
    # Per-job costs are fractions of a cent: their cells show enough decimals not to read $0.0000.
    trace = book["Trace"]
    column = [c.value for c in trace[1]].index("attributed_cost") + 1
    assert trace.cell(row=2, column=column).number_format == '"$"#,##0.0000'


def test_results_and_errors_on_the_page(files: ReportFiles) -> None:
    html = files.html.read_text()
    rows = re.findall(r'<tr data-sample="(sample\d+)" data-status="(\w+)"', html)
    assert [name for name, _ in rows] == [f"sample{i}" for i in range(12)]
    assert dict(rows)["sample7"] == "FAILED"
    assert "99.87%" in html and "30.21x" in html and "Truth set: simulated variants." in html
    assert 'data-job-id="job-7"' in html and "Essential container in task exited" in html
    assert XSS not in html and "boom &lt;script&gt;" in html
    assert "Compute per sample is the sample&#39;s attributed cost" in html


#: Appended to a copy of the page: measures, at the window's width, whether any table is cut off - its right edge
#: past the viewport or past a container that does not scroll - and writes the findings into the DOM.
LAYOUT_PROBE = """<script>
var findings = [];
if (document.documentElement.scrollWidth > window.innerWidth) findings.push("page scrolls sideways");
document.querySelectorAll("table[id]").forEach(function (table) {
  var box = table.getBoundingClientRect();
  var holder = table.parentElement;
  while (holder && getComputedStyle(holder).overflowX === "visible") holder = holder.parentElement;
  var scrolls = holder && holder.scrollWidth > holder.clientWidth;
  if (box.right > window.innerWidth && !scrolls) findings.push(table.id + " cut off at " + box.right);
  var wide = ["results-table", "sample-cost-table", "cost-categories"].indexOf(table.id) >= 0;
  if (scrolls && wide && window.innerWidth >= 1400)
    findings.push(table.id + " needs scrolling at " + window.innerWidth + " px");
});
document.documentElement.setAttribute("data-layout", JSON.stringify(findings));
</script>"""


@needs_chromium
@pytest.mark.parametrize("width", [1400, 1024])
def test_tables_are_not_cut_off(files: ReportFiles, tmp_path: Path, width: int) -> None:
    page = tmp_path / "probe.html"
    page.write_text(files.html.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    dom, console = chromium(page, tmp_path / "profile", window_size=(width, 900))
    assert console == []
    findings = re.search(r'data-layout="([^"]*)"', dom).group(1).replace("&quot;", '"')
    assert findings == "[]", findings


def test_only_declared_outputs_count_as_downloaded(tmp_path: Path) -> None:
    from genobatch.cli.report_cmd import output_sizes

    sample = tmp_path / "sample10"
    (sample / "sub").mkdir(parents=True)
    (sample / "sample.bam").write_bytes(b"b" * 100)
    (sample / "reads_1.fastq.gz").write_bytes(b"r" * 1000)  # intermediate
    (sample / "sub" / "calls.vcf.gz").write_bytes(b"c" * 10)
    assert output_sizes(tmp_path, ["sample10", "sample2"]) == {"sample10": 1110, "sample2": 0}
    declared = output_sizes(tmp_path, ["sample10"], ("sample.bam", "sub/*.vcf.gz"))
    assert declared == {"sample10": 110}


def test_a_negligible_saving_reads_as_a_sliver_of_the_run_not_minus_100_percent(tmp_path: Path) -> None:
    """A definition costing $0.00003 that should grow from 2 to 4 vCPUs doubles its own cost: as a share of
    its own cost that read "-$0.00003 (-100%)". Put against the run ($1), the page, the workbook and the
    terminal say it moves the bill by under 0.1%; a saving that is zero up to float rounding is exactly $0."""
    from rich.console import Console

    from genobatch.cli.report_cmd import rightsizing_table

    tiny = replace(attempt("haplotypecaller", "S1", (0, 1, 2), 350.0, 100, 0.00003), compute_environment="spot-r5")
    big = replace(attempt("bwa-mem", "S1", (0, 1, 2), 780.0, 15000, 1.0), compute_environment="spot-r5")
    shape = ComputeEnvironmentCost("spot-r5", 10.0, 1.2, "r5.4xlarge", 16, 131072)
    info = RunInfo("run-tiny", "tiny", datetime(2024, 5, 1, tzinfo=UTC), "us-east-1", "catalog", "2024-05-01")
    files = write_report(RunData(info=info, trace=[tiny, big], billed=[shape]), tmp_path)
    advice = {a.job_definition: a for a in files.advice}
    caller = advice["haplotypecaller"]
    assert caller.recommended_cpus == 4 and caller.saving == pytest.approx(-0.00003)
    assert caller.share_of(1.00003) == pytest.approx(-0.00003 / 1.00003)

    html = files.html.read_text()
    row = re.search(r'<tr data-definition="haplotypecaller">.*?</tr>', html, re.S).group(0)
    assert "-$0.00003" in row and "(&lt;0.1%)" in row  # escaped "<"
    assert "-100%" not in html and "Saving (share of run)" in html

    sheet = load_workbook(files.xlsx)["Right-sizing"]
    headers = [cell.value for cell in sheet[1]]
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2) if row[0].value in advice}
    share = cells["haplotypecaller"][headers.index("Saving, share of run")]
    assert share.value == pytest.approx(-0.00003 / 1.00003) and share.number_format == "0.0%"

    console = Console(width=80, record=True, color_system=None)
    console.print(rightsizing_table(files.advice))
    text = console.export_text()
    assert "-$0.00003 (<0.1%)" in text and "-100%" not in text and max(map(len, text.splitlines())) <= 80

    # Headroom alone does not grow vCPUs: 1.9 CPUs on 2 requested (x 1.1 = 2.09) stays at 2, not 3 (+50% cost).
    within = replace(attempt("haplotypecaller", "S2", (0, 1, 2), 190.0, 100, 0.5), compute_environment="spot-r5")
    held = advise([within], RightSizingPolicy(), [shape])[0]
    assert held.recommended_cpus == 2 and held.saving is not None and held.saving >= 0

    # 0.1 x 0.3 / 0.3 is not exactly 0.1: a saving that is nothing but float rounding is zero, not "-$0.00".
    noisy = replace(caller, attributed_cost=0.1, estimated_cost=0.1 * 0.3 / 0.3 + 1e-17)
    assert noisy.saving == 0.0 and money(noisy.saving) == "$0"
