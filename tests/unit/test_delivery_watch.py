"""A record faust lost around a rebalance is not lost to the handler: the watch seeks
back to it (overgang/kafka/delivery_watch.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from overgang.kafka.delivery_watch import DeliveryWatch


class TP(NamedTuple):  # faust's TopicPartition
    topic: str
    partition: int


@dataclass(frozen=True)
class Record:
    offset: int
    topic: str = "overgang.hospital-events.v1"
    partition: int = 0

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class Consumer:
    high: int | None = None
    seeks: list[int] = field(default_factory=list)

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append(offset)

    def highwater(self, tp: Any) -> int | None:
        return self.high

    def assignment(self) -> set[Any]:
        return {TP("overgang.hospital-events.v1", 0)}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admitted(watch: DeliveryWatch, offsets: list[int]) -> list[int]:
    async def run() -> list[int]:
        return [o for o in offsets if await watch.admit(Record(o))]

    return asyncio.run(run())


def test_records_in_order_all_reach_the_handler() -> None:
    consumer = Consumer()
    watch = DeliveryWatch(lambda: consumer, "test")
    assert admitted(watch, [5, 6, 7]) == [5, 6, 7] and consumer.seeks == []


def test_a_record_past_a_lost_one_seeks_back_and_waits_for_it() -> None:
    consumer = Consumer()
    watch = DeliveryWatch(lambda: consumer, "test")
    # 7 and 8 were dropped by faust; 9 arrives; after the seek 7, 8, 9 come again.
    assert admitted(watch, [5, 6, 9, 10, 7, 8, 9, 10]) == [5, 6, 7, 8, 9, 10]
    assert consumer.seeks == [7]


def test_a_record_again_after_a_seek_is_handed_on_it_is_idempotent_downstream() -> None:
    consumer = Consumer()
    watch = DeliveryWatch(lambda: consumer, "test")
    assert admitted(watch, [0, 1, 2, 1, 2, 3]) == [0, 1, 2, 1, 2, 3]


def test_a_partition_whose_last_records_were_lost_is_sought_back_when_it_stalls() -> None:
    consumer, clock = Consumer(high=10), Clock()
    watch = DeliveryWatch(lambda: consumer, "test", stall_seconds=30, clock=clock)
    admitted(watch, [0, 1, 2])
    clock.now = 10
    asyncio.run(watch.check_stalled())
    assert consumer.seeks == []  # not yet stalled
    clock.now = 31
    asyncio.run(watch.check_stalled())
    assert consumer.seeks == [3]


def test_a_partition_read_to_its_end_is_not_stalled() -> None:
    consumer, clock = Consumer(high=3), Clock()
    watch = DeliveryWatch(lambda: consumer, "test", stall_seconds=30, clock=clock)
    admitted(watch, [0, 1, 2])
    clock.now = 100
    asyncio.run(watch.check_stalled())
    assert consumer.seeks == []


def test_a_partition_kept_through_a_rebalance_is_still_checked() -> None:
    consumer = Consumer()
    watch = DeliveryWatch(lambda: consumer, "test")
    admitted(watch, [0, 1, 2])
    watch.retain(None, {TP("overgang.hospital-events.v1", 0)})
    # faust seeks back to the committed 1, but lost 3 from its queue: 4 comes next.
    assert admitted(watch, [1, 2, 4, 3, 4]) == [1, 2, 3, 4] and consumer.seeks == [3]


def test_a_partition_lost_in_a_rebalance_starts_afresh_when_it_comes_back() -> None:
    consumer = Consumer()
    watch = DeliveryWatch(lambda: consumer, "test")
    admitted(watch, [0, 1, 2])
    watch.retain(None, set())
    # another worker had the partition meanwhile and moved it on to 40
    assert admitted(watch, [40, 41]) == [40, 41] and consumer.seeks == []
