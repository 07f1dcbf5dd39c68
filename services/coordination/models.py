"""SQL tables of the coordination service (plus the shared `outbox`).

The schema is owned by the alembic migrations in `coordination/migrations`; these
models must match them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from overgang.sql.outbox import OutboxRow

__all__ = ["EpisodeRow", "OutboxRow", "ProcessedEventRow", "TaskRow", "TaskUpdateRow"]


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
