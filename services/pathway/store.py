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

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from overgang.codec import CONTENT_TYPE_PROTO, decode_event, encode_event
from overgang.events import EpisodeEvent
from overgang.kafka.topics import HOSPITAL_EVENTS, PATHWAY_EVENTS
from overgang.logging import get_logger
from overgang.sql.outbox import enqueue
from overgang.v1 import pathway_pb2
from pathway import convert, models
from pathway.domain.national_id import NationalId
from pathway.domain.patient import PatientProblem, episode_patient
from pathway.domain.pseudonym import PseudonymKeys
from pathway.domain.state_machine import Fold, IllegalTransition, PathwayInput, fold
from pathway.domain.tasks import CompletionIsFinal, TaskReport, completion, track
from pathway.listing import ListFilter, list_query, open_units
from pathway.models import EventLogRow, PathwayRow, TaskRow
from pathway.patients import Patients

log = get_logger(__name__)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

T = TypeVar("T")


class EventIdConflict(ValueError):
    """The event id was already recorded for another episode (ids are globally unique) or
    with other content: a duplicate must be the same event."""

    field = "eventId"


@dataclass
class Recorded:
    """The outcome of one write."""

    duplicate: bool
    pathway: pathway_pb2.Pathway | None = None
    # PathwayEvents enqueued by this transaction (for in-process watchers).
    announced: list[pathway_pb2.PathwayEvent] = field(default_factory=list)
    # The fold skipped the new input; the reason (consumer path only: intake raises).
    skipped: str | None = None


Source = EventLogRow | TaskRow  # the row an input of the fold is recorded in


def _inputs(
    logs: Sequence[EventLogRow], tasks: Sequence[TaskRow]
) -> tuple[list[PathwayInput], dict[str, Source]]:
    """Every recorded input of an episode for the fold (events and task completions), and
    the row of each by event id."""
    inputs: list[PathwayInput] = [decode_event(r.payload) for r in logs]
    sources: dict[str, Source] = {r.event_id: r for r in logs}
    for task in tasks:
        if (done := completion(models.task_of(task))) is not None:
            inputs.append(done)
            sources[done.event_id] = task
    return inputs, sources


