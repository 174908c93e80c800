"""The Step Functions tables (see :mod:`genobatch.store.schema`): every query the workflow shell makes.

Only the workflow runner's thread writes executions, events, history, tasks and timers, so an
execution's rows change one transaction at a time in event order; the API reads them on its own
connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import aliased

from genobatch.store.schema import (
    sfn_events,
    sfn_executions,
    sfn_history,
    sfn_state_machines,
    sfn_tasks,
    sfn_timers,
)
from genobatch.store.schema import tags as tags_table

_CHUNK = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's parameter limits

# Task states: PENDING (intent written, job not known to be submitted), SUBMITTED (job id known),
# CANCELLING (the interpreter gave up on it: terminate the job, report nothing), DONE.
PENDING, SUBMITTED, CANCELLING, DONE = "PENDING", "SUBMITTED", "CANCELLING", "DONE"
OPEN_TASK_STATES = (PENDING, SUBMITTED, CANCELLING)


# ----------------------------------------------------------------------------- state machines


def insert_state_machine(conn: Connection, arn: str, name: str, created_at: int, document: dict) -> None:
    conn.execute(
        insert(sfn_state_machines).values(arn=arn, name=name, status="ACTIVE", created_at=created_at, document=document)
    )


def get_state_machine(conn: Connection, arn: str) -> dict | None:
    """The row (arn, name, status, created_at, document) or None."""
    row = conn.execute(select(sfn_state_machines).where(sfn_state_machines.c.arn == arn)).mappings().first()
    return dict(row) if row else None


def list_state_machines(conn: Connection) -> list[dict]:
    query = select(sfn_state_machines).order_by(sfn_state_machines.c.name)
    return [dict(row) for row in conn.execute(query).mappings()]


def update_state_machine(
    conn: Connection, arn: str, *, document: dict | None = None, status: str | None = None
) -> None:
    values: dict[str, Any] = {}
    if document is not None:
        values["document"] = document
    if status is not None:
        values["status"] = status
    conn.execute(update(sfn_state_machines).where(sfn_state_machines.c.arn == arn).values(**values))


def delete_state_machine(conn: Connection, arn: str) -> None:
    conn.execute(delete(sfn_state_machines).where(sfn_state_machines.c.arn == arn))


# ----------------------------------------------------------------------------- executions


def insert_execution(conn: Connection, row: dict) -> None:
    conn.execute(insert(sfn_executions).values(**row))


def get_execution(conn: Connection, arn: str, *, snapshot: bool = False) -> dict | None:
    """The execution's row; the interpreter snapshot (large for a big Map) only if asked for."""
    columns = list(sfn_executions.c) if snapshot else [c for c in sfn_executions.c if c.name != "snapshot"]
    row = conn.execute(select(*columns).where(sfn_executions.c.arn == arn)).mappings().first()
    return dict(row) if row else None


def running_count(conn: Connection, state_machine_arn: str) -> int:
    query = select(func.count()).where(
        sfn_executions.c.state_machine_arn == state_machine_arn, sfn_executions.c.status == "RUNNING"
    )
    return int(conn.execute(query).scalar_one())


def running_executions(conn: Connection) -> list[dict]:
    query = select(sfn_executions).where(sfn_executions.c.status == "RUNNING")
    return [dict(row) for row in conn.execute(query).mappings()]


def list_executions(
    conn: Connection,
    state_machine_arn: str,
    *,
    status: str | None,
    redriven: bool | None,
    before: tuple[int, str] | None,
    limit: int,
) -> list[dict]:
    """Newest first (started_at, then ARN, descending), as AWS lists them; ``before`` resumes a page."""
    columns = [c for c in sfn_executions.c if c.name not in ("snapshot", "definition", "input", "output", "cause")]
    query = select(*columns).where(sfn_executions.c.state_machine_arn == state_machine_arn)
    if status is not None:
        query = query.where(sfn_executions.c.status == status)
    if redriven is True:
        query = query.where(sfn_executions.c.redrive_count > 0)
    elif redriven is False:
        query = query.where(sfn_executions.c.redrive_count == 0)
    if before is not None:
        started, arn = before
        query = query.where(
            (sfn_executions.c.started_at < started)
            | and_(sfn_executions.c.started_at == started, sfn_executions.c.arn < arn)
        )
    query = query.order_by(sfn_executions.c.started_at.desc(), sfn_executions.c.arn.desc()).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def update_execution(conn: Connection, arn: str, values: dict) -> None:
    conn.execute(update(sfn_executions).where(sfn_executions.c.arn == arn).values(**values))


# ----------------------------------------------------------------------------- event log and history


def append_events(conn: Connection, arn: str, first_seq: int, records: Sequence[dict]) -> None:
    """Records ``{"event": <event dict>, "now": <clock>}`` as seq ``first_seq``, ``first_seq + 1``, ..."""
    if records:
        rows = [{"execution_arn": arn, "seq": first_seq + i, "record": r} for i, r in enumerate(records)]
        conn.execute(insert(sfn_events), rows)


def events_from(conn: Connection, arn: str, seq: int) -> list[dict]:
    """The event records with sequence number >= ``seq``, in order."""
    query = (
        select(sfn_events.c.record)
        .where(sfn_events.c.execution_arn == arn, sfn_events.c.seq >= seq)
        .order_by(sfn_events.c.seq)
    )
    return list(conn.execute(query).scalars())


