"""Alembic environment of the coordination database (run by
`overgang.sql.migrations.migrate`)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import coordination.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from overgang.sql.migrations import run_environment


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Only this service's tables (and the shared outbox) live in its database.
    if type_ == "table":
        return bool(name) and (name == "outbox" or str(name).startswith("coordination_"))
    return True


run_environment(
    context,
    SQLModel.metadata,
    version_table="coordination_alembic_version",
    include_object=_include,
)
