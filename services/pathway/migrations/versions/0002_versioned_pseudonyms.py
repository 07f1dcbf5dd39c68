"""Versioned pseudonym keys: the national id once in `patient` (surrogate id), and the
patient's pseudonym under each key version in `patient_pseudonym`. Existing pseudonyms
become version 1.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMP = sa.DateTime(timezone=True)


def _patient() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("national_id", sa.String(length=11), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("national_id"),
    )


def upgrade() -> None:
    # Through a plain copy, so that the old table's constraint names are gone before the
    # new table takes them (PostgreSQL index names are per schema).
    op.execute("CREATE TABLE patient_migrating AS SELECT * FROM patient")
    op.drop_table("patient")
    _patient()
    op.create_table(
        "patient_pseudonym",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("pseudonym"),
    )
    op.create_index("ix_patient_pseudonym_patient_id", "patient_pseudonym", ["patient_id"])
    op.execute(
        "INSERT INTO patient (national_id, created_at) "
        "SELECT national_id, created_at FROM patient_migrating ORDER BY created_at"
    )
    op.execute(
        "INSERT INTO patient_pseudonym (pseudonym, patient_id, key_version, created_at) "
        "SELECT m.pseudonym, p.id, 1, m.created_at FROM patient_migrating m "
        "JOIN patient p ON p.national_id = m.national_id"
    )
    op.drop_table("patient_migrating")


def downgrade() -> None:
    # One pseudonym per patient survives: the one of its oldest key version.
    op.execute(
        "CREATE TABLE patient_migrating AS "
        "SELECT s.pseudonym AS pseudonym, p.national_id AS national_id, "
        "p.created_at AS created_at FROM patient p JOIN patient_pseudonym s "
        "ON s.patient_id = p.id WHERE s.key_version = (SELECT MIN(o.key_version) "
        "FROM patient_pseudonym o WHERE o.patient_id = p.id)"
    )
    op.drop_index("ix_patient_pseudonym_patient_id", table_name="patient_pseudonym")
    op.drop_table("patient_pseudonym")
    op.drop_table("patient")
    op.create_table(
        "patient",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("national_id", sa.String(length=11), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("pseudonym"),
        sa.UniqueConstraint("national_id"),
    )
    op.execute(
        "INSERT INTO patient (pseudonym, national_id, created_at) "
        "SELECT pseudonym, national_id, created_at FROM patient_migrating"
    )
    op.drop_table("patient_migrating")
