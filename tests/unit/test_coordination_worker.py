"""The coordination record handler without Kafka: a migrated SQLite store, pathway events
built in memory, the clock and the retry pause injected. A database outage is waited out
(the handler returns only once the tasks are made, nothing dead-lettered); a record bad
in itself, or one that hits a bug, is dead-lettered with the reason, and the handler
never raises (a Faust agent that dies acknowledges its event anyway)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from coordination.convert import change_to_proto
from coordination.domain.planning import PathwayChange
from coordination.rulebook import RuleBook
from coordination.runtime import MIGRATIONS
from coordination.store import TaskStore
from coordination.worker import CoordinationWorker
from overgang.events import OSLO, Division, EpisodeEvent, EventKind, Need
from overgang.kafka.records import Consumed, reason_of
from overgang.kafka.topics import COORDINATION_TASKS, DEAD_LETTER, PATHWAY_EVENTS
from overgang.retry import FIRST_DELAY_S
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.sql.outbox import OutboxRow
from overgang.v1 import coordination_pb2
from overgang.vocabulary import Stage

NOW = dt.datetime(2024, 3, 4, 10, 0, tzinfo=OSLO)
EPISODE = "70001:W1"
_offsets = itertools.count(1)


def locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, Exception("database is locked"))


class Harness:
    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self.pauses: list[float] = []
        self.commits = 0
        self.worker = CoordinationWorker(
            store, lambda: NOW, on_commit=self._committed, sleep=self._pause
        )

    async def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)

    def _committed(self) -> None:
        self.commits += 1

    def handle(self, value: bytes | None) -> list[str]:
        """The task ids the record made or changed."""
        record = Consumed(PATHWAY_EVENTS, 0, next(_offsets), EPISODE.encode(), value)
        return [t.task_id for t in asyncio.run(self.worker.handle_record(record))]

    def outbox(self, topic: str) -> list[OutboxRow]:
        with Session(self.store.engine) as session:
            query = select(OutboxRow).where(OutboxRow.topic == topic)
            return list(session.exec(query.order_by(OutboxRow.id)))  # type: ignore[arg-type]

    def dead_letter_reasons(self) -> list[str | None]:
        return [reason_of(row_headers(row)) for row in self.outbox(DEAD_LETTER)]

    def fail(self, method: str, errors: list[Exception], monkeypatch: pytest.MonkeyPatch) -> None:
        """The store's `method` raises `errors` one by one, then works again."""
        real: Callable[..., Any] = getattr(self.store, method)
        pending = list(errors)

        def flaky(*args: Any) -> Any:
            if pending:
                raise pending.pop(0)
            return real(*args)

        monkeypatch.setattr(self.store, method, flaky)


def row_headers(row: OutboxRow) -> list[tuple[str, bytes]]:
    return [(name, data.encode("latin-1")) for name, data in json.loads(row.headers_json)]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    engine = make_engine(f"sqlite:///{tmp_path / 'coordination.db'}")
    migrate(engine, MIGRATIONS)
    yield Harness(TaskStore(engine, RuleBook(), lambda: NOW))
    engine.dispose()


def notice(event_id: str = "pe-1") -> bytes:
    """A discharge-ready notice as the pathway service publishes it."""
    cause = EpisodeEvent(
        event_id=f"cause-{event_id}",
        episode_id=EPISODE,
        occurred_at=NOW,
        municipality="0301",
        division=Division.SOMATIC,
        kind=EventKind.DISCHARGE_READY_NOTIFIED,
        ready_at=NOW,
        needs=(Need.HOME_NURSING,),
    )
    change = PathwayChange(
        event_id=event_id,
        episode_id=EPISODE,
        at=NOW,
        municipality="0301",
        division="SOMATIC",
        patient_pseudonym="p-1",
        from_stage=Stage.ADMITTED,
        to_stage=Stage.DISCHARGE_READY,
        needs=(Need.HOME_NURSING,),
        cause=cause,
    )
    return change_to_proto(change).SerializeToString()


def test_an_event_makes_its_tasks_once_and_a_redelivery_makes_none(harness: Harness) -> None:
    made = harness.handle(notice())
    again = harness.handle(notice())
    updates = [
        coordination_pb2.TaskUpdate.FromString(r.value).task.task_id
        for r in harness.outbox(COORDINATION_TASKS)
    ]
    assert made and again == [] and updates == made
    assert harness.dead_letter_reasons() == []


def test_a_database_outage_is_waited_out_with_backoff_and_nothing_dead_lettered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fail("apply_change", [locked(), locked(), locked()], monkeypatch)
    made = harness.handle(notice())
    first = FIRST_DELAY_S
    assert (bool(made), harness.pauses, harness.dead_letter_reasons()) == (
        True,
        [first, 2 * first, 4 * first],
        [],
    )


def test_a_lost_connection_is_transient_too(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fail("apply_change", [ConnectionResetError("server closed")], monkeypatch)
    assert harness.handle(notice()) and harness.dead_letter_reasons() == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xff", "$: not a protobuf overgang.v1.PathwayEvent"),
        (None, "$: record has no value"),
        (b"", "eventId: is required"),
    ],
    ids=["undecodable", "no value", "no event id"],
)
def test_a_bad_record_is_dead_lettered_with_the_reason(
    harness: Harness, value: bytes | None, reason: str
) -> None:
    assert harness.handle(value) == []
    [found] = harness.dead_letter_reasons()
    assert (found or "").startswith(reason), found
    assert (harness.outbox(COORDINATION_TASKS), harness.pauses) == ([], [])


@pytest.mark.parametrize(
    "error",
    [RuntimeError("bug"), IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint"))],
    ids=["bug", "integrity"],
)
def test_a_non_transient_error_is_dead_lettered_and_never_raised(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    harness.fail("apply_change", [error], monkeypatch)
    assert harness.handle(notice()) == []
    [found] = harness.dead_letter_reasons()
    assert (found or "").startswith(f"processing failed: {type(error).__name__}"), found
    assert harness.pauses == []


def test_a_dead_letter_waits_for_the_database_too(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fail("dead_letter", [locked(), locked()], monkeypatch)
    harness.handle(b"\xff\xff")
    assert (len(harness.dead_letter_reasons()), harness.pauses) == (
        1,
        [FIRST_DELAY_S, 2 * FIRST_DELAY_S],
    )


def test_a_dead_letter_that_fails_for_good_is_logged_not_raised(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fail("dead_letter", [RuntimeError("bug")], monkeypatch)
    assert harness.handle(b"\xff\xff") == []
    assert harness.dead_letter_reasons() == []
