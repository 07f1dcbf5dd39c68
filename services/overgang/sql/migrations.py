"""Each service's alembic migrations, run programmatically at start-up (idempotent)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, text


def alembic_config(script_location: Path, engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _one_migrator(engine: Engine) -> Iterator[None]:
    """Replicas starting together must not both create the tables: a file lock beside a
    SQLite database, a session advisory lock on PostgreSQL."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        with open(f"{url.database}.migrate-lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        return
    yield


_LOCK_KEY = 0x6F76657267616E67  # "overgang"


def migrate(engine: Engine, script_location: Path) -> None:
    """`alembic upgrade head` on this engine (SQLite or PostgreSQL), one process at a
    time."""
    with _one_migrator(engine):
        _upgrade(engine, script_location)


def _upgrade(engine: Engine, script_location: Path) -> None:
    with engine.begin() as connection:
        config = alembic_config(script_location, engine)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def run_environment(
    context: Any,
    target_metadata: MetaData,
    *,
    version_table: str = "alembic_version",
    include_object: Callable[..., bool] | None = None,
) -> None:
    """The body of every service's `migrations/env.py`: online on the connection that
    `migrate` passes in (else a new engine for the configured URL), or offline as SQL."""
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "version_table": version_table,
        "include_object": include_object,
        "render_as_batch": True,  # SQLite alters tables by copying them
    }
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is None:
        from overgang.sql.engine import make_engine

        engine = make_engine(str(config.get_main_option("sqlalchemy.url")))
        with engine.begin() as connection:
            _run_online(context, connection, options)
        engine.dispose()
        return
    _run_online(context, connection, options)


def _run_online(context: Any, connection: Any, options: dict[str, Any]) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()
