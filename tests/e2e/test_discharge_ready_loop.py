"""End to end, as the users meet it: three service processes on real Kafka, gRPC only.

A hospital's discharge-ready notice puts an "answer the hospital" task on the health
office's stream; the coordinator answers "cannot receive" and later reports the service
ready; the liability clock then holds exactly the days of the rule (notice day 0,
service ready day 3 -> 3 days)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import grpc
import pytest
from clock_probe import free_port

from overgang.config import Settings
from overgang.events import OSLO, Division, EpisodeEvent, EventKind, Need
from overgang.v1 import coordination_pb2, liability_pb2
from tooling.clients import Clients, Submission
from tooling.launcher import ServiceProcess
from tooling.simulation import synthetic_national_id

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    addresses = {
        name: f"127.0.0.1:{free_port()}" for name in ("pathway", "coordination", "discharge")
    }
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "OVERGANG_DATA_DIR": str(tmp_path),
        "OVERGANG_CLOCK_DATE": "2024-04-01",
        "OVERGANG_APP_ID_SUFFIX": f"-e2e-{uuid.uuid4().hex[:8]}",
        "PATHWAY_GRPC_ADDR": addresses["pathway"],
        "COORDINATION_GRPC_ADDR": addresses["coordination"],
        "DISCHARGE_GRPC_ADDR": addresses["discharge"],
    }
    processes = [
        ServiceProcess(name, addresses[name], tmp_path / f"{name}.log", env=env).start()
        for name in addresses
    ]
    try:
        for process in processes:
            process.wait_serving(180)
        yield Settings(
            pathway_grpc=addresses["pathway"],
            coordination_grpc=addresses["coordination"],
            discharge_grpc=addresses["discharge"],
        )
    finally:
        for process in processes:
            process.stop()


def event(episode: str, kind: EventKind, at: dt.datetime, **extra: Any) -> EpisodeEvent:
    return EpisodeEvent(
        event_id=f"{episode}:{kind.value}",
        episode_id=episode,
        occurred_at=at,
        municipality="1103",
        division=Division.SOMATIC,
        kind=kind,
        **extra,
    )


def stream_tasks(clients: Clients, unit: str) -> tuple[Queue[Any], Any]:
    updates: Queue[Any] = Queue()
    call = clients.coordination.StreamTasks(
        coordination_pb2.StreamTasksRequest(unit=unit), metadata=clients.md
    )

    def pump() -> None:
        try:
            for update in call:
                updates.put(update)
        except grpc.RpcError:
            pass

    threading.Thread(target=pump, daemon=True).start()
    return updates, call


def wait_for_task(updates: Queue[Any], episode: str, kind: int, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            update = updates.get(timeout=1)
        except Empty:
            continue
        if update.task.episode_id == episode and update.task.kind == kind:
            return update.task
    raise AssertionError(f"no task of kind {kind} for {episode} within {timeout} s")


def wait_for_liability(clients: Clients, episode: str, days: int, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = clients.liability.GetEpisode(
                liability_pb2.GetEpisodeRequest(episode_id=episode), timeout=5
            )
            if last.status == liability_pb2.ENDED and last.liable_days == days:
                return last
        except grpc.RpcError:
            pass
        time.sleep(1)
    raise AssertionError(f"liability for {episode} never reached {days} days: {last}")


def test_cannot_receive_then_service_ready_on_day_3_gives_exactly_3_liable_days(
    stack: Settings,
) -> None:
    clients = Clients(stack)
    episode = f"{random.randint(10_000, 99_999)}:E2E-{uuid.uuid4().hex[:8]}"
    notice_at = dt.datetime(2024, 3, 4, 10, 0, tzinfo=OSLO)
    updates, call = stream_tasks(clients, "HEALTH_OFFICE")
    try:
        nid = synthetic_national_id(random.Random(5))
        for n, e in enumerate(
            [
                event(episode, EventKind.ADMITTED, notice_at - dt.timedelta(days=3)),
                event(
                    episode,
                    EventKind.ADMISSION_NOTIFIED,
                    notice_at - dt.timedelta(days=3, hours=-2),
                    needs=(Need.HOME_NURSING,),
                ),
                event(
                    episode,
                    EventKind.DISCHARGE_READY_NOTIFIED,
                    notice_at,
                    ready_at=notice_at - dt.timedelta(hours=1),
                    needs=(Need.HOME_NURSING,),
                ),
            ]
        ):
            clients.submit(Submission(n, e, nid if n == 0 else ""))

        task = wait_for_task(updates, episode, coordination_pb2.TASK_KIND_ANSWER_HOSPITAL)
        assert task.unit.startswith("HEALTH_OFFICE")

        answer = coordination_pb2.AnswerHospitalRequest(
            episode_id=episode, can_receive=False, expected_ready_date="2024-03-07"
        )
        answer.answered_at.FromDatetime((notice_at + dt.timedelta(hours=3)).astimezone(dt.UTC))
        clients.coordination.AnswerHospital(answer, timeout=10)
        ready = coordination_pb2.ReportServiceReadyRequest(episode_id=episode)
        ready.ready_at.FromDatetime((notice_at + dt.timedelta(days=3)).astimezone(dt.UTC))
        clients.coordination.ReportServiceReady(ready, timeout=10)

        statement = wait_for_liability(clients, episode, days=3)
        assert (statement.start, statement.end, statement.amount_nok) == (
            "2024-03-04",
            "2024-03-07",
            3 * 5_745,
        )
    finally:
        call.cancel()
        clients.close()
