"""The Runs pages: groups of jobs sharing a tag (a demo run, a workflow execution, a benchmark).

A run's page is built from the same pieces as the run report, so the two cannot disagree: the
run summary (:func:`genobatch.run.summarize`: progress, trace, attributed and billed cost), the
report's data model (:class:`~genobatch.report.RunData`), its right-sizing advice and totals, and
the published results and failed jobs (:mod:`genobatch.report.results`). What only the console
adds is the timeline data, with each wait split into waiting for dependencies and waiting for
capacity.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, func, select

from genobatch.cost.catalog import Catalog
from genobatch.engine import Engine, now_ms
from genobatch.report import ComputeEnvironmentCost, RightSizingPolicy, RunData, RunInfo, TraceRecord
from genobatch.report.rightsizing import advise
from genobatch.report.summary import summarise
from genobatch.run import RUN_TAG, Selector, price_catalog, summarize
from genobatch.store import jobs as job_rows
from genobatch.store.schema import tags as tags_table

EXECUTION_TAG = "genobatch:execution"
BENCH_TAG = "genobatch:bench"
#: Tags that name a run, and what the console calls each kind.
RUN_KINDS = {RUN_TAG: "run", EXECUTION_TAG: "workflow execution", BENCH_TAG: "benchmark"}
STATUS_ORDER = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class RunRef:
    """A run as listed: its tag and how many top-level jobs carry it."""

    key: str
    value: str
    jobs: int

    @property
    def kind(self) -> str:
        return RUN_KINDS.get(self.key, self.key)


def list_runs(conn: Connection) -> list[RunRef]:
    """Every run-naming tag value on a job, most jobs first."""
    query = (
        select(tags_table.c.key, tags_table.c.value, func.count())
        .where(tags_table.c.key.in_(list(RUN_KINDS)), tags_table.c.resource_arn.like("%:job/%"))
        .group_by(tags_table.c.key, tags_table.c.value)
    )
    runs = [RunRef(key, value, count) for key, value, count in conn.execute(query)]
    return sorted(runs, key=lambda run: (run.key != RUN_TAG, run.value))


@cache
def _catalog(data_dir: Path) -> Catalog:
    return price_catalog(data_dir)


def stages(rows: list[dict]) -> list[dict]:
    """Jobs per status per job definition (array children counted, parents not), in submission order."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row["state"].get("summary") is not None:
            continue
        counts[row["definition_arn"].rsplit("/", 1)[-1].split(":")[0]][row["status"]] += 1
    result = []
    for name, counter in counts.items():
        total = sum(counter.values())
        done = counter["SUCCEEDED"] + counter["FAILED"]
        result.append({"stage": name, "counts": dict(counter), "total": total, "done": done})
    return result


def _dependency_ready(rows: list[dict]) -> dict[str, int | None]:
    """When each job's dependencies had all finished (epoch ms), None if it has none.

    A child waits for its own dependencies (N_TO_N, SEQUENTIAL) and for its parent's.
    """
    stopped = {row["id"]: row["state"].get("stopped_at") for row in rows}
    by_id = {row["id"]: row for row in rows}

    def dependencies(row: dict) -> list[str]:
        own = [dep[0] for dep in row["state"].get("depends_on") or []]
        own += [dep["jobId"] for dep in (row["spec"] or {}).get("dependsOn") or [] if row["parent_id"] is None]
        if row["parent_id"] in by_id:
            own += dependencies(by_id[row["parent_id"]])
        return own

    ready: dict[str, int | None] = {}
    for row in rows:
        ids = set(dependencies(row))
        times = [stopped.get(dep) for dep in ids]
        ready[row["id"]] = max((t for t in times if t is not None), default=None) if ids else None
    return ready


