"""``write_report``: every report file for one run, written into one directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from genobatch.report.charts import Chart, resources_chart, timeline_chart
from genobatch.report.model import RunData
from genobatch.report.page import render_page
from genobatch.report.rightsizing import Advice, advise
from genobatch.report.summary import summarise
from genobatch.report.tsv import write_trace
from genobatch.report.workbook import write_workbook


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the files one report consists of."""

    html: Path
    trace_tsv: Path
    xlsx: Path
    timeline_svg: Path
    timeline_png: Path
    resources_svg: Path
    resources_png: Path
    #: The right-sizing advice the page and the workbook show, for a terminal summary.
    advice: list[Advice] = field(default_factory=list)

    def all(self) -> list[Path]:
        """Every file, page first."""
        return [
            self.html,
            self.trace_tsv,
            self.xlsx,
            self.timeline_svg,
            self.timeline_png,
            self.resources_svg,
            self.resources_png,
        ]


def _write_chart(chart: Chart, out_dir: Path) -> tuple[Path, Path]:
    svg, png = out_dir / f"{chart.name}.svg", out_dir / f"{chart.name}.png"
    svg.write_text(chart.svg, encoding="utf-8")
    png.write_bytes(chart.png)
    return svg, png


def write_report(run: RunData, out_dir: Path) -> ReportFiles:
    """Render the run into ``out_dir`` (created if missing; files of the same name are replaced).

    Files: ``report.html`` (self-contained), ``trace.tsv``, ``report.xlsx``, ``timeline.svg``/``.png``
    and ``resources.svg``/``.png``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(run)
    advice = advise(run.trace, run.policy, run.billed)
    timeline, resources = timeline_chart(run.trace), resources_chart(run.trace)
    timeline_svg, timeline_png = _write_chart(timeline, out_dir)
    resources_svg, resources_png = _write_chart(resources, out_dir)
    html = out_dir / "report.html"
    html.write_text(render_page(run, summary, advice, timeline, resources), encoding="utf-8")
    return ReportFiles(
        html=html,
        trace_tsv=write_trace(run.trace, out_dir / "trace.tsv"),
        xlsx=write_workbook(run, summary, advice, out_dir / "report.xlsx"),
        timeline_svg=timeline_svg,
        timeline_png=timeline_png,
        resources_svg=resources_svg,
        resources_png=resources_png,
        advice=advice,
    )
