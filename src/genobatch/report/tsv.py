"""``trace.tsv``: the Nextflow-style trace file, one line per attempt.

Tab-separated with a header line (:data:`~genobatch.report.columns.TRACE_HEADERS`). Raw units as in
Nextflow's ``trace.raw = true`` (ms, bytes, ``%cpu`` as a number), except that ``submit``, ``start``
and ``complete`` are ISO 8601 UTC instants, which both people and parsers read without guessing the
epoch unit. A missing value is ``-``, as in Nextflow's trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genobatch.report.columns import TRACE_COLUMNS, TRACE_HEADERS, Column
from genobatch.report.model import TraceRecord
from genobatch.report.units import iso_time

MISSING = "-"


def _cell(column: Column, record: TraceRecord) -> str:
    value: Any = column.value(record)
    if value is None or value == "":
        return MISSING
    if column.kind == "time":
        return iso_time(value) or MISSING
    if column.kind == "usd":
        # repr round-trips the float exactly, so sums over the file equal the run's totals.
        return repr(float(value))
    if isinstance(value, float) and value.is_integer() and column.kind != "pct":
        return str(int(value))
    # Tabs and newlines in free text (a failure reason) would break the one-line-per-attempt format.
    return " ".join(str(value).split()) if column.kind == "text" else str(value)


def trace_lines(trace: list[TraceRecord]) -> list[str]:
    """The file's lines, header first, attempts in the order given."""
    lines = ["\t".join(TRACE_HEADERS)]
    lines.extend("\t".join(_cell(column, record) for column in TRACE_COLUMNS) for record in trace)
    return lines


def write_trace(trace: list[TraceRecord], path: Path) -> Path:
    """Write ``trace.tsv`` and return its path."""
    path.write_text("\n".join(trace_lines(trace)) + "\n", encoding="utf-8")
    return path
