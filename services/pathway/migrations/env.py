"""Alembic environment of the pathway database (run by `overgang.sql.migrations.migrate`)."""

from __future__ import annotations

from alembic import context

from overgang.sql.migrations import run_environment
from pathway.models import pathway_metadata

run_environment(context, pathway_metadata())
