"""The corrections the clock announced.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discharge_corrections",
        sa.Column("event_id", AutoString(length=300), nullable=False),
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("her_id", AutoString(length=12), nullable=False),
        sa.Column("municipality", AutoString(length=4), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("cause_event_id", AutoString(length=300), nullable=False),
        sa.Column("days_json", sa.Text(), nullable=False),
        sa.Column("emitted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    for column in ("episode_id", "her_id", "municipality", "as_of", "first_day", "last_day"):
        op.create_index(f"ix_discharge_corrections_{column}", "discharge_corrections", [column])


def downgrade() -> None:
    op.drop_table("discharge_corrections")
