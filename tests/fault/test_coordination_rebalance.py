"""A rebalance of the coordination service: two workers (one consumer group, one
database) share the pathway topic's partitions; when one leaves while pathway events are
still arriving, the other takes its partitions over, and every task is made once."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock_probe import free_port
from kafka import KafkaProducer
from kafka_fixture import skip_history

from coordination.convert import change_to_proto
from coordination.domain.planning import PathwayChange
from overgang.config import Settings
from overgang.events import Division, EpisodeEvent, EventKind, Need
from overgang.kafka.topics import PATHWAY_EVENTS, ensure_topics
from overgang.vocabulary import Stage
from tooling.launcher import ServiceProcess

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

NOW = dt.datetime(2024, 3, 20, 9, 0, tzinfo=dt.UTC)


def notice(episode_id: str) -> PathwayChange:
    cause = EpisodeEvent(
        event_id=f"{episode_id}:notice",
        episode_id=episode_id,
        occurred_at=NOW,
        municipality="1103",
        division=Division.SOMATIC,
        kind=EventKind.DISCHARGE_READY_NOTIFIED,
        ready_at=NOW,
        needs=(Need.HOME_NURSING,),
    )
    return PathwayChange(
        event_id=f"{episode_id}:notice:pathway",
        episode_id=episode_id,
        at=NOW,
        municipality="1103",
        division="SOMATIC",
        patient_pseudonym=f"p-{episode_id.rsplit(':', 1)[1]}",
        from_stage=Stage.ADMITTED,
        to_stage=Stage.DISCHARGE_READY,
        needs=(Need.HOME_NURSING,),
        cause=cause,
    )


def produce(bootstrap: str, episodes: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for episode in episodes:
            value = change_to_proto(notice(episode)).SerializeToString()
            producer.send(PATHWAY_EVENTS, key=episode.encode(), value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def answer_tasks(db: Path, prefix: str) -> dict[str, int]:
    """Per episode of this test: how often its ANSWER_HOSPITAL task was announced as
    opened on the task streams (made once = once)."""
    with sqlite3.connect(db, timeout=30) as connection:
        rows = connection.execute(
            "SELECT t.episode_id, count(u.sequence) FROM coordination_tasks t "
            "JOIN coordination_task_updates u ON u.task_id = t.task_id "
            "WHERE t.kind = 'ANSWER_HOSPITAL' AND u.status = 'OPEN' AND t.episode_id LIKE ? "
            "GROUP BY t.episode_id",
            (f"{prefix}%",),
        ).fetchall()
    return {episode: int(n) for episode, n in rows}


@pytest.fixture
def two_workers(
    kafka_bootstrap: str, tmp_path: Path
) -> Iterator[tuple[list[ServiceProcess], Path]]:
    suffix = f"-rebalance-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "coordination.db"
    ensure_topics(Settings(kafka_bootstrap=kafka_bootstrap))
    skip_history(kafka_bootstrap, f"overgang-coordination{suffix}", PATHWAY_EVENTS)
    workers = []
    for n in (1, 2):
        address = f"127.0.0.1:{free_port()}"
        workers.append(
            ServiceProcess(
                "coordination",
                address,
                tmp_path / f"coordination-{n}.log",
                env={
                    "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                    "COORDINATION_GRPC_ADDR": address,
                    "COORDINATION_DATABASE_URL": f"sqlite:///{db}",
                    "OVERGANG_CLOCK_DATE": "2024-03-21",
                    "OVERGANG_DATA_DIR": str(tmp_path / f"data-{n}"),
                    "OVERGANG_APP_ID_SUFFIX": suffix,
                },
            ).start()
        )
    try:
        for worker in workers:
            worker.wait_serving(180)
        yield workers, db
    finally:
        for worker in workers:
            worker.stop()


def wait_for(db: Path, prefix: str, episodes: list[str], timeout: float = 120) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = answer_tasks(db, prefix)
        if set(found) >= set(episodes):
            return found
        time.sleep(1)
    return found


def test_a_coordination_worker_leaving_mid_stream_loses_and_repeats_no_task(
    kafka_bootstrap: str, two_workers: tuple[list[ServiceProcess], Path]
) -> None:
    (first, _second), db = two_workers
    prefix = f"{uuid.uuid4().int % 10**8}:"
    before = [f"{prefix}a{n}" for n in range(30)]
    after = [f"{prefix}b{n}" for n in range(30)]
    produce(kafka_bootstrap, before)
    assert set(wait_for(db, prefix, before)) >= set(before)

    first.stop()  # leaves the group while the second batch arrives
    produce(kafka_bootstrap, after + before[:10])  # and a redelivery of ten
    tasks = wait_for(db, prefix, before + after)
    assert tasks == {episode: 1 for episode in before + after}
