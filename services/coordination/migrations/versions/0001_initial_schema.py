"""Initial schema: episodes, tasks, task updates (stream sequence), processed pathway
events, and the shared transactional outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "coordination_episodes",
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("municipality", AutoString(length=4), nullable=False),
        sa.Column("division", AutoString(length=32), nullable=False),
        sa.Column("patient_pseudonym", AutoString(length=100), nullable=False),
        sa.Column("stage", AutoString(length=32), nullable=False),
        sa.Column("needs", AutoString(length=400), nullable=False),
        sa.Column("ready_day", sa.Date(), nullable=True),
        sa.Column("expected_ready_date", sa.Date(), nullable=True),
        sa.Column("reception_day", sa.Date(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    op.create_table(
        "coordination_processed_events",
        sa.Column("event_id", AutoString(length=200), nullable=False),
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "coordination_task_updates",
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("update_id", AutoString(length=320), nullable=False),
        sa.Column("task_id", AutoString(length=300), nullable=False),
        sa.Column("unit", AutoString(length=200), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("task", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
        sa.UniqueConstraint("update_id"),
    )
    with op.batch_alter_table("coordination_task_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coordination_task_updates_task_id"), ["task_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_coordination_task_updates_unit"), ["unit"], unique=False
        )

    op.create_table(
        "coordination_tasks",
        sa.Column("task_id", AutoString(length=300), nullable=False),
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("municipality", AutoString(length=4), nullable=False),
        sa.Column("unit", AutoString(length=200), nullable=False),
        sa.Column("kind", AutoString(length=40), nullable=False),
        sa.Column("title", AutoString(length=400), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("priority", AutoString(length=16), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("trigger_event_id", AutoString(length=200), nullable=False),
        sa.Column("trigger_at", UTCDateTime(), nullable=False),
        sa.Column("due_rule", AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("escalated_to", AutoString(length=220), nullable=False),
        sa.Column("claimed_by", AutoString(length=200), nullable=False),
        sa.Column("cancel_reason", AutoString(length=400), nullable=False),
        sa.Column("note", AutoString(length=1000), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )
    with op.batch_alter_table("coordination_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coordination_tasks_episode_id"), ["episode_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_coordination_tasks_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_coordination_tasks_unit"), ["unit"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", AutoString(length=200), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers_json", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_published_at"), ["published_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_published_at"))

    op.drop_table("outbox")
    with op.batch_alter_table("coordination_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coordination_tasks_unit"))
        batch_op.drop_index(batch_op.f("ix_coordination_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_coordination_tasks_episode_id"))

    op.drop_table("coordination_tasks")
    with op.batch_alter_table("coordination_task_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coordination_task_updates_unit"))
        batch_op.drop_index(batch_op.f("ix_coordination_task_updates_task_id"))

    op.drop_table("coordination_task_updates")
    op.drop_table("coordination_processed_events")
    op.drop_table("coordination_episodes")
