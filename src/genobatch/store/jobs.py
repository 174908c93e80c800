"""Job rows: writing the scheduler's jobs, loading live ones on restart, and queries for the API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import Connection, Text, and_, bindparam, cast, func, or_, select

from genobatch.core.job import Attempt, Job, Resources
from genobatch.core.status import TERMINAL, JobStatus
from genobatch.store.schema import jobs as jobs_table
from genobatch.store.schema import tags as tags_table

_ATTEMPT_FIELDS = tuple(Attempt.__dataclass_fields__)

# Built once: SQLAlchemy memoizes a statement's cache key on the statement object, so a statement
# rebuilt per batch was built and keyed again each time (update_jobs of a 2-job batch: 0.57 -> 0.34
# ms of CPU, bench/store_writes.py; the engine writes about one batch per short job; issue 9).
_INSERT_JOBS = jobs_table.insert()
_UPDATE_JOB_STATE = (
    jobs_table.update()
    .where(jobs_table.c.id == bindparam("b_id"))
    .values(status=bindparam("status"), state=bindparam("state"), attempt_count=bindparam("attempt_count"))
)


def _state(job: Job) -> dict:
    return {
        "status_reason": job.status_reason,
        "started_at": job.started_at,
        "stopped_at": job.stopped_at,
        "is_cancelled": job.is_cancelled,
        "is_terminated": job.is_terminated,
        "stop_reason": job.stop_reason,
        "summary": job.summary,
        "summary_updated_at": job.summary_updated_at,
        "depends_on": [list(dep) for dep in job.depends_on],
        "attempts": [_attempt_document(a) for a in job.attempts],
    }


def _attempt_document(attempt: Attempt) -> dict:
    """An attempt as JSON-ready data. A shallow copy: ``asdict`` deep-copies info and usage on every
    write, which showed up as a tenth of the engine's time with thousands of short jobs."""
    document = {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}
    document["cpus"], document["gpus"] = list(attempt.cpus), list(attempt.gpus)
    if attempt.after is None:
        del document["after"]  # only successors placed ahead carry it
    return document


def scheduling_spec(job: Job) -> dict:
    """The immutable scheduling inputs of a job, stored in its spec and read back on restart."""
    return {
        "vcpus": job.resources.vcpus,
        "memory_mib": job.resources.memory_mib,
        "gpus": job.resources.gpus,
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "evaluate_on_exit": list(job.evaluate_on_exit),
        "timeout_s": job.timeout_s,
        "array_size": job.array_size,
    }


def insert_jobs(conn: Connection, new: Sequence[tuple[Job, str, str | None, dict | None]]) -> None:
    """Insert new jobs: (job, definition ARN, share identifier, spec or None for array children)."""
    if not new:
        return
    conn.execute(
        _INSERT_JOBS,
        [
            {
                "id": job.id,
                "seq": job.seq,
                "name": job.name,
                "queue": job.queue,
                "status": job.status.value,
                "created_at": job.created_at,
                "parent_id": job.parent_id,
                "array_index": job.array_index,
                "definition_arn": definition_arn,
                "share_identifier": share,
                "spec": spec,
                "state": _state(job),
                "attempt_count": len(job.attempts),
            }
            for job, definition_arn, share, spec in new
        ],
    )


def update_jobs(conn: Connection, changed: Iterable[Job]) -> None:
    """Write the status and state of jobs the scheduler changed (one batched statement)."""
    rows = [
        {"b_id": job.id, "status": job.status.value, "state": _state(job), "attempt_count": len(job.attempts)}
        for job in changed
    ]
    if rows:
        conn.execute(_UPDATE_JOB_STATE, rows)


def _attempt_from(data: Mapping) -> Attempt:
    values = {key: data.get(key) for key in _ATTEMPT_FIELDS if key in data}
    values["cpus"] = tuple(values.get("cpus") or ())
    values["gpus"] = tuple(values.get("gpus") or ())
    values["info"] = dict(values.get("info") or {})  # copies: the decoded state may be shared
    values["usage"] = dict(values.get("usage") or {})
    if values.get("after") is not None:
        values["after"] = (values["after"][0], values["after"][1])
    return Attempt(**values)


