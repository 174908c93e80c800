"""The benchmark report's charts: run time, throughput and cost per workload, one bar per tool x target.

Drawn with matplotlib's object API (``Figure``, rendered through Agg) rather than pyplot, whose global
state and GUI backend selection a report writer must not touch. Bars are in the table's order
(cheapest per workload at the top), coloured by tool; whiskers span low to high over the repeats.
PNG metadata omits the software version so the same data gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter, FuncFormatter

from genobatch.benchmark.report_table import known, purchase_label
from genobatch.benchmark.results import BenchmarkResults, Spread, TargetSummary
from genobatch.report.units import money

DPI = 110


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _row_label(summary: TargetSummary, regions: int) -> str:
    target = summary.target
    where = f"{target.instance_type} {purchase_label(target)}" + (f", {target.region}" if regions > 1 else "")
    return f"{summary.tool}/{summary.configuration} @ {target.name} ({where})"


def tool_colours(rows: list[TargetSummary]) -> dict[str, str]:
    """A stable colour per tool: tools in alphabetical order through the tab10 palette."""
    palette = colormaps["tab10"].colors
    tools = sorted({s.tool for s in rows})
    return {tool: to_hex(palette[i % len(palette)]) for i, tool in enumerate(tools)}


def _figure(rows: list[TargetSummary], columns: int = 1) -> Figure:
    return Figure(figsize=(10 if columns == 1 else 12, 1.6 + 0.42 * max(1, len(rows))), layout="constrained")


def _error(spreads: list[Spread]) -> list[list[float]]:
    """``xerr`` for bars at the median: distances down to low and up to high, never negative."""
    return [[max(0.0, s.median - s.low) for s in spreads], [max(0.0, s.high - s.median) for s in spreads]]


def _bars(
    axes: Axes,
    rows: list[TargetSummary],
    spread: Callable[[TargetSummary], Spread | None],
    colours: dict[str, str],
) -> None:
    """Horizontal bars at the median with low-high whiskers; a row without the figure shows "n/a"."""
    present = [(i, s, value) for i, s in enumerate(rows) if (value := known(spread(s))) is not None]
    if present:
        axes.barh(
            [i for i, _, _ in present],
            [v.median for _, _, v in present],
            xerr=_error([v for _, _, v in present]),
            color=[colours[s.tool] for _, s, _ in present],
            error_kw={"ecolor": "#333", "capsize": 3, "linewidth": 1},
            height=0.6,
        )
    for i in sorted(set(range(len(rows))) - {i for i, _, _ in present}):
        axes.text(0, i, " n/a", va="center", ha="left", color="#666", fontsize=8)
    axes.set_ylim(len(rows) - 0.5, -0.5)  # first row (cheapest) at the top, as in the table
    axes.grid(axis="x", color="#e5e7eb")
    axes.set_axisbelow(True)
    axes.xaxis.set_major_formatter(EngFormatter(sep=" "))


def _finish(figure: Figure, axes: Axes, rows: list[TargetSummary], colours: dict[str, str], title: str) -> bytes:
    regions = len({s.target.region for s in rows})
    axes.set_yticks(range(len(rows)), [_row_label(s, regions) for s in rows], fontsize=8)
    legend = [Patch(color=colour, label=tool) for tool, colour in colours.items()]
    # Below the axes: above them it would collide with the title.
    figure.legend(handles=legend, loc="outside lower center", ncol=max(1, len(legend)), frameon=False, fontsize=8)
    figure.suptitle(title, fontsize=11)
    return _png(figure)


def _empty(title: str) -> bytes:
    figure = Figure(figsize=(10, 2), layout="constrained")
    axes = figure.add_subplot()
    axes.text(0.5, 0.5, "No results.", ha="center", va="center", color="#666")
    axes.set_axis_off()
    figure.suptitle(title, fontsize=11)
    return _png(figure)


def runtime_chart(results: BenchmarkResults, rows: list[TargetSummary]) -> bytes:
    """``runtime_per_workload.png``: hours per workload, median with the range over repeats."""
    title = f"Run time per {results.workload_name} (median; whiskers: range over repeats)"
    if not rows:
        return _empty(title)
    figure = _figure(rows)
    axes = figure.add_subplot()
    colours = tool_colours(rows)
    _bars(axes, rows, lambda s: s.runtime_per_workload_h, colours)
    axes.set_xlabel(f"hours per {results.workload_name}")
    return _finish(figure, axes, rows, colours, title)


def cost_chart(results: BenchmarkResults, rows: list[TargetSummary]) -> bytes:
    """``cost_per_workload.png``: dollars per workload, median with the range over repeats."""
    title = f"Cost per {results.workload_name} (median; whiskers: range over repeats)"
    if not rows:
        return _empty(title)
    figure = _figure(rows)
    axes = figure.add_subplot()
    colours = tool_colours(rows)
    _bars(axes, rows, lambda s: s.cost_per_workload, colours)
    # Dollars as dollars: the engineering formatter would label $0.10 "100 m".
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: money(value)))
    axes.set_xlabel(f"USD per {results.workload_name}")
    return _finish(figure, axes, rows, colours, title)


def throughput_chart(results: BenchmarkResults, rows: list[TargetSummary]) -> bytes:
    """``throughput.png``: measured (work ÷ wall clock) and tool-reported rates, side by side.

    Two panels, not two bars on one axis: the tool's rate is often in another unit (samples/s against
    bytes/s) and always on another clock (it excludes model loading), so one scale would mislead.
    """
    title = "Throughput: measured (work ÷ instance run time) and tool-reported (tool's own clock)"
    if not rows:
        return _empty(title)
    figure = _figure(rows, columns=2)
    measured, reported = figure.subplots(1, 2, sharey=True)
    colours = tool_colours(rows)
    _bars(measured, rows, lambda s: s.throughput_measured, colours)
    measured.set_title("measured", fontsize=10)
    measured.set_xlabel(f"{results.work_unit}/s")
    _bars(reported, rows, lambda s: s.throughput_tool, colours)
    reported.set_title("tool-reported", fontsize=10)
    units = {s.tool_rate_unit for s in rows if s.throughput_tool is not None}
    if len(units) == 1:
        reported.set_xlabel(units.pop() or "tool's unit")
    else:
        # Mixed units on one axis: each bar names its own.
        reported.set_xlabel("each bar in its tool's unit")
        for i, s in enumerate(rows):
            if (rate := known(s.throughput_tool)) is not None:
                # Past the whisker, so the label never sits on it.
                reported.text(rate.high, i, f"  {s.tool_rate_unit}", va="center", fontsize=7)
    return _finish(figure, measured, rows, colours, title)
