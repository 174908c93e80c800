"""``report.html``: one self-contained page (inline CSS, inline SVG charts, no external references).

Rendered with Jinja2 because every job name, tag, hostname and failure reason shown is user input:
Jinja2's autoescaping makes each of them safe by default, where hand-built strings would need an
``escape`` call at every one of some fifty places and break silently when one is forgotten.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, StrictUndefined

from genobatch.report import units
from genobatch.report.charts import Chart
from genobatch.report.columns import TRACE_COLUMNS, Column
from genobatch.report.model import RunData, TraceRecord
from genobatch.report.page_template import TEMPLATE
from genobatch.report.results import RunResults, metric_label, metric_text
from genobatch.report.rightsizing import Advice, share_text
from genobatch.report.summary import RunSummary

#: native_id repeats task_id in genobatch, so the page shows it once.
PAGE_COLUMNS = tuple(c for c in TRACE_COLUMNS if c.header != "native_id")


@dataclass(frozen=True)
class Cell:
    """One trace-table cell: the text people read and the raw value the sort uses."""

    text: str
    sort: str | None
    numeric: bool


def raw(value: float | int | None) -> str:
    """A number for a ``data-value`` attribute: exact (``repr``), or empty when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value)


def span(bounds: tuple[int, int]) -> str:
    """``4`` or ``2–4``: a request that overrides changed between jobs shows its range."""
    low, high = bounds
    return str(low) if low == high else f"{low}–{high}"


def _human(column: Column, value: Any) -> str:
    if value is None or value == "":
        return "–"
    match column.kind:
        case "time":
            return units.short_time(value)
        case "ms":
            return units.duration(value)
        case "bytes":
            return units.size(value)
        case "pct":
            return f"{value:.1f}%"
        case "usd":
            return units.money(value)
    return str(value)


def _cell(column: Column, record: TraceRecord) -> Cell:
    value = column.value(record)
    numeric = column.kind != "text"
    return Cell(text=_human(column, value), sort=raw(value) if numeric else None, numeric=numeric)


def _prefix_ids(svg: str, prefix: str) -> str:
    """Inline-ready SVG: no XML prolog or metadata, and ids made unique within the page.

    Two matplotlib figures both use ids like ``figure_1``; inlined side by side they would clash, and a
    ``url(#...)`` clip path could then resolve to the other chart's element.
    """
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    svg = re.sub(r'href="#', f'href="#{prefix}-', svg)
    return re.sub(r"url\(#", f"url(#{prefix}-", svg)


def _results_context(results: RunResults | None) -> dict[str, Any]:
    if results is None:
        return {"results": None}
    columns = [{"name": m, "label": metric_label(m), "unit": results.units.get(m)} for m in results.metrics]
    rows = [
        {
            "sample": sample,
            "cells": [
                {"text": metric_text(sample.metrics.get(c["name"]), c["unit"]), "value": sample.metrics.get(c["name"])}
                for c in columns
            ],
        }
        for sample in results.samples
    ]
    failures = any(sample.failures for sample in results.samples)  # no empty Failure column to widen the table
    return {"results": results, "result_columns": columns, "result_rows": rows, "result_failures": failures}


def _environment() -> Environment:
    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(
        raw=raw, span=span, money=units.money, duration=units.duration, percent=units.percent, share=share_text
    )
    return environment


def render_page(run: RunData, summary: RunSummary, advice: list[Advice], timeline: Chart, resources: Chart) -> str:
    """The whole page as a string."""
    savings = [a.saving for a in advice if a.saving is not None]
    context = {
        "info": run.info,
        "created": run.info.created.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "s": summary,
        "billed": run.billed,
        "samples": run.samples,
        "sample_cost_basis": run.sample_cost_basis,
        **_results_context(run.results),
        "policy": run.policy,
        "advice": advice,
        "total_saving": sum(savings) if savings else None,
        "timeline_svg": _prefix_ids(timeline.svg, "timeline"),
        "resources_svg": _prefix_ids(resources.svg, "resources"),
        "trace_headers": [{"label": c.header, "numeric": c.kind != "text"} for c in PAGE_COLUMNS],
        "trace_rows": [
            {
                "task_id": r.task_id,
                "attempt": r.attempt,
                "status": r.status,
                "cells": [_cell(c, r) for c in PAGE_COLUMNS],
            }
            for r in run.trace
        ],
    }
    return _environment().from_string(TEMPLATE).render(context)
