"""A partial index of the jobs that have had an attempt, by job definition.

DescribeLogStreams and FilterLogEvents by stream-name prefix (or in a definition's own log group)
read only the jobs of the job definitions whose streams can match; without this index that was
still a pass over every job that ran (migration 0005 skips the queued ones).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ATTEMPTED = sa.text("attempt_count > 0")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_attempted_definition_id",
        "jobs",
        ["definition_arn", "id"],
        sqlite_where=_ATTEMPTED,
        postgresql_where=_ATTEMPTED,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_attempted_definition_id", "jobs")
