"""The benchmark report: workbook per pricing region, PNG charts and a self-contained page, checked against the data."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import chromium, needs_chromium
from matplotlib.image import imread
from openpyxl import load_workbook

from genobatch.benchmark.report import BenchmarkReportFiles, write_benchmark_report
from genobatch.benchmark.report_table import unit_scale
from genobatch.benchmark.report_terminal import comparison_lines, equivalence_lines
from genobatch.benchmark.report_workbook import sheet_name
from genobatch.benchmark.results import (
    BenchmarkResults,
    CallsComparison,
    Difference,
    EquivalenceResult,
    Recommendation,
    ShardResult,
    Spread,
    Target,
    TargetSummary,
)

pytestmark = pytest.mark.no_store  # uses no store: the PostgreSQL pass would only repeat it

XSS = "<script>alert(1)</script>"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
WGS = 98.967e9  # bases in a 30x human genome
WORK = 18.330576791e9  # bases per instance run


def target(name: str, instance: str, purchase: str, price: float, region: str = "us-west-2") -> Target:
    return Target(name, f"ce-{name}", instance, region, purchase, price, "catalog", "2024-11-01", 4, 1)


G5 = target("g5", "g5.xlarge", "on-demand", 1.006)
G4DN = target("g4dn", "g4dn.xlarge", "spot", 0.2119)


def summary(t: Target, runtime_s: tuple[float, float, float], rate: float) -> TargetSummary:
    """Figures derived from the run times as aggregation would (overhead left out to keep them checkable)."""
    median, low, high = runtime_s

    def spread(f) -> Spread:  # noqa: ANN001 - a local helper
        return Spread(f(median), f(low), f(high))

    cost = spread(lambda s: t.price_per_hour * s / 3600)
    return TargetSummary(
        tool="dorado",
        configuration="hac",
        target=t,
        repeats=3,
        shards=2,
        runtime_s=Spread(median, low, high),
        shard_spread_s=Spread(12.0, 8.0, 20.0),
        stragglers=["repeat 2 shard 1: 1.4x the median shard"] if t is G4DN else [],
        work=WORK,
        work_unit="bases",
        throughput_measured=spread(lambda s: WORK / s),
        throughput_tool=Spread(rate, rate * 0.98, rate * 1.01),
        tool_rate_unit="samples/s",
        cost_per_unit=Spread(cost.median / WORK, cost.low / WORK, cost.high / WORK),
        runtime_per_workload_h=spread(lambda s: s * WGS / WORK / 3600),
        cost_per_workload=Spread(cost.median * WGS / WORK, cost.low * WGS / WORK, cost.high * WGS / WORK),
        cost_per_run=cost,
    )


def shards() -> list[ShardResult]:
    rows = []
    for t, base in ((G5, 4000), (G4DN, 9000)):
        for repeat in range(3):
            for shard in range(2):
                start = 1_700_000_000_000 + repeat * 10_000_000
                stop = start + (base + 100 * repeat + 50 * shard) * 1000
                rows.append(
                    ShardResult(
                        "dorado", "hac", t.name, repeat, shard, f"job-{t.name}-{repeat}:{shard}", "SUCCEEDED",
                        start, stop, WORK / 2, {"samples_per_s": 3.7e6, "reads": 51828.0}, f"/out/{t.name}/{repeat}",
                    )
                )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def results() -> BenchmarkResults:
    # The expensive, fast target first: the report must sort, not keep input order.
    g5 = summary(G5, (4100.0, 4050.0, 4250.0), 3.7e6)
    g4dn = summary(G4DN, (9100.0, 9050.0, 9300.0), 1.9e6)
    equivalence = [
        EquivalenceResult("dorado", "calls.bam", "g5", {"g5": "aa", "g4dn": "bb"}, False, [
            Difference("g4dn", 1, 0, 0, [("read7\t0\tchr1\t101\tACGT", f"read7\t0\tchr1\t101\tACGA {XSS}")]),
        ]),
        EquivalenceResult("dorado", "summary.tsv", "g5", {"g5": "cc", "g4dn": "cc"}, True),
        EquivalenceResult("dorado", "stats.txt", "g5", {"g5": "dd"}, False, [Difference("g4dn", 0, 3, 0, [])]),
        # Both levels: four records differ as text, one of them as a call.
        EquivalenceResult("dorado", "calls.vcf", "g5", {"g5": "ee", "g4dn": "ff"}, False,
            [Difference("g4dn", 4, 0, 0, [("chr1\t100\t.\tA\tG\t60", "chr1\t100\t.\tA\tG\t60.00000")])],
            {"g5": 14, "g4dn": 14}, "every shard's file merged, records sorted by position",
            CallsComparison(False, {"g5": "11", "g4dn": "22"}, {"g5": 4, "g4dn": 4},
                [Difference("g4dn", 1, 0, 0, [("chr2\t400\tDP=31", "chr2\t400\tDP=32")])])),
    ]  # fmt: skip
    recommendation = Recommendation(
        workloads=10,
        deadline_h=300.0,
        budget_usd=200.0,
        cheapest_within_deadline="dorado/hac@g4dn",
        fastest_within_budget="dorado/hac@g5",
        explanation=[
            "For 10 × 30x WGS within 300 h, dorado/hac@g4dn is cheapest.",
            "Within $200, dorado/hac@g5 is fastest.",
        ],
    )
    return BenchmarkResults(
        plan_name=f"basecallers {XSS}",
        run_id="bench-1",
        created=datetime(2024, 11, 20, 9, 30, tzinfo=UTC),
        workload_name="30x WGS",
        workload_units=WGS,
        work_unit="bases",
        overhead_s=600.0,
        summaries=[g5, g4dn],
        recommendation=recommendation,
        equivalence=equivalence,
        shards=shards(),
    )


@pytest.fixture(scope="module")
def files(results: BenchmarkResults, tmp_path_factory: pytest.TempPathFactory) -> BenchmarkReportFiles:
    return write_benchmark_report(results, tmp_path_factory.mktemp("report"))


def test_files_are_written(files: BenchmarkReportFiles) -> None:
    names = sorted(p.name for p in files.all())
    assert names == sorted(
        ["benchmark.html", "benchmark.xlsx", "runtime_per_workload.png", "throughput.png", "cost_per_workload.png"]
    )
    assert all(p.exists() and p.stat().st_size > 0 for p in files.all())


def test_charts_are_valid_png(files: BenchmarkReportFiles) -> None:
    for png in (files.runtime_png, files.throughput_png, files.cost_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = imread(png)
        assert pixels.shape[0] > 100 and pixels.shape[1] > 500
        assert pixels.std() > 0  # something is drawn


def test_workbook_sheets_order_and_values(files: BenchmarkReportFiles, results: BenchmarkResults) -> None:
    book = load_workbook(files.xlsx)
    assert book.sheetnames == ["us-west-2", "Shards", "Equivalence", "About"]
    sheet = book["us-west-2"]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    for needed in (
        "instance type", "GPUs", "cost/hour [$]", "purchase", "tool", "configuration",
        "runtime [h] per G bases (median)", "runtime [h] per 30x WGS (median)",
        "cost [$] per G bases (median)", "cost [$] per 30x WGS (median)", "cost [$] per 30x WGS low",
        "cost [$] per 30x WGS high", "throughput measured [bases/s] (median)",
        "throughput tool-reported (median)", "tool-reported unit", "shards", "repeats", "stragglers",
    ):  # fmt: skip
        assert needed in header, needed
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    # Sorted by median cost per workload: the spot g4dn is cheaper although slower.
    assert [r["target"] for r in records] == ["g4dn", "g5"]
    costs = [r["cost [$] per 30x WGS (median)"] for r in records]
    assert costs == sorted(costs)
    by_target = {s.target.name: s for s in results.summaries}
    for r in records:
        s = by_target[r["target"]]
        assert r["instance type"] == s.target.instance_type and r["GPUs"] == 1
        assert r["cost/hour [$]"] == s.target.price_per_hour and r["purchase"] == s.target.purchase
        assert r["tool"] == "dorado" and r["configuration"] == "hac"
        assert r["cost [$] per 30x WGS (median)"] == pytest.approx(s.cost_per_workload.median)
        assert r["cost [$] per 30x WGS low"] == pytest.approx(s.cost_per_workload.low)
        assert r["cost [$] per 30x WGS high"] == pytest.approx(s.cost_per_workload.high)
        assert r["runtime [h] per 30x WGS (median)"] == pytest.approx(s.runtime_per_workload_h.median)
        # Per-unit figures are per G bases: x (units / 1e9) gives back the per-workload figure.
        assert r["runtime [h] per G bases (median)"] * WGS / 1e9 == pytest.approx(s.runtime_per_workload_h.median)
        assert r["cost [$] per G bases (median)"] == pytest.approx(s.cost_per_unit.median * 1e9)
        assert r["throughput measured [bases/s] (median)"] == pytest.approx(s.throughput_measured.median)
        assert r["throughput tool-reported (median)"] == pytest.approx(s.throughput_tool.median)
        assert r["tool-reported unit"] == "samples/s"
        assert (r["shards"], r["repeats"]) == (2, 3)
    assert "1.4x" in records[0]["stragglers"]
    assert sheet["A2"].value == "g4dn" and sheet.freeze_panes == "A2"


def test_workbook_shards_and_equivalence(files: BenchmarkReportFiles, results: BenchmarkResults) -> None:
    book = load_workbook(files.xlsx)
    shard_rows = list(book["Shards"].iter_rows(values_only=True))
    header = list(shard_rows[0])
    assert len(shard_rows) - 1 == len(results.shards) == 12
    assert "samples_per_s" in header and "reads" in header
    first = dict(zip(header, shard_rows[1], strict=True))
    assert (first["target"], first["repeat"], first["shard"], first["seconds"]) == ("g4dn", 0, 0, 9000.0)
    assert first["start (UTC)"] == datetime(2023, 11, 14, 22, 13, 20)
    equivalence = list(book["Equivalence"].iter_rows(values_only=True))
    header = list(equivalence[0])
    verdicts = {(r[header.index("output")], r[header.index("target")]): r for r in equivalence[1:]}
    bam = verdicts[("calls.bam", "g4dn")]
    assert bam[header.index("verdict")] == "different" and bam[header.index("differing records")] == 1
    assert XSS in bam[header.index("first differences")]
    assert verdicts[("calls.bam", "g5")][header.index("verdict")] == "reference"
    assert verdicts[("summary.tsv", "g4dn")][header.index("verdict")] == "identical"
    assert verdicts[("stats.txt", "g4dn")][header.index("verdict")] == "missing"
    # Variant calls: both levels, with counts and the first differing records of each.
    vcf = dict(zip(header, verdicts[("calls.vcf", "g4dn")], strict=True))
    assert (vcf["identical on all targets"], vcf["same calls on all targets"]) == ("no", "no")
    assert (vcf["verdict"], vcf["records"], vcf["differing records"]) == ("different", 14, 4)
    assert (vcf["calls verdict"], vcf["calls"], vcf["differing calls"]) == ("different calls", 4, 1)
    assert vcf["first differing calls"] == "- chr2\t400\tDP=31\n+ chr2\t400\tDP=32"
    assert vcf["compared"].startswith("every shard's file merged") and vcf["genotype phase"] == "compared"
    bam = dict(zip(header, verdicts[("calls.bam", "g4dn")], strict=True))
    assert bam["calls verdict"] is None and bam["same calls on all targets"] is None
    about = dict(list(book["About"].iter_rows(values_only=True))[1:14])
    assert about["cheapest within deadline"] == "dorado/hac@g4dn" and about["overhead per instance run [s]"] == 600


class _Page(HTMLParser):
    """Attributes of the summary rows, equivalence rows and verdicts, the CSP and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.equivalence: list[dict[str, str | None]] = []
        self.verdicts: list[dict[str, str | None]] = []
        self.csp: str | None = None
        self.recommendation: dict[str, str | None] = {}
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "tr" and "summary-row" in classes:
            self.rows.append(a)
        if tag == "tr" and "equivalence-row" in classes:
            self.equivalence.append(a)
        if tag == "li" and "data-verdict" in a:
            self.verdicts.append(a)
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a.get("content")
        if a.get("id") == "recommendation":
            self.recommendation = a
        self.references += [v or "" for k, v in attrs if k in ("src", "href", "action", "poster")]


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _check_page(html: str, results: BenchmarkResults) -> None:
    page = _parse(html)
    assert page.csp == CSP
    assert len(page.references) == 3 and all(r.startswith("data:image/png;base64,") for r in page.references)
    # Rows in cost order, each figure exactly the API's value.
    assert [r["data-target"] for r in page.rows] == ["g4dn", "g5"]
    by_target = {s.target.name: s for s in results.summaries}
    for row in page.rows:
        s = by_target[row["data-target"] or ""]
        assert float(row["data-cost-per-workload"] or "nan") == s.cost_per_workload.median
        assert float(row["data-cost-per-workload-low"] or "nan") == s.cost_per_workload.low
        assert float(row["data-cost-per-workload-high"] or "nan") == s.cost_per_workload.high
        assert float(row["data-cost-per-unit"] or "nan") == s.cost_per_unit.median
        assert float(row["data-runtime-per-workload-h"] or "nan") == s.runtime_per_workload_h.median
        assert float(row["data-throughput-measured"] or "nan") == s.throughput_measured.median
        assert s.throughput_tool and float(row["data-throughput-tool"] or "nan") == s.throughput_tool.median
        assert row["data-tool"] == "dorado" and row["data-configuration"] == "hac"
    verdicts = {(e["data-output"], e["data-identical"]) for e in page.equivalence}
    assert verdicts == {("calls.bam", "false"), ("summary.tsv", "true"), ("stats.txt", "false"), ("calls.vcf", "false")}
    assert {e["data-output"]: e["data-same-calls"] for e in page.equivalence}["calls.vcf"] == "false"
    different = {v["data-differing-records"] for v in page.verdicts if v["data-verdict"] == "different"}
    assert different == {"1", "4"}
    [calls] = [v for v in page.verdicts if v.get("data-calls-verdict") == "different calls"]
    assert (calls["data-calls"], calls["data-differing-calls"], calls["data-records"]) == ("4", "1", "14")
    assert "chr2\t400\tDP=32" in html and "file merged, records sorted by position" in html
    assert any(v["data-verdict"] == "missing" and v["data-target"] == "g4dn" for v in page.verdicts)
    assert page.recommendation["data-cheapest"] == "dorado/hac@g4dn"
    assert page.recommendation["data-fastest"] == "dorado/hac@g5"
    assert float(page.recommendation["data-deadline-h"] or "nan") == 300.0


