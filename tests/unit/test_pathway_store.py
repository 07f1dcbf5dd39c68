"""The SQL projection: one transaction per input, one PathwayEvent per accepted event id."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from overgang.codec import CONTENT_TYPE_PROTO, decode_event
from overgang.events import Destination, Division, EpisodeEvent, EventKind, Need
from overgang.kafka.topics import HOSPITAL_EVENTS, MUNICIPAL_EVENTS, PATHWAY_EVENTS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import alembic_config, migrate
from overgang.sql.outbox import OutboxRow
from overgang.v1 import coordination_pb2, pathway_pb2
from pathway.convert import task_report
from pathway.domain.national_id import NationalId, validate_national_id, with_check_digits
from pathway.domain.patient import PatientProblem
from pathway.domain.pseudonym import PseudonymKeys, pseudonymise
from pathway.domain.state_machine import IllegalTransition
from pathway.listing import ListFilter
from pathway.models import PatientRow, PseudonymRow, pathway_metadata
from pathway.runtime import MIGRATIONS
from pathway.store import EventIdConflict, PathwayStore, Recorded

from .sql_backends import BACKENDS, empty_engine

EPISODE = "81234:E1"
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def valid_national_id(birth: str = "010190") -> str:
    """The first valid fødselsnummer for a birth date (DDMMYY)."""
    numbers = (with_check_digits(f"{birth}{individual}") for individual in range(100, 1000))
    return next(n for n in numbers if n is not None)


NID = validate_national_id(valid_national_id())


def ev(kind: EventKind, minutes: int, **fields: object) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"ev-{next(_ids)}",
        episode_id=str(fields.pop("episode_id", EPISODE)),
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        municipality="1103",
        division=Division.SOMATIC,
        kind=kind,
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each backend."""
    yield from empty_engine(request.param, tmp_path / "nested" / "pathway.db")


@pytest.fixture
def store(engine: Engine) -> PathwayStore:
    """A migrated, empty pathway database of each backend."""
    migrate(engine, MIGRATIONS)
    return PathwayStore(engine, "test-key")


def outbox(store: PathwayStore, topic: str) -> list[OutboxRow]:
    with Session(store.engine) as session:
        query = select(OutboxRow).where(OutboxRow.topic == topic)
        return list(session.exec(query.order_by(OutboxRow.id)))  # type: ignore[arg-type]


def pathway_events(store: PathwayStore) -> list[pathway_pb2.PathwayEvent]:
    return [pathway_pb2.PathwayEvent.FromString(r.value) for r in outbox(store, PATHWAY_EVENTS)]


def intake(store: PathwayStore, event: EpisodeEvent, nid: NationalId | None = NID) -> None:
    store.record_event(event, source="grpc", national_id=nid, intake=True)


def test_migrations_run_twice_without_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'twice.db'}")
    migrate(engine, MIGRATIONS)
    migrate(engine, MIGRATIONS)
    engine.dispose()


def test_sqlite_runs_in_wal_mode(store: PathwayStore) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_intake_forwards_the_event_to_the_hospital_topic_keyed_by_episode(
    store: PathwayStore,
) -> None:
    admitted = ev(EventKind.ADMITTED, 0)
    intake(store, admitted)
    [record] = outbox(store, HOSPITAL_EVENTS)
    assert (record.key, decode_event(record.value), record.headers_json) == (
        EPISODE.encode(),
        admitted,
        f'[["content-type", "{CONTENT_TYPE_PROTO.decode()}"]]',
    )


def test_intake_announces_one_pathway_event_per_accepted_event(store: PathwayStore) -> None:
    admitted = ev(EventKind.ADMITTED, 0)
    intake(store, admitted)
    assert [e.event_id for e in pathway_events(store)] == [f"{admitted.event_id}:pathway"]


def test_consumer_seeing_an_intake_event_again_changes_nothing(store: PathwayStore) -> None:
    admitted = ev(EventKind.ADMITTED, 0)
    intake(store, admitted)
    again = store.record_event(admitted, source=HOSPITAL_EVENTS)
    assert (again.duplicate, len(pathway_events(store))) == (True, 1)


def test_pathway_event_carries_municipality_division_needs_stage_and_pseudonym(
    store: PathwayStore,
) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    intake(store, ev(EventKind.DISCHARGE_READY_NOTIFIED, 5, ready_at=T0, needs=(Need.HOUSING,)))
    pathway = pathway_events(store)[-1].pathway
    assert (
        pathway.municipality,
        pathway.division,
        list(pathway.needs),
        pathway.stage,
        pathway.patient_pseudonym,
    ) == ("1103", 1, [5], pathway_pb2.STAGE_DISCHARGE_READY, store.pseudonym(NID))


