"""Partial indexes for listing a queue's top-level jobs newest first (ListJobs by jobQueue).

With a million queued array children, ListJobs of a queue read every RUNNABLE row of the queue
(children included) through ix_jobs_queue_status_created and sorted them by seq for each page.
These indexes hold top-level jobs only (parent_id IS NULL), in the order the page is read.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TOP_LEVEL = sa.text("parent_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_top_queue_status_seq",
        "jobs",
        ["queue", "status", "seq"],
        sqlite_where=_TOP_LEVEL,
        postgresql_where=_TOP_LEVEL,
    )
    op.create_index(
        "ix_jobs_top_queue_seq", "jobs", ["queue", "seq"], sqlite_where=_TOP_LEVEL, postgresql_where=_TOP_LEVEL
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_top_queue_seq", "jobs")
    op.drop_index("ix_jobs_top_queue_status_seq", "jobs")
