"""Transactional outbox: a Kafka record is written in the same SQL transaction as the
state change it announces, and a relay publishes it afterwards, in order, at least once.
Consumers dedupe by the event id carried in the record. Published rows are kept
`OVERGANG_OUTBOX_KEEP_DAYS` (default 7) for inspection, then the relay deletes them: the
outbox is no second archive of health data (Kafka's retention decides that)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Engine, LargeBinary, delete
from sqlmodel import Column, Field, Session, SQLModel, col, select

from overgang.config import Settings, load_settings
from overgang.kafka.security import aiokafka_security
from overgang.logging import get_logger

log = get_logger(__name__)


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=200)
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers_json: str = Field(default="[]")
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    published_at: dt.datetime | None = Field(default=None, index=True)


def enqueue(
    session: Session,
    topic: str,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Add a record to the caller's transaction; it is published after the commit."""
    encoded = [[name, data.decode("latin-1")] for name, data in headers or []]
    session.add(OutboxRow(topic=topic, key=key, value=value, headers_json=json.dumps(encoded)))


def _headers(record: OutboxRow) -> list[tuple[str, bytes]]:
    return [(name, data.encode("latin-1")) for name, data in json.loads(record.headers_json)]


PURGE_BATCH = 1000


def purge_published(engine: Engine, before: dt.datetime, batch: int = PURGE_BATCH) -> int:
    """Delete the rows published before `before`, a batch per transaction (short locks);
    returns how many. Unpublished rows are never deleted."""
    total = 0
    while True:
        with Session(engine) as session:
            old = (
                select(OutboxRow.id)
                .where(col(OutboxRow.published_at).is_not(None))
                .where(col(OutboxRow.published_at) < before)
                .limit(batch)
            )
            ids = list(session.exec(old))
            if ids:
                session.exec(delete(OutboxRow).where(col(OutboxRow.id).in_(ids)))  # type: ignore[call-overload]
                session.commit()
        total += len(ids)
        if len(ids) < batch:
            return total


class OutboxRelay:
    """Publishes unpublished rows in id order; wake it with `notify()` after a commit.
    Every `purge_seconds` (and at its first pass) it deletes the rows published more
    than `settings.outbox_keep_days` ago."""

    def __init__(
        self,
        engine: Engine,
        bootstrap: str,
        batch: int = 200,
        settings: Settings | None = None,
        *,
        purge_seconds: float = 3600.0,
    ) -> None:
        """TLS/SASL and the days to keep from `settings` (default: the environment's)."""
        self.engine = engine
        self.bootstrap = bootstrap
        self.batch = batch
        self.settings = replace(settings or load_settings(), kafka_bootstrap=bootstrap)
        if self.settings.outbox_keep_days < 0:
            raise ValueError("OVERGANG_OUTBOX_KEEP_DAYS must not be negative")
        self.keep = dt.timedelta(days=self.settings.outbox_keep_days)
        self.purge_seconds = purge_seconds
        self._next_purge = 0.0  # monotonic time of the next purge: the first pass
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None

    def notify(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            **aiokafka_security(self.settings),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _renew_producer(self) -> None:
        """After a failed pass, a new producer: an idempotent producer whose sends failed
        mid-batch can stay out of sequence with the broker for good (OutOfOrderSequence-
        Number, aiokafka #1017), so the rows would never be published. A new one gets a
        new producer id; rows are re-sent in order and consumers dedupe by event id."""
        old, self._producer = self._producer, None
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=10)
        try:
            await self.start()
        except Exception as exc:  # still no broker: the next pass tries again
            log.warning("outbox.producer_restart_failed", error=f"{type(exc).__name__}: {exc}")
            self._producer = None

    def _pending(self) -> list[OutboxRow]:
        with Session(self.engine) as session:
            query = (
                select(OutboxRow)
                .where(OutboxRow.published_at == None)  # noqa: E711 (SQL NULL)
                .order_by(OutboxRow.id)  # type: ignore[arg-type]
                .limit(self.batch)
            )
            return list(session.exec(query))

    def _mark(self, ids: list[int]) -> None:
        now = dt.datetime.now(dt.UTC)
        with Session(self.engine) as session:
            for record in session.exec(
                select(OutboxRow).where(OutboxRow.id.in_(ids))  # type: ignore[union-attr]
            ):
                record.published_at = now
                session.add(record)
            session.commit()

    async def publish_pending(self) -> int:
        """One pass; returns how many records were published."""
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        records = await asyncio.to_thread(self._pending)
        if not records:
            return 0
        futures: list[Any] = []
        for record in records:
            futures.append(
                await self._producer.send(
                    record.topic, value=record.value, key=record.key, headers=_headers(record)
                )
            )
        await asyncio.gather(*futures)  # all acknowledged before any is marked
        await asyncio.to_thread(self._mark, [r.id for r in records if r.id is not None])
        return len(records)

    async def purge(self) -> int:
        """Delete the rows published more than the days to keep ago; returns how many."""
        before = dt.datetime.now(dt.UTC) - self.keep
        purged = await asyncio.to_thread(purge_published, self.engine, before)
        if purged:
            log.info("outbox.purged", rows=purged, kept_days=self.keep.days)
        return purged

    async def run(self, poll_seconds: float = 1.0) -> None:
        while True:
            try:
                while await self.publish_pending():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka down: keep the rows, retry later
                log.warning("outbox.publish_failed", error=f"{type(exc).__name__}: {exc}")
                await self._renew_producer()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + self.purge_seconds
                try:
                    await self.purge()
                except Exception as exc:  # the database: the next purge tries again
                    log.warning("outbox.purge_failed", error=str(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll_seconds)
