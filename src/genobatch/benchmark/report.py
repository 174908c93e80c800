"""The benchmark report: which target is the best buy for a workload, and are its results the same.

:func:`write_benchmark_report` writes, into one directory:

* ``benchmark.xlsx`` - one sheet per pricing region (the seed benchmark's layout, with median, low and
  high over repeats), plus ``Shards``, ``Equivalence`` and ``About`` (:mod:`.report_workbook`);
* ``runtime_per_workload.png``, ``throughput.png``, ``cost_per_workload.png`` (:mod:`.report_charts`);
* ``benchmark.html`` - tables, charts, equivalence verdicts, recommendation and method on one
  self-contained page (:mod:`.report_page`).

The tables are defined once (:mod:`.report_table`) and the method once (:mod:`.report_method`), so the
workbook and the page cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genobatch.benchmark.report_charts import cost_chart, runtime_chart, throughput_chart
from genobatch.benchmark.report_page import render_page
from genobatch.benchmark.report_table import sorted_summaries, unit_scale
from genobatch.benchmark.report_workbook import write_workbook
from genobatch.benchmark.results import BenchmarkResults


@dataclass(frozen=True)
class BenchmarkReportFiles:
    """Paths of the files one benchmark report consists of."""

    html: Path
    xlsx: Path
    runtime_png: Path
    throughput_png: Path
    cost_png: Path

    def all(self) -> list[Path]:
        """Every file, page first."""
        return [self.html, self.xlsx, self.runtime_png, self.throughput_png, self.cost_png]


def write_benchmark_report(results: BenchmarkResults, out_dir: str | Path) -> BenchmarkReportFiles:
    """Render ``results`` into ``out_dir`` (created if missing; files of the same names are replaced)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale = unit_scale(results)
    # Charts show every region together, in the table's order: cheapest per workload at the top.
    rows = sorted_summaries(results.summaries)
    workload = results.workload_name
    charts = {
        "runtime_per_workload": (f"Run time per {workload}", runtime_chart(results, rows)),
        "throughput": ("Throughput, measured and tool-reported", throughput_chart(results, rows)),
        "cost_per_workload": (f"Cost per {workload}", cost_chart(results, rows)),
    }
    paths = {}
    for name, (_, png) in charts.items():
        paths[name] = out / f"{name}.png"
        paths[name].write_bytes(png)
    html = out / "benchmark.html"
    html.write_text(render_page(results, scale, charts), encoding="utf-8")
    return BenchmarkReportFiles(
        html=html,
        xlsx=write_workbook(results, scale, out / "benchmark.xlsx"),
        runtime_png=paths["runtime_per_workload"],
        throughput_png=paths["throughput"],
        cost_png=paths["cost_per_workload"],
    )
