"""The database schema (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Resources (compute environments, queues, job definitions) are stored as their AWS-shaped
documents plus the columns that are looked up or filtered on. A job row has an immutable ``spec``
(what was submitted, resolved against its definition; NULL for array children, which share their
parent's) and a mutable ``state`` (attempts, reasons, timestamps) that the engine rewrites as the
job moves. Migrations live in ``migrations/versions``; this module is the current shape.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

compute_environments = Table(
    "compute_environments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("arn", String(512), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("document", JSON, nullable=False),
)

job_queues = Table(
    "job_queues",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("arn", String(512), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("document", JSON, nullable=False),
)

job_definitions = Table(
    "job_definitions",
    metadata,
    Column("arn", String(512), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("document", JSON, nullable=False),
    UniqueConstraint("name", "revision", name="uq_job_definitions_name_revision"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("name", String(128), nullable=False),
    Column("queue", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("array_index", Integer, nullable=True),
    Column("definition_arn", String(512), nullable=False),
    Column("share_identifier", String(255), nullable=True),
    Column("spec", JSON, nullable=True),
    Column("state", JSON, nullable=False),
    # len(state.attempts), kept beside the JSON so the jobs that have logs (one stream per
    # attempt) are found through an index, not by decoding every row (migration 0005).
    Column("attempt_count", Integer, nullable=False, server_default="0"),
)
Index("ix_jobs_queue_status_created", jobs.c.queue, jobs.c.status, jobs.c.created_at)
Index("ix_jobs_parent_index", jobs.c.parent_id, jobs.c.array_index)
Index("ix_jobs_status", jobs.c.status)
# ListJobs of a queue lists top-level jobs only, newest first; partial indexes so that a million
# queued array children neither slow that page nor cost an index entry each (migration 0004).
_TOP_LEVEL = jobs.c.parent_id.is_(None)
Index(
    "ix_jobs_top_queue_status_seq",
    jobs.c.queue,
    jobs.c.status,
    jobs.c.seq,
    sqlite_where=_TOP_LEVEL,
    postgresql_where=_TOP_LEVEL,
)
Index("ix_jobs_top_queue_seq", jobs.c.queue, jobs.c.seq, sqlite_where=_TOP_LEVEL, postgresql_where=_TOP_LEVEL)
# DescribeLogStreams and FilterLogEvents without stream names read the jobs that ran: a partial
# index, so a million queued jobs cost neither an entry each nor a pass over their rows.
_ATTEMPTED = jobs.c.attempt_count > 0
Index("ix_jobs_attempted_id", jobs.c.id, sqlite_where=_ATTEMPTED, postgresql_where=_ATTEMPTED)
# ... and those of given job definitions, for a listing by stream-name prefix (migration 0006).
Index(
    "ix_jobs_attempted_definition_id",
    jobs.c.definition_arn,
    jobs.c.id,
    sqlite_where=_ATTEMPTED,
    postgresql_where=_ATTEMPTED,
)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(600), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

# ---------------------------------------------------------------- Step Functions (genobatch.workflow)
# An execution's truth is its input event log (``sfn_events``: every event fed to the interpreter,
# with its clock reading); ``snapshot`` is the interpreter's state after ``snapshot_events`` of them,
# written now and then so that a restart replays only the tail. ``sfn_tasks`` and ``sfn_timers``
# are the durable commands: written in the same transaction as the event that produced them.

sfn_state_machines = Table(
    "sfn_state_machines",
    metadata,
    Column("arn", String(600), primary_key=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("document", JSON, nullable=False),
)

sfn_executions = Table(
    "sfn_executions",
    metadata,
    Column("arn", String(700), primary_key=True),
    Column("state_machine_arn", String(600), nullable=False),
    Column("name", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
    Column("definition", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=True),
    Column("error", String(256), nullable=True),
    Column("cause", Text, nullable=True),
    Column("redrive_count", Integer, nullable=False),
    Column("redrive_date", BigInteger, nullable=True),
    Column("event_count", Integer, nullable=False),
    Column("history_count", Integer, nullable=False),
    Column("snapshot", JSON, nullable=True),
    Column("snapshot_events", Integer, nullable=False),
    # {client token: redriveDate} of the last redrives (AWS answers a repeated token idempotently).
    Column("redrive_tokens", JSON, nullable=True),
)
Index("ix_sfn_executions_machine_started", sfn_executions.c.state_machine_arn, sfn_executions.c.started_at)
Index("ix_sfn_executions_status", sfn_executions.c.status)

sfn_events = Table(
    "sfn_events",
    metadata,
    Column("execution_arn", String(700), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("record", JSON, nullable=False),
)

sfn_history = Table(
    "sfn_history",
    metadata,
    Column("execution_arn", String(700), primary_key=True),
    Column("id", Integer, primary_key=True),
    Column("event", JSON, nullable=False),
)

sfn_tasks = Table(
    "sfn_tasks",
    metadata,
    Column("execution_arn", String(700), primary_key=True),
    Column("token", String(512), primary_key=True),
    Column("resource", String(256), nullable=False),
    Column("parameters", JSON, nullable=True),
    Column("state", String(16), nullable=False),
    Column("job_id", String(80), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
Index("ix_sfn_tasks_state", sfn_tasks.c.state)

sfn_timers = Table(
    "sfn_timers",
    metadata,
    Column("execution_arn", String(700), primary_key=True),
    Column("token", String(512), primary_key=True),
    Column("fire_at_ms", BigInteger, nullable=False),
)
