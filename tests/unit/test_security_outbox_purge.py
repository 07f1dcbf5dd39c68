"""Issue 8 item 8: published outbox rows are purged by the relay after the days to keep
(OVERGANG_OUTBOX_KEEP_DAYS, default 7); unpublished rows never are."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from overgang.config import Settings
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.sql.outbox import OutboxRelay, OutboxRow, purge_published
from pathway.runtime import MIGRATIONS

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    migrate(engine, MIGRATIONS)
    with Session(engine) as session:
        for name, published in [
            ("published-10-days-ago", NOW - 10 * DAY),
            ("published-yesterday", NOW - DAY),
            ("never-published", None),
        ]:
            row = OutboxRow(topic=name, value=b"v", created_at=NOW - 20 * DAY)
            row.published_at = published
            session.add(row)
        session.commit()
    yield engine
    engine.dispose()


def topics(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.exec(select(OutboxRow.topic)))


def test_rows_published_before_the_cutoff_are_deleted(engine: Engine) -> None:
    assert purge_published(engine, NOW - 7 * DAY, batch=1) == 1
    assert topics(engine) == ["never-published", "published-yesterday"]


def test_the_default_keeps_seven_days(engine: Engine) -> None:
    relay = OutboxRelay(engine, "127.0.0.1:1", settings=Settings())
    assert (relay.keep, asyncio.run(relay.purge())) == (7 * DAY, 1)


def test_a_negative_keep_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="OVERGANG_OUTBOX_KEEP_DAYS"):
        OutboxRelay(engine, "127.0.0.1:1", settings=Settings(outbox_keep_days=-1))


def test_the_relay_purges_on_its_first_pass(engine: Engine) -> None:
    relay = OutboxRelay(engine, "127.0.0.1:1", settings=Settings(outbox_keep_days=0))
    relay._producer = object()  # type: ignore[assignment]  # nothing pending to publish

    async def main() -> list[str]:
        task = asyncio.create_task(relay.run(poll_seconds=0.05))
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return topics(engine)

    assert asyncio.run(main()) == ["never-published"]