_STATUS_OF = {status.value: status for status in JobStatus}  # an Enum call per row was 10 % of a restart
_LOAD_BATCH = 10_000  # rows fetched at a time on restart: a million rows are never all in memory at once
_LIVE_COLUMNS = (
    jobs_table.c.id,
    jobs_table.c.name,
    jobs_table.c.queue,
    jobs_table.c.seq,
    jobs_table.c.created_at,
    jobs_table.c.status,
    jobs_table.c.parent_id,
    jobs_table.c.array_index,
    # As text, decoded here through a memo: a million queued array children have the same state.
    cast(jobs_table.c.state, Text).label("state_text"),
)
_ID, _PARENT, _STATE, _SCHED = 0, 6, 8, 9  # positions in a loaded row (_SCHED: top-level rows only)


@lru_cache(maxsize=1024)
def _decoded(text: str) -> dict:
    """A JSON text decoded once per distinct text; callers copy what they keep that is mutable."""
    return json.loads(text)


class _Scheduling(NamedTuple):
    """A scheduling spec as the fields of a :class:`Job`: shared by every job with the same spec,
    as a live array's children share their parent's (a Resources each was 64 bytes and 2 us more)."""

    resources: Resources
    priority: int
    max_attempts: int
    evaluate_on_exit: tuple[dict, ...]
    timeout_s: int | None
    array_size: int | None


@lru_cache(maxsize=1024)
def _scheduling(text: str) -> _Scheduling:
    sched = json.loads(text)
    return _Scheduling(
        Resources(sched["vcpus"], sched["memory_mib"], sched["gpus"]),
        sched["priority"],
        sched["max_attempts"],
        tuple(sched["evaluate_on_exit"]),
        sched["timeout_s"],
        sched["array_size"],
    )


def _job_from(row: Sequence, state: Mapping, sched: _Scheduling, common: Sequence | None = None) -> Job:
    """The scheduler's record of a job from its row (the ``_LIVE_COLUMNS``), its state and its (or
    its parent's) scheduling spec. ``state`` may be shared with other rows (:func:`_decoded`):
    nothing mutable of it is kept. ``common``: (name, queue, seq, created_at, parent id) objects an
    array's children share. Unpacked by position: a Row's attribute access cost 1.4 us each."""
    job_id, name, queue, seq, created_at, status, parent_id, array_index = row[:8]
    if common is not None:
        name, queue, seq, created_at, parent_id = common
    summary = state.get("summary")
    depends_on = state.get("depends_on")
    attempts = state.get("attempts")
    return Job(
        id=job_id,
        name=name,
        queue=queue,
        seq=seq,
        created_at=created_at,
        resources=sched.resources,
        priority=sched.priority,
        max_attempts=sched.max_attempts,
        evaluate_on_exit=sched.evaluate_on_exit,
        timeout_s=sched.timeout_s,
        status=_STATUS_OF[status],
        status_reason=state.get("status_reason"),
        parent_id=parent_id,
        array_index=array_index,
        array_size=sched.array_size if parent_id is None else None,
        depends_on=tuple((dep[0], dep[1]) for dep in depends_on) if depends_on else (),
        started_at=state.get("started_at"),
        stopped_at=state.get("stopped_at"),
        is_cancelled=state.get("is_cancelled", False),
        is_terminated=state.get("is_terminated", False),
        stop_reason=state.get("stop_reason"),
        attempts=[_attempt_from(a) for a in attempts] if attempts else [],
        summary=dict(summary) if summary is not None else None,
        summary_updated_at=state.get("summary_updated_at"),
    )


