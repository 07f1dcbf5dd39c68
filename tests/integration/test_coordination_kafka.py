"""The coordination service in-process against real Kafka: a discharge-ready notice on
overgang.pathway-events.v1 becomes the health office's ANSWER_HOSPITAL task on
StreamTasks, and AnswerHospital comes back on overgang.municipal-events.v1."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka_fixture import skip_history

from coordination.convert import change_to_proto
from coordination.domain.planning import PathwayChange
from coordination.runtime import CoordinationRuntime
from overgang.codec import decode_event
from overgang.config import Settings
from overgang.events import Division, EpisodeEvent, EventKind, Need
from overgang.kafka.topics import MUNICIPAL_EVENTS, PATHWAY_EVENTS, ensure_topics
from overgang.v1 import coordination_pb2, coordination_pb2_grpc
from overgang.vocabulary import Stage

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, key: bytes, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        producer.send(PATHWAY_EVENTS, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


def _skip_history(bootstrap: str, group_id: str) -> None:
    skip_history(bootstrap, group_id, PATHWAY_EVENTS)


def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()


def _municipal_event(
    bootstrap: str, start: dict[TopicPartition, int], episode_id: str, event_id: str, timeout: float
) -> EpisodeEvent:
    """The event with `event_id`, read from `start` on (what the test produced)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key != episode_id.encode():
                        continue  # another test's record
                    event = decode_event(record.value)
                    if event.event_id == event_id:
                        return event
        raise AssertionError(f"{event_id} not on {MUNICIPAL_EVENTS} within {timeout}s")
    finally:
        consumer.close()


def test_discharge_ready_notice_reaches_stream_and_answer_reaches_municipal_events(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    episode_id = f"70001:{uuid.uuid4().hex[:12]}"
    now = dt.datetime.now(dt.UTC)
    change = PathwayChange(
        event_id=f"pe-{uuid.uuid4().hex}",
        episode_id=episode_id,
        at=now,
        municipality="1103",
        division="SOMATIC",
        patient_pseudonym="p-it",
        from_stage=Stage.ADMITTED,
        to_stage=Stage.DISCHARGE_READY,
        needs=(Need.HOME_NURSING,),
        cause=EpisodeEvent(
            event_id=f"ev-{uuid.uuid4().hex}",
            episode_id=episode_id,
            occurred_at=now,
            municipality="1103",
            division=Division.SOMATIC,
            kind=EventKind.DISCHARGE_READY_NOTIFIED,
            ready_at=now,
            needs=(Need.HOME_NURSING,),
        ),
    )
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        coordination_database_url=f"sqlite:///{tmp_path / 'coordination.db'}",
        auth_tokens="",
    )

    app_id = unique_name("overgang-coordination-it")
    ensure_topics(settings)
    _skip_history(kafka_bootstrap, app_id)

    async def scenario() -> None:
        runtime = CoordinationRuntime(settings, grpc_address="127.0.0.1:0", app_id=app_id)
        await runtime.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
                stub = coordination_pb2_grpc.CoordinationServiceStub(channel)
                call = stub.StreamTasks(coordination_pb2.StreamTasksRequest(unit="HEALTH_OFFICE"))
                await asyncio.to_thread(
                    _produce,
                    kafka_bootstrap,
                    episode_id.encode(),
                    change_to_proto(change).SerializeToString(),
                )
                while True:  # other tests may produce concurrently: find our episode
                    update = await asyncio.wait_for(call.read(), timeout=60)
                    assert update is not grpc.aio.EOF
                    if update.task.episode_id == episode_id:
                        break
                call.cancel()
                assert update.task.kind == coordination_pb2.TASK_KIND_ANSWER_HOSPITAL
                assert update.task.unit.startswith("HEALTH_OFFICE/")

                start = await asyncio.to_thread(_end_offsets, kafka_bootstrap, MUNICIPAL_EVENTS)
                accepted = await stub.AnswerHospital(
                    coordination_pb2.AnswerHospitalRequest(
                        episode_id=episode_id,
                        can_receive=False,
                        expected_ready_date=(now + dt.timedelta(days=3)).date().isoformat(),
                    )
                )
            event = await asyncio.to_thread(
                _municipal_event, kafka_bootstrap, start, episode_id, accepted.event_id, 30.0
            )
            assert (event.kind, event.can_receive, event.municipality) == (
                EventKind.MUNICIPALITY_ANSWERED,
                False,
                "1103",
            )
        finally:
            await runtime.stop()

    asyncio.run(asyncio.wait_for(scenario(), timeout=180))
