"""The pathway record handlers without Kafka: a migrated SQLite store, records built in
memory, dead letters caught by a list, and the clock injected."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from overgang.codec import CONTENT_TYPE_JSON, encode_event
from overgang.events import Destination, Division, EpisodeEvent, EventKind, Need
from overgang.kafka.records import Consumed, Headers, reason_of
from overgang.kafka.topics import COORDINATION_TASKS, HOSPITAL_EVENTS, MUNICIPAL_EVENTS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import coordination_pb2, pathway_pb2
from pathway.domain.national_id import validate_national_id, with_check_digits
from pathway.runtime import MIGRATIONS
from pathway.store import PathwayStore
from pathway.watch import Broadcaster
from pathway.worker import PathwayWorker

EPISODE = "81234:W1"
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 3, 9, 12, 0, tzinfo=dt.UTC)
NID = validate_national_id(
    next(n for i in range(100, 1000) if (n := with_check_digits(f"010190{i}")) is not None)
)


class Harness:
    def __init__(self, store: PathwayStore) -> None:
        self.store = store
        self.broadcaster = Broadcaster()
        self.commits = 0
        self.dead: list[tuple[bytes | None, bytes | None, Headers]] = []
        self.worker = PathwayWorker(
            store, {"1103": "Stavanger"}, self.broadcaster, self._committed, clock=lambda: NOW
        )

    def _committed(self) -> None:
        self.commits += 1

    async def _sink(self, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        self.dead.append((key, value, headers))

    def handle(self, topic: str, value: bytes | None, key: bytes | None = None, **kw: Any) -> None:
        record = Consumed(topic, 0, 7, key if key is not None else EPISODE.encode(), value, **kw)
        asyncio.run(self.worker.handle(record, self._sink))

    def reasons(self) -> list[str | None]:
        return [reason_of(headers) for _key, _value, headers in self.dead]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    engine = make_engine(f"sqlite:///{tmp_path / 'pathway.db'}")
    migrate(engine, MIGRATIONS)
    yield Harness(PathwayStore(engine, "test-key"))
    engine.dispose()


def ev(kind: EventKind, minutes: int, **fields: Any) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"w-{kind.value}-{minutes}",
        episode_id=EPISODE,
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        municipality=str(fields.pop("municipality", "1103")),
        division=Division.SOMATIC,
        kind=kind,
        **fields,
    )


def received(harness: Harness) -> None:
    """An episode discharged home with municipal services, through gRPC intake."""
    intake = harness.store.record_event
    intake(ev(EventKind.ADMITTED, 0), source="grpc", national_id=NID, intake=True)
    ready = ev(EventKind.DISCHARGE_READY_NOTIFIED, 5, ready_at=T0, needs=(Need.HOME_NURSING,))
    intake(ready, source="grpc", intake=True)
    intake(ev(EventKind.DISCHARGED, 10, destination=Destination.HOME), source="grpc", intake=True)


def test_a_valid_event_is_recorded_announced_and_committed_once(harness: Harness) -> None:
    seen = harness.broadcaster.subscribe(lambda _event: True)
    admitted = encode_event(ev(EventKind.ADMITTED, 0))
    harness.handle(HOSPITAL_EVENTS, admitted)
    harness.handle(HOSPITAL_EVENTS, admitted)  # a redelivery
    pathway = harness.store.get(EPISODE)
    assert (pathway.stage if pathway else None, harness.commits, seen.queue.qsize()) == (
        pathway_pb2.STAGE_ADMITTED,
        1,
        1,
    )
    assert harness.dead == []


@pytest.mark.parametrize(
    ("topic", "value", "key", "reason"),
    [
        (HOSPITAL_EVENTS, b"\xff\xff", None, "$: "),
        (
            HOSPITAL_EVENTS,
            encode_event(ev(EventKind.ADMITTED, 0)),
            b"81234:other",
            "record key is not the event's episodeId",
        ),
        (
            HOSPITAL_EVENTS,
            encode_event(ev(EventKind.SERVICE_READY, 1)),
            None,
            "serviceReady is a municipal event, not a hospital event",
        ),
        (
            MUNICIPAL_EVENTS,
            encode_event(ev(EventKind.ADMITTED, 0)),
            None,
            "admitted is a hospital event, not a municipal event",
        ),
        (
            HOSPITAL_EVENTS,
            encode_event(ev(EventKind.ADMITTED, 0, municipality="4601")),
            None,
            "municipality: 4601 is not served by this deployment",
        ),
        (COORDINATION_TASKS, b"\xff\xff", None, "not an overgang.v1.TaskUpdate"),
        (COORDINATION_TASKS, b"", None, "task.taskId is required"),
    ],
    ids=[
        "undecodable",
        "wrong key",
        "municipal on hospital topic",
        "hospital on municipal topic",
        "unserved municipality",
        "undecodable task",
        "task without id",
    ],
)
def test_a_bad_record_is_dead_lettered_with_the_reason_and_changes_nothing(
    harness: Harness, topic: str, value: bytes, key: bytes | None, reason: str
) -> None:
    harness.handle(topic, value, key)
    [found] = harness.reasons()
    assert (found or "").startswith(reason), found
    assert (harness.store.get(EPISODE), harness.commits) == (None, 0)


def test_a_json_task_record_without_a_value_is_dead_lettered(harness: Harness) -> None:
    harness.handle(COORDINATION_TASKS, None, headers=[("content-type", CONTENT_TYPE_JSON)])
    assert [(r or "").split(":")[0] for r in harness.reasons()] == ["not an overgang.v1.TaskUpdate"]


def test_a_task_update_without_a_time_is_stamped_by_the_injected_clock(
    harness: Harness,
) -> None:
    received(harness)
    update = coordination_pb2.TaskUpdate(
        task=coordination_pb2.Task(
            task_id="t1",
            episode_id=EPISODE,
            unit="HOME_CARE",
            kind=coordination_pb2.TASK_KIND_FOLLOW_UP_VISIT,
            status=coordination_pb2.TASK_STATUS_DONE,
            version=1,
        )
    )
    harness.handle(COORDINATION_TASKS, update.SerializeToString())
    pathway = harness.store.get(EPISODE)
    assert pathway is not None
    last = pathway.history[-1]
    assert (last.to_stage, last.at.ToDatetime(tzinfo=dt.UTC)) == (pathway_pb2.STAGE_CLOSED, NOW)


def test_an_infrastructure_error_raises_for_a_retry_and_is_not_dead_lettered(
    harness: Harness, tmp_path: Path
) -> None:
    harness.store.engine.dispose()
    harness.store.engine = make_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")
    with pytest.raises(OperationalError):
        harness.handle(HOSPITAL_EVENTS, encode_event(ev(EventKind.ADMITTED, 0)))
    assert (harness.dead, harness.commits) == ([], 0)


def test_a_bug_is_dead_lettered_with_the_reason_not_retried_forever(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise KeyError("no such column")

    monkeypatch.setattr(harness.store, "record_event", broken)
    harness.handle(HOSPITAL_EVENTS, encode_event(ev(EventKind.ADMITTED, 0)))
    assert harness.reasons() == ["processing failed: KeyError: 'no such column'"]
    assert harness.commits == 0


def test_a_dead_letter_the_sink_could_not_send_raises_for_a_retry(harness: Harness) -> None:
    async def broker_down(*_: Any) -> None:
        raise ConnectionError("broker down")

    record = Consumed(HOSPITAL_EVENTS, 0, 7, EPISODE.encode(), b"\xff\xff")
    with pytest.raises(ConnectionError):
        asyncio.run(harness.worker.handle(record, broker_down))
