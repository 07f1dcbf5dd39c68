"""The coordination database: episodes, tasks and their update log.

Every task change is written, in one transaction, as (1) the task's new state,
(2) a row in `coordination_task_updates` whose autoincrement `sequence` is the update's
position in the unit streams, and (3) the TaskUpdate record in the shared outbox.

Sequence order = commit order: writers are serialised (a process-wide lock, plus a
PostgreSQL transaction-level advisory lock when several processes write; SQLite
serialises writers itself), so a reader never sees sequence N+1 committed before N and a
client that resumes after N loses nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, text
from sqlmodel import Session, col, select

from coordination.convert import task_to_proto
from coordination.domain.planning import Episode, PathwayChange, advance_episode, plan
from coordination.domain.task import ACTIVE, Task, overdue
from coordination.models import (
    EpisodeRow,
    ProcessedEventRow,
    TaskRow,
    TaskUpdateRow,
    episode_of,
    fill_episode,
    fill_task,
    task_of,
)
from coordination.rulebook import RuleBook
from overgang.codec import CONTENT_TYPE_PROTO, encode_event
from overgang.events import EpisodeEvent
from overgang.kafka.records import Headers
from overgang.kafka.topics import COORDINATION_TASKS, DEAD_LETTER, MUNICIPAL_EVENTS
from overgang.sql.outbox import enqueue
from overgang.v1 import coordination_pb2

Clock = Callable[[], dt.datetime]
CONTENT_TYPE_TASK_UPDATE = b"application/x-protobuf; messageType=overgang.v1.TaskUpdate"
_ADVISORY_LOCK = 0x6F76_6367  # "ovcg": one writer at a time across processes (PostgreSQL)
_ACTIVE = [s.value for s in ACTIVE]


class TaskNotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


def _scope(unit: str, municipality: str) -> ColumnElement[bool]:
    """Updates of `unit` and of its sub-units ("HEALTH_OFFICE" -> "HEALTH_OFFICE/*") of
    tasks of `municipality` ("" = of every municipality). Unit names are the same in every
    municipality, so a coordinator's stream always names its municipality too. A task's
    municipality never changes, so its current row says the municipality of every update."""
    in_unit = or_(
        col(TaskUpdateRow.unit) == unit,
        col(TaskUpdateRow.unit).startswith(unit + "/", autoescape=True),
    )
    if not municipality:
        return in_unit
    of_municipality = exists().where(
        col(TaskRow.task_id) == col(TaskUpdateRow.task_id),
        col(TaskRow.municipality) == municipality,
    )
    return and_(in_unit, of_municipality)


def _update(row: TaskUpdateRow) -> coordination_pb2.TaskUpdate:
    return coordination_pb2.TaskUpdate(
        update_id=row.update_id,
        task=coordination_pb2.Task.FromString(row.task),
        sequence=row.sequence or 0,
    )


class TaskStore:
    def __init__(self, engine: Engine, rulebook: RuleBook, clock: Clock) -> None:
        self.engine = engine
        self.rulebook = rulebook
        self.clock = clock
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------------- writes
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            if self.engine.dialect.name == "postgresql":
                session.connection().execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
                )
            yield session
            session.commit()

    def _save(self, session: Session, task: Task) -> int:
        row = session.get(TaskRow, task.task_id)
        if row is None:
            row = TaskRow(task_id=task.task_id)  # type: ignore[call-arg]
        fill_task(row, task)
        session.add(row)
        proto = task_to_proto(task)
        update = TaskUpdateRow(
            update_id=f"{task.task_id}:v{task.version}",
            task_id=task.task_id,
            unit=task.unit,
            status=task.status.value,
            task=proto.SerializeToString(deterministic=True),
        )
        session.add(update)
        session.flush()  # assigns the sequence
        sequence = update.sequence
        assert sequence is not None
        message = coordination_pb2.TaskUpdate(
            update_id=update.update_id, task=proto, sequence=sequence
        )
        enqueue(
            session,
            COORDINATION_TASKS,
            key=task.episode_id.encode(),
            value=message.SerializeToString(deterministic=True),
            headers=[("content-type", CONTENT_TYPE_TASK_UPDATE)],
        )
        return sequence

    def apply_change(self, change: PathwayChange) -> list[Task]:
        """Apply one pathway event (at most once per event id); returns changed tasks."""
        with self._write() as session:
            if session.get(ProcessedEventRow, change.event_id) is not None:
                return []
            now = self.clock()
            row = session.get(EpisodeRow, change.episode_id)
            episode = advance_episode(episode_of(row), change)
            if row is None:
                row = EpisodeRow(episode_id=episode.episode_id, municipality=episode.municipality)
            fill_episode(row, episode, now)
            session.add(row)
            tasks = [
                task_of(r)
                for r in session.exec(
                    select(TaskRow).where(TaskRow.episode_id == change.episode_id)
                )
            ]
            rules = self.rulebook.for_municipality(episode.municipality)
            changed = plan(change, episode, tasks, rules, now)
            for task in changed:
                self._save(session, task)
            session.add(ProcessedEventRow(event_id=change.event_id, episode_id=change.episode_id))
            return changed

    def _transition(
        self, task_id: str, step: Callable[[Task], Task], allowed: Callable[[Task], bool]
    ) -> Task:
        """`allowed` sees the task (its municipality and unit) inside the transaction,
        before `step`; Forbidden says nothing about the task."""
        with self._write() as session:
            row = session.get(TaskRow, task_id)
            if row is None:
                raise TaskNotFound(f"task {task_id} not found")
            task = task_of(row)
            if not allowed(task):
                raise Forbidden("the task is outside the caller's scope")
            new = step(task)  # TaskStateError rolls the transaction back
            if new is not task:
                self._save(session, new)
            return new

    def claim(self, task_id: str, by: str, allowed: Callable[[Task], bool]) -> Task:
        return self._transition(task_id, lambda t: t.claim(by, self.clock()), allowed)

    def complete(self, task_id: str, note: str, allowed: Callable[[Task], bool]) -> Task:
        return self._transition(task_id, lambda t: t.complete(self.clock(), note), allowed)

    def escalate_overdue(self) -> list[Task]:
        now = self.clock()
        with self._write() as session:
            rows = session.exec(
                select(TaskRow)
                .where(col(TaskRow.status).in_(_ACTIVE))
                .where(col(TaskRow.escalated).is_(False))
                .where(col(TaskRow.due_at) < now)
                .order_by(col(TaskRow.due_at), col(TaskRow.task_id))
            )
            escalated = overdue([task_of(r) for r in rows], now)
            for task in escalated:
                self._save(session, task)
            return escalated

    def publish_event(self, event: EpisodeEvent) -> None:
        """A municipal event for the pathway and discharge services (via the outbox)."""
        with self._write() as session:
            enqueue(
                session,
                MUNICIPAL_EVENTS,
                key=event.episode_id.encode(),
                value=encode_event(event),
                headers=[("content-type", CONTENT_TYPE_PROTO)],
            )

    def dead_letter(self, key: bytes | None, value: bytes | None, headers: Headers) -> None:
        with self._write() as session:
            enqueue(session, DEAD_LETTER, key, value or b"", headers)

    # -------------------------------------------------------------------------- reads
    def task(self, task_id: str) -> Task | None:
        with Session(self.engine) as session:
            row = session.get(TaskRow, task_id)
            return task_of(row) if row else None

    def tasks_of(self, episode_id: str) -> list[Task]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(TaskRow)
                .where(TaskRow.episode_id == episode_id)
                .order_by(col(TaskRow.task_id))
            )
            return [task_of(r) for r in rows]

    def episode(self, episode_id: str) -> Episode | None:
        with Session(self.engine) as session:
            return episode_of(session.get(EpisodeRow, episode_id))

    def backlog(
        self, unit: str, municipality: str
    ) -> tuple[list[coordination_pb2.TaskUpdate], int]:
        """The latest update of every open or claimed task of the unit (and sub-units) of
        `municipality` ("" = every one), in sequence order, and the high-water mark the
        live stream continues after."""
        with Session(self.engine) as session:
            high = session.exec(select(func.max(TaskUpdateRow.sequence))).one() or 0
            latest = (
                select(func.max(TaskUpdateRow.sequence))
                .where(_scope(unit, municipality))
                .where(col(TaskUpdateRow.sequence) <= high)
                .group_by(col(TaskUpdateRow.task_id))
            )
            rows = session.exec(
                select(TaskUpdateRow)
                .where(col(TaskUpdateRow.sequence).in_(latest))
                .where(col(TaskUpdateRow.status).in_(_ACTIVE))
                .order_by(col(TaskUpdateRow.sequence))
            )
            return [_update(r) for r in rows], int(high)

    def updates_after(
        self, unit: str, municipality: str, after: int, limit: int = 500
    ) -> Sequence[coordination_pb2.TaskUpdate]:
        """Updates of the unit (and sub-units) of `municipality` ("" = every one) after
        the sequence `after`."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(TaskUpdateRow)
                .where(_scope(unit, municipality))
                .where(col(TaskUpdateRow.sequence) > after)
                .order_by(col(TaskUpdateRow.sequence))
                .limit(limit)
            )
            return [_update(r) for r in rows]
