"""Alembic environment of the discharge database (run by `overgang.sql.migrations.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData
from sqlmodel import SQLModel

from discharge.models import TABLE_NAMES
from overgang.sql.migrations import run_environment

metadata = MetaData()
for name in TABLE_NAMES:
    SQLModel.metadata.tables[name].to_metadata(metadata)

run_environment(context, metadata, version_table="discharge_alembic_version")
