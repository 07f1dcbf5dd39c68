"""Tables of the pathway database (the only place a national id is stored).

* `patient`: the national id, once. Nothing else refers to the id.
* `patient_pseudonym`: the patient's keyed pseudonym under each key version it was seen
  with (`pathway.domain.pseudonym`).
* `pathway_event_log`: inbox of every hospital/municipal event recorded, unique by
  `event_id` (the dedupe key for gRPC intake and the Kafka consumer alike).
* `pathway_task`: the latest version of each coordination task of an episode.
* `pathway`: the projection (stage, needs, history), recomputed by the pure fold.
* `outbox`: shared `overgang.sql.outbox.OutboxRow`.

And how a row maps to the domain and back (needs and history are stored as JSON).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import LargeBinary, MetaData
from sqlmodel import Column, Field, SQLModel

from overgang.events import Need
from overgang.sql.engine import aware
from overgang.sql.outbox import OutboxRow
from overgang.vocabulary import Stage
from pathway.domain.state_machine import HistoryEntry, PathwayState
from pathway.domain.tasks import TaskReport


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PatientRow(SQLModel, table=True):
    __tablename__ = "patient"

    id: int | None = Field(default=None, primary_key=True)
    national_id: str = Field(max_length=11, unique=True)
    created_at: dt.datetime = Field(default_factory=_now)


class PseudonymRow(SQLModel, table=True):
    """A patient's pseudonym under one key version (one row per version it was seen with):
    a returning patient is found by the pseudonyms of every known version."""

    __tablename__ = "patient_pseudonym"

    pseudonym: str = Field(primary_key=True, max_length=64)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    key_version: int
    created_at: dt.datetime = Field(default_factory=_now)


class EventLogRow(SQLModel, table=True):
    __tablename__ = "pathway_event_log"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=128, unique=True)
    episode_id: str = Field(max_length=80, index=True)
    kind: str = Field(max_length=40)
    occurred_at: dt.datetime
    # codec.encode_event of the validated event.
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str = Field(max_length=80)  # "grpc" or the Kafka topic
    received_at: dt.datetime = Field(default_factory=_now)
    # True once the PathwayEvent for this event id is in the outbox (exactly once).
    announced: bool = Field(default=False)
    # Why the fold skips this event (illegal in its place), if it does.
    rejected_reason: str | None = Field(default=None, max_length=500)


class TaskRow(SQLModel, table=True):
    __tablename__ = "pathway_task"

    task_id: str = Field(primary_key=True, max_length=128)
    episode_id: str = Field(max_length=80, index=True)
    unit: str = Field(max_length=120, index=True)
    kind: str = Field(max_length=60)  # TaskKind name without prefix, e.g. FOLLOW_UP_VISIT
    status: str = Field(max_length=20)  # OPEN, CLAIMED, DONE, CANCELLED
    version: int = 0
    updated_at: dt.datetime
    announced: bool = Field(default=False)
    rejected_reason: str | None = Field(default=None, max_length=500)


class PathwayRow(SQLModel, table=True):
    __tablename__ = "pathway"

    episode_id: str = Field(primary_key=True, max_length=80)
    her_id: str = Field(max_length=20, index=True)
    stage: str = Field(max_length=20, index=True)
    municipality: str = Field(max_length=4, index=True)
    division: str = Field(max_length=20, index=True)
    patient_pseudonym: str = Field(default="", max_length=64)
    needs_json: str = Field(default="[]")
    history_json: str = Field(default="[]")
    updated_at: dt.datetime = Field(default_factory=_now)


# ------------------------------------------------------------------- rows <-> domain
def task_of(row: TaskRow) -> TaskReport:
    return TaskReport(
        task_id=row.task_id,
        episode_id=row.episode_id,
        unit=row.unit,
        kind=row.kind,
        status=row.status,
        version=row.version,
        updated_at=aware(row.updated_at),
    )


def needs_of(row: PathwayRow) -> tuple[Need, ...]:
    return tuple(Need(n) for n in json.loads(row.needs_json))


def history_of(row: PathwayRow) -> tuple[HistoryEntry, ...]:
    return tuple(
        HistoryEntry(
            from_stage=Stage(entry["from"]) if entry["from"] else None,
            to_stage=Stage(entry["to"]),
            at=dt.datetime.fromisoformat(entry["at"]),
            cause_id=entry["cause"],
            reason=entry["reason"],
        )
        for entry in json.loads(row.history_json)
    )


def pathway_row(
    state: PathwayState, pseudonym: str, now: dt.datetime, row: PathwayRow | None = None
) -> PathwayRow:
    """`row` (a new one if None) holding `state`; an empty `pseudonym` keeps the row's."""
    history = [
        {
            "from": h.from_stage.value if h.from_stage else None,
            "to": h.to_stage.value,
            "at": h.at.isoformat(),
            "cause": h.cause_id,
            "reason": h.reason,
        }
        for h in state.history
    ]
    values: dict[str, Any] = {
        "episode_id": state.episode_id,
        "her_id": state.her_id,
        "stage": state.stage.value,
        "municipality": state.municipality,
        "division": state.division.value if state.division else "",
        "needs_json": json.dumps([n.value for n in state.needs]),
        "history_json": json.dumps(history),
        "patient_pseudonym": pseudonym or (row.patient_pseudonym if row else ""),
        "updated_at": now,
    }
    if row is None:
        return PathwayRow(**values)
    row.sqlmodel_update(values)
    return row


def task_row(task: TaskReport, row: TaskRow | None = None) -> TaskRow:
    """`row` (a new one if None) holding `task`."""
    if row is None:
        return TaskRow(**asdict(task))
    row.sqlmodel_update(asdict(task))
    return row


TABLE_NAMES = (
    "outbox",
    "patient",
    "patient_pseudonym",
    "pathway_event_log",
    "pathway_task",
    "pathway",
)


def pathway_metadata() -> MetaData:
    """Only this database's tables: SQLModel.metadata is process-wide and may also hold
    other services' tables when they are imported into the same process (tests)."""
    metadata = MetaData()
    for name in TABLE_NAMES:
        SQLModel.metadata.tables[name].to_metadata(metadata)
    return metadata


__all__ = [
    "EventLogRow",
    "OutboxRow",
    "PathwayRow",
    "PatientRow",
    "PseudonymRow",
    "TaskRow",
    "aware",
    "history_of",
    "needs_of",
    "pathway_metadata",
    "pathway_row",
    "task_of",
    "task_row",
]
