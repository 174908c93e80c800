"""``report.xlsx``: the report's tables as a workbook, numbers stored as numbers with display formats.

Sheets: Summary, Results (what the jobs published, per sample), Errors (failed jobs), Trace, Cost per
sample, Right-sizing, Billed cost. Money columns get as many decimals as their smallest non-zero amount
needs (per-job costs are fractions of a cent), fractions a percentage format, and columns widths that
fit their content. Totals are written as values, not
formulas, so a reader without a calculation engine (openpyxl, pandas) sees the same numbers as Excel.
Instants are naive datetimes in UTC (Excel has no time zones); durations stay milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from genobatch.report import units
from genobatch.report.columns import TRACE_COLUMNS
from genobatch.report.model import RunData
from genobatch.report.results import metric_label
from genobatch.report.rightsizing import Advice
from genobatch.report.summary import RunSummary

USD = '"$"#,##0.00'
USD_FINE = '"$"#,##0.0000'
INTEGER = "#,##0"
DECIMAL = "#,##0.00"
PERCENT = "0.0%"
FRACTION = "0.00%"
MAX_WIDTH = 60
INSTANT = "yyyy-mm-dd hh:mm:ss"
FORMATS = {"int": "0", "ms": INTEGER, "bytes": INTEGER, "pct": "0.0", "usd": USD_FINE, "time": INSTANT}
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="F0F2F5")
TOTAL_FONT = Font(bold=True)


def _naive_utc(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else units.utc(epoch_ms).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    """An aware datetime as naive UTC; a naive one is taken to be UTC already."""
    return instant if instant.tzinfo is None else instant.astimezone(UTC).replace(tzinfo=None)


def _header(sheet: Worksheet, headers: list[str], widths: list[int] | None = None) -> None:
    """A bold, frozen header row with reasonable column widths."""
    sheet.append(headers)
    for index, title in enumerate(headers, start=1):
        cell = sheet.cell(row=sheet.max_row, column=index)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        width = widths[index - 1] if widths else max(10, len(title) + 2)
        sheet.column_dimensions[get_column_letter(index)].width = width
    # A coordinate, not sheet.cell(): touching a cell below would make the next append skip a row.
    sheet.freeze_panes = f"A{sheet.max_row + 1}"


def _fit(sheet: Worksheet, rows: list[list[Any]], minimum: int = 8) -> None:
    """Column widths that fit the longest value (header included), at most MAX_WIDTH characters."""
    widths: dict[int, int] = {}
    for row in rows:
        for index, value in enumerate(row, start=1):
            if value is None:
                continue
            text = f"{value:,.6g}" if isinstance(value, float) else str(value)
            longest = max((len(line) for line in text.splitlines()), default=0)
            widths[index] = max(widths.get(index, minimum), min(MAX_WIDTH, longest + 2))
    for index, width in widths.items():
        sheet.column_dimensions[get_column_letter(index)].width = width


def _row(sheet: Worksheet, values: list[Any], formats: list[str | None], bold: bool = False) -> None:
    """Append one row, each cell with its number format.

    Cells are styled before they are appended: looking the row up afterwards (``sheet.max_row``) scans
    every cell of the sheet, which makes a trace of a few thousand attempts take minutes.
    """
    cells = []
    for value, number_format in zip(values, formats, strict=True):
        cell = Cell(sheet, value=value)
        if number_format:
            cell.number_format = number_format
        if bold:
            cell.font = TOTAL_FONT
        cells.append(cell)
    sheet.append(cells)


def _summary(sheet: Worksheet, run: RunData, summary: RunSummary, advice: list[Advice]) -> None:
    _header(sheet, ["Item", "Value"], [28, 44])
    info = run.info
    savings = [a.saving for a in advice if a.saving is not None]
    usd = units.money_format(
        [summary.attributed_cost, summary.billed_cost, summary.cost_per_sample or 0.0, sum(savings)]
    )
    rows: list[tuple[str, Any, str | None]] = [
        ("Run id", info.run_id, None),
        ("Title", info.title, None),
        ("Created (UTC)", _naive(info.created), INSTANT),
        ("Region", info.region, None),
        ("Pricing source", info.pricing_source, None),
        ("Pricing date", info.pricing_date, None),
    ]
    rows += [("Estimated price", estimate, None) for estimate in info.pricing_estimates]
    rows += [
        ("Jobs", summary.jobs, INTEGER),
    ]
    rows += [(f"Jobs {state}", count, INTEGER) for state, count in summary.jobs_by_state.items()]
    rows += [
        ("Attempts", summary.attempts, INTEGER),
        ("Retried jobs", summary.retried_jobs, INTEGER),
        ("First submit (UTC)", _naive_utc(summary.first_submit), INSTANT),
        # A timedelta is stored as Excel's fraction of a day; [h] keeps counting past 24 hours.
        (
            "Wall time",
            None if summary.wall_time_ms is None else timedelta(milliseconds=summary.wall_time_ms),
            "[h]:mm:ss",
        ),
        ("Attributed cost", summary.attributed_cost, usd),
        ("Billed cost", summary.billed_cost, usd),
        ("Instance hours", summary.instance_seconds / 3600, DECIMAL),
        ("Utilisation (attributed / billed)", summary.utilisation, PERCENT),
        ("Samples", summary.samples, INTEGER),
        ("Sample cost total", summary.sample_cost_total, usd),
        ("Cost per sample", summary.cost_per_sample, usd),
        ("vCPU hours requested", summary.cpu_hours_requested, DECIMAL),
        ("CPU hours used", summary.cpu_hours_used, DECIMAL),
        ("Estimated saving from right-sizing", sum(savings) if savings else None, usd),
    ]
    for label, value, number_format in rows:
        _row(sheet, [label, value], [None, number_format])
    sheet.append([])
    _row(sheet, ["Cost by category", "Cost USD", "Share", "Per sample"], [None] * 4, bold=True)
    for category in summary.categories:
        _row(
            sheet,
            [category.name, category.cost, category.share, category.per_sample],
            [None, usd, PERCENT, usd],
        )


def _trace(sheet: Worksheet, run: RunData) -> None:
    headers = [c.header for c in TRACE_COLUMNS]
    _header(sheet, headers)
    usd = units.money_format([r.attributed_cost for r in run.trace])
    formats = [usd if c.kind == "usd" else FORMATS.get(c.kind) for c in TRACE_COLUMNS]
    written: list[list[Any]] = [headers]
    for record in run.trace:
        values = []
        for column in TRACE_COLUMNS:
            value = column.value(record)
            values.append(_naive_utc(value) if column.kind == "time" else value)
        _row(sheet, values, formats)
        written.append(values)
    _fit(sheet, written)
    for index, column in enumerate(TRACE_COLUMNS, start=1):
        if column.kind == "time":
            sheet.column_dimensions[get_column_letter(index)].width = 20
    sheet.auto_filter.ref = sheet.dimensions


def _samples(sheet: Worksheet, run: RunData, summary: RunSummary) -> None:
    _header(sheet, ["Sample", "Compute", "Storage", "Transfer", "Total"], [24, 14, 14, 14, 14])
    amounts = [v for row in run.samples for v in (row.compute, row.storage, row.transfer)]
    formats = [None, *[units.money_format(amounts)] * 4]
    for row in run.samples:
        _row(sheet, [row.sample, row.compute, row.storage, row.transfer, row.total], formats)
    totals = [category.cost for category in summary.categories]
    _row(sheet, ["Total", *totals, summary.sample_cost_total], formats, bold=True)
    sheet.append([])
    sheet.append([run.sample_cost_basis])


def _results(sheet: Worksheet, run: RunData) -> None:
    results = run.results
    if results is None:
        sheet.append(["Results were not collected for this report."])
        return
    headers = ["Sample", "Status", "Jobs done", "Jobs", *[metric_label(m) for m in results.metrics], "Failure"]
    _header(sheet, headers)
    number_formats = {"fraction": FRACTION, "x": '0.0"x"'}
    formats = [
        None,
        None,
        INTEGER,
        INTEGER,
        *[number_formats.get(results.units.get(m, ""), "General") for m in results.metrics],
        None,
    ]
    written: list[list[Any]] = [headers]
    for sample in results.samples:
        values = [
            sample.sample,
            sample.status,
            sample.jobs_done,
            sample.jobs,
            *[sample.metrics.get(m) for m in results.metrics],
            "; ".join(sample.failures) or None,
        ]
        _row(sheet, values, formats)
        written.append(values)
    _fit(sheet, written, minimum=10)
    sheet.auto_filter.ref = sheet.dimensions
    sheet.append([])
    for method in results.methods:
        sheet.append([f"Method: {method}"])
    for problem in results.problems:
        sheet.append([f"Unreadable results line: {problem}"])


def _errors(sheet: Worksheet, run: RunData) -> None:
    if run.results is None:
        sheet.append(["Failed jobs were not collected for this report."])
        return
    headers = ["Job id", "Job", "Sample", "Attempts", "Exit code", "Reason", "Log tail"]
    _header(sheet, headers, [38, 28, 12, 10, 10, 50, 100])
    wrap = Alignment(wrap_text=True, vertical="top")
    for error in run.results.errors:
        values = [error.job_id, error.name, error.sample, error.attempts, error.exit_code, error.reason, error.log_tail]
        cells = []
        for value in values:
            cell = Cell(sheet, value=value)
            cell.alignment = wrap
            cells.append(cell)
        sheet.append(cells)
    if not run.results.errors:
        sheet.append(["No job failed."])


def _right_sizing(sheet: Worksheet, run: RunData, advice: list[Advice]) -> None:
    headers = [
        "Job definition",
        "Attempts",
        "vCPUs requested (max)",
        "Peak CPUs",
        "Recommended vCPUs",
        "Memory requested MiB (max)",
        "Peak memory MiB",
        "Recommended memory MiB",
        "Attempts over memory",
        "Attributed cost",
        "Estimated cost right-sized",
        "Saving",
        "Saving, share of run",
        "Advice",
    ]
    _header(sheet, headers, [22, 10, 12, 11, 14, 16, 14, 16, 12, 14, 16, 12, 12, 70])
    usd = units.money_format([a.attributed_cost for a in advice] + [abs(a.saving or 0) for a in advice])
    formats = [None, INTEGER, INTEGER, DECIMAL, INTEGER, INTEGER, INTEGER, INTEGER, INTEGER, usd, usd, usd, PERCENT]
    run_cost = sum(a.attributed_cost for a in advice)
    for a in advice:
        values = [
            a.job_definition,
            a.attempts,
            a.requested_cpus[1],
            a.peak_cpus,
            a.recommended_cpus,
            a.requested_memory_mib[1],
            a.peak_memory_mib,
            a.recommended_memory_mib,
            a.over_memory_attempts,
            a.attributed_cost,
            a.estimated_cost,
            a.saving,
            a.share_of(run_cost),
            a.note,
        ]
        _row(sheet, values, [*formats, None])
    policy = run.policy
    sheet.append([])
    sheet.append(
        [
            f"vCPUs = ceil(peak CPUs x {policy.cpu_headroom}), not above the request when the peak is within it; "
            f"memory = peak RSS x {policy.memory_headroom} "
            f"rounded up to {policy.memory_step_mib} MiB. Saving: cost x new / old share of the instance (the "
            f"largest of vCPU, memory, GPU fractions); where the instance shape is unknown, "
            f"{policy.cpu_cost_share:.0%} of cost is taken to follow vCPUs and the rest memory. Negative: the advised "
            "request costs more. Share of run: the saving over the whole run's attributed cost (not the definition's "
            "own, where a cheap definition growing from 1 to 2 vCPUs reads -100%)."
        ]
    )


def _billed(sheet: Worksheet, run: RunData) -> None:
    _header(sheet, ["Compute environment", "Instance type", "Instance seconds", "Billed cost"], [26, 16, 16, 14])
    formats = [None, None, INTEGER, units.money_format([b.billed_cost for b in run.billed])]
    for b in run.billed:
        _row(sheet, [b.compute_environment, b.instance_type, b.instance_seconds, b.billed_cost], formats)
    total_seconds = sum(b.instance_seconds for b in run.billed)
    _row(sheet, ["Total", None, total_seconds, sum(b.billed_cost for b in run.billed)], formats, bold=True)


def write_workbook(run: RunData, summary: RunSummary, advice: list[Advice], path: Path) -> Path:
    """Write ``report.xlsx`` and return its path."""
    book = Workbook()
    summary_sheet = book.active
    assert summary_sheet is not None  # a new Workbook always has one sheet
    summary_sheet.title = "Summary"
    _summary(summary_sheet, run, summary, advice)
    _results(book.create_sheet("Results"), run)
    _errors(book.create_sheet("Errors"), run)
    _trace(book.create_sheet("Trace"), run)
    _samples(book.create_sheet("Cost per sample"), run, summary)
    _right_sizing(book.create_sheet("Right-sizing"), run, advice)
    _billed(book.create_sheet("Billed cost"), run)
    book.save(path)
    return path
