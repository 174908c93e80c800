"""The Benchmarks page: every ``genobatch bench run``, live while it runs.

A benchmark's instance runs are ordinary jobs tagged by the runner (``genobatch:bench`` with the
run id, and the tool, configuration, target and repeat), so their progress, time and attributed
cost come from the store and the run summary while the run is going. Once the runner has written
its results (``run.json`` and ``shards.json`` in the run directory), the benchmark report's own
table (:mod:`genobatch.benchmark.report_table`) is shown for it, with the same columns as the report.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

from genobatch.console.runs import BENCH_TAG, catalog_for
from genobatch.engine import Engine, now_ms
from genobatch.run import Selector, summarize
from genobatch.store import jobs as job_rows
from genobatch.store.schema import tags as tags_table

PART_TAGS = ("genobatch:bench-tool", "genobatch:bench-configuration", "genobatch:bench-target")
FINAL = ("SUCCEEDED", "FAILED")


def _run_ids(conn) -> list[str]:
    from sqlalchemy import select

    query = select(tags_table.c.value).where(tags_table.c.key == BENCH_TAG).distinct()
    return sorted(conn.execute(query).scalars(), reverse=True)


def _instance_runs(rows: list[dict], cost_by_job: dict[str, float]) -> list[dict]:
    """One line per tool x configuration x target: instance runs done, wall time, cost so far."""
    groups: dict[tuple, dict] = defaultdict(lambda: {"runs": 0, "done": 0, "failed": 0, "wall_ms": [], "usd": 0.0})
    children: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["parent_id"]:
            children[row["parent_id"]].append(row)
    for row in rows:
        if row["parent_id"]:
            continue
        tags = (row["spec"] or {}).get("tags", {})
        group = groups[tuple(tags.get(tag, "?") for tag in PART_TAGS)]
        group["runs"] += 1
        members = children.get(row["id"]) or [row]
        group["usd"] += sum(cost_by_job.get(member["id"], 0.0) for member in members)
        if row["status"] in FINAL:
            group["done"] += 1
            group["failed"] += row["status"] == "FAILED"
            starts = [m["state"].get("started_at") for m in members if m["state"].get("started_at")]
            stops = [m["state"].get("stopped_at") for m in members if m["state"].get("stopped_at")]
            if starts and stops:
                group["wall_ms"].append(max(stops) - min(starts))
    lines = []
    for (tool, configuration, target), group in sorted(groups.items()):
        walls = sorted(group.pop("wall_ms"))
        median = walls[len(walls) // 2] if walls else None
        lines.append({"tool": tool, "configuration": configuration, "target": target, "median_ms": median, **group})
    return lines


def _run_directory(rows: list[dict]) -> Path | None:
    """The run directory the runner saves results in (the ``run`` parameter is 4 levels below it)."""
    for row in rows:
        run = ((row["spec"] or {}).get("parameters") or {}).get("run")
        if run:
            return Path(run).parents[3] if len(Path(run).parents) > 3 else None
    return None


def _report_table(directory: Path | None) -> dict | None:
    """The benchmark report's table when the runner has saved its results; None until then."""
    if directory is None or not (directory / "shards.json").exists():
        return None
    from genobatch.benchmark.analysis import analyse
    from genobatch.benchmark.report_table import columns, sorted_summaries, unit_scale

    with contextlib.suppress(Exception):  # a half-written or foreign directory: show the live view only
        results = analyse(directory)
        scale = unit_scale(results)
        cols = columns(results, scale)
        rows = []
        for summary in sorted_summaries(results.summaries):
            rows.append([_cell(column, summary) for column in cols])
        return {"headers": [column.header for column in cols], "rows": rows, "directory": str(directory)}
    return None


def _cell(column, summary) -> str:
    value = column.value(summary)
    if value is None:
        return "–"
    median = getattr(value, "median", value)
    return f"{median:.4g}" if isinstance(median, float) else str(median)


def benchmark_runs(engine: Engine) -> list[dict]:
    """Every benchmark run, newest id first, with its live progress and (when saved) its report table."""
    inventory = engine.backend.inventory()
    host = (len(inventory.cpus), inventory.memory_mib, len(inventory.gpus))
    found = []
    with engine.database.connect() as conn:
        for run_id in _run_ids(conn):
            selector = Selector(tag_key=BENCH_TAG, tag_value=run_id)
            rows = job_rows.rows_for_tag(conn, BENCH_TAG, run_id)
            try:
                summary = summarize(
                    conn, selector, catalog_for(engine.settings.data_dir), engine.settings.region, host, now_ms()
                )
            except (LookupError, ValueError):
                summary = {
                    "progress": {"jobs": {}, "total": 0},
                    "cost": {"byJob": {}, "attributedUsd": 0.0, "billedUsd": 0.0},
                }
            found.append(
                {
                    "id": run_id,
                    "progress": summary["progress"],
                    "attributed": summary["cost"]["attributedUsd"],
                    "billed": summary["cost"]["billedUsd"],
                    "lines": _instance_runs(rows, summary["cost"]["byJob"]),
                    "report": _report_table(_run_directory(rows)),
                }
            )
    return found