def append_history(conn: Connection, arn: str, events: Sequence[dict]) -> None:
    if events:
        conn.execute(insert(sfn_history), [{"execution_arn": arn, "id": e["id"], "event": e} for e in events])


def history_page(conn: Connection, arn: str, after: int | None, limit: int, reverse: bool) -> list[dict]:
    """Up to ``limit`` history events after id ``after`` (before it when ``reverse``)."""
    query = select(sfn_history.c.event).where(sfn_history.c.execution_arn == arn)
    if after is not None:
        query = query.where(sfn_history.c.id < after if reverse else sfn_history.c.id > after)
    order = sfn_history.c.id.desc() if reverse else sfn_history.c.id
    return list(conn.execute(query.order_by(order).limit(limit)).scalars())


# ----------------------------------------------------------------------------- tasks and timers


def insert_tasks(conn: Connection, rows: Sequence[dict]) -> None:
    """New task intents ``{execution_arn, token, resource, parameters, state, job_id, created_at}``.

    A token already recorded (a replayed RunTask) keeps its row: the job it names is adopted.
    """
    if not rows:
        return
    existing = set()
    for arn in {r["execution_arn"] for r in rows}:
        tokens = [r["token"] for r in rows if r["execution_arn"] == arn]
        for start in range(0, len(tokens), _CHUNK):
            query = select(sfn_tasks.c.token).where(
                sfn_tasks.c.execution_arn == arn, sfn_tasks.c.token.in_(tokens[start : start + _CHUNK])
            )
            existing.update((arn, t) for t in conn.execute(query).scalars())
    fresh = [r for r in rows if (r["execution_arn"], r["token"]) not in existing]
    if fresh:
        conn.execute(insert(sfn_tasks), fresh)


def set_task(conn: Connection, arn: str, token: str, state: str, job_id: str | None = None) -> None:
    values: dict[str, Any] = {"state": state}
    if job_id is not None:
        values["job_id"] = job_id
    conn.execute(update(sfn_tasks).where(sfn_tasks.c.execution_arn == arn, sfn_tasks.c.token == token).values(**values))


def set_tasks(conn: Connection, rows: Sequence[tuple[str, str, str, str | None]]) -> None:
    """Many ``(execution arn, token, state, job id or None)`` updates in one executemany each."""
    with_job = [{"a": a, "t": t, "s": s, "j": j} for a, t, s, j in rows if j is not None]
    without = [{"a": a, "t": t, "s": s} for a, t, s, j in rows if j is None]
    where = (sfn_tasks.c.execution_arn == bindparam("a"), sfn_tasks.c.token == bindparam("t"))
    if with_job:
        conn.execute(update(sfn_tasks).where(*where).values(state=bindparam("s"), job_id=bindparam("j")), with_job)
    if without:
        conn.execute(update(sfn_tasks).where(*where).values(state=bindparam("s")), without)


def open_tasks(conn: Connection) -> list[dict]:
    query = select(sfn_tasks).where(sfn_tasks.c.state.in_(OPEN_TASK_STATES))
    return [dict(row) for row in conn.execute(query).mappings()]


def tasks_of(conn: Connection, arn: str) -> list[dict]:
    query = select(sfn_tasks).where(sfn_tasks.c.execution_arn == arn).order_by(sfn_tasks.c.created_at)
    return [dict(row) for row in conn.execute(query).mappings()]


def put_timers(conn: Connection, rows: Sequence[dict]) -> None:
    """Timers ``{execution_arn, token, fire_at_ms}``; one already set for a token is replaced."""
    for row in rows:
        conn.execute(
            delete(sfn_timers).where(
                sfn_timers.c.execution_arn == row["execution_arn"], sfn_timers.c.token == row["token"]
            )
        )
    if rows:
        conn.execute(insert(sfn_timers), list(rows))


def delete_timers(conn: Connection, keys: Iterable[tuple[str, str]]) -> None:
    for arn, token in keys:
        conn.execute(delete(sfn_timers).where(sfn_timers.c.execution_arn == arn, sfn_timers.c.token == token))


def delete_timers_of(conn: Connection, arn: str) -> None:
    """Every timer of execution ``arn``."""
    conn.execute(delete(sfn_timers).where(sfn_timers.c.execution_arn == arn))


def all_timers(conn: Connection) -> list[dict]:
    return [dict(row) for row in conn.execute(select(sfn_timers)).mappings()]


# ----------------------------------------------------------------------------- Batch jobs by tag


def jobs_tagged(conn: Connection, task_key: str, execution_key: str, execution_arn: str, tokens: Sequence[str]) -> dict:
    """``{task tag value: job id}`` for the jobs tagged with one of ``tokens`` *and* this execution.

    Used after a restart to adopt a job whose submission committed but whose id the runner had not
    yet recorded: the tag, written in the SubmitJob's own transaction, is the idempotency key.
    """
    found: dict[str, str] = {}
    execution_tag = aliased(tags_table)
    for start in range(0, len(tokens), _CHUNK):
        query = (
            select(tags_table.c.value, tags_table.c.resource_arn)
            .join(execution_tag, execution_tag.c.resource_arn == tags_table.c.resource_arn)
            .where(
                tags_table.c.key == task_key,
                tags_table.c.value.in_(list(tokens[start : start + _CHUNK])),
                execution_tag.c.key == execution_key,
                execution_tag.c.value == execution_arn,
            )
        )
        for value, resource_arn in conn.execute(query):
            found[value] = resource_arn.rsplit("/", 1)[1]
    return found
