"""The report's charts, drawn with matplotlib and kept as SVG (inlined in the page) and PNG (files).

Figures are built with the object API (``Figure``, no pyplot): pyplot keeps global state and picks
a GUI backend, neither of which a server rendering reports wants; ``Figure.savefig`` renders through
Agg. Text is drawn as paths, so the SVG needs no font at all, and the hash salt and the dropped date
make the same data produce byte-identical files.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass

import matplotlib
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from genobatch.report.model import TraceRecord
from genobatch.report.rightsizing import by_definition
from genobatch.report.summary import run_span

WAITING = "#c7ccd4"
RUNNING = {"ok": "#2e8b57", "failed": "#d64541", "active": "#3b7dd8"}
OVER = "#d64541"
UNDER = "#3b7dd8"
#: Labels stop being legible past this many rows; the axis then just counts jobs.
MAX_LABELLED_JOBS = 60


@dataclass(frozen=True)
class Chart:
    """One chart in both formats."""

    name: str
    svg: str
    png: bytes


def _render(figure: Figure, name: str) -> Chart:
    """Both formats of a figure; deterministic so reports of the same data compare equal."""
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        svg = io.StringIO()
        figure.savefig(svg, format="svg", metadata={"Date": None})
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=110, metadata={"Software": None})
    return Chart(name=name, svg=svg.getvalue(), png=png.getvalue())


def _time_unit(span_ms: float) -> tuple[float, str]:
    """A divisor and label that keep the timeline's axis numbers small."""
    if span_ms <= 3 * 60_000:
        return 1000.0, "seconds"
    if span_ms <= 3 * 3_600_000:
        return 60_000.0, "minutes"
    return 3_600_000.0, "hours"


def _outcome(status: str) -> str:
    if status in ("COMPLETED", "SUCCEEDED", "CACHED"):
        return "ok"
    if status in ("FAILED", "ABORTED"):
        return "failed"
    return "active"


def _empty(figure: Figure, message: str) -> None:
    axes = figure.add_subplot()
    axes.text(0.5, 0.5, message, ha="center", va="center", color="#666")
    axes.set_axis_off()


def timeline_chart(trace: list[TraceRecord]) -> Chart:
    """One row per job: grey while waiting (submit or previous attempt's end to start), coloured running."""
    jobs: dict[str, list[TraceRecord]] = defaultdict(list)
    for record in trace:
        jobs[record.task_id].append(record)
    first, last = run_span(trace)
    rows = sorted(jobs.values(), key=lambda rs: (min(r.submit or 0 for r in rs), rs[0].task_id))
    height = min(30.0, 1.4 + 0.24 * len(rows))
    figure = Figure(figsize=(10, height), layout="constrained")
    if first is None or last is None:
        _empty(figure, "No attempt has been submitted.")
        return _render(figure, "timeline")
    divisor, unit = _time_unit(max(1, last - first))
    axes = figure.add_subplot()
    bars: dict[str, tuple[list[float], list[float], list[int]]] = defaultdict(lambda: ([], [], []))
    for row, attempts in enumerate(rows):
        previous_end = None
        for record in sorted(attempts, key=lambda r: r.attempt):
            # A retry waits from the previous attempt's end, not from the job's original submit.
            wait_from = previous_end if previous_end is not None else record.submit
            run_to = record.complete if record.complete is not None else last
            if wait_from is not None:
                wait_to = record.start if record.start is not None else run_to
                lefts, widths, ys = bars["waiting"]
                lefts.append((wait_from - first) / divisor)
                widths.append(max(0, wait_to - wait_from) / divisor)
                ys.append(row)
            if record.start is not None:
                lefts, widths, ys = bars[_outcome(record.status)]
                lefts.append((record.start - first) / divisor)
                widths.append(max(0, run_to - record.start) / divisor)
                ys.append(row)
            previous_end = run_to
    # Rows thinner than a few pixels read better touching than striped by the gap between them.
    half = 0.35 if len(rows) <= MAX_LABELLED_JOBS else 0.5
    for key, (lefts, widths, ys) in bars.items():
        colour = WAITING if key == "waiting" else RUNNING[key]
        # One collection per colour rather than barh's one patch per bar: thousands of jobs stay fast.
        boxes = [
            [(x, y - half), (x + w, y - half), (x + w, y + half), (x, y + half)]
            for x, w, y in zip(lefts, widths, ys, strict=True)
        ]
        axes.add_collection(PolyCollection(boxes, facecolors=colour, linewidths=0), autolim=False)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    if len(rows) <= MAX_LABELLED_JOBS:
        axes.set_yticks(range(len(rows)), [_label(rs) for rs in rows], fontsize=8)
    else:
        axes.set_yticks([])
        axes.set_ylabel(f"{len(rows)} jobs, in submission order")
    axes.set_xlim(0, (last - first) / divisor * 1.02)
    axes.set_xlabel(f"{unit} since the first submission")
    axes.grid(axis="x", color="#e5e7eb")
    axes.set_axisbelow(True)
    legend = [Patch(color=WAITING, label="waiting (submit → start)")]
    legend += [
        Patch(color=RUNNING["ok"], label="running, succeeded"),
        Patch(color=RUNNING["failed"], label="running, failed"),
    ]
    if "active" in bars:
        legend.append(Patch(color=RUNNING["active"], label="running, not finished"))
    axes.legend(
        handles=legend, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(legend), frameon=False, fontsize=8
    )
    return _render(figure, "timeline")