def test_an_event_without_stage_change_is_announced_too(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    intake(store, ev(EventKind.ADMISSION_NOTIFIED, 1, needs=(Need.HOME_NURSING,)))
    last = pathway_events(store)[-1]
    assert (last.from_stage, last.to_stage) == (
        pathway_pb2.STAGE_ADMITTED,
        pathway_pb2.STAGE_ADMITTED,
    )


def test_intake_of_an_illegal_transition_stores_nothing(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    with pytest.raises(IllegalTransition):
        intake(store, ev(EventKind.DISCHARGE_READY_WITHDRAWN, 1))
    assert len(outbox(store, HOSPITAL_EVENTS)) == 1


def test_intake_requires_a_national_id_on_a_new_episode(store: PathwayStore) -> None:
    with pytest.raises(PatientProblem, match="required"):
        intake(store, ev(EventKind.ADMITTED, 0), nid=None)


def test_intake_rejects_another_patient_on_a_known_episode(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    other = validate_national_id(valid_national_id("020280"))
    with pytest.raises(PatientProblem, match="does not match"):
        intake(store, ev(EventKind.ADMISSION_NOTIFIED, 1), nid=other)


def test_the_national_id_is_stored_only_in_the_patient_table(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    found: dict[str, int] = {}
    with store.engine.connect() as connection:
        for name, table in pathway_metadata().tables.items():
            for row in connection.execute(table.select()):
                text = "".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
                if NID.value in text:
                    found[name] = found.get(name, 0) + 1
    assert found == {"patient": 1}


def test_an_early_municipal_event_is_announced_when_the_fold_accepts_it(
    store: PathwayStore,
) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    service_ready = ev(EventKind.SERVICE_READY, 10)
    store.record_event(service_ready, source=MUNICIPAL_EVENTS)  # overtook the notice
    notice = ev(EventKind.DISCHARGE_READY_NOTIFIED, 5, ready_at=T0)
    store.record_event(notice, source=HOSPITAL_EVENTS)
    assert [e.event_id for e in pathway_events(store)][1:] == [
        f"{notice.event_id}:pathway",
        f"{service_ready.event_id}:pathway",
    ]


def test_a_skipped_event_is_not_announced(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    skipped = store.record_event(ev(EventKind.SERVICE_READY, 10), source=MUNICIPAL_EVENTS)
    assert (skipped.skipped is not None, len(pathway_events(store))) == (True, 1)


def task_update(
    task_id: str,
    kind: coordination_pb2.TaskKind.ValueType,
    status: coordination_pb2.TaskStatus.ValueType,
    version: int,
    minutes: int = 60,
) -> coordination_pb2.TaskUpdate:
    update = coordination_pb2.TaskUpdate(
        update_id=f"{task_id}:{version}",
        task=coordination_pb2.Task(
            task_id=task_id,
            episode_id=EPISODE,
            municipality="1103",
            unit="IKART",
            kind=kind,
            status=status,
            version=version,
        ),
    )
    update.task.updated_at.FromDatetime(T0 + dt.timedelta(minutes=minutes))
    return update


def record_task(store: PathwayStore, update: coordination_pb2.TaskUpdate) -> Recorded:
    return store.record_task(task_report(update, now=T0))


def received(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    intake(store, ev(EventKind.DISCHARGE_READY_NOTIFIED, 5, ready_at=T0, needs=(Need.HOUSING,)))
    intake(store, ev(EventKind.DISCHARGED, 10, destination=Destination.HOUSING))


def test_done_rehabilitation_intake_task_moves_received_to_rehabilitation(
    store: PathwayStore,
) -> None:
    received(store)
    kind = coordination_pb2.TASK_KIND_REHABILITATION_INTAKE
    record_task(store, task_update("t1", kind, coordination_pb2.TASK_STATUS_DONE, 2))
    assert store.get(EPISODE).stage == pathway_pb2.STAGE_REHABILITATION  # type: ignore[union-attr]


def test_open_tasks_list_their_unit_on_the_pathway(store: PathwayStore) -> None:
    received(store)
    kind = coordination_pb2.TASK_KIND_REHABILITATION_INTAKE
    record_task(store, task_update("t1", kind, coordination_pb2.TASK_STATUS_OPEN, 1))
    assert list(store.get(EPISODE).units) == ["IKART"]  # type: ignore[union-attr]


def test_an_older_task_version_is_ignored(store: PathwayStore) -> None:
    received(store)
    kind = coordination_pb2.TASK_KIND_REHABILITATION_INTAKE
    record_task(store, task_update("t1", kind, coordination_pb2.TASK_STATUS_DONE, 2))
    older = record_task(store, task_update("t1", kind, coordination_pb2.TASK_STATUS_OPEN, 1))
    assert older.duplicate


def test_a_stage_change_by_a_task_is_announced_once_without_a_cause(store: PathwayStore) -> None:
    received(store)
    kind = coordination_pb2.TASK_KIND_FOLLOW_UP_VISIT
    record_task(store, task_update("t9", kind, coordination_pb2.TASK_STATUS_DONE, 3))
    record_task(store, task_update("t9", kind, coordination_pb2.TASK_STATUS_DONE, 4))
    tasks = [e for e in pathway_events(store) if not e.HasField("cause")]
    assert [(e.event_id, e.to_stage) for e in tasks] == [
        ("task:t9:done:pathway", pathway_pb2.STAGE_CLOSED)
    ]


def test_list_by_unit_kind_finds_pathways_with_open_tasks_of_any_office(
    store: PathwayStore,
) -> None:
    received(store)
    update = task_update(
        "t1", coordination_pb2.TASK_KIND_START_HOME_CARE, coordination_pb2.TASK_STATUS_OPEN, 1
    )
    update.task.unit = "HOME_CARE/MADLA"
    record_task(store, update)
    pathways, _ = store.list_pathways(ListFilter(unit="HOME_CARE"), page_size=10)
    assert [p.episode_id for p in pathways] == [EPISODE]


def test_the_migration_creates_exactly_the_modelled_tables(store: PathwayStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, pathway_metadata()) == []


# --- the pseudonym key rotates (issue 8 item 5) ----------------------------------------------
ROTATED = PseudonymKeys.parse("v1=test-key\nv2=the-next-key")


def test_a_returning_patient_is_taken_in_after_the_pseudonym_key_changed(
    store: PathwayStore,
) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    rotated = PathwayStore(store.engine, ROTATED)
    intake(rotated, ev(EventKind.ADMITTED, 60, episode_id="81234:E2"))
    assert rotated.get("81234:E2").patient_pseudonym == rotated.pseudonym(NID)  # type: ignore[union-attr]


def test_an_episode_keeps_its_pseudonym_and_its_patient_after_the_key_rotated(
    store: PathwayStore,
) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    rotated = PathwayStore(store.engine, ROTATED)
    assert rotated.intake_facts(EPISODE, NID) == (T0, None)
    intake(rotated, ev(EventKind.ADMISSION_NOTIFIED, 1))
    assert rotated.get(EPISODE).patient_pseudonym == store.pseudonym(NID)  # type: ignore[union-attr]


def test_another_patient_still_does_not_match_after_the_key_rotated(store: PathwayStore) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    rotated = PathwayStore(store.engine, ROTATED)
    other = validate_national_id(valid_national_id("020280"))
    assert rotated.intake_facts(EPISODE, other) == (
        T0,
        "does not match the patient already on this episode",
    )


def test_a_patient_of_a_key_gone_from_the_key_file_is_found_by_the_number(
    store: PathwayStore,
) -> None:
    intake(store, ev(EventKind.ADMITTED, 0))
    only_new = PathwayStore(store.engine, PseudonymKeys.parse("v2=the-next-key"))
    intake(only_new, ev(EventKind.ADMISSION_NOTIFIED, 1), nid=NID)
    intake(only_new, ev(EventKind.ADMITTED, 60, episode_id="81234:E2"))
    with Session(store.engine) as session:
        rows = session.exec(select(PseudonymRow.key_version, PseudonymRow.patient_id)).all()
        assert (len(session.exec(select(PatientRow)).all()), sorted(rows)) == (1, [(1, 1), (2, 1)])


def test_the_same_event_id_with_other_content_is_a_conflict(store: PathwayStore) -> None:
    admitted = ev(EventKind.ADMITTED, 0)
    intake(store, admitted)
    changed = dataclasses.replace(
        admitted, occurred_at=admitted.occurred_at + dt.timedelta(hours=1)
    )
    with pytest.raises(EventIdConflict, match="other content"):
        store.record_event(changed, source=HOSPITAL_EVENTS)


def test_patients_of_the_first_schema_keep_their_pseudonym_as_version_1(engine: Engine) -> None:
    config = alembic_config(MIGRATIONS, engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text("INSERT INTO patient (pseudonym, national_id, created_at) VALUES (:p, :n, :t)"),
            {"p": pseudonymise(NID, "test-key"), "n": NID.value, "t": T0},
        )
    migrate(engine, MIGRATIONS)
    with Session(engine) as session:
        found = PathwayStore(engine, ROTATED).patients.find(session, NID)
    assert (found.patient_id, pseudonymise(NID, "test-key") in found.known.pseudonyms) == (1, True)
