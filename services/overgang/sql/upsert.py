"""Many rows written in one statement, a repeat of a key replacing its row: what
`session.merge` per row does, without a SELECT and an ORM object per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel


def upsert(connection: Connection, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE for SQLite and PostgreSQL."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    # One row per key, the last: a driver may send the rows as one multi-row INSERT, where
    # PostgreSQL refuses to update a row twice.
    rows = list({tuple(row[k] for k in keys): row for row in rows}.values())
    replaced = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=replaced), rows)
