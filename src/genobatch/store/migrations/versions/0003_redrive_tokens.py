"""Step Functions: the client tokens of an execution's recent redrives, so a retried RedriveExecution
is answered idempotently after a restart too (they were kept in memory only).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sfn_executions", sa.Column("redrive_tokens", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sfn_executions") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("redrive_tokens")
