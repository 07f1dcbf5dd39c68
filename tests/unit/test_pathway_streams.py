"""The thin Kafka wiring, with a fake consumer: offsets are committed only past records
the worker has applied or dead-lettered; a record that fails with an infrastructure
error is sought back to and read again after a growing backoff; a poison pill (a
deterministic error) is dead-lettered and its partition moves on."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from overgang.config import Settings
from overgang.kafka.records import Consumed, DeadLetterSink, Headers, reason_of
from overgang.kafka.topics import DEAD_LETTER, HOSPITAL_EVENTS
from overgang.retry import FIRST_DELAY_S
from pathway.streams import PathwayStreams

TP = TopicPartition(HOSPITAL_EVENTS, 2)


class FakeWorker:
    """Offsets in `failing` raise `error`; the others are applied."""

    def __init__(self, failing: set[int], error: Exception | None = None) -> None:
        self.failing = failing
        self.error = error or ConnectionError("database down")
        self.handled: list[int] = []

    async def handle(self, record: Consumed, _dead_letters: DeadLetterSink) -> None:
        if record.offset in self.failing:
            raise self.error
        self.handled.append(record.offset)


class PoisonWorker:
    """Dead-letters `poison` offsets through the wiring's sink, as PathwayWorker does."""

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.handled: list[int] = []

    async def handle(self, record: Consumed, dead_letters: DeadLetterSink) -> None:
        if record.offset in self.poison:
            await dead_letters(record.key, record.value, [("dlq.reason", b"processing failed")])
            return
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


class FakeProducer:
    """`up=False`: the broker is unreachable (aiokafka raises a KafkaError subclass)."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.stopped = False
        self.sent: list[tuple[str, bytes | None, Headers]] = []

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Headers
    ) -> None:
        if not self.up:
            raise ConnectionError("broker down")
        self.sent.append((topic, key, headers))


class Wiring:
    def __init__(self, worker: Any, producer: FakeProducer | None = None) -> None:
        self.pauses: list[float] = []
        self.streams = PathwayStreams(Settings(), worker, sleep=self._pause)
        self.streams._producer = producer  # type: ignore[assignment]

    async def _pause(self, seconds: float) -> None:
        self.pauses.append(seconds)

    def poll(self, consumer: FakeConsumer) -> None:
        asyncio.run(self.streams._poll_once(consumer))  # type: ignore[arg-type]


def poll(offsets: list[int], failing: set[int]) -> tuple[FakeWorker, FakeConsumer, bool]:
    worker = FakeWorker(failing)
    consumer = FakeConsumer(offsets)
    wiring = Wiring(worker)
    wiring.poll(consumer)
    return worker, consumer, wiring.streams.ready.is_set()


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


def test_the_backoff_grows_while_the_outage_lasts_and_starts_over_after_it() -> None:
    worker = FakeWorker(failing={10})
    wiring = Wiring(worker)
    for _ in range(3):
        wiring.poll(FakeConsumer([10]))
    worker.failing.clear()  # the database is back
    wiring.poll(FakeConsumer([10]))
    worker.failing.add(11)
    wiring.poll(FakeConsumer([11]))
    first = FIRST_DELAY_S
    assert (wiring.pauses, worker.handled) == ([first, 2 * first, 4 * first, first], [10])


def test_a_poison_pill_is_dead_lettered_and_the_partition_moves_on() -> None:
    producer = FakeProducer()
    consumer = FakeConsumer([10, 11, 12])
    wiring = Wiring(PoisonWorker(poison={11}), producer)
    wiring.poll(consumer)
    assert [(topic, reason_of(headers)) for topic, _key, headers in producer.sent] == [
        (DEAD_LETTER, "processing failed")
    ]
    assert (consumer.committed, consumer.sought, wiring.pauses) == ([{TP: 13}], [], [])


def test_a_dead_letter_the_broker_did_not_acknowledge_is_not_committed_past() -> None:
    producer = FakeProducer(up=False)
    consumer = FakeConsumer([10, 11, 12])
    wiring = Wiring(PoisonWorker(poison={11}), producer)
    wiring.poll(consumer)
    assert (consumer.committed, consumer.sought, producer.sent) == ([{TP: 11}], [(TP, 11)], [])
    # The failed producer is dropped (it may be out of sequence with the broker for good).
    assert (producer.stopped, wiring.streams._producer) == (True, None)
    renewed = FakeProducer()  # the broker is back: the poll reads 11 again
    wiring.streams._producer = renewed  # type: ignore[assignment]
    again = FakeConsumer([11, 12])
    wiring.poll(again)
    assert (again.committed, len(renewed.sent)) == ([{TP: 13}], 1)
