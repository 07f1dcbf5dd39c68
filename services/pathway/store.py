"""The pathway projection in SQL: every write is one transaction that records the input,
recomputes the episode with the pure fold and enqueues what must reach Kafka.

Exactly one PathwayEvent per event id
-------------------------------------
The PathwayEvent of an input is written to the outbox by *whichever path records or
re-folds the input first* - gRPC intake or the Kafka consumer - in the same transaction
that sets `announced = true` on the input's row (`pathway_event_log` for hospital and
municipal events, keyed by the unique `event_id`; `pathway_task` for task completions).
A later sighting of the same event id (the consumer reading back what intake forwarded
to `overgang.hospital-events.v1`, a redelivery after a crash before the offset commit)
finds the row and changes nothing. An input the fold skips as illegal (for example a
`serviceReady` that overtook its `dischargeReadyNotified`) is stored but not announced;
it is announced in the transaction whose fold first accepts it. So the outbox holds
exactly one PathwayEvent per accepted input (id `"<cause event id>:pathway"`); the relay
publishes it at least once and consumers dedupe by that id.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from overgang.codec import (
    CONTENT_TYPE_PROTO,
    EPISODE_ID,
    decode_event,
    encode_event,
    event_to_proto,
)
from overgang.events import EpisodeEvent
from overgang.kafka.topics import HOSPITAL_EVENTS, PATHWAY_EVENTS
from overgang.logging import get_logger
from overgang.sql.outbox import enqueue
from overgang.v1 import coordination_pb2, events_pb2, pathway_pb2
from overgang.vocabulary import Stage, TaskKind
from pathway.domain.national_id import NationalId
from pathway.domain.pseudonym import pseudonymise
from pathway.domain.state_machine import (
    STAGE_MOVING_TASKS,
    Fold,
    IllegalTransition,
    PathwayInput,
    PathwayState,
    Step,
    TaskCompleted,
    fold,
)
from pathway.models import EventLogRow, PathwayRow, PatientRow, TaskRow

log = get_logger(__name__)

PATHWAY_EVENT_CONTENT_TYPE = b"application/x-protobuf; messageType=overgang.v1.PathwayEvent"
OPEN_TASK_STATUSES = ("OPEN", "CLAIMED")
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

T = TypeVar("T")


class PatientProblem(ValueError):
    """The national id is missing on a new episode or names another patient.
    The message never contains the number."""

    field = "nationalId"


class InvalidTask(ValueError):
    pass


class EventIdConflict(ValueError):
    """The event id was already recorded for another episode (ids are globally unique)."""

    field = "eventId"


def pathway_event_id(cause_id: str) -> str:
    return f"{cause_id}:pathway"


def task_input_id(task_id: str) -> str:
    return f"task:{task_id}:done"


@dataclass
class Recorded:
    """The outcome of one write."""

    duplicate: bool
    pathway: pathway_pb2.Pathway | None = None
    # PathwayEvents enqueued by this transaction (for in-process watchers).
    announced: list[pathway_pb2.PathwayEvent] = field(default_factory=list)
    # The fold skipped the new input; the reason (consumer path only: intake raises).
    skipped: str | None = None


@dataclass(frozen=True)
class ListFilter:
    stage: Stage | None = None
    municipality: str = ""
    unit: str = ""
    division: str = ""
    her_id: str = ""


def encode_page_token(episode_id: str) -> str:
    return base64.urlsafe_b64encode(episode_id.encode()).decode()


def decode_page_token(token: str) -> str:
    """Raises ValueError on a token this service did not issue."""
    try:
        episode_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        episode_id = ""
    if not EPISODE_ID.match(episode_id) or encode_page_token(episode_id) != token:
        raise ValueError("is not a page token from a previous response")
    return episode_id


def _stage_proto(stage: Stage | None) -> pathway_pb2.Stage.ValueType:
    if stage is None:
        return pathway_pb2.STAGE_UNSPECIFIED
    return pathway_pb2.Stage.Value(f"STAGE_{stage.value}")


def _aware(stamp: dt.datetime) -> dt.datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def to_proto(row: PathwayRow, units: Sequence[str]) -> pathway_pb2.Pathway:
    msg = pathway_pb2.Pathway(
        episode_id=row.episode_id,
        stage=_stage_proto(Stage(row.stage)),
        municipality=row.municipality,
        division=(
            events_pb2.Division.Value(row.division)
            if row.division
            else events_pb2.DIVISION_UNSPECIFIED
        ),
        patient_pseudonym=row.patient_pseudonym,
        needs=[events_pb2.Need.Value(n) for n in json.loads(row.needs_json)],
        units=sorted(units),
        her_id=row.her_id,
    )
    msg.updated_at.FromDatetime(_aware(row.updated_at).astimezone(dt.UTC))
    for entry in json.loads(row.history_json):
        change = msg.history.add(
            from_stage=_stage_proto(Stage(entry["from"]) if entry["from"] else None),
            to_stage=_stage_proto(Stage(entry["to"])),
            cause_event_id=entry["cause"],
            reason=entry["reason"],
        )
        change.at.FromDatetime(dt.datetime.fromisoformat(entry["at"]).astimezone(dt.UTC))
    return msg


def _history_json(state: PathwayState) -> str:
    return json.dumps(
        [
            {
                "from": h.from_stage.value if h.from_stage else None,
                "to": h.to_stage.value,
                "at": h.at.isoformat(),
                "cause": h.cause_id,
                "reason": h.reason,
            }
            for h in state.history
        ]
    )


def _task_input(row: TaskRow) -> TaskCompleted | None:
    if row.status != "DONE" or row.kind not in STAGE_MOVING_TASKS:
        return None
    return TaskCompleted(
        event_id=task_input_id(row.task_id),
        episode_id=row.episode_id,
        task_id=row.task_id,
        kind=TaskKind(row.kind),
        occurred_at=_aware(row.updated_at),
    )


class PathwayStore:
    def __init__(self, engine: Engine, pseudonym_key: str) -> None:
        self.engine = engine
        self.pseudonym_key = pseudonym_key
        # SQLite has one writer; serialising writes in-process avoids busy retries.
        # Across processes (PostgreSQL) the pathway row lock and unique keys decide.
        self._write_lock = threading.Lock()

    def pseudonym(self, national_id: NationalId) -> str:
        return pseudonymise(national_id, self.pseudonym_key)

    # ------------------------------------------------------------------ reads
    def episode_patient(self, episode_id: str) -> tuple[bool, str]:
        """(episode has recorded events, its patient pseudonym or "")."""
        with Session(self.engine) as session:
            row = session.get(PathwayRow, episode_id)
            if row is not None:
                return True, row.patient_pseudonym
            seen = session.exec(
                select(EventLogRow.id).where(EventLogRow.episode_id == episode_id).limit(1)
            ).first()
            return seen is not None, ""

    def get(self, episode_id: str) -> pathway_pb2.Pathway | None:
        with Session(self.engine) as session:
            row = session.get(PathwayRow, episode_id)
            if row is None:
                return None
            return to_proto(row, self._units(session, [episode_id]).get(episode_id, []))

    def list_pathways(
        self, filters: ListFilter, page_size: int, after: str = ""
    ) -> tuple[list[pathway_pb2.Pathway], str]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        with Session(self.engine) as session:
            query = select(PathwayRow).order_by(col(PathwayRow.episode_id))
            if after:
                query = query.where(col(PathwayRow.episode_id) > after)
            if filters.stage is not None:
                query = query.where(PathwayRow.stage == filters.stage.value)
            if filters.municipality:
                query = query.where(PathwayRow.municipality == filters.municipality)
            if filters.division:
                query = query.where(PathwayRow.division == filters.division)
            if filters.her_id:
                query = query.where(PathwayRow.her_id == filters.her_id)
            if filters.unit:
                with_unit = select(TaskRow.episode_id).where(
                    col(TaskRow.status).in_(OPEN_TASK_STATUSES),
                    or_(
                        col(TaskRow.unit) == filters.unit,
                        col(TaskRow.unit).startswith(filters.unit + "/"),
                    ),
                )
                query = query.where(col(PathwayRow.episode_id).in_(with_unit))
            rows = list(session.exec(query.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            units = self._units(session, [r.episode_id for r in rows])
            token = encode_page_token(rows[-1].episode_id) if more and rows else ""
            return [to_proto(r, units.get(r.episode_id, [])) for r in rows], token

    @staticmethod
    def _units(session: Session, episode_ids: Sequence[str]) -> dict[str, list[str]]:
        if not episode_ids:
            return {}
        found: dict[str, set[str]] = {}
        query = select(TaskRow.episode_id, TaskRow.unit).where(
            col(TaskRow.episode_id).in_(episode_ids),
            col(TaskRow.status).in_(OPEN_TASK_STATUSES),
        )
        for episode_id, unit in session.exec(query):
            found.setdefault(episode_id, set()).add(unit)
        return {k: sorted(v) for k, v in found.items()}

    # ----------------------------------------------------------------- writes
    def _write(self, work: Callable[[Session], T]) -> T:
        """One transaction; a unique-key race with another writer is retried (the retry
        then sees the other writer's row, e.g. as a duplicate)."""
        for attempt in range(3):
            with self._write_lock, Session(self.engine) as session:
                try:
                    result = work(session)
                    session.commit()
                    return result
                except IntegrityError:
                    session.rollback()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def record_event(
        self,
        event: EpisodeEvent,
        *,
        source: str,
        national_id: NationalId | None = None,
        intake: bool = False,
    ) -> Recorded:
        """Record a hospital or municipal event and project it.

        `intake=True` (gRPC): a national id is required on a new episode, an illegal
        transition raises `IllegalTransition` and stores nothing, and the event is also
        enqueued for `overgang.hospital-events.v1`. Otherwise (Kafka) an illegal event is
        stored and skipped by the fold (a later event may make it legal).
        """
        return self._write(
            lambda session: self._record_event(session, event, source, national_id, intake)
        )

    def _record_event(
        self,
        session: Session,
        event: EpisodeEvent,
        source: str,
        national_id: NationalId | None,
        intake: bool,
    ) -> Recorded:
        existing = session.exec(
            select(EventLogRow).where(EventLogRow.event_id == event.event_id)
        ).first()
        if existing is not None:
            if existing.episode_id != event.episode_id:
                # Never answer with (or merge into) another episode's pathway.
                raise EventIdConflict("is already used by an event of another episode")
            row = session.get(PathwayRow, existing.episode_id)
            units = self._units(session, [existing.episode_id])
            pathway = to_proto(row, units.get(existing.episode_id, [])) if row else None
            return Recorded(duplicate=True, pathway=pathway)

        row = session.get(PathwayRow, event.episode_id, with_for_update=True)
        logs = list(
            session.exec(select(EventLogRow).where(EventLogRow.episode_id == event.episode_id))
        )
        pseudonym = row.patient_pseudonym if row is not None else ""
        if national_id is not None:
            given = self.pseudonym(national_id)
            if pseudonym and given != pseudonym:
                raise PatientProblem("does not match the patient already on this episode")
            if not pseudonym:
                pseudonym = given
                if session.get(PatientRow, given) is None:
                    session.add(PatientRow(pseudonym=given, national_id=national_id.value))
        elif intake and not logs:
            raise PatientProblem("is required on the first event of an episode")

        new_log = EventLogRow(
            event_id=event.event_id,
            episode_id=event.episode_id,
            kind=event.kind.value,
            occurred_at=event.occurred_at,
            payload=encode_event(event),
            source=source,
        )
        tasks = self._tasks(session, event.episode_id)
        result = fold([*self._inputs(logs), *self._task_inputs(tasks), event])
        step = result.step_for(event.event_id)
        assert step is not None
        if step.rejected is not None and intake:
            raise IllegalTransition(step.rejected, step.from_stage, event)
        session.add(new_log)
        if intake:
            enqueue(
                session,
                HOSPITAL_EVENTS,
                event.episode_id.encode(),
                encode_event(event),
                [("content-type", CONTENT_TYPE_PROTO)],
            )
        announced, pathway = self._project(
            session,
            event.episode_id,
            row,
            result,
            [*logs, new_log],
            tasks,
            pseudonym,
            cause={event.event_id: event_to_proto(event)},
        )
        if step.rejected is not None:
            log.warning(
                "pathway.event_skipped",
                event_id=event.event_id,
                episode_id=event.episode_id,
                reason=step.rejected,
            )
        return Recorded(
            duplicate=False, pathway=pathway, announced=announced, skipped=step.rejected
        )

    def record_task(self, update: coordination_pb2.TaskUpdate) -> Recorded:
        """Track a coordination task (open units; DONE kinds that move the pathway)."""
        task = update.task
        if not task.task_id or len(task.task_id) > 128:
            raise InvalidTask("task.taskId is required (at most 128 characters)")
        if not EPISODE_ID.match(task.episode_id):
            raise InvalidTask("task.episodeId must be '<HER-id digits>:<local episode number>'")
        if len(task.unit) > 120:
            raise InvalidTask("task.unit is longer than 120 characters")
        if task.status == coordination_pb2.TASK_STATUS_UNSPECIFIED:
            raise InvalidTask("task.status is unspecified")
        try:
            kind = coordination_pb2.TaskKind.Name(task.kind).removeprefix("TASK_KIND_")
            status = coordination_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_")
        except ValueError as exc:
            raise InvalidTask(f"task.kind or task.status is not known: {exc}") from None
        return self._write(lambda session: self._record_task(session, task, kind, status))

    def _record_task(self, session: Session, task: Any, kind: str, status: str) -> Recorded:
        stored = session.get(TaskRow, task.task_id, with_for_update=True)
        if stored is not None and stored.version >= task.version:
            return Recorded(duplicate=True)
        updated_at = (
            task.updated_at.ToDatetime(tzinfo=dt.UTC)
            if task.HasField("updated_at")
            else dt.datetime.now(dt.UTC)
        )
        if stored is None:
            stored = TaskRow(
                task_id=task.task_id,
                episode_id=task.episode_id,
                unit=task.unit,
                kind=kind,
                status=status,
                version=task.version,
                updated_at=updated_at,
            )
        else:
            if stored.status == "DONE" and status != "DONE":
                log.warning("pathway.task_reopened_ignored", task_id=task.task_id)
                return Recorded(duplicate=True)
            if stored.status != "DONE":
                stored.updated_at = updated_at
            stored.unit, stored.status, stored.version = task.unit, status, task.version
        session.add(stored)
        session.flush()
        if _task_input(stored) is None:
            return Recorded(duplicate=False)
        row = session.get(PathwayRow, task.episode_id, with_for_update=True)
        logs = list(
            session.exec(select(EventLogRow).where(EventLogRow.episode_id == task.episode_id))
        )
        tasks = self._tasks(session, task.episode_id)
        result = fold([*self._inputs(logs), *self._task_inputs(tasks)])
        pseudonym = row.patient_pseudonym if row is not None else ""
        announced, pathway = self._project(
            session, task.episode_id, row, result, logs, tasks, pseudonym, cause={}
        )
        step = result.step_for(task_input_id(task.task_id))
        skipped = step.rejected if step is not None else None
        if skipped:
            log.warning(
                "pathway.task_skipped",
                task_id=task.task_id,
                episode_id=task.episode_id,
                reason=skipped,
            )
        return Recorded(duplicate=False, pathway=pathway, announced=announced, skipped=skipped)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _tasks(session: Session, episode_id: str) -> list[TaskRow]:
        return list(session.exec(select(TaskRow).where(TaskRow.episode_id == episode_id)))

    @staticmethod
    def _inputs(logs: Iterable[EventLogRow]) -> list[PathwayInput]:
        return [decode_event(r.payload) for r in logs]

    @staticmethod
    def _task_inputs(tasks: Iterable[TaskRow]) -> list[PathwayInput]:
        return [t for t in (_task_input(r) for r in tasks) if t is not None]

    def _project(
        self,
        session: Session,
        episode_id: str,
        row: PathwayRow | None,
        result: Fold,
        logs: Sequence[EventLogRow],
        tasks: Sequence[TaskRow],
        pseudonym: str,
        cause: dict[str, events_pb2.Event],
    ) -> tuple[list[pathway_pb2.PathwayEvent], pathway_pb2.Pathway | None]:
        """Write the folded state, and announce every accepted, not yet announced input."""
        by_id: dict[str, EventLogRow | TaskRow] = {r.event_id: r for r in logs}
        by_id.update({task_input_id(t.task_id): t for t in tasks})
        for step in result.steps:
            record = by_id[step.item.event_id]
            if record.rejected_reason != step.rejected:
                record.rejected_reason = step.rejected
                session.add(record)
        state = result.state
        if state is None:
            return [], None
        if row is None:
            row = PathwayRow(
                episode_id=episode_id,
                her_id=state.her_id,
                stage=state.stage.value,
                municipality=state.municipality,
                division=state.division.value if state.division else "",
            )
        row.stage = state.stage.value
        row.municipality = state.municipality
        row.division = state.division.value if state.division else ""
        row.needs_json = json.dumps([n.value for n in state.needs])
        row.history_json = _history_json(state)
        row.patient_pseudonym = pseudonym or row.patient_pseudonym
        row.updated_at = dt.datetime.now(dt.UTC)
        session.add(row)
        session.flush()
        units = self._units(session, [episode_id]).get(episode_id, [])
        pathway = to_proto(row, units)
        announced: list[pathway_pb2.PathwayEvent] = []
        for step in result.steps:
            record = by_id[step.item.event_id]
            if not step.accepted or record.announced:
                continue
            message = self._pathway_event(step, pathway, record, cause)
            enqueue(
                session,
                PATHWAY_EVENTS,
                episode_id.encode(),
                message.SerializeToString(deterministic=True),
                [("content-type", PATHWAY_EVENT_CONTENT_TYPE)],
            )
            record.announced = True
            session.add(record)
            announced.append(message)
        return announced, pathway

    @staticmethod
    def _pathway_event(
        step: Step,
        pathway: pathway_pb2.Pathway,
        record: EventLogRow | TaskRow,
        cause: dict[str, events_pb2.Event],
    ) -> pathway_pb2.PathwayEvent:
        message = pathway_pb2.PathwayEvent(
            event_id=pathway_event_id(step.item.event_id),
            episode_id=step.item.episode_id,
            from_stage=_stage_proto(step.from_stage),
            to_stage=_stage_proto(step.to_stage),
            pathway=pathway,
        )
        if isinstance(record, EventLogRow):
            proto = cause.get(record.event_id) or events_pb2.Event.FromString(record.payload)
            message.cause.CopyFrom(proto)
        # A task completion has no hospital/municipal cause: `cause` stays unset.
        return message
