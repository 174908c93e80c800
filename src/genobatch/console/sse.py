"""Server-sent events: the console's live updates, pushed as the store changes.

Three streams, each a plain ``text/event-stream`` (one ``event:``/``id:``/``data:`` block per
message, a comment line as keep-alive):

* :func:`overview` - jobs per queue and status, vCPUs in use per compute environment (sent when
  they change), and the jobs that changed since the previous tick: not every job on every tick.
  Only jobs that can still change (not SUCCEEDED/FAILED) are tracked: one query of id and status
  over the status index; a job leaving that set has finished and is read in full once, and jobs
  submitted since the last tick are found by their submission sequence number.
* :func:`run` - a run's progress per stage when any of its jobs changes state or attempt.
* :func:`job_log` - ``tail -f`` of an attempt's ``output.log`` through the native log reader, with
  the byte offset as the event id so that a reconnecting browser resumes where it left off
  (``Last-Event-ID``), and the job's status whenever it changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from genobatch.api.native import job_logs
from genobatch.console import queues as queue_views
from genobatch.console.runs import run_progress
from genobatch.engine import Engine
from genobatch.run import Selector
from genobatch.store import jobs as job_rows
from genobatch.store.schema import jobs as jobs_table

TICK_S = 1.0
LOG_TICK_S = 0.5
KEEPALIVE_S = 15.0
FINAL = ("SUCCEEDED", "FAILED")
#: At most this many changed jobs are sent per tick; more means "reload the list" (``overflow``).
MAX_CHANGED = 500
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(name: str, data: Any, event_id: str | None = None) -> str:
    """One SSE message. JSON data has no raw newlines, so it is always a single ``data:`` line."""
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


async def _ticks(request: Request, interval: float) -> AsyncIterator[bool]:
    """Yield every ``interval`` s until the client goes away, its session ends (``request.state.
    signed_in``, set by the console) or the server stops; True when a keep-alive is due. (The server
    sets ``app.state.stopping``; a stream left open would hold a graceful stop until uvicorn's
    timeout cancels it.)"""
    stopping = getattr(request.app.state, "stopping", None)
    signed_in = getattr(request.state, "signed_in", None)
    last_sent = time.monotonic()
    while (
        not (stopping is not None and stopping())
        and (signed_in is None or signed_in())
        and not await request.is_disconnected()
    ):
        now = time.monotonic()
        due = now - last_sent >= KEEPALIVE_S
        if due:
            last_sent = now
        yield due
        await asyncio.sleep(interval)


def job_change(row: dict) -> dict:
    """What the console shows of a job in a list, for a changed job."""
    state = row["state"]
    attempts = state.get("attempts") or []
    last = attempts[-1] if attempts else {}
    return {
        "jobId": row["id"],
        "status": row["status"],
        "statusReason": state.get("status_reason") or "",
        "exitCode": last.get("exit_code"),
        "attempts": len(attempts),
        "summary": state.get("summary"),
        "queue": row["queue"],
        "parentId": row["parent_id"],
    }


class LiveJobs:
    """The not-yet-final jobs as last seen and the newest submission sequence number, to tell which
    jobs changed since the previous tick: a job whose status differs, one that left the live set
    (it finished), and one submitted since (even if it has already finished)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] | None = None
        self.mark = 0

    def changes(self, engine: Engine) -> tuple[list[dict], bool]:
        """(changed jobs, overflow). The first call only takes the snapshot the page was rendered from."""
        with engine.database.connect() as conn:
            query = select(jobs_table.c.id, jobs_table.c.status).where(jobs_table.c.status.not_in(FINAL))
            live = {job_id: status for job_id, status in conn.execute(query)}
            newest = job_rows.max_seq(conn)
            if self.seen is None:
                self.seen, self.mark = live, newest
                return [], False
            changed = {job_id for job_id, status in live.items() if self.seen.get(job_id) != status}
            changed |= {job_id for job_id in self.seen if job_id not in live}  # finished (or removed)
            if newest > self.mark:
                submitted = select(jobs_table.c.id).where(jobs_table.c.seq > self.mark).limit(MAX_CHANGED + 1)
                changed |= set(conn.execute(submitted).scalars())
            self.seen, self.mark = live, newest
            if len(changed) > MAX_CHANGED:
                return [], True
            return [job_change(row) for row in job_rows.get_rows(conn, sorted(changed))], False


