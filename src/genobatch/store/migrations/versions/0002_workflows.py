"""Step Functions workflows: state machines, executions, their input event log, history, Batch tasks and timers.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sfn_state_machines",
        sa.Column("arn", sa.String(600), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_table(
        "sfn_executions",
        sa.Column("arn", sa.String(700), primary_key=True),
        sa.Column("state_machine_arn", sa.String(600), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("stopped_at", sa.BigInteger, nullable=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.String(256), nullable=True),
        sa.Column("cause", sa.Text, nullable=True),
        sa.Column("redrive_count", sa.Integer, nullable=False),
        sa.Column("redrive_date", sa.BigInteger, nullable=True),
        sa.Column("event_count", sa.Integer, nullable=False),
        sa.Column("history_count", sa.Integer, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=True),
        sa.Column("snapshot_events", sa.Integer, nullable=False),
    )
    op.create_index("ix_sfn_executions_machine_started", "sfn_executions", ["state_machine_arn", "started_at"])
    op.create_index("ix_sfn_executions_status", "sfn_executions", ["status"])
    op.create_table(
        "sfn_events",
        sa.Column("execution_arn", sa.String(700), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("record", sa.JSON, nullable=False),
    )
    op.create_table(
        "sfn_history",
        sa.Column("execution_arn", sa.String(700), primary_key=True),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event", sa.JSON, nullable=False),
    )
    op.create_table(
        "sfn_tasks",
        sa.Column("execution_arn", sa.String(700), primary_key=True),
        sa.Column("token", sa.String(512), primary_key=True),
        sa.Column("resource", sa.String(256), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(80), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sfn_tasks_state", "sfn_tasks", ["state"])
    op.create_table(
        "sfn_timers",
        sa.Column("execution_arn", sa.String(700), primary_key=True),
        sa.Column("token", sa.String(512), primary_key=True),
        sa.Column("fire_at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in ("sfn_timers", "sfn_tasks", "sfn_history", "sfn_events", "sfn_executions", "sfn_state_machines"):
        op.drop_table(name)