def test_html_is_self_contained_and_matches_the_data(files: BenchmarkReportFiles, results: BenchmarkResults) -> None:
    html = files.html.read_text()
    text = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", html)  # base64 may hold "//"
    assert not re.search(r"https?:|//[a-z0-9]", text, re.IGNORECASE)
    assert "@import" not in html and "<link" not in html and "<script" not in html
    _check_page(html, results)
    for sentence in results.recommendation.explanation:
        assert sentence in html
    assert "read7\t0\tchr1\t101\tACGT" in html  # the first differing records are shown
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for heading in ("Instance run time", "Cost", "Throughput", "Equivalence"):
        assert f"<dt>{heading}</dt>" in html
    assert "max(60, ⌈overhead + run time per workload⌉)" in html and "longest shard" in html


def test_report_is_deterministic(files: BenchmarkReportFiles, results: BenchmarkResults, tmp_path: Path) -> None:
    again = write_benchmark_report(results, tmp_path)
    assert again.html.read_text() == files.html.read_text()
    assert again.cost_png.read_bytes() == files.cost_png.read_bytes()


def test_one_sheet_per_region(results: BenchmarkResults, tmp_path: Path) -> None:
    frankfurt = summary(target("g5-fra", "g5.xlarge", "on-demand", 1.258, "eu-central-1"), (4100, 4000, 4200), 3.7e6)
    # A tool without its own rate: blank tool-reported columns, "n/a" in the chart.
    frankfurt = replace(frankfurt, throughput_tool=None, tool_rate_unit=None)
    files = write_benchmark_report(replace(results, summaries=[*results.summaries, frankfurt]), tmp_path)
    book = load_workbook(files.xlsx)
    assert book.sheetnames == ["eu-central-1", "us-west-2", "Shards", "Equivalence", "About"]
    rows = list(book["eu-central-1"].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][0] == "g5-fra"
    assert rows[1][rows[0].index("throughput tool-reported (median)")] is None
    assert 'data-region="eu-central-1"' in files.html.read_text()


