"""The thin Kafka wiring, with a fake consumer: offsets are committed only past records
the worker has applied, and a record that fails is sought back to and read again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from overgang.config import Settings
from overgang.kafka.records import Consumed, DeadLetterSink
from overgang.kafka.topics import HOSPITAL_EVENTS
from pathway import streams
from pathway.streams import PathwayStreams

TP = TopicPartition(HOSPITAL_EVENTS, 2)


class FakeWorker:
    def __init__(self, failing: set[int]) -> None:
        self.failing = failing
        self.handled: list[int] = []

    async def handle(self, record: Consumed, _dead_letters: DeadLetterSink) -> None:
        if record.offset in self.failing:
            raise ConnectionError("database down")
        self.handled.append(record.offset)


class FakeConsumer:
    def __init__(self, offsets: list[int]) -> None:
        self.offsets = offsets
        self.sought: list[tuple[TopicPartition, int]] = []
        self.committed: list[dict[TopicPartition, int]] = []

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Consumed]]:
        return {TP: [Consumed(TP.topic, TP.partition, o, b"k", b"v") for o in self.offsets]}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.append(offsets)


def poll(offsets: list[int], failing: set[int]) -> tuple[FakeWorker, FakeConsumer, bool]:
    worker = FakeWorker(failing)
    consumer = FakeConsumer(offsets)
    wiring = PathwayStreams(Settings(), worker)  # type: ignore[arg-type]
    asyncio.run(wiring._poll_once(consumer))  # type: ignore[arg-type]
    return worker, consumer, wiring.ready.is_set()


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "RETRY_SECONDS", 0.0)


def test_the_offset_after_the_last_applied_record_is_committed() -> None:
    worker, consumer, ready = poll([10, 11, 12], failing=set())
    assert (worker.handled, consumer.committed, consumer.sought, ready) == (
        [10, 11, 12],
        [{TP: 13}],
        [],
        True,
    )


def test_a_failing_record_is_sought_back_to_and_nothing_after_it_is_applied() -> None:
    worker, consumer, _ = poll([10, 11, 12], failing={11})
    assert (worker.handled, consumer.committed, consumer.sought) == ([10], [{TP: 11}], [(TP, 11)])


def test_nothing_is_committed_when_the_first_record_fails() -> None:
    worker, consumer, _ = poll([10, 11], failing={10})
    assert (worker.handled, consumer.committed, consumer.sought) == ([], [], [(TP, 10)])
