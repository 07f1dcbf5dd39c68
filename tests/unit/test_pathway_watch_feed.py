"""WatchPathways across replicas, without Kafka: every replica runs an outbox relay over
the shared outbox, and the relay publishes at least once, so the pathway-events topic can
hold a change twice; the watch feed still hands each change to a watcher once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from overgang.config import Settings
from overgang.events import Division, EpisodeEvent, EventKind
from overgang.kafka.topics import PATHWAY_EVENTS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.sql.outbox import OutboxRelay
from overgang.v1 import pathway_pb2
from pathway.domain.national_id import NationalId, validate_national_id, with_check_digits
from pathway.runtime import MIGRATIONS
from pathway.store import PathwayStore
from pathway.watch import Broadcaster
from pathway.watch_feed import RecentIds, WatchFeed

T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)


@dataclass
class Record:
    topic: str
    value: bytes


class Producer:
    """Appends to a shared topic; `hold`: acknowledges only on `release()`."""

    def __init__(self, topic: list[Record], *, hold: bool = False) -> None:
        self.topic = topic
        self.hold = hold
        self.unacknowledged: list[asyncio.Future[None]] = []

    async def send(self, topic: str, *, value: bytes, **_: Any) -> asyncio.Future[None]:
        self.topic.append(Record(topic, value))
        acknowledged = asyncio.get_running_loop().create_future()
        if self.hold:
            self.unacknowledged.append(acknowledged)
        else:
            acknowledged.set_result(None)
        return acknowledged

    def release(self) -> None:
        for acknowledged in self.unacknowledged:
            acknowledged.set_result(None)


class Consumer:
    """Returns the given records in one batch, then nothing."""

    def __init__(self, records: list[Record]) -> None:
        self.batches: list[dict[str, list[Record]]] = [{"pathway-events-0": records}]
        self.polls = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[Record]]:
        self.polls += 1
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pathway.db'}")
    migrate(engine, MIGRATIONS)
    yield engine
    engine.dispose()


def admitted(episode: str) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"{episode}:admitted",
        episode_id=episode,
        occurred_at=T0,
        municipality="1103",
        division=Division.SOMATIC,
        kind=EventKind.ADMITTED,
    )


def national_id() -> NationalId:
    numbers = (with_check_digits(f"010190{individual}") for individual in range(100, 1000))
    return validate_national_id(next(n for n in numbers if n is not None))


def watched(records: list[Record]) -> list[pathway_pb2.PathwayEvent]:
    """What a watcher of a replica whose feed reads `records` receives."""

    async def main() -> list[pathway_pb2.PathwayEvent]:
        broadcaster = Broadcaster(fed=True)
        subscription = broadcaster.subscribe(lambda _: True)
        feed = WatchFeed(Settings(), broadcaster)
        consumer = Consumer(records)
        feed._consumer = consumer  # type: ignore[assignment]
        task = asyncio.create_task(feed.run())
        while consumer.polls < 2:  # the batch is handed on before the next poll
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        seen = []
        while not subscription.queue.empty():
            item = subscription.queue.get_nowait()
            assert item is not None
            seen.append(item)
        return seen

    return asyncio.run(main())


def test_a_watcher_sees_each_pathway_change_once_though_two_replicas_relays_publish_it(
    engine: Engine,
) -> None:
    store = PathwayStore(engine, "unit-test-key")
    store.record_event(admitted("81234:E1"), source="grpc", national_id=national_id(), intake=True)
    topic: list[Record] = []
    first, second = (OutboxRelay(engine, "127.0.0.1:1", settings=Settings()) for _ in "ab")
    held, prompt = Producer(topic, hold=True), Producer(topic)
    first._producer, second._producer = held, prompt  # type: ignore[assignment]

    async def both_relays() -> None:
        # The first relay has sent its rows and waits for the acks before it marks them;
        # meanwhile the second relay's pass finds the same rows unpublished.
        publishing = asyncio.create_task(first.publish_pending())
        while len(held.unacknowledged) < 2:  # the hospital event and the pathway event
            await asyncio.sleep(0.01)
        assert await second.publish_pending() == 2
        held.release()
        assert await publishing == 2

    asyncio.run(both_relays())
    records = [r for r in topic if r.topic == PATHWAY_EVENTS]
    assert len(records) == 2  # the topic holds the change twice: the relay's at-least-once

    seen = watched(records)

    assert [e.event_id for e in seen] == ["81234:E1:admitted:pathway"]


def test_a_watcher_sees_distinct_changes_each_in_order() -> None:
    events = [pathway_pb2.PathwayEvent(event_id=f"e{n}", episode_id="81234:E2") for n in range(3)]
    records = [Record(PATHWAY_EVENTS, e.SerializeToString()) for e in [*events, events[1]]]

    assert [e.event_id for e in watched(records)] == ["e0", "e1", "e2"]


def test_the_feed_remembers_a_bounded_number_of_event_ids() -> None:
    recent = RecentIds(size=2)

    assert [recent.first(i) for i in ["a", "b", "a", "c", "a", "c"]] == [
        True,
        True,
        False,  # "a" is still remembered
        True,  # "c" pushes out the oldest, "a"
        True,
        False,
    ]
