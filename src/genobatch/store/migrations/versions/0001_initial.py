"""Initial schema: resources, jobs, tags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _document_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("arn", sa.String(512), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )


def upgrade() -> None:
    _document_table("compute_environments")
    _document_table("job_queues")
    op.create_table(
        "job_definitions",
        sa.Column("arn", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.UniqueConstraint("name", "revision", name="uq_job_definitions_name_revision"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("array_index", sa.Integer, nullable=True),
        sa.Column("definition_arn", sa.String(512), nullable=False),
        sa.Column("share_identifier", sa.String(255), nullable=True),
        sa.Column("spec", sa.JSON, nullable=True),
        sa.Column("state", sa.JSON, nullable=False),
    )
    op.create_index("ix_jobs_queue_status_created", "jobs", ["queue", "status", "created_at"])
    op.create_index("ix_jobs_parent_index", "jobs", ["parent_id", "array_index"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "tags",
        sa.Column("resource_arn", sa.String(600), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    for name in ("tags", "jobs", "job_definitions", "job_queues", "compute_environments"):
        op.drop_table(name)
