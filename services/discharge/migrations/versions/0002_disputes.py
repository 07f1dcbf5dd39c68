"""Disputes of liable days.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discharge_disputes",
        sa.Column("dispute_id", AutoString(length=100), nullable=False),
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("her_id", AutoString(length=12), nullable=False),
        sa.Column("municipality", AutoString(length=4), nullable=False),
        sa.Column("days_json", sa.Text(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", AutoString(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("opened_by", AutoString(length=200), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint("dispute_id"),
    )
    for column in ("episode_id", "her_id", "municipality", "first_day", "last_day", "state"):
        op.create_index(f"ix_discharge_disputes_{column}", "discharge_disputes", [column])


def downgrade() -> None:
    op.drop_table("discharge_disputes")