def _overview_summary(engine: Engine) -> dict:
    with engine.database.connect() as conn:
        return {"queues": queue_views.status_counts(conn), "vcpus": queue_views.vcpus_in_use(conn)}


async def overview(request: Request, engine: Engine) -> AsyncIterator[str]:
    """Queue/status counts and changed jobs, for every page with job lists or queue tables."""
    live = LiveJobs()
    last_summary = None
    yield "retry: 2000\n\n"
    async for keepalive in _ticks(request, TICK_S):
        summary = await run_in_threadpool(_overview_summary, engine)
        if summary != last_summary:
            last_summary = summary
            yield event("summary", summary)
        changed, overflow = await run_in_threadpool(live.changes, engine)
        if overflow:
            yield event("overflow", {"message": f"more than {MAX_CHANGED} jobs changed; reload the list"})
        elif changed:
            yield event("jobs", changed)
        elif keepalive:
            yield ": keep-alive\n\n"


def _run_state(engine: Engine, selector: Selector) -> tuple[tuple, dict]:
    prefix = f"arn:aws:batch:{engine.settings.region}:{engine.settings.account_id}:job/"
    with engine.database.connect() as conn:
        return run_progress(conn, selector, prefix)


async def run(request: Request, engine: Engine, selector: Selector) -> AsyncIterator[str]:
    """A run's progress per stage whenever any of its jobs changes."""
    last = None
    yield "retry: 2000\n\n"
    async for keepalive in _ticks(request, TICK_S):
        fingerprint, document = await run_in_threadpool(_run_state, engine, selector)
        if fingerprint != last:
            first = last is None
            last = fingerprint
            if not first:
                yield event("run", document)
                continue
        if keepalive:
            yield ": keep-alive\n\n"


def _status(engine: Engine, job_id: str) -> tuple[str, int]:
    with engine.database.connect() as conn:
        rows = job_rows.get_rows(conn, [job_id])
    if not rows:
        return "UNKNOWN", 0
    return rows[0]["status"], len(rows[0]["state"].get("attempts") or [])


async def job_log(
    request: Request, engine: Engine, job_id: str, attempt: int | None, offset: int, on_error: Callable[[str], str]
) -> AsyncIterator[str]:
    """The attempt's log from ``offset`` as it grows, then ``end`` once the attempt has ended."""
    last_status = None
    yield "retry: 2000\n\n"
    async for keepalive in _ticks(request, LOG_TICK_S):
        status, attempts = await run_in_threadpool(_status, engine, job_id)
        if (status, attempts) != last_status:
            last_status = (status, attempts)
            yield event("status", {"status": status, "attempts": attempts})
        try:
            page = await run_in_threadpool(job_logs, engine, job_id, attempt, offset)
        except Exception as error:  # noqa: BLE001 - a refused read ends the stream with its message
            yield event("failure", {"message": on_error(str(error))})
            return
        if attempt is None and page["attempt"] is not None:
            attempt = page["attempt"]  # follow this attempt; a retry is a new stream (its own offsets)
        if page.get("removed"):
            yield event("end", {"message": page["removed"]})
            return
        if page["data"]:
            offset = page["nextOffset"]
            yield event("log", {"data": page["data"], "attempt": page["attempt"]}, str(offset))
            continue
        if page["complete"]:
            yield event("end", {"message": "the attempt has ended", "attempt": page["attempt"], "attempts": attempts})
            return
        if keepalive:
            yield ": keep-alive\n\n"
