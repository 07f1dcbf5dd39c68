"""The SQL backends a store's tests run on: SQLite always, PostgreSQL too when
OVERGANG_TEST_POSTGRES_URL names one (CI starts a throwaway server with
infra/postgres/pg-test.sh), so both dialects run the same tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from overgang.sql.engine import make_engine

POSTGRES_URL = os.environ.get("OVERGANG_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def empty_engine(backend: str, sqlite_file: Path) -> Iterator[Engine]:
    """An empty database of the backend (PostgreSQL's public schema dropped first)."""
    url = POSTGRES_URL if backend == "postgresql" else ""
    engine = make_engine(url or f"sqlite:///{sqlite_file}")
    if url:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    yield engine
    engine.dispose()
