"""Alembic environment: run with the engine passed in `config.attributes["engine"]`
(the service at start-up), else with DATABASE_URL / the default SQLite file."""

from __future__ import annotations

from alembic import context

from overgang.config import load_settings
from pathway.database import make_engine, normalise_url
from pathway.models import pathway_metadata

config = context.config
target_metadata = pathway_metadata()


def run_migrations_offline() -> None:
    context.configure(
        url=normalise_url(load_settings().database_url),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine(load_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