def test_empty_results_render(results: BenchmarkResults, tmp_path: Path) -> None:
    files = write_benchmark_report(replace(results, summaries=[], equivalence=[], shards=[]), tmp_path)
    assert "No results." in files.html.read_text()
    assert load_workbook(files.xlsx).sheetnames == ["results", "Shards", "Equivalence", "About"]


def test_unit_scale_and_sheet_names(results: BenchmarkResults) -> None:
    scale = unit_scale(results)
    assert (scale.factor, scale.label) == (1e9, "G bases")
    taken = {"shards", "equivalence", "about"}
    assert sheet_name("Shards", taken) == "Shards~2"
    assert sheet_name("a/b:c*?" + "x" * 40, taken) == "a_b_c__" + "x" * 24


@needs_chromium
def test_html_renders_in_chromium(files: BenchmarkReportFiles, results: BenchmarkResults, tmp_path: Path) -> None:
    dom, console = chromium(files.html, tmp_path / "profile")
    assert console == []
    _check_page(dom, results)


def test_summary_without_usable_repeats_renders_blank(results: BenchmarkResults, tmp_path: Path) -> None:
    """Aggregation reports NaN spreads when every repeat failed: blanks and "n/a", sorted last, never "nan"."""
    nan = Spread(float("nan"), float("nan"), float("nan"))
    failed = replace(
        summary(target("p3", "p3.2xlarge", "on-demand", 3.06), (1, 1, 1), 1.0),
        repeats=0,
        runtime_s=nan,
        throughput_measured=nan,
        throughput_tool=None,
        cost_per_unit=nan,
        runtime_per_workload_h=nan,
        cost_per_workload=nan,
        cost_per_run=None,
        failed_shards=6,
        notes=["repeat 0 left out: shard 1 FAILED"],
    )
    files = write_benchmark_report(replace(results, summaries=[failed, *results.summaries]), tmp_path)
    rows = list(load_workbook(files.xlsx)["us-west-2"].iter_rows(values_only=True))
    header = list(rows[0])
    assert [r[0] for r in rows[1:]] == ["g4dn", "g5", "p3"]
    assert rows[3][header.index("cost [$] per 30x WGS (median)")] is None
    assert "shard 1 FAILED" in rows[3][header.index("notes")]
    html = files.html.read_text()
    assert ">nan<" not in html and 'data-target="p3"' in html


