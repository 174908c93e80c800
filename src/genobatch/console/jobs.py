"""The Jobs list and the job page: ListJobs/DescribeJobs documents plus genobatch's attempt details.

Everything here goes through the API's own handlers and store queries (``job_queries``,
``job_definitions``, the native attempt reader), so the console shows what a client of the API
would see, never a second interpretation of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genobatch.api import job_definitions, job_queries
from genobatch.api.job_detail import STATUSES, job_summary
from genobatch.api.native import job_attempts
from genobatch.context import Context
from genobatch.engine import Engine, now_ms
from genobatch.run import RUN_TAG
from genobatch.store import jobs as job_rows
from genobatch.trace import sample_of

PAGE_SIZE = 50
FINAL = ("SUCCEEDED", "FAILED")


class FilterError(ValueError):
    """A filter value the jobs list cannot use; the message names the field."""


@dataclass(frozen=True)
class JobFilter:
    """What the Jobs page lists: every field optional, combined with AND."""

    queue: str = ""
    status: str = ""
    name: str = ""
    tag: str = ""
    run: str = ""
    parent: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> JobFilter:
        """From the page's query string; :class:`FilterError` naming the field on a bad value."""
        values = {name: (query.get(name) or "").strip() for name in ("queue", "status", "name", "tag", "run", "parent")}
        if values["status"] and values["status"] not in STATUSES:
            raise FilterError(f"status: {values['status']!r} is not one of {', '.join(STATUSES)}")
        if values["tag"] and "=" not in values["tag"]:
            raise FilterError(f"tag: {values['tag']!r} must be KEY=VALUE")
        for key, value in values.items():
            if len(value) > 256:
                raise FilterError(f"{key}: at most 256 characters")
        return cls(**values)

    def tag_pair(self) -> tuple[str, str] | None:
        if self.run:
            return RUN_TAG, self.run
        if self.tag:
            key, _, value = self.tag.partition("=")
            return key, value
        return None


@dataclass
class JobPage:
    """One page of the Jobs list."""

    rows: list[dict]
    next_token: str | None
    total_note: str = ""
    parent: dict | None = None
    children_counts: dict[str, int] = field(default_factory=dict)


def _row_view(row: dict, prefix: str) -> dict:
    summary = job_summary(row, prefix)
    state = row["state"]
    attempts = state.get("attempts") or []
    summary["queue"] = row["queue"]
    summary["definitionName"] = row["definition_arn"].rsplit("/", 1)[-1]
    summary["attempts"] = len(attempts)
    summary["sample"] = sample_of(row)
    summary["isArrayParent"] = state.get("summary") is not None
    summary["arrayIndex"] = row["array_index"]
    return summary


def list_jobs(engine: Engine, flt: JobFilter, token: str | None) -> JobPage:
    """A page of jobs, newest first (array children by index when ``parent`` is set)."""
    prefix = f"arn:aws:batch:{engine.settings.region}:{engine.settings.account_id}:job/"
    with engine.database.connect() as conn:
        pair = flt.tag_pair()
        if pair is not None:
            return _tagged(conn, flt, pair, token, prefix)
        arguments: dict = {"limit": PAGE_SIZE, "after_token": token or None}
        if flt.parent:
            arguments["parent_id"] = flt.parent
        else:
            arguments["top_level"] = True
        if flt.queue:
            arguments["queue"] = flt.queue
        if flt.status:
            arguments["statuses_wanted"] = [flt.status]
        if flt.name:
            arguments["name_prefix"] = flt.name.rstrip("*")
        try:
            rows, next_token = job_rows.list_rows(conn, **arguments)
        except ValueError as error:
            raise FilterError(f"page: {error}") from None
        page = JobPage([_row_view(row, prefix) for row in rows], next_token)
        if flt.parent:
            parents = job_rows.get_rows(conn, [flt.parent])
            if parents:
                page.parent = _row_view(parents[0], prefix)
        return page


def _tagged(conn, flt: JobFilter, pair: tuple[str, str], token: str | None, prefix: str) -> JobPage:
    """Jobs carrying a tag (a run): top-level jobs filtered in memory and paged by position."""
    rows = [row for row in job_rows.rows_for_tag(conn, *pair) if row["parent_id"] is None]
    rows.reverse()  # newest first, like the other listings
    if flt.queue:
        rows = [row for row in rows if row["queue"] == flt.queue]
    if flt.status:
        rows = [row for row in rows if row["status"] == flt.status]
    if flt.name:
        rows = [row for row in rows if row["name"].lower().startswith(flt.name.rstrip("*").lower())]
    try:
        start = int(token or 0)
    except ValueError:
        raise FilterError("page: not a valid page token") from None
    end = start + PAGE_SIZE
    next_token = str(end) if end < len(rows) else None
    return JobPage([_row_view(row, prefix) for row in rows[start:end]], next_token, f"{len(rows)} jobs")


def job_page(engine: Engine, job_id: str) -> dict | None:
    """Everything the job page shows, or None when there is no such job."""
    with engine.database.connect() as conn:
        ctx = Context(conn, engine.settings, now_ms())
        described = job_queries.describe_jobs(ctx, {"jobs": [job_id]})["jobs"]
        if not described:
            return None
        detail = described[0]
        definitions = job_definitions.describe_job_definitions(ctx, {"jobDefinitions": [detail["jobDefinition"]]})
        dependency_ids = [dep["jobId"] for dep in detail.get("dependsOn", [])]
        statuses = {key: value.value for key, value in job_rows.statuses(conn, dependency_ids).items()}
        row = job_rows.get_rows(conn, [job_id])[0]
    native = job_attempts(engine, job_id)
    requested = ((row["spec"] or {}).get("scheduling")) or {}
    attempts = []
    for attempt, stored in zip(native["attempts"], row["state"].get("attempts", []), strict=False):
        usage = attempt["usage"] or {}
        memory = requested.get("memory_mib") or 0
        peak = usage.get("peak_rss")
        attempts.append(
            {
                **attempt,
                "reason": stored.get("reason"),
                "statusReason": stored.get("status_reason"),
                "cpuPercentOfRequest": None
                if usage.get("pct_cpu") is None
                else usage["pct_cpu"] / max(1, requested.get("vcpus", 1)),
                "peakMemoryMib": None if peak is None else peak / (1 << 20),
                "memoryPercentOfRequest": None if peak is None or not memory else 100 * peak / (memory << 20),
            }
        )
    return {
        "detail": detail,
        "attempts": attempts,
        "image": native["image"],
        "definition": (definitions.get("jobDefinitions") or [None])[0],
        "dependencies": [{"jobId": dep, "status": statuses.get(dep, "unknown")} for dep in dependency_ids],
        "requested": requested,
        "final": detail["status"] in FINAL,
        "isArrayParent": row["state"].get("summary") is not None,
        "sample": sample_of(row),
    }
