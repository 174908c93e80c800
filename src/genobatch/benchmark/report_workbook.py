"""``benchmark.xlsx``: the seed benchmark's workbook (one sheet per pricing region), with ranges and evidence.

Sheets: one per pricing region (rows cheapest per workload first, a :class:`Spread` as median, low
and high columns), ``Shards`` (every shard of every repeat), ``Equivalence`` (one row per tool ×
output × target) and ``About`` (the run, the recommendation and the method). Numbers are stored as
numbers with display formats, so sorting and formulas work in a spreadsheet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from genobatch.benchmark.report_method import method
from genobatch.benchmark.report_table import Column, UnitScale, all_verdicts, by_region, columns
from genobatch.benchmark.results import BenchmarkResults, Difference, ShardResult, Spread

FORMATS = {
    "int": "0",
    "usd": '"$"#,##0.00',
    "usd_fine": '"$"#,##0.0000##',
    "hours": "0.000##",
    "seconds": "#,##0.0",
    "rate": "#,##0.00",
}
INSTANT = "yyyy-mm-dd hh:mm:ss"
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="F0F2F5")
WRAP = Alignment(wrap_text=True, vertical="top")
#: Sheet names the workbook uses itself; a region of the same name gets a suffix.
FIXED_SHEETS = ("Shards", "Equivalence", "About")


def sheet_name(region: str, taken: set[str]) -> str:
    """A valid, unique sheet title for a region: Excel forbids ``[]:*?/\\`` and more than 31 characters."""
    base = re.sub(r"[\[\]:*?/\\]", "_", region)[:31] or "region"
    name, n = base, 2
    while name.lower() in taken:
        name = f"{base[: 31 - len(str(n)) - 1]}~{n}"
        n += 1
    taken.add(name.lower())
    return name


def _header(sheet: Worksheet, headers: Sequence[str]) -> None:
    """A bold, frozen first row, columns wide enough for their titles."""
    sheet.append(list(headers))
    for index, title in enumerate(headers, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        sheet.column_dimensions[get_column_letter(index)].width = min(40, max(10, len(title) + 2))
    sheet.freeze_panes = "A2"


def _row(sheet: Worksheet, values: Sequence[Any], formats: Sequence[str | None]) -> None:
    # Cells styled before appending: looking the row up afterwards scans the sheet, slow for many shards.
    cells = []
    for value, number_format in zip(values, formats, strict=True):
        cell = Cell(sheet, value=value)
        if number_format:
            cell.number_format = number_format
        cells.append(cell)
    sheet.append(cells)


def _expanded(column: Column) -> list[tuple[str, str | None]]:
    """Workbook headers and formats of one column: three for a spread (median, low, high)."""
    number_format = FORMATS.get(column.kind)
    if not column.spread:
        return [(column.header, number_format)]
    return [
        (f"{column.header} (median)", number_format),
        (f"{column.header} low", number_format),
        (f"{column.header} high", number_format),
    ]


def _values(value: Any) -> list[Any]:
    if isinstance(value, Spread):
        return [value.median, value.low, value.high]
    return [value]


def _region(sheet: Worksheet, results: BenchmarkResults, table: list[Column], rows: list) -> None:
    expanded = [entry for column in table for entry in _expanded(column)]
    _header(sheet, [header for header, _ in expanded])
    formats = [number_format for _, number_format in expanded]
    for summary in rows:
        values: list[Any] = []
        for column in table:
            value = column.value(summary)
            # A figure that is absent (no tool rate) still fills its three columns, with blanks.
            values += _values(value) if value is not None or not column.spread else [None] * 3
        _row(sheet, values, formats)
    sheet.auto_filter.ref = sheet.dimensions


def _instant(epoch_ms: int | None) -> datetime | None:
    # Excel has no time zones: naive UTC, as the run report's workbook does.
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    """An aware datetime as naive UTC; a naive one is taken to be UTC already."""
    return instant if instant.tzinfo is None else instant.astimezone(UTC).replace(tzinfo=None)


def _shards(sheet: Worksheet, shards: list[ShardResult]) -> None:
    metrics = sorted({name for shard in shards for name in shard.metrics})
    headers = ["tool", "configuration", "target", "repeat", "shard", "job id", "status", "start (UTC)"]
    headers += ["stop (UTC)", "seconds", "work", *metrics, "output directory"]
    _header(sheet, headers)
    formats: list[str | None] = [None, None, None, "0", "0", None, None, INSTANT, INSTANT, "#,##0.000", "#,##0"]
    formats += ["General"] * len(metrics) + [None]
    ordered = sorted(shards, key=lambda s: (s.tool, s.configuration, s.target, s.repeat, s.shard))
    for s in ordered:
        values = [s.tool, s.configuration, s.target, s.repeat, s.shard, s.job_id, s.status]
        values += [_instant(s.start_ms), _instant(s.stop_ms), s.seconds, s.work]
        values += [s.metrics.get(name) for name in metrics] + [s.output_dir]
        _row(sheet, values, formats)
    for letter in ("H", "I"):
        sheet.column_dimensions[letter].width = 20
    sheet.auto_filter.ref = sheet.dimensions


def _first(difference: Difference | None) -> str | None:
    return "\n".join(f"- {ours}\n+ {theirs}" for ours, theirs in difference.first) if difference else None


def _counts(difference: Difference | None) -> list[int | None]:
    if difference is None:
        return [None] * 3
    return [difference.differing_records, difference.only_in_reference, difference.only_in_target]


def _equivalence(sheet: Worksheet, results: BenchmarkResults) -> None:
    # Two levels side by side: identical records (provenance lines removed), then the same calls
    # (VCF/BCF records equal as content); the second level's cells are blank for other outputs.
    headers = ["tool", "output", "compared", "identical on all targets", "same calls on all targets"]
    headers += ["reference target", "target", "verdict", "records", "differing records", "only in reference"]
    headers += ["only in target", "first differences", "sha256", "calls verdict", "calls", "differing calls"]
    headers += ["calls only in reference", "calls only in target", "first differing calls", "genotype phase"]
    _header(sheet, headers)
    formats = [None] * 8 + ["#,##0"] * 4 + [None, None, None] + ["#,##0"] * 4 + [None, None]
    for result, verdicts in all_verdicts(results):
        calls = result.calls
        same_calls = None if calls is None else ("yes" if calls.same else "no")
        phase = None if calls is None else ("ignored" if calls.phase_ignored else "compared")
        for v in verdicts:
            values = [v.tool, v.output, result.comparison, "yes" if result.identical else "no", same_calls]
            values += [result.reference_target, v.target, v.verdict, v.records, *_counts(v.difference)]
            values += [_first(v.difference), v.digest, v.calls_verdict, v.calls, *_counts(v.calls_difference)]
            values += [_first(v.calls_difference), phase]
            _row(sheet, values, formats)
    for letter in ("M", "T"):
        sheet.column_dimensions[letter].width = 80
    sheet.column_dimensions["C"].width = 40
    for row in sheet.iter_rows(min_row=2):
        for cell in (row[2], row[12], row[19]):
            cell.alignment = WRAP


def _about(sheet: Worksheet, results: BenchmarkResults, scale: UnitScale) -> None:
    _header(sheet, ["item", "value"])
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 110
    r = results.recommendation
    rows: list[tuple[str, Any]] = [
        ("plan", results.plan_name),
        ("run id", results.run_id),
        ("created (UTC)", _naive(results.created)),
        ("workload", results.workload_name),
        (f"workload units [{results.work_unit}]", results.workload_units),
        ("per-unit columns are per", scale.label),
        ("overhead per instance run [s]", results.overhead_s),
        ("recommendation: workloads", r.workloads),
        ("recommendation: deadline [h]", r.deadline_h),
        ("recommendation: budget [$]", r.budget_usd),
        ("cheapest within deadline", r.cheapest_within_deadline or "none"),
        ("fastest within budget", r.fastest_within_budget or "none"),
    ]
    rows += [("recommendation", line) for line in r.explanation]
    rows += [(f"method: {heading}", text) for heading, text in method(results, scale)]
    for item, value in rows:
        _row(sheet, [item, value], [None, INSTANT if isinstance(value, datetime) else None])
    for row in sheet.iter_rows(min_row=2, min_col=2, max_col=2):
        row[0].alignment = WRAP


def write_workbook(results: BenchmarkResults, scale: UnitScale, path: Path) -> Path:
    """Write ``benchmark.xlsx`` and return its path."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new Workbook always has one sheet
    book.remove(first)
    taken = {name.lower() for name in FIXED_SHEETS}
    table = columns(results, scale)
    regions = by_region(results) or {"results": []}  # an empty benchmark still gets its header row
    for region, rows in regions.items():
        _region(book.create_sheet(sheet_name(region, taken)), results, table, rows)
    _shards(book.create_sheet("Shards"), results.shards)
    _equivalence(book.create_sheet("Equivalence"), results)
    _about(book.create_sheet("About"), results, scale)
    book.save(path)
    return path