def test_terminal_lines_show_both_levels(results: BenchmarkResults) -> None:
    lines = equivalence_lines(results)
    assert lines[:2] == [
        "equivalence: 1 of 4 outputs have identical records on every target",
        "             0 of 1 variant-call outputs hold the same calls",
    ]
    text = "\n".join(lines)
    assert "summary.tsv" not in text  # identical outputs get no line of their own
    start = lines.index(
        "  dorado calls.vcf: records different; calls: different "
        "(every shard's file merged, records sorted by position)"
    )
    assert lines[start + 1 : start + 7] == [
        "    g4dn: records different: 4 differing, 0 only in g5, 0 only in g4dn",
        "      - chr1\t100\t.\tA\tG\t60",
        "      + chr1\t100\t.\tA\tG\t60.00000",
        "    g4dn: different calls: 1 differing, 0 only in g5, 0 only in g4dn",
        "      - chr2\t400\tDP=31",
        "      + chr2\t400\tDP=32",
    ]
    assert "    g4dn: records missing: 0 differing, 3 only in g5, 0 only in g4dn" in lines
    empty = equivalence_lines(replace(results, equivalence=[]))
    assert empty == ["equivalence: no outputs were compared"]


def test_time_and_cost_ratios_against_the_first_target(files: BenchmarkReportFiles, results: BenchmarkResults) -> None:
    # g4dn: 9,100 s vs g5's 4,100 s; $0.2119/h vs $1.006/h (the fixture's figures, no overhead).
    time_ratio, cost_ratio = 9100 / 4100, (9100 * 0.2119) / (4100 * 1.006)
    expected = (
        f"dorado/hac: g4dn vs g5: time x{time_ratio:.3f} (122% more, speed-up {1 / time_ratio:.2f}x), "
        f"cost x{cost_ratio:.3f} (53% less) at $0.2119/h vs $1.006/h"
    )
    assert comparison_lines(results) == [expected]
    assert f'<li class="ratio">{expected}</li>' in files.html.read_text()
    nan = Spread(float("nan"), float("nan"), float("nan"))
    failed = replace(results.summaries[1], runtime_per_workload_h=nan, cost_per_workload=nan, repeats=0)
    lines = comparison_lines(replace(results, summaries=[results.summaries[0], failed]))
    assert lines == ["dorado/hac: g4dn vs g5: no ratio (a target has no complete run)"]