def load_live(conn: Connection) -> list[Job]:
    """Every job that is not final, with array children taking their parent's scheduling spec.

    Top-level jobs first (their scheduling specs are what their children need), then children,
    each streamed in batches. A live child's parent is live (it ends only once all its children
    have), so the second pass finds its parent's spec from the first; any other is read after.
    """
    final = [status.value for status in TERMINAL]
    t = jobs_table
    live = t.c.status.not_in(final)
    sched_text = cast(t.c.spec["scheduling"], Text).label("sched_text")
    jobs: list[Job] = []
    scheduling: dict[str, _Scheduling] = {}
    top = select(*_LIVE_COLUMNS, sched_text).where(live, t.c.parent_id.is_(None))
    for row in conn.execute(top.execution_options(yield_per=_LOAD_BATCH)):
        sched = _scheduling(row[_SCHED])
        if sched.array_size is not None:
            scheduling[row[_ID]] = sched
        jobs.append(_job_from(row, _decoded(row[_STATE]), sched))
    orphans = []
    # Per parent, one set of the objects its children have in common, as they share them when
    # submitted: a string and int each per child was ~250 MiB more after restarting 1,000,000.
    shared: dict[str, tuple] = {}
    children = select(*_LIVE_COLUMNS).where(live, t.c.parent_id.is_not(None))
    for row in conn.execute(children.execution_options(yield_per=_LOAD_BATCH)):
        parent_id = row[_PARENT]
        sched = scheduling.get(parent_id)
        if sched is None:
            orphans.append(row)
            continue
        common = shared.get(parent_id)
        if common is None or common[:4] != row[1:5]:
            common = shared[parent_id] = (*row[1:5], parent_id)
        jobs.append(_job_from(row, _decoded(row[_STATE]), sched, common))
    if orphans:
        parents = {row.parent_id for row in orphans}
        query = select(t.c.id, sched_text).where(t.c.id.in_(parents))
        scheduling.update({row.id: _scheduling(row.sched_text) for row in conn.execute(query)})
        jobs.extend(_job_from(row, _decoded(row[_STATE]), scheduling[row[_PARENT]]) for row in orphans)
    return jobs


def statuses(conn: Connection, ids: Iterable[str]) -> dict[str, JobStatus]:
    """Status of each known id (unknown ids are absent)."""
    ids = list(set(ids))
    found: dict[str, JobStatus] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(jobs_table.c.id, jobs_table.c.status).where(jobs_table.c.id.in_(chunk))
        found.update({row.id: JobStatus(row.status) for row in conn.execute(query)})
    return found


def array_size_of(conn: Connection, job_id: str) -> int | None:
    """The array size of ``job_id`` if it is an array parent."""
    spec = conn.execute(select(jobs_table.c.spec).where(jobs_table.c.id == job_id)).scalar()
    return None if spec is None else spec["scheduling"].get("array_size")


def get_rows(conn: Connection, ids: Sequence[str]) -> list[dict]:
    """Rows for the given ids, each with ``spec`` filled from the parent for array children."""
    if not ids:
        return []
    rows = [dict(r) for r in conn.execute(select(jobs_table).where(jobs_table.c.id.in_(list(ids)))).mappings()]
    _fill_parent_specs(conn, rows)
    return rows


def _fill_parent_specs(conn: Connection, rows: list[dict]) -> None:
    parents = {row["parent_id"] for row in rows if row["spec"] is None}
    if not parents:
        return
    query = select(jobs_table.c.id, jobs_table.c.spec).where(jobs_table.c.id.in_(parents))
    specs = {row.id: row.spec for row in conn.execute(query)}
    for row in rows:
        if row["spec"] is None:
            row["spec"] = specs.get(row["parent_id"], {})


def encode_token(seq: int, index: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([seq, index]).encode()).decode()


_TOKEN_BOUND = 2**63  # both parts are compared with BIGINT columns


def decode_token(token: str) -> tuple[int, int]:
    """Raises ValueError for a token this server did not issue."""
    try:
        seq, index = json.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception as exc:  # noqa: BLE001 - any malformed token is the same user error
        raise ValueError("nextToken is not valid") from exc
    # Well-formed JSON is not enough: a float or a number past 64 bits would reach the database
    # and fail there (a 500) rather than here.
    for part in (seq, index):
        if isinstance(part, bool) or not isinstance(part, int) or not -_TOKEN_BOUND < part < _TOKEN_BOUND:
            raise ValueError("nextToken is not valid")
    return seq, index


