"""CoordinationService over gRPC on an in-process server (SQLite in tmp_path, no Kafka):
streams, claim / complete, the municipality's answers, and the outbox they write."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlmodel import Session, select

from coordination.convert import change_to_proto
from coordination.domain.planning import PathwayChange
from coordination.runtime import CoordinationRuntime
from overgang.codec import CONTENT_TYPE_PROTO, decode_event
from overgang.config import Settings
from overgang.events import OSLO, Destination, Division, EpisodeEvent, EventKind, Need
from overgang.grpc.auth import bearer
from overgang.grpc.errors import field_violations
from overgang.kafka.records import Consumed, reason_of
from overgang.kafka.topics import COORDINATION_TASKS, DEAD_LETTER, MUNICIPAL_EVENTS, PATHWAY_EVENTS
from overgang.sql.outbox import OutboxRow
from overgang.v1 import coordination_pb2, coordination_pb2_grpc, pathway_pb2
from overgang.vocabulary import Stage

NOW = dt.datetime(2026, 3, 10, 10, 0, tzinfo=OSLO)
# The harness's episodes are of municipality 0301 unless a test says otherwise.
TOKENS = ",".join(
    [
        "t-ops=ops",
        "t-ho=coordinator:0301/HEALTH_OFFICE",
        "t-nav=coordinator:0301/NAV",
        "t-kari=coordinator:0301/HEALTH_OFFICE kari",
        "t-ola=coordinator:0301/HEALTH_OFFICE ola",
        "t-stavanger=coordinator:1103/HEALTH_OFFICE stavanger-helsekontor",
        "t-sola=coordinator:1124/HEALTH_OFFICE sola-helsekontor",
        "t-hospital=hospital:70001",
        "t-finance=finance:1103",
    ]
)
OPS = bearer("t-ops")
_ids = itertools.count(1)
_offsets = itertools.count(1)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Harness:
    def __init__(self, runtime: CoordinationRuntime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}")
        self.stub = coordination_pb2_grpc.CoordinationServiceStub(self.channel)

    async def feed(
        self,
        episode: str,
        kind: EventKind,
        to: Stage | None,
        *,
        municipality: str = "0301",
        pseudonym: str = "p-1",
        needs: tuple[Need, ...] = (),
        at: dt.datetime = NOW,
        **fields: Any,
    ) -> str:
        """A pathway event as the pathway service publishes it; returns its cause id."""
        cause = EpisodeEvent(
            event_id=f"ev-{next(_ids)}",
            episode_id=episode,
            occurred_at=at,
            municipality=municipality,
            division=Division.SOMATIC,
            kind=kind,
            needs=needs,
            **fields,
        )
        change = PathwayChange(
            event_id=f"pe-{next(_ids)}",
            episode_id=episode,
            at=at,
            municipality=municipality,
            division="SOMATIC",
            patient_pseudonym=pseudonym,
            to_stage=to,
            cause=cause,
            needs=needs,
        )
        await self.record(change_to_proto(change).SerializeToString(), episode.encode())
        return cause.event_id

    async def notice(self, episode: str, *needs: Need, **kw: Any) -> str:
        return await self.feed(
            episode,
            EventKind.DISCHARGE_READY_NOTIFIED,
            Stage.DISCHARGE_READY,
            needs=needs,
            ready_at=NOW,
            **kw,
        )

    async def record(self, value: bytes | None, key: bytes | None = None) -> None:
        await self.runtime.worker.handle_record(
            Consumed(PATHWAY_EVENTS, partition=0, offset=next(_offsets), key=key, value=value)
        )

    def outbox(self, topic: str) -> list[OutboxRow]:
        with Session(self.runtime.engine) as session:
            query = select(OutboxRow).where(OutboxRow.topic == topic)
            return list(session.exec(query.order_by(OutboxRow.id)))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(tmp_path: Path, tokens: str = TOKENS) -> AsyncIterator[Harness]:
    """`tokens=""`: auth off (loopback), every caller is ops."""
    clock = Clock(NOW)
    settings = Settings(
        coordination_database_url=f"sqlite:///{tmp_path / 'coordination.db'}",
        auth_tokens=tokens,
        auth_tokens_file="",
    )
    runtime = CoordinationRuntime(
        settings, kafka=False, grpc_address="127.0.0.1:0", poll_seconds=0.2, clock=clock
    )
    await runtime.start()
    harness = Harness(runtime, clock)
    try:
        yield harness
    finally:
        await harness.channel.close()
        await runtime.stop()


def run(
    tmp_path: Path, scenario: Callable[[Harness], Awaitable[None]], tokens: str = TOKENS
) -> None:
    async def main() -> None:
        async with running(tmp_path, tokens) as harness:
            await asyncio.wait_for(scenario(harness), timeout=30)

    asyncio.run(main())


async def read(call: Any, timeout: float = 5.0) -> coordination_pb2.TaskUpdate:
    update: coordination_pb2.TaskUpdate = await asyncio.wait_for(call.read(), timeout)
    assert update is not grpc.aio.EOF
    return update


def kind_name(update: coordination_pb2.TaskUpdate) -> str:
    return coordination_pb2.TaskKind.Name(update.task.kind)


# ------------------------------------------------------------------------- StreamTasks
def test_stream_tasks_sends_the_backlog_then_live_updates(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        backlog = await read(call)
        await h.notice("70001:b")
        live = await read(call)
        call.cancel()
        assert [(u.task.episode_id, kind_name(u)) for u in (backlog, live)] == [
            ("70001:a", "TASK_KIND_ANSWER_HOSPITAL"),
            ("70001:b", "TASK_KIND_ANSWER_HOSPITAL"),
        ]

    run(tmp_path, scenario)


def test_stream_tasks_backlog_leaves_out_done_tasks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        await h.feed("70001:a", EventKind.MUNICIPALITY_ANSWERED, None, can_receive=True)
        await h.notice("70001:b")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        first = await read(call)
        call.cancel()
        assert first.task.episode_id == "70001:b"

    run(tmp_path, scenario)


def test_stream_tasks_resumed_after_a_sequence_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        await h.notice("70001:b")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        seen = [await read(call)]
        call.cancel()  # the client drops after one update ...
        # ... while the service goes on
        await h.stub.ClaimTask(
            coordination_pb2.ClaimTaskRequest(task_id=seen[0].task.task_id, coordinator="kari"),
            metadata=OPS,
        )
        await h.notice("70001:c")
        resumed = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(
                unit="HEALTH_OFFICE", after_sequence=seen[0].sequence
            ),
            metadata=OPS,
        )
        seen += [await read(resumed) for _ in range(3)]
        with pytest.raises(TimeoutError):
            await read(resumed, timeout=0.8)  # nothing more
        resumed.cancel()
        outbox = [
            coordination_pb2.TaskUpdate.FromString(r.value) for r in h.outbox(COORDINATION_TASKS)
        ]
        assert [u.sequence for u in seen] == [u.sequence for u in outbox]

    run(tmp_path, scenario)


def test_stream_for_health_office_includes_its_sub_offices(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:stavanger", municipality="1103")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        update = await read(call)
        call.cancel()
        assert update.task.unit.startswith("HEALTH_OFFICE/")

    run(tmp_path, scenario)


def test_stream_for_another_unit_leaves_out_health_office_tasks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a", Need.ASSISTIVE_AIDS)
        call = h.stub.StreamTasks(coordination_pb2.StreamTasksRequest(unit="NAV"), metadata=OPS)
        update = await read(call)
        with pytest.raises(TimeoutError):
            await read(call, timeout=0.5)
        call.cancel()
        assert kind_name(update) == "TASK_KIND_ORDER_ASSISTIVE_AIDS"

    run(tmp_path, scenario)


def test_coordinator_may_not_stream_another_unit(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=bearer("t-nav")
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read(call)
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


def test_stream_without_unit_names_the_unit_field(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        call = h.stub.StreamTasks(coordination_pb2.StreamTasksRequest(), metadata=OPS)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read(call)
        assert [f for f, _ in field_violations(err.value)] == ["unit"]

    run(tmp_path, scenario)


def test_escalation_of_an_overdue_task_reaches_the_stream(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        await read(call)
        h.clock.now = NOW + dt.timedelta(days=1)
        await h.runtime.worker.escalate_overdue()
        update = await read(call)
        call.cancel()
        assert (update.task.escalated, update.task.escalated_to) == (True, "HEALTH_OFFICE/lead")

    run(tmp_path, scenario)


# ------------------------------------------------------------------ claim / complete
async def _answer_task_id(h: Harness, episode: str = "70001:a") -> str:
    cause = await h.notice(episode)
    return f"{episode}:ANSWER_HOSPITAL:{cause}"


def test_claim_of_a_task_claimed_by_another_coordinator_fails_precondition(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _answer_task_id(h)
        await h.stub.ClaimTask(
            coordination_pb2.ClaimTaskRequest(task_id=task_id), metadata=bearer("t-kari")
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.ClaimTask(
                coordination_pb2.ClaimTaskRequest(task_id=task_id), metadata=bearer("t-ola")
            )
        assert (err.value.code(), "kari" in (err.value.details() or "")) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            True,
        )

    run(tmp_path, scenario)


def test_complete_of_an_unknown_task_is_not_found(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.CompleteTask(
                coordination_pb2.CompleteTaskRequest(task_id="nope"), metadata=OPS
            )
        assert err.value.code() is grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


def test_complete_of_a_done_task_fails_precondition(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _answer_task_id(h)
        await h.stub.CompleteTask(
            coordination_pb2.CompleteTaskRequest(task_id=task_id), metadata=OPS
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.CompleteTask(
                coordination_pb2.CompleteTaskRequest(task_id=task_id), metadata=OPS
            )
        assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    run(tmp_path, scenario)


def test_complete_publishes_a_done_task_update_via_the_outbox(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _answer_task_id(h)
        await h.stub.CompleteTask(
            coordination_pb2.CompleteTaskRequest(task_id=task_id), metadata=OPS
        )
        last = coordination_pb2.TaskUpdate.FromString(h.outbox(COORDINATION_TASKS)[-1].value)
        assert (last.task.task_id, last.task.status, last.task.version) == (
            task_id,
            coordination_pb2.TASK_STATUS_DONE,
            2,
        )

    run(tmp_path, scenario)


def test_coordinator_may_not_claim_another_units_task(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _answer_task_id(h)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.ClaimTask(
                coordination_pb2.ClaimTaskRequest(task_id=task_id), metadata=bearer("t-nav")
            )
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


# ------------------------------------------------------------ AnswerHospital / ready
def test_answer_cannot_receive_without_expected_date_names_the_field(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.AnswerHospital(
                coordination_pb2.AnswerHospitalRequest(episode_id="70001:a", can_receive=False),
                metadata=OPS,
            )
        assert [f for f, _ in field_violations(err.value)] == ["expectedReadyDate"]

    run(tmp_path, scenario)


def test_answer_with_malformed_date_and_episode_names_both_fields(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.AnswerHospital(
                coordination_pb2.AnswerHospitalRequest(
                    episode_id="no-colon", can_receive=False, expected_ready_date="13.03.2026"
                ),
                metadata=OPS,
            )
        assert sorted(f for f, _ in field_violations(err.value)) == [
            "episodeId",
            "expectedReadyDate",
        ]

    run(tmp_path, scenario)


def test_answer_for_an_unknown_episode_is_not_found(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await h.stub.AnswerHospital(
                coordination_pb2.AnswerHospitalRequest(
                    episode_id="70001:unknown", can_receive=True
                ),
                metadata=OPS,
            )
        assert err.value.code() is grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


def test_answer_publishes_municipality_answered_for_the_episodes_municipality(
    tmp_path: Path,
) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a", municipality="1103")
        accepted = await h.stub.AnswerHospital(
            coordination_pb2.AnswerHospitalRequest(
                episode_id="70001:a", can_receive=False, expected_ready_date="2026-03-13"
            ),
            metadata=OPS,
        )
        (record,) = h.outbox(MUNICIPAL_EVENTS)
        event = decode_event(record.value)
        assert (
            event.event_id,
            event.kind,
            event.municipality,
            event.expected_ready_date,
            event.occurred_at,
            record.key,
            json.loads(record.headers_json),
        ) == (
            accepted.event_id,
            EventKind.MUNICIPALITY_ANSWERED,
            "1103",
            dt.date(2026, 3, 13),
            NOW,
            b"70001:a",
            [["content-type", CONTENT_TYPE_PROTO.decode()]],
        )

    run(tmp_path, scenario)


def test_answer_with_answered_at_has_a_deterministic_event_id(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        request = coordination_pb2.AnswerHospitalRequest(episode_id="70001:a", can_receive=True)
        request.answered_at.FromDatetime(NOW.astimezone(dt.UTC))
        first = await h.stub.AnswerHospital(request, metadata=OPS)
        second = await h.stub.AnswerHospital(request, metadata=OPS)
        assert first.event_id == second.event_id

    run(tmp_path, scenario)


def test_health_office_coordinator_may_answer_for_its_episode(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        accepted = await h.stub.AnswerHospital(
            coordination_pb2.AnswerHospitalRequest(episode_id="70001:a", can_receive=True),
            metadata=bearer("t-ho"),
        )
        assert accepted.event_id.startswith("coord-answer-")

    run(tmp_path, scenario)


def test_report_service_ready_publishes_service_ready(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:a")
        await h.stub.ReportServiceReady(
            coordination_pb2.ReportServiceReadyRequest(episode_id="70001:a"), metadata=OPS
        )
        (record,) = h.outbox(MUNICIPAL_EVENTS)
        assert decode_event(record.value).kind is EventKind.SERVICE_READY

    run(tmp_path, scenario)


# -------------------------------------------------------------- pathway event intake
def test_undecodable_pathway_record_goes_to_dead_letter_with_the_reason(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.record(b"\xff\xffnot protobuf", b"k")
        (record,) = h.outbox(DEAD_LETTER)
        headers = [(n, v.encode("latin-1")) for n, v in json.loads(record.headers_json)]
        assert "not a protobuf overgang.v1.PathwayEvent" in (reason_of(headers) or "")

    run(tmp_path, scenario)


def test_redelivered_pathway_event_changes_nothing(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        change = PathwayChange(
            event_id="pe-redelivered",
            episode_id="70001:a",
            at=NOW,
            municipality="0301",
            division="SOMATIC",
            to_stage=Stage.RECEIVED,
            cause=EpisodeEvent(
                event_id="ev-discharged",
                episode_id="70001:a",
                occurred_at=NOW,
                municipality="0301",
                division=Division.SOMATIC,
                kind=EventKind.DISCHARGED,
                destination=Destination.HOME,
            ),
        )
        value = change_to_proto(change).SerializeToString()
        await h.record(value)
        before = len(h.outbox(COORDINATION_TASKS))
        await h.record(value)
        assert len(h.outbox(COORDINATION_TASKS)) == before

    run(tmp_path, scenario)


# ------------------------------------------------------------- field-violation paths
def _json_names(message: Any) -> set[str]:
    return {f.json_name for f in message.DESCRIPTOR.fields}


def test_field_violation_paths_are_the_requests_json_names(tmp_path: Path) -> None:
    future = NOW + dt.timedelta(days=1)

    async def scenario(h: Harness) -> None:
        answer = coordination_pb2.AnswerHospitalRequest(
            episode_id="", can_receive=False, expected_ready_date="soon"
        )
        answer.answered_at.FromDatetime(future.astimezone(dt.UTC))
        ready = coordination_pb2.ReportServiceReadyRequest(episode_id="no-colon")
        ready.ready_at.FromDatetime(future.astimezone(dt.UTC))
        calls: list[tuple[Any, Awaitable[Any]]] = [
            (
                stream := coordination_pb2.StreamTasksRequest(after_sequence=-1),
                read(h.stub.StreamTasks(stream, metadata=OPS)),
            ),
            (
                claim := coordination_pb2.ClaimTaskRequest(),
                h.stub.ClaimTask(claim, metadata=OPS),
            ),
            (
                done := coordination_pb2.CompleteTaskRequest(note="x" * 1001),
                h.stub.CompleteTask(done, metadata=OPS),
            ),
            (answer, h.stub.AnswerHospital(answer, metadata=OPS)),
            (ready, h.stub.ReportServiceReady(ready, metadata=OPS)),
        ]
        found: dict[str, list[str]] = {}
        for request, call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            paths = [f for f, _ in field_violations(err.value)]
            assert set(paths) <= _json_names(request), paths
            found[type(request).__name__] = sorted(set(paths))
        assert found == {
            "StreamTasksRequest": ["afterSequence", "unit"],
            "ClaimTaskRequest": ["taskId"],  # the claimant is the caller, not a field
            "CompleteTaskRequest": ["note", "taskId"],
            "AnswerHospitalRequest": ["answeredAt", "episodeId", "expectedReadyDate"],
            "ReportServiceReadyRequest": ["episodeId", "readyAt"],
        }

    run(tmp_path, scenario)


# ----------------------------------------------------------------------- the clock
def test_a_change_without_any_time_of_its_own_takes_the_injected_clock(tmp_path: Path) -> None:
    later = NOW + dt.timedelta(days=5)

    async def scenario(h: Harness) -> None:
        h.clock.now = later
        msg = pathway_pb2.PathwayEvent(
            event_id="pe-no-time", episode_id="70001:a", to_stage=pathway_pb2.STAGE_RECEIVED
        )
        msg.pathway.municipality = "0301"
        await h.record(msg.SerializeToString(), b"70001:a")
        episode = h.runtime.store.episode("70001:a")
        assert episode is not None
        assert episode.reception_day == later.date()

    run(tmp_path, scenario)