def test_extrapolation_caveat_stands_beside_the_scaled_figures(files: BenchmarkReportFiles) -> None:
    html = files.html.read_text()
    caveat = re.search(r'<p class="caveat" id="extrapolation-caveat">([^<]*)</p>', html)
    assert caveat, "no caveat above the results table"
    assert "Extrapolated: each run measured" in caveat.group(1) and "overstate a real workload" in caveat.group(1)
    # Where the numbers are: in the results section, before its first table, and in the recommendation.
    results_section = html[html.index('<section id="results">') : html.index('<section id="charts">')]
    assert results_section.index("extrapolation-caveat") < results_section.index("<table")
    recommendation = html[html.index('<section id="recommendation"') : html.index("</section>")]
    assert 'class="caveat"' in recommendation


def test_no_caveat_when_the_workload_is_what_was_measured(results: BenchmarkResults, tmp_path: Path) -> None:
    measured = replace(results, workload_units=results.summaries[0].work)
    html = write_benchmark_report(measured, tmp_path).html.read_text()
    assert "extrapolation-caveat" not in html


#: Appended to a copy of the page: at the window's width, is the summary table cut off (right edge past a
#: container that does not scroll) and does its first column stay in view when scrolled sideways?
WIDE_TABLE_PROBE = """<style>/* probe */</style><script>
var table = document.querySelector("table.summary");
var holder = table.parentElement;
var findings = [];
if (document.documentElement.scrollWidth > window.innerWidth) findings.push("page scrolls sideways");
if (holder.scrollWidth > holder.clientWidth) {
  holder.scrollLeft = holder.scrollWidth;
  var first = table.querySelector("tbody td").getBoundingClientRect();
  if (first.left < holder.getBoundingClientRect().left - 1) findings.push("target column scrolled away");
} else if (table.getBoundingClientRect().right > window.innerWidth) findings.push("table cut off");
var heights = Array.from(table.querySelectorAll("thead th")).map(function (th) { return th.offsetHeight; });
if (Math.max.apply(null, heights) > 120) findings.push("headers taller than 120 px");
document.documentElement.setAttribute("data-layout", JSON.stringify(findings));
</script>"""


