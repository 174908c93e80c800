"""The database schema (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Resources (compute environments, queues, job definitions) are stored as their AWS-shaped
documents plus the columns that are looked up or filtered on. A job row has an immutable ``spec``
(what was submitted, resolved against its definition; NULL for array children, which share their
parent's) and a mutable ``state`` (attempts, reasons, timestamps) that the engine rewrites as the
job moves. Migrations live in ``migrations/versions``; this module is the current shape.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, UniqueConstraint

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
)
Index("ix_jobs_queue_status_created", jobs.c.queue, jobs.c.status, jobs.c.created_at)
Index("ix_jobs_parent_index", jobs.c.parent_id, jobs.c.array_index)
Index("ix_jobs_status", jobs.c.status)

tags = Table(
    "tags",
    metadata,
    Column("resource_arn", String(600), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)
