"""Issue 8 item 1: a coordinator is scoped by municipality and unit. Unit names are the same
in every municipality, so `coordinator:<kommunenummer>/<unit>` sees, claims and completes
only its municipality's tasks of its unit (or a unit below it), and answers only for its
municipality's episodes. Stavanger is 1103 (health offices split by office), Sola 1124."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from overgang.grpc.auth import bearer
from overgang.kafka.topics import MUNICIPAL_EVENTS
from overgang.v1 import coordination_pb2

from .test_coordination_grpc import OPS, Harness, read, run

STAVANGER = bearer("t-stavanger")  # coordinator:1103/HEALTH_OFFICE
STAVANGER_EPISODE = "70001:stavanger"
SOLA_EPISODE = "70001:sola"


async def _office_task(h: Harness, episode: str = STAVANGER_EPISODE) -> tuple[str, str]:
    """A 1103 episode's answer task: (task id, its office, e.g. HEALTH_OFFICE/EIGANES_TASTA)."""
    await h.notice(episode, municipality="1103")
    (task,) = h.runtime.store.tasks_of(episode)
    return task.task_id, task.unit


async def _sola_task(h: Harness) -> str:
    await h.notice(SOLA_EPISODE, municipality="1124")
    (task,) = h.runtime.store.tasks_of(SOLA_EPISODE)
    return task.task_id


async def _refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


def _answer(episode: str) -> coordination_pb2.AnswerHospitalRequest:
    return coordination_pb2.AnswerHospitalRequest(episode_id=episode, can_receive=True)


# ------------------------------------------------------------- municipal answers
def test_a_coordinator_of_1103_cannot_answer_for_a_1124_episode(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await _sola_task(h)
        err = await _refusal(h.stub.AnswerHospital(_answer(SOLA_EPISODE), metadata=STAVANGER))
        assert (err.code(), len(h.outbox(MUNICIPAL_EVENTS))) == (
            grpc.StatusCode.PERMISSION_DENIED,
            0,  # Sola's payment clock goes on
        )

    run(tmp_path, scenario)


def test_a_coordinator_of_1103_cannot_report_service_ready_for_a_1124_episode(
    tmp_path: Path,
) -> None:
    async def scenario(h: Harness) -> None:
        await _sola_task(h)
        request = coordination_pb2.ReportServiceReadyRequest(episode_id=SOLA_EPISODE)
        err = await _refusal(h.stub.ReportServiceReady(request, metadata=STAVANGER))
        assert (err.code(), len(h.outbox(MUNICIPAL_EVENTS))) == (
            grpc.StatusCode.PERMISSION_DENIED,
            0,
        )

    run(tmp_path, scenario)


def test_a_coordinator_of_1103_answers_for_a_1103_episode(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await _office_task(h)
        await h.stub.AnswerHospital(_answer(STAVANGER_EPISODE), metadata=STAVANGER)
        assert len(h.outbox(MUNICIPAL_EVENTS)) == 1

    run(tmp_path, scenario)


def test_a_refusal_to_answer_names_no_patient_data(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice(SOLA_EPISODE, municipality="1124", pseudonym="p-sola")
        err = await _refusal(h.stub.AnswerHospital(_answer(SOLA_EPISODE), metadata=STAVANGER))
        details = err.details() or ""
        assert [s for s in (SOLA_EPISODE, "p-sola", "1124") if s in details] == []

    run(tmp_path, scenario)


def test_an_unknown_episode_is_not_found_for_a_coordinator_too(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        err = await _refusal(h.stub.AnswerHospital(_answer("70001:nobody"), metadata=STAVANGER))
        assert err.code() is grpc.StatusCode.NOT_FOUND

    run(tmp_path, scenario)


# ------------------------------------------------------------------- task streams
def test_a_coordinators_stream_leaves_out_another_municipalitys_tasks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:sola-1", municipality="1124")
        await h.notice("70001:stavanger-1", municipality="1103")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=STAVANGER
        )
        seen = [(await read(call)).task.episode_id]  # the backlog
        await h.notice("70001:sola-2", municipality="1124")
        await h.notice("70001:stavanger-2", municipality="1103")
        seen.append((await read(call)).task.episode_id)  # live
        call.cancel()
        assert seen == ["70001:stavanger-1", "70001:stavanger-2"]

    run(tmp_path, scenario)


def test_a_coordinator_streams_an_office_below_its_unit(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id, office = await _office_task(h)
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit=office), metadata=STAVANGER
        )
        update = await read(call)
        call.cancel()
        assert update.task.task_id == task_id

    run(tmp_path, scenario)


def test_a_coordinator_of_an_office_may_not_stream_the_whole_unit(tmp_path: Path) -> None:
    tokens = "t-eiganes=coordinator:1103/HEALTH_OFFICE/EIGANES_TASTA"

    async def scenario(h: Harness) -> None:
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=bearer("t-eiganes")
        )
        err = await _refusal(read(call))
        assert err.code() is grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario, tokens)