@needs_chromium
def test_the_23_column_table_is_readable_at_1400_px(files: BenchmarkReportFiles, tmp_path: Path) -> None:
    page = tmp_path / "probe.html"
    html = files.html.read_text().replace("</body>", WIDE_TABLE_PROBE + "</body>")
    # The page's policy allows no script; the probe copy allows inline script to measure the layout.
    page.write_text(html.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'"))
    dom, console = chromium(page, tmp_path / "profile", window_size=(1400, 900))
    assert console == []
    findings = re.search(r'data-layout="([^"]*)"', dom).group(1).replace("&quot;", '"')
    assert findings == "[]", findings


@needs_chromium
def test_benchmark_report_screenshot(results: BenchmarkResults, tmp_path: Path) -> None:
    """The page as a reader sees it at 1400 px, with no console error; copied to docs/screenshots/ for the README
    with GENOBATCH_UPDATE_SCREENSHOTS=1."""
    import os
    import shutil

    from devtools import Browser

    # The fixture's data under a plain title (its own title is an injection probe, escaped on the page).
    files = write_benchmark_report(replace(results, plan_name="basecallers: dorado on g5 vs g4dn"), tmp_path / "r")
    browser = Browser(tmp_path / "profile", 1400, 1000)
    try:
        browser.goto(files.html.as_uri())
        browser.wait_for("document.readyState === 'complete'")
        shot = browser.screenshot(tmp_path / "report-benchmark.png")
        assert browser.problems() == []
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("GENOBATCH_UPDATE_SCREENSHOTS") == "1":
        target = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / shot.name)


def test_terminal_summary_wraps_at_words_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench run's closing sentences at 80 columns: whole words, continuations indented under their line (the
    terminal broke them mid-word); piped with no COLUMNS, one line each for grep."""
    from genobatch.cli.bench_cmd import wrapped

    lines = [
        "recommendation: Instances in parallel to finish 100 workload(s) within 48 h (each instance runs whole "
        "workloads one after another; the cost does not change with the count): minimap2/default@one-vcpu x50",
        "  minimap2/default@c6i-large-spot: measured run 3.0 s; per workload 11.98 h, $0.408",
    ]
    monkeypatch.setenv("COLUMNS", "80")
    out = wrapped(lines)
    assert len(out) > len(lines) and all(len(line) <= 80 for line in out), out
    assert out[1].startswith("  ") and not out[1].startswith("   ")  # under "recommendation:", by two
    assert out[-1].startswith("    ") and out[-2].startswith("  minimap2/")  # a nested line's continuation
    assert " ".join(" ".join(out).split()) == " ".join(" ".join(lines).split())  # no word cut or lost
    monkeypatch.delenv("COLUMNS")
    assert wrapped(lines) == lines