class PathwayStore:
    def __init__(self, engine: Engine, keys: PseudonymKeys | str) -> None:
        """`keys`: `pathway.domain.pseudonym.load_keys(...)`; a string is one key (v1)."""
        self.engine = engine
        self.keys = PseudonymKeys.single(keys) if isinstance(keys, str) else keys
        self.patients = Patients(self.keys)
        # SQLite has one writer; serialising writes in-process avoids busy retries.
        # Across processes (PostgreSQL) the pathway row lock and unique keys decide.
        self._write_lock = threading.Lock()

    def pseudonym(self, national_id: NationalId) -> str:
        """Under the current key."""
        return self.keys.pseudonym(national_id)

    # ------------------------------------------------------------------ reads
    def intake_facts(
        self, episode_id: str, national_id: NationalId | None
    ) -> tuple[dt.datetime | None, str | None]:
        """The episode's first event time (None: no event yet), and why intake of one of
        its events with this national id would raise `PatientProblem` (None: it would not),
        for gRPC to report with the request's other violations."""
        with Session(self.engine) as session:
            earliest = select(func.min(EventLogRow.occurred_at))
            first = session.exec(earliest.where(EventLogRow.episode_id == episode_id)).first()
            row = session.get(PathwayRow, episode_id)
            given = self.patients.find(session, national_id).known if national_id else None
            first_at = models.aware(first) if first else None
            try:
                episode_patient(row.patient_pseudonym if row else "", given, required=not first)
            except PatientProblem as exc:
                return first_at, str(exc)
            return first_at, None

    def get(self, episode_id: str) -> pathway_pb2.Pathway | None:
        with Session(self.engine) as session:
            row = session.get(PathwayRow, episode_id)
            return self._pathway(session, row) if row is not None else None

    def list_pathways(
        self, filters: ListFilter, page_size: int, after: str = ""
    ) -> tuple[list[pathway_pb2.Pathway], str]:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        with Session(self.engine) as session:
            query = list_query(filters, after)
            rows = list(session.exec(query.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            units = open_units(session, [r.episode_id for r in rows])
            token = convert.encode_page_token(rows[-1].episode_id) if more and rows else ""
            return [convert.to_proto(r, units.get(r.episode_id, [])) for r in rows], token

    def _pathway(self, session: Session, row: PathwayRow) -> pathway_pb2.Pathway:
        return convert.to_proto(row, open_units(session, [row.episode_id]).get(row.episode_id, []))

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
        stored and skipped by the fold (a later event may make it legal): `skipped`.
        """

        def work(session: Session) -> Recorded:
            query = select(EventLogRow).where(EventLogRow.event_id == event.event_id)
            existing = session.exec(query).first()
            payload = encode_event(event)
            if existing is not None:
                if existing.episode_id != event.episode_id:
                    # Never answer with (or merge into) another episode's pathway.
                    raise EventIdConflict("is already used by an event of another episode")
                if existing.payload != payload:  # both are encode_event's canonical bytes
                    raise EventIdConflict("is already used by an event with other content")
                row = session.get(PathwayRow, existing.episode_id)
                pathway = self._pathway(session, row) if row is not None else None
                return Recorded(duplicate=True, pathway=pathway)

            row, logs, tasks = self._episode(session, event.episode_id)
            on_episode = row.patient_pseudonym if row is not None else ""
            found = self.patients.find(session, national_id) if national_id else None
            given = found.known if found else None
            pseudonym = episode_patient(on_episode, given, required=intake and not logs)
            if found is not None:
                self.patients.remember(session, found)

            inputs, sources = _inputs(logs, tasks)
            result = fold([*inputs, event])
            step = result.step_for(event.event_id)
            assert step is not None
            if step.rejected is not None and intake:
                raise IllegalTransition(step.rejected, step.from_stage, event)
            new_log = EventLogRow(
                event_id=event.event_id,
                episode_id=event.episode_id,
                kind=event.kind.value,
                occurred_at=event.occurred_at,
                payload=payload,
                source=source,
            )
            session.add(new_log)
            if intake:
                headers = [("content-type", CONTENT_TYPE_PROTO)]
                enqueue(session, HOSPITAL_EVENTS, event.episode_id.encode(), payload, headers)
            sources[event.event_id] = new_log
            announced, pathway = self._project(session, row, result, sources, pseudonym)
            return Recorded(False, pathway, announced, skipped=step.rejected)

        return self._write(work)

    def record_task(self, report: TaskReport) -> Recorded:
        """Track a coordination task (open units; DONE kinds that move the pathway). A
        completion the fold skips as illegal in its place is `skipped`."""

        def work(session: Session) -> Recorded:
            stored = session.get(TaskRow, report.task_id, with_for_update=True)
            try:
                task = track(models.task_of(stored) if stored is not None else None, report)
            except CompletionIsFinal:
                log.warning("pathway.task_reopened_ignored", task_id=report.task_id)
                return Recorded(duplicate=True)
            if task is None:
                return Recorded(duplicate=True)
            stored = models.task_row(task, stored)
            session.add(stored)
            session.flush()
            if (done := completion(task)) is None:
                return Recorded(duplicate=False)
            row, logs, tasks = self._episode(session, report.episode_id)
            inputs, sources = _inputs(logs, tasks)
            result = fold(inputs)
            announced, pathway = self._project(session, row, result, sources)
            step = result.step_for(done.event_id)
            skipped = step.rejected if step is not None else None
            return Recorded(False, pathway, announced, skipped=skipped)

        return self._write(work)

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _episode(
        session: Session, episode_id: str
    ) -> tuple[PathwayRow | None, list[EventLogRow], list[TaskRow]]:
        """The episode's projection (locked for this transaction), events and tasks."""
        row = session.get(PathwayRow, episode_id, with_for_update=True)
        logs = session.exec(select(EventLogRow).where(EventLogRow.episode_id == episode_id))
        tasks = session.exec(select(TaskRow).where(TaskRow.episode_id == episode_id))
        return row, list(logs), list(tasks)

    def _project(
        self,
        session: Session,
        row: PathwayRow | None,
        result: Fold,
        sources: dict[str, Source],
        pseudonym: str = "",
    ) -> tuple[list[pathway_pb2.PathwayEvent], pathway_pb2.Pathway | None]:
        """Write the folded state and why each skipped input is skipped, and announce every
        accepted, not yet announced input (none is accepted when there is no state)."""
        pathway: pathway_pb2.Pathway | None = None
        if (state := result.state) is not None:
            row = models.pathway_row(state, pseudonym, dt.datetime.now(dt.UTC), row)
            session.add(row)
            session.flush()
            pathway = self._pathway(session, row)
        headers = [("content-type", convert.PATHWAY_EVENT_CONTENT_TYPE)]
        announced: list[pathway_pb2.PathwayEvent] = []
        for step in result.steps:
            source = sources[step.item.event_id]
            if source.rejected_reason != step.rejected:
                source.rejected_reason = step.rejected
                session.add(source)
            if pathway is None or not step.accepted or source.announced:
                continue
            cause = source.payload if isinstance(source, EventLogRow) else None
            message = convert.pathway_event(step, pathway, cause)
            value = message.SerializeToString(deterministic=True)
            enqueue(session, PATHWAY_EVENTS, step.item.episode_id.encode(), value, headers)
            source.announced = True
            session.add(source)
            announced.append(message)
        return announced, pathway
