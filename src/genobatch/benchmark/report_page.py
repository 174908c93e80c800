"""``benchmark.html``: the benchmark on one self-contained page (inline CSS, charts as data: PNGs, no script).

Rendered with Jinja2 and autoescaping because tool names, configurations, targets and above all the
differing records quoted from output files are arbitrary text. The Content-Security-Policy allows
nothing but inline style and data: images, so a page that ever tried to fetch anything would show a
console error in the test's headless browser. Key figures carry ``data-*`` attributes holding the exact
values (``repr``), so tests compare the page with the API rather than with rounded text.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, StrictUndefined

from genobatch.benchmark.aggregate import label
from genobatch.benchmark.report_method import method
from genobatch.benchmark.report_table import Column, UnitScale, Verdict, all_verdicts, by_region, columns
from genobatch.benchmark.report_template import TEMPLATE
from genobatch.benchmark.report_terminal import comparison_lines
from genobatch.benchmark.results import BenchmarkResults, Spread, TargetSummary
from genobatch.report import units
from genobatch.report.page import raw


@dataclass(frozen=True)
class Cell:
    """One table cell: what people read, and the exact figure (median for a spread) for ``data-value``."""

    text: str
    value: str | None
    numeric: bool


def _significant(x: float, digits: int = 4) -> str:
    """A few significant digits, never in exponent form for numbers people read as amounts."""
    if x == 0:
        return "0"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _si(x: float) -> str:
    """Rates with a decimal prefix: ``51.2 M``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3g} {prefix}"
    return _significant(x, 3)


def _format(kind: str, x: float) -> str:
    match kind:
        case "usd":
            return units.money(x)
        case "usd_fine":
            return "$" + _significant(x, 5)
        case "rate":
            return _si(x)
        case "int":
            return str(x)
    return _significant(x)


def _cell(column: Column, summary: TargetSummary) -> Cell:
    value = column.value(summary)
    if column.kind == "text":
        return Cell(str(value) if value not in (None, "") else "–", None, False)
    if value is None:
        return Cell("–", "", True)
    if isinstance(value, Spread):
        text = _format(column.kind, value.median)
        if value.low != value.high:
            text += f" ({_format(column.kind, value.low)}–{_format(column.kind, value.high)})"
        return Cell(text, raw(value.median), True)
    assert isinstance(value, int | float)
    return Cell(_format(column.kind, value), raw(value), True)


def _attributes(summary: TargetSummary) -> dict[str, str]:
    """The row's identity and its key figures, exact, as the API reports them (no unit scaling)."""
    tool = summary.throughput_tool
    return {
        "data-target": summary.target.name,
        "data-tool": summary.tool,
        "data-configuration": summary.configuration,
        "data-region": summary.target.region,
        "data-label": label(summary),
        "data-cost-per-workload": raw(summary.cost_per_workload.median),
        "data-cost-per-workload-low": raw(summary.cost_per_workload.low),
        "data-cost-per-workload-high": raw(summary.cost_per_workload.high),
        "data-cost-per-unit": raw(summary.cost_per_unit.median),
        "data-runtime-per-workload-h": raw(summary.runtime_per_workload_h.median),
        "data-runtime-s": raw(summary.runtime_s.median),
        "data-throughput-measured": raw(summary.throughput_measured.median),
        "data-throughput-tool": raw(tool.median) if tool else "",
        "data-repeats": str(summary.repeats),
        "data-shards": str(summary.shards),
    }


#: The page's colour class for each second-level verdict (the first level's verdicts are their own class).
_CALLS_CLASS = {"same calls": "identical", "different calls": "different", "missing on reference": "missing"}


def _verdict_view(v: Verdict) -> dict[str, Any]:
    d, c = v.difference, v.calls_difference
    attributes = {"data-target": v.target, "data-verdict": v.verdict}
    if v.records is not None:
        attributes["data-records"] = str(v.records)
    if d:
        attributes |= {
            "data-differing-records": str(d.differing_records),
            "data-only-in-reference": str(d.only_in_reference),
            "data-only-in-target": str(d.only_in_target),
        }
    if v.calls_verdict:
        attributes |= {"data-calls-verdict": v.calls_verdict, "data-calls": str(v.calls)}
    if c:
        attributes |= {
            "data-differing-calls": str(c.differing_records),
            "data-calls-only-in-reference": str(c.only_in_reference),
            "data-calls-only-in-target": str(c.only_in_target),
        }
    calls_class = _CALLS_CLASS.get(v.calls_verdict or "", v.calls_verdict or "")
    return {"v": v, "d": d, "c": c, "attributes": attributes, "calls_class": calls_class}


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def extrapolation_caveat(results: BenchmarkResults) -> str:
    """The caveat to print beside per-workload figures scaled up from a small measured run ("" when none are)."""
    measured = [s.work for s in results.summaries if s.repeats and math.isfinite(s.work) and s.work > 0]
    if not measured or not math.isfinite(results.workload_units) or results.workload_units == measured[0]:
        return ""
    factor = results.workload_units / measured[0]
    return (
        f"Extrapolated: each run measured {_significant(measured[0])} {results.work_unit}; the per-"
        f"{results.workload_name} figures scale it {factor:,.0f}x, linearly, to {_significant(results.workload_units)} "
        f"{results.work_unit}. Start-up and model loading inside the small run are scaled too, so these figures "
        "overstate a real workload's time and cost; measure a larger subset before relying on them."
    )


def render_page(results: BenchmarkResults, scale: UnitScale, charts: dict[str, tuple[str, bytes]]) -> str:
    """The whole page as a string; ``charts`` maps a chart's file stem to its title and PNG bytes."""
    table = columns(results, scale)
    r = results.recommendation
    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(raw=raw, money=units.money, figure=_significant)
    context = {
        "results": results,
        "created": results.created.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "scale": scale,
        "caveat": extrapolation_caveat(results),
        "headers": [{"label": c.header, "numeric": c.kind != "text"} for c in table],
        "regions": [
            {
                "name": region,
                "rows": [{"attributes": _attributes(s), "cells": [_cell(c, s) for c in table]} for s in rows],
            }
            for region, rows in by_region(results).items()
        ],
        "recommendation": r,
        "comparisons": comparison_lines(results),
        "comparisons_reference": results.summaries[0].target.name if results.summaries else "",
        "recommendation_attributes": {
            "data-workloads": str(r.workloads),
            "data-deadline-h": raw(r.deadline_h),
            "data-budget-usd": raw(r.budget_usd),
            "data-cheapest": r.cheapest_within_deadline or "",
            "data-fastest": r.fastest_within_budget or "",
        },
        "charts": [{"name": name, "title": title, "uri": _png_uri(png)} for name, (title, png) in charts.items()],
        "equivalence": [
            {"result": result, "verdicts": [_verdict_view(v) for v in verdicts]}
            for result, verdicts in all_verdicts(results)
        ],
        "shards": sorted(results.shards, key=lambda s: (s.tool, s.configuration, s.target, s.repeat, s.shard)),
        "method": method(results, scale),
    }
    return environment.from_string(TEMPLATE).render(context)