def list_rows(
    conn: Connection,
    *,
    queue: str | None = None,
    parent_id: str | None = None,
    top_level: bool = False,
    statuses_wanted: Sequence[str] | None = None,
    name_prefix: str | None = None,
    name_exact: str | None = None,
    definition_like: str | None = None,
    created_before: int | None = None,
    created_after: int | None = None,
    share_identifier: str | None = None,
    after_token: str | None = None,
    limit: int = 100,
) -> tuple[list[dict], str | None]:
    """ListJobs: newest first (array children by index), keyset-paged; returns (rows, next token)."""
    t = jobs_table
    conditions = []
    if queue is not None:
        conditions.append(t.c.queue == queue)
    if parent_id is not None:
        conditions.append(t.c.parent_id == parent_id)
    if top_level:
        conditions.append(t.c.parent_id.is_(None))
    if statuses_wanted:
        wanted = list(statuses_wanted)
        # One status as an equality, so the planner can use it as an index prefix.
        conditions.append(t.c.status == wanted[0] if len(wanted) == 1 else t.c.status.in_(wanted))
    if name_prefix is not None:
        conditions.append(func.lower(t.c.name).startswith(name_prefix.lower(), autoescape=True))
    if name_exact is not None:
        conditions.append(func.lower(t.c.name) == name_exact.lower())
    if definition_like is not None:
        conditions.append(t.c.definition_arn.like(definition_like, escape="/"))
    if created_before is not None:
        conditions.append(t.c.created_at < created_before)
    if created_after is not None:
        conditions.append(t.c.created_at > created_after)
    if share_identifier is not None:
        conditions.append(t.c.share_identifier == share_identifier)
    # The order, as an index can give it: one array's children share their parent's seq, so they
    # are ordered by index alone (ix_jobs_parent_index); top-level jobs each have a seq of their own
    # (the partial ix_jobs_top_* indexes). Sorting by the general key instead read and sorted every
    # matching row per page: 60 ms a page at 100,000 queued jobs (bench/million_jobs.py, issue 9).
    seq, last_index = decode_token(after_token) if after_token else (None, None)
    if parent_id is not None:
        order = [t.c.array_index.asc()]
        if after_token:
            conditions.append(t.c.array_index > last_index)
    elif top_level:
        order = [t.c.seq.desc()]
        if after_token:
            conditions.append(t.c.seq < seq)
    else:
        index = func.coalesce(t.c.array_index, -1)
        order = [t.c.seq.desc(), index.asc()]
        if after_token:
            conditions.append(or_(t.c.seq < seq, and_(t.c.seq == seq, index > last_index)))
    query = select(t).where(*conditions).order_by(*order).limit(limit + 1)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = encode_token(last["seq"], -1 if last["array_index"] is None else last["array_index"])
    _fill_parent_specs(conn, rows)
    return rows, token


def attempted_rows(
    conn: Connection, after_id: str | None = None, limit: int = 1000, definition_arns: Sequence[str] | None = None
) -> list[dict]:
    """Up to ``limit`` rows of jobs that have had an attempt, by id after ``after_id``, of these job
    definitions only if given (partial indexes of the jobs that ran: jobs still queued are not read)."""
    t = jobs_table
    conditions = [t.c.attempt_count > 0]
    if definition_arns is not None:
        conditions.append(t.c.definition_arn.in_(list(definition_arns)))
    if after_id is not None:
        conditions.append(t.c.id > after_id)
    query = select(t).where(*conditions).order_by(t.c.id).limit(limit)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    _fill_parent_specs(conn, rows)
    return rows


def max_seq(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(jobs_table.c.seq), 0))).scalar_one()


def rows_for_tag(conn: Connection, key: str, value: str) -> list[dict]:
    """Every job tagged ``key=value`` (tags live on top-level jobs) and all their array children."""
    tagged = select(tags_table.c.resource_arn).where(
        tags_table.c.key == key, tags_table.c.value == value, tags_table.c.resource_arn.like("%:job/%")
    )
    ids = [arn.rsplit("/", 1)[1] for arn in conn.execute(tagged).scalars()]
    return rows_with_children(conn, ids)


def rows_for_queue(conn: Connection, queue: str) -> list[dict]:
    """Every job ever submitted to ``queue``, array children included."""
    query = select(jobs_table.c.id).where(jobs_table.c.queue == queue, jobs_table.c.parent_id.is_(None))
    return rows_with_children(conn, list(conn.execute(query).scalars()))


def rows_with_children(conn: Connection, ids: Sequence[str]) -> list[dict]:
    """Rows of ``ids`` followed by the rows of their array children, in submission order."""
    rows = get_rows(conn, ids)
    parents = [row["id"] for row in rows if row["state"].get("summary") is not None]
    for start in range(0, len(parents), 500):
        query = select(jobs_table).where(jobs_table.c.parent_id.in_(parents[start : start + 500]))
        children = [dict(r) for r in conn.execute(query).mappings()]
        _fill_parent_specs(conn, children)
        rows.extend(children)
    rows.sort(key=lambda row: (row["seq"], -1 if row["array_index"] is None else row["array_index"]))
    return rows
