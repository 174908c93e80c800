"""The number of attempts of each job as a column, and a partial index of the jobs that have any.

DescribeLogStreams (and FilterLogEvents without stream names) list the streams of every attempt
of every job; with no way to tell which rows had an attempt, they decoded every job's state - 7 s
a call at 100,000 queued jobs (bench/million_jobs.py, issue 9). Rows written before this revision
are counted from their stored state.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ATTEMPTED = sa.text("attempt_count > 0")
# The length of the state's "attempts" list, in each dialect's JSON functions.
_COUNT = {
    "sqlite": "json_array_length(state, '$.attempts')",
    "postgresql": "json_array_length(CAST(state AS json) -> 'attempts')",
}


def upgrade() -> None:
    op.add_column("jobs", sa.Column("attempt_count", sa.Integer(), nullable=False, server_default="0"))
    dialect = op.get_bind().dialect.name
    # SUBMITTED and PENDING jobs have never had an attempt (a retried job waits RUNNABLE).
    op.execute(
        f"UPDATE jobs SET attempt_count = COALESCE({_COUNT[dialect]}, 0) WHERE status NOT IN ('SUBMITTED', 'PENDING')"
    )
    op.create_index("ix_jobs_attempted_id", "jobs", ["id"], sqlite_where=_ATTEMPTED, postgresql_where=_ATTEMPTED)


def downgrade() -> None:
    op.drop_index("ix_jobs_attempted_id", "jobs")
    op.drop_column("jobs", "attempt_count")
