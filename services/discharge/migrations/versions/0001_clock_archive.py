"""The archive of settled clocks.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discharge_clock_archive",
        sa.Column("episode_id", AutoString(length=100), nullable=False),
        sa.Column("her_id", AutoString(length=12), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("entry_json", sa.Text(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=False),
        sa.Column("restored", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("episode_id"),
    )
    for column in ("her_id", "first_day", "last_day"):
        op.create_index(f"ix_discharge_clock_archive_{column}", "discharge_clock_archive", [column])


def downgrade() -> None:
    op.drop_table("discharge_clock_archive")
