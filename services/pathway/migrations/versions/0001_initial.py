"""Initial tables: patient, pathway_event_log, pathway_task, pathway, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers_json", sa.String(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("published_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"])

    op.create_table(
        "patient",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("national_id", sa.String(length=11), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("pseudonym"),
        sa.UniqueConstraint("national_id"),
    )

    op.create_table(
        "pathway_event_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("episode_id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", STAMP, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("rejected_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_pathway_event_log_episode_id", "pathway_event_log", ["episode_id"])

    op.create_table(
        "pathway_task",
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("episode_id", sa.String(length=80), nullable=False),
        sa.Column("unit", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.Column("rejected_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_pathway_task_episode_id", "pathway_task", ["episode_id"])
    op.create_index("ix_pathway_task_unit", "pathway_task", ["unit"])

    op.create_table(
        "pathway",
        sa.Column("episode_id", sa.String(length=80), nullable=False),
        sa.Column("her_id", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("municipality", sa.String(length=4), nullable=False),
        sa.Column("division", sa.String(length=20), nullable=False),
        sa.Column("patient_pseudonym", sa.String(length=64), nullable=False),
        sa.Column("needs_json", sa.String(), nullable=False),
        sa.Column("history_json", sa.String(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    for column in ("division", "her_id", "municipality", "stage"):
        op.create_index(f"ix_pathway_{column}", "pathway", [column])


def downgrade() -> None:
    op.drop_table("pathway")
    op.drop_table("pathway_task")
    op.drop_table("pathway_event_log")
    op.drop_table("patient")
    op.drop_table("outbox")
