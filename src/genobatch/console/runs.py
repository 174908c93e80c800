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

from sqlalchemy import Connection, func, or_, select

from genobatch.cost.catalog import Catalog
from genobatch.engine import Engine, now_ms
from genobatch.report import ComputeEnvironmentCost, RightSizingPolicy, RunData, RunInfo, TraceRecord
from genobatch.report.results import RunResults, attempt_log_reader, collect
from genobatch.report.rightsizing import advise
from genobatch.report.summary import summarise
from genobatch.run import FINAL, RUN_TAG, Selector, price_catalog, priced_trace, summarize
from genobatch.store.schema import jobs as jobs_table
from genobatch.store.schema import tags as tags_table
from genobatch.trace import SAMPLE_PREFIX_TAG, SAMPLE_TAG
from genobatch.workflow.batch_task import run_id as execution_run_id

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
    # A workflow execution's jobs also carry its genobatch:run (for `genobatch cost --run`): list the
    # execution once, as an execution.
    executions = {execution_run_id(run.value) for run in runs if run.key == EXECUTION_TAG}
    runs = [run for run in runs if not (run.key == RUN_TAG and run.value in executions)]
    return sorted(runs, key=lambda run: (run.key != RUN_TAG, run.value))


@cache
def catalog_for(data_dir: Path) -> Catalog:
    """The price catalog of a data directory, read once per process."""
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

    Dependencies outside the rows given (another run's jobs) are not known here and are left out.
    """
    stopped = {row["id"]: row["state"].get("stopped_at") for row in rows}

    def dependencies(row: dict) -> list[str]:
        # A child's own list is complete: the scheduler resolved its parent's dependencies into it
        # (N_TO_N to the same index, SEQUENTIAL to the previous child, others as they are).
        own = [dep[0] for dep in row["state"].get("depends_on") or []]
        if row["parent_id"] is None:
            own += [dep["jobId"] for dep in (row["spec"] or {}).get("dependsOn") or []]
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
        start = record.get("start")
        if deps and start:
            deps = min(deps, start)  # it started, so whatever it waited for was done by then
        capacity_from = max(queued, deps) if deps else queued
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
    billed = [ComputeEnvironmentCost.from_summary(env) for env in summary["cost"]["computeEnvironments"]]
    label = selector.tag_value or selector.queue or ""
    info = RunInfo(run_id=label, title=label, created=datetime.now(UTC), region=region)
    trace = [TraceRecord.from_mapping(record) for record in summary["trace"]]
    return RunData(info=info, trace=trace, billed=billed)


def _host(engine: Engine) -> tuple[int, int, int]:
    inventory = engine.backend.inventory()
    return len(inventory.cpus), inventory.memory_mib, len(inventory.gpus)


def run_page(engine: Engine, selector: Selector) -> dict:
    """Everything a run's page shows; the live stream sends the parts that change."""
    now = now_ms()
    catalog, region = catalog_for(engine.settings.data_dir), engine.settings.region
    with engine.database.connect() as conn:
        rows = selector.rows(conn)
        summary = summarize(conn, selector, catalog, region, _host(engine), now, with_trace=True, rows=rows)
    data = run_data(selector, summary, region)
    return {
        "progress": summary["progress"],
        "stages": stages(rows),
        "cost": summary["cost"],
        "totals": summarise(data),
        "advice": advise(data.trace, RightSizingPolicy(), data.billed) if data.trace else [],
        "results": results(engine, rows),
    }


def timeline_data(engine: Engine, selector: Selector) -> dict:
    """The timeline alone (what the page's script fetches when the run changes): the rows and each
    attempt's attributed cost, without the run-level cost model the page's other sections need."""
    now = now_ms()
    with engine.database.connect() as conn:
        rows = selector.rows(conn)
        records, _, _ = priced_trace(
            conn, rows, catalog_for(engine.settings.data_dir), engine.settings.region, _host(engine), now
        )
    return timeline(rows, records, now)


def results(engine: Engine, rows: list[dict]) -> RunResults:
    """Published per-sample results and failed jobs with their log tails (:mod:`genobatch.report.results`)."""
    return collect(rows, attempt_log_reader(engine.attempt_dir))


def _run_ids(conn: Connection, selector: Selector) -> list[str]:
    """The run's top-level job ids (array children are found through their parent)."""
    if selector.queue is not None:
        query = select(jobs_table.c.id).where(jobs_table.c.queue == selector.queue, jobs_table.c.parent_id.is_(None))
        return list(conn.execute(query).scalars())
    tagged = select(tags_table.c.resource_arn).where(
        tags_table.c.key == selector.tag_key,
        tags_table.c.value == selector.tag_value,
        tags_table.c.resource_arn.like("%:job/%"),
    )
    return [arn.rsplit("/", 1)[1] for arn in conn.execute(tagged).scalars()]


def _sample_tags(conn: Connection, ids: list[str], arn_prefix: str) -> dict[str, dict[str, str]]:
    """The sample tags of these top-level jobs, by job id."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for start in range(0, len(ids), 500):
        arns = [arn_prefix + job_id for job_id in ids[start : start + 500]]
        query = select(tags_table.c.resource_arn, tags_table.c.key, tags_table.c.value).where(
            tags_table.c.key.in_((SAMPLE_TAG, SAMPLE_PREFIX_TAG)), tags_table.c.resource_arn.in_(arns)
        )
        for arn, key, value in conn.execute(query):
            found[arn[len(arn_prefix) :]][key] = value
    return found


def run_progress(conn: Connection, selector: Selector, arn_prefix: str) -> tuple[tuple, dict]:
    """(fingerprint, progress and stages) of a run from narrow columns only: no JSON is decoded,
    so the live stream can afford it every second for a run of thousands of jobs.

    The fingerprint changes when any job of the run changes status (or a job is added). Samples
    are counted as :func:`genobatch.run.progress` counts them: a job's ``genobatch:sample`` tag, or
    an array child's index under its parent's ``genobatch:sample-prefix``. ``arn_prefix`` is
    ``arn:aws:batch:<region>:<account>:job/``.
    """
    ids = _run_ids(conn, selector)
    t = jobs_table
    columns = (t.c.id, t.c.status, t.c.definition_arn, t.c.parent_id, t.c.array_index)
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += conn.execute(select(*columns).where(or_(t.c.id.in_(chunk), t.c.parent_id.in_(chunk)))).all()
    rows.sort(key=lambda row: row.id)
    parents = {row.parent_id for row in rows if row.parent_id}
    sample_tags = _sample_tags(conn, ids, arn_prefix)
    runnable = [row for row in rows if row.id not in parents]
    by_sample: dict[str, list[str]] = defaultdict(list)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in runnable:
        own = sample_tags.get(row.id, {})
        inherited = sample_tags.get(row.parent_id, {}) if row.parent_id else {}
        sample = own.get(SAMPLE_TAG) or inherited.get(SAMPLE_TAG)
        if sample is None and row.array_index is not None and SAMPLE_PREFIX_TAG in inherited:
            sample = f"{inherited[SAMPLE_PREFIX_TAG]}{row.array_index}"
        if sample is not None:
            by_sample[sample].append(row.status)
        counts[row.definition_arn.rsplit("/", 1)[-1].split(":")[0]][row.status] += 1
    progress = {
        "jobs": dict(Counter(row.status for row in runnable)),
        "total": len(runnable),
        "samples": len(by_sample),
        "samplesDone": sum(1 for statuses in by_sample.values() if all(s in FINAL for s in statuses)),
    }
    stage_list = [
        {"stage": name, "counts": dict(c), "total": sum(c.values()), "done": c["SUCCEEDED"] + c["FAILED"]}
        for name, c in counts.items()
    ]
    return tuple((row.id, row.status) for row in rows), {"progress": progress, "stages": stage_list}


def billing_specs_safe(conn: Connection, engine: Engine, host: tuple[int, int, int]) -> dict:
    """Every compute environment's billing model, or none where the catalog cannot price them
    (the Queues page then says so instead of failing)."""
    from genobatch.cost.catalog import CatalogError
    from genobatch.run import billing_specs

    try:
        return billing_specs(conn, catalog_for(engine.settings.data_dir), engine.settings.region, host)
    except (CatalogError, LookupError, ValueError):
        return {}