def timeline(rows: list[dict], trace: list[dict], now: int) -> dict:
    """One bar per attempt, with the wait before it split into dependencies and capacity.

    Compact (short keys, one list per attempt) because a run of thousands of jobs ships it whole.
    """
    ready = _dependency_ready(rows)
    previous_stop: dict[str, int] = {}
    bars = []
    for record in sorted(trace, key=lambda r: (r["task_id"], r["attempt"])):
        job = record["task_id"]
        submit = record["submit"]
        # A retry waits from the end of the attempt before it; a first attempt from its submission.
        queued = previous_stop.get(job, submit)
        deps = ready.get(job) if record["attempt"] == 1 else None
        capacity_from = max(queued, deps) if deps else queued
        start = record.get("start")
        end = record.get("complete")
        previous_stop[job] = end or now
        bars.append(
            {
                "id": job,
                "n": record["name"],
                "a": record["attempt"],
                "d": record["job_definition"].split(":")[0],
                "s": record["status"],
                "q": queued,
                "r": deps if deps and deps > queued else None,
                "c": capacity_from,
                "b": start,
                "e": end,
                "cpu": record.get("pct_cpu"),
                "cpus": record["cpus"],
                "rss": record.get("peak_rss"),
                "mem": record["memory"],
                "usd": record.get("attributed_cost", 0.0),
                "x": record.get("exit"),
            }
        )
    starts = [bar["q"] for bar in bars if bar["q"]]
    ends = [bar["e"] or now for bar in bars]
    return {"now": now, "t0": min(starts, default=now), "t1": max(ends, default=now), "bars": bars}


def run_data(selector: Selector, summary: dict, region: str) -> RunData:
    """The run report's data model for this run (as ``genobatch report`` builds it)."""
    billed = [
        ComputeEnvironmentCost(
            compute_environment=env["name"],
            instance_seconds=env["billedInstanceSeconds"],
            billed_cost=env["billedUsd"],
            instance_type=env["instanceType"] or "",
            instance_vcpus=env["instanceVcpus"],
            instance_memory_mib=env["instanceMemoryMib"],
            instance_gpus=env["instanceGpus"],
        )
        for env in summary["cost"]["computeEnvironments"]
    ]
    label = selector.tag_value or selector.queue or ""
    info = RunInfo(run_id=label, title=label, created=datetime.now(UTC), region=region)
    trace = [TraceRecord.from_mapping(record) for record in summary["trace"]]
    return RunData(info=info, trace=trace, billed=billed)


def run_page(engine: Engine, selector: Selector, with_results: bool = True) -> dict:
    """Everything a run's page shows; the live stream sends the parts that change."""
    inventory = engine.backend.inventory()
    host = (len(inventory.cpus), inventory.memory_mib, len(inventory.gpus))
    now = now_ms()
    with engine.database.connect() as conn:
        rows = selector.rows(conn)
        summary = summarize(
            conn, selector, _catalog(engine.settings.data_dir), engine.settings.region, host, now, with_trace=True
        )
    data = run_data(selector, summary, engine.settings.region)
    page = {
        "progress": summary["progress"],
        "stages": stages(rows),
        "cost": summary["cost"],
        "totals": summarise(data),
        "advice": advise(data.trace, RightSizingPolicy(), data.billed) if data.trace else [],
        "timeline": timeline(rows, summary["trace"], now),
    }
    if with_results:
        page["results"] = results(engine, rows)
    return page


def results(engine: Engine, rows: list[dict]):
    """Published per-sample results and failed jobs with their log tails (C2's report.results)."""
    from genobatch.report.results import attempt_log_reader, collect

    return collect(rows, attempt_log_reader(engine.attempt_dir))


def run_rows(engine: Engine, selector: Selector) -> list[dict]:
    """The run's job rows (array children included)."""
    with engine.database.connect() as conn:
        return selector.rows(conn)


def progress_fingerprint(rows: list[dict]) -> tuple:
    """What changes when any job of the run changes state or attempt (cheap to compare each tick)."""
    return tuple(
        (row["id"], row["status"], len(row["state"].get("attempts") or []), row["state"].get("stopped_at"))
        for row in rows
    )


def job_selector(key: str, value: str) -> Selector:
    """The selector of a run named by its tag."""
    return Selector(tag_key=key, tag_value=value)


def job_rows_for(engine: Engine, ids: list[str]) -> list[dict]:
    with engine.database.connect() as conn:
        return job_rows.get_rows(conn, ids)


def billing_specs_safe(conn: Connection, engine: Engine, host: tuple[int, int, int]) -> dict:
    """Every compute environment's billing model, or none where the catalog cannot price them
    (the Queues page then says so instead of failing)."""
    from genobatch.cost.catalog import CatalogError
    from genobatch.run import billing_specs

    try:
        return billing_specs(conn, _catalog(engine.settings.data_dir), engine.settings.region, host)
    except (CatalogError, LookupError, ValueError):
        return {}
