"""The clock worker's handling of records: bad input goes to the dead-letter topic,
infrastructure errors are waited out and lose nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from discharge.domain.live_clock import Rules
from discharge.rules import load_profile
from discharge.store import ClockStore
from discharge.worker import ClockWorker
from overgang.codec import CONTENT_TYPE_PROTO, encode_event
from overgang.kafka.records import Consumed, Headers, reason_of
from overgang.kafka.topics import HOSPITAL_EVENTS

from .episode_story import RATES, Episode, at

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)


async def _no_wait(_delay: float) -> None:
    await asyncio.sleep(0)


class Harness:
    def __init__(self, announce_failures: int = 0) -> None:
        self.table: dict[str, Any] = {}
        self.announced: list[bytes] = []
        self.dead: list[Headers] = []
        self.failures_left = announce_failures
        self.worker = ClockWorker(
            ClockStore(self.table),
            Rules(RATES, load_profile()),
            lambda: NOW,
            self.announce,
            self.dead_letter,
            sleep=_no_wait,
        )

    async def announce(self, _episode_id: str, values: Sequence[bytes]) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise KafkaTimeoutError("broker unreachable")
        self.announced.extend(values)

    async def dead_letter(self, _key: bytes | None, _value: bytes | None, headers: Headers) -> None:
        self.dead.append(headers)


def _notice_record(offset: int = 0) -> Consumed:
    event = (
        Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04")).events[-1]
    )
    return Consumed(
        HOSPITAL_EVENTS,
        partition=0,
        offset=offset,
        key=event.episode_id.encode(),
        value=encode_event(event),
        headers=[("content-type", CONTENT_TYPE_PROTO)],
    )


def _run(harness: Harness, record: Consumed) -> None:
    asyncio.run(harness.worker.handle(record))


def test_a_failed_kafka_send_is_retried_and_the_event_still_counts() -> None:
    harness = Harness(announce_failures=3)
    _run(harness, _notice_record())
    assert (harness.dead, len(harness.announced), list(harness.table)) == ([], 1, ["81234:E1"])


def test_an_undecodable_record_goes_to_the_dead_letter_topic_with_the_reason() -> None:
    harness = Harness()
    record = Consumed(HOSPITAL_EVENTS, 0, 7, b"81234:E1", b"\xff\x00garbage", [])
    _run(harness, record)
    assert [reason_of(h) is not None for h in harness.dead] == [True]


def test_a_record_keyed_by_something_else_than_the_episode_is_dead_lettered() -> None:
    harness = Harness()
    good = _notice_record()
    _run(harness, Consumed(good.topic, 0, 1, b"other-key", good.value, good.headers))
    assert (len(harness.dead), harness.table) == (1, {})
