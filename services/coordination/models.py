"""SQL tables of the coordination service (plus the shared `outbox`), and how a row
maps to the domain and back.

The schema is owned by the alembic migrations in `coordination/migrations`; these
models must match them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from coordination.domain.due import DueRule
from coordination.domain.planning import Episode
from coordination.domain.task import Priority, Task, TaskStatus
from overgang.events import Need
from overgang.sql.engine import aware
from overgang.sql.outbox import OutboxRow
from overgang.vocabulary import Stage, TaskKind

__all__ = [
    "EpisodeRow",
    "OutboxRow",
    "ProcessedEventRow",
    "TaskRow",
    "TaskUpdateRow",
    "episode_of",
    "fill_episode",
    "fill_task",
    "task_of",
]


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EpisodeRow(SQLModel, table=True):
    """What coordination knows about an episode, learnt from pathway events."""

    __tablename__ = "coordination_episodes"

    episode_id: str = Field(primary_key=True, max_length=100)
    municipality: str = Field(max_length=4)
    division: str = Field(default="", max_length=32)
    patient_pseudonym: str = Field(default="", max_length=100)
    stage: str = Field(default="", max_length=32)
    needs: str = Field(default="", max_length=400)  # comma-separated Need names
    ready_day: dt.date | None = None
    expected_ready_date: dt.date | None = None
    reception_day: dt.date | None = None
    updated_at: dt.datetime = Field(default_factory=_utc)


class TaskRow(SQLModel, table=True):
    """The current state of each task."""

    __tablename__ = "coordination_tasks"

    task_id: str = Field(primary_key=True, max_length=300)
    episode_id: str = Field(index=True, max_length=100)
    municipality: str = Field(max_length=4)
    unit: str = Field(index=True, max_length=200)
    kind: str = Field(max_length=40)
    title: str = Field(max_length=400)
    due_at: dt.datetime
    priority: str = Field(max_length=16)
    status: str = Field(index=True, max_length=16)
    trigger_event_id: str = Field(max_length=200)
    trigger_at: dt.datetime
    due_rule: str = Field(max_length=64)
    created_at: dt.datetime
    updated_at: dt.datetime
    escalated: bool = False
    escalated_to: str = Field(default="", max_length=220)
    claimed_by: str = Field(default="", max_length=200)
    cancel_reason: str = Field(default="", max_length=400)
    note: str = Field(default="", max_length=1000)
    version: int = 1


class TaskUpdateRow(SQLModel, table=True):
    """Every task change, in commit order: `sequence` is the position in the units'
    streams (a unit's stream is the subsequence of rows whose unit it covers)."""

    __tablename__ = "coordination_task_updates"

    sequence: int | None = Field(default=None, primary_key=True)
    update_id: str = Field(unique=True, max_length=320)
    task_id: str = Field(index=True, max_length=300)
    unit: str = Field(index=True, max_length=200)
    status: str = Field(max_length=16)
    task: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # overgang.v1.Task
    created_at: dt.datetime = Field(default_factory=_utc)


class ProcessedEventRow(SQLModel, table=True):
    """Pathway events already applied: a redelivered record changes nothing."""

    __tablename__ = "coordination_processed_events"

    event_id: str = Field(primary_key=True, max_length=200)
    episode_id: str = Field(max_length=100)
    processed_at: dt.datetime = Field(default_factory=_utc)


# ------------------------------------------------------------------- rows <-> domain
def task_of(row: TaskRow) -> Task:
    return Task(
        task_id=row.task_id,
        episode_id=row.episode_id,
        municipality=row.municipality,
        unit=row.unit,
        kind=TaskKind(row.kind),
        title=row.title,
        due_at=aware(row.due_at),
        priority=Priority(row.priority),
        status=TaskStatus(row.status),
        trigger_event_id=row.trigger_event_id,
        trigger_at=aware(row.trigger_at),
        due_rule=DueRule.parse(row.due_rule),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        escalated=row.escalated,
        escalated_to=row.escalated_to,
        claimed_by=row.claimed_by,
        cancel_reason=row.cancel_reason,
        note=row.note,
        version=row.version,
    )


def fill_task(row: TaskRow, task: Task) -> None:
    row.episode_id = task.episode_id
    row.municipality = task.municipality
    row.unit = task.unit
    row.kind = task.kind.value
    row.title = task.title
    row.due_at = task.due_at
    row.priority = task.priority.value
    row.status = task.status.value
    row.trigger_event_id = task.trigger_event_id
    row.trigger_at = task.trigger_at
    row.due_rule = str(task.due_rule)
    row.created_at = task.created_at
    row.updated_at = task.updated_at
    row.escalated = task.escalated
    row.escalated_to = task.escalated_to
    row.claimed_by = task.claimed_by
    row.cancel_reason = task.cancel_reason
    row.note = task.note
    row.version = task.version


def episode_of(row: EpisodeRow | None) -> Episode | None:
    if row is None:
        return None
    return Episode(
        episode_id=row.episode_id,
        municipality=row.municipality,
        division=row.division,
        patient_pseudonym=row.patient_pseudonym,
        stage=Stage(row.stage) if row.stage else None,
        needs=tuple(Need(n) for n in row.needs.split(",") if n),
        ready_day=row.ready_day,
        expected_ready_date=row.expected_ready_date,
        reception_day=row.reception_day,
    )


def fill_episode(row: EpisodeRow, episode: Episode, now: dt.datetime) -> None:
    row.municipality = episode.municipality
    row.division = episode.division
    row.patient_pseudonym = episode.patient_pseudonym
    row.stage = episode.stage.value if episode.stage else ""
    row.needs = ",".join(n.value for n in episode.needs)
    row.ready_day = episode.ready_day
    row.expected_ready_date = episode.expected_ready_date
    row.reception_day = episode.reception_day
    row.updated_at = now