def test_ops_streams_every_municipalitys_tasks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:sola-1", municipality="1124")
        await h.notice("70001:stavanger-1", municipality="1103")
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=OPS
        )
        seen = [(await read(call)).task.episode_id for _ in range(2)]
        call.cancel()
        assert seen == ["70001:sola-1", "70001:stavanger-1"]

    run(tmp_path, scenario)


@pytest.mark.parametrize("token", ["t-hospital", "t-finance"])
def test_only_coordinators_and_ops_stream_tasks(tmp_path: Path, token: str) -> None:
    async def scenario(h: Harness) -> None:
        call = h.stub.StreamTasks(
            coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"), metadata=bearer(token)
        )
        err = await _refusal(read(call))
        assert err.code() is grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


# ---------------------------------------------------------------- claim / complete
def test_a_coordinator_of_1103_may_not_claim_a_1124_task(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _sola_task(h)
        request = coordination_pb2.ClaimTaskRequest(task_id=task_id)
        err = await _refusal(h.stub.ClaimTask(request, metadata=STAVANGER))
        assert err.code() is grpc.StatusCode.PERMISSION_DENIED

    run(tmp_path, scenario)


def test_a_coordinator_of_1103_may_not_complete_a_1124_task(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id = await _sola_task(h)
        request = coordination_pb2.CompleteTaskRequest(task_id=task_id)
        err = await _refusal(h.stub.CompleteTask(request, metadata=STAVANGER))
        assert (err.code(), h.runtime.store.tasks_of(SOLA_EPISODE)[0].status.value) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "OPEN",
        )

    run(tmp_path, scenario)


def test_a_coordinator_completes_a_task_of_an_office_below_its_unit(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id, _office = await _office_task(h)
        request = coordination_pb2.CompleteTaskRequest(task_id=task_id)
        task = await h.stub.CompleteTask(request, metadata=STAVANGER)
        assert task.status == coordination_pb2.TASK_STATUS_DONE

    run(tmp_path, scenario)


def test_the_claimant_of_a_task_is_the_callers_identity(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        task_id, _office = await _office_task(h)
        request = coordination_pb2.ClaimTaskRequest(task_id=task_id, coordinator="someone-else")
        task = await h.stub.ClaimTask(request, metadata=STAVANGER)
        assert task.claimed_by == "stavanger-helsekontor"

    run(tmp_path, scenario)


# ---------------------------------------------------------------------- auth off
def test_with_auth_off_every_caller_is_ops(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        await h.notice("70001:sola-1", municipality="1124")
        await h.notice("70001:stavanger-1", municipality="1103")
        call = h.stub.StreamTasks(coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"))
        seen = [(await read(call)).task.episode_id for _ in range(2)]
        call.cancel()
        assert seen == ["70001:sola-1", "70001:stavanger-1"]

    run(tmp_path, scenario, tokens="")