def _label(attempts: list[TraceRecord]) -> str:
    name = attempts[0].name
    return name if len(name) <= 40 else name[:39] + "…"


def _jitter(index: int) -> float:
    """A deterministic spread (golden-ratio sequence) so points do not stack, without randomness."""
    return ((index * 0.6180339887) % 1.0 - 0.5) * 0.4


def _strip(axes: Axes, groups: list[list[float]], names: list[str], title: str) -> None:
    """Horizontal box plot per definition with every attempt as a point; 100% marks the request."""
    axes.axvline(100, color="#555", linewidth=1, linestyle="--", zorder=1)
    filled = [(i, values) for i, values in enumerate(groups) if values]
    if filled:
        axes.boxplot(
            [values for _, values in filled],
            positions=[i for i, _ in filled],
            orientation="horizontal",
            widths=0.55,
            showfliers=False,
            medianprops={"color": "#111"},
            boxprops={"color": "#777"},
            whiskerprops={"color": "#777"},
            capprops={"color": "#777"},
        )
    for i, values in filled:
        ys = [i + _jitter(n) for n in range(len(values))]
        colours = [OVER if v > 100 else UNDER for v in values]
        axes.scatter(values, ys, s=16, c=colours, alpha=0.8, zorder=3, linewidths=0)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_ylim(len(names) - 0.5, -0.5)
    # Always show the request line with room to its right, so points over it stand out.
    highest = max((v for values in groups for v in values), default=0.0)
    axes.set_xlim(0, max(110.0, highest * 1.08))
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("% of request (dashed line: the request)")
    axes.grid(axis="x", color="#e5e7eb")
    axes.set_axisbelow(True)


def resources_chart(trace: list[TraceRecord]) -> Chart:
    """CPU and peak memory used as a percentage of the request, per job definition."""
    groups = by_definition(trace)
    height = min(20.0, 1.6 + 0.55 * len(groups))
    figure = Figure(figsize=(10, height), layout="constrained")
    if not groups:
        _empty(figure, "No attempts.")
        return _render(figure, "resources")
    names = list(groups)
    cpu = [[v for r in rs if (v := r.cpu_pct_of_request) is not None] for rs in groups.values()]
    memory = [[v for r in rs if (v := r.memory_pct_of_request) is not None] for rs in groups.values()]
    cpu_axes, memory_axes = figure.subplots(1, 2, sharey=True)
    _strip(cpu_axes, cpu, names, "CPU used (%cpu ÷ vCPUs requested)")
    _strip(memory_axes, memory, names, "Peak memory (peak_rss ÷ memory requested)")
    return _render(figure, "resources")
