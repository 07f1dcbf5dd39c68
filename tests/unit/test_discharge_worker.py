"""The clock worker's handling of records: bad input goes to the dead-letter topic,
infrastructure errors are waited out and lose nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaTimeoutError

from discharge.domain.live_clock import Rules
from discharge.rules import load_profile
from discharge.runtime import MIGRATIONS
from discharge.store import ClockArchive
from discharge.table import ClockTable
from discharge.worker import ClockWorker
from overgang.codec import CONTENT_TYPE_PROTO, encode_event
from overgang.events import MUNICIPAL_KINDS, EpisodeEvent
from overgang.kafka.records import Consumed, Headers, reason_of
from overgang.kafka.topics import CLOCK_TICKS, HOSPITAL_EVENTS, MUNICIPAL_EVENTS
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1.liability_pb2 import LiabilityEvent

from .episode_story import RATES, Episode, at

NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)


async def _no_wait(_delay: float) -> None:
    await asyncio.sleep(0)


class Harness:
    """A worker over a dict table, recording what it announces and dead-letters (its
    announcements can fail a number of times, or always, as a bug);
    `options` go to the worker (an archive, a correction log, a retention)."""

    def __init__(
        self,
        announce_failures: int = 0,
        now: dt.datetime = NOW,
        announce_bug: bool = False,
        **options: Any,
    ) -> None:
        self.table: dict[str, Any] = {}
        self.announced: list[bytes] = []
        self.dead: list[Headers] = []
        self.failures_left = announce_failures
        self.announce_bug = announce_bug
        self.worker = ClockWorker(
            ClockTable(self.table),
            Rules(RATES, load_profile()),
            lambda: now,
            self.announce,
            self.dead_letter,
            sleep=_no_wait,
            **options,
        )

    async def announce(self, _episode_id: str, values: Sequence[bytes]) -> None:
        if self.announce_bug:
            raise RuntimeError("a bug on the way to Kafka")
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


# ---------------------------------------------------------------- ticks, archive, restore
def _tick(day: str, partition: int = 0) -> Consumed:
    return Consumed(CLOCK_TICKS, partition, 0, None, json.dumps({"date": day}).encode(), [])


def _event_record(event: EpisodeEvent) -> Consumed:
    topic = MUNICIPAL_EVENTS if event.kind in MUNICIPAL_KINDS else HOSPITAL_EVENTS
    return Consumed(topic, 0, 0, event.episode_id.encode(), encode_event(event), [])


def _archiving(tmp_path: Path, today: str) -> tuple[Harness, ClockArchive]:
    engine = make_engine(f"sqlite:///{tmp_path / 'discharge.db'}")
    migrate(engine, MIGRATIONS)
    archive = ClockArchive(engine, lambda: NOW)
    now = dt.datetime.fromisoformat(f"{today}T12:00:00+01:00")
    return Harness(now=now, archive=archive, retention_days=30), archive


def _ended_story() -> Episode:
    return (
        Episode()
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .service_ready(at("2024-03-07"))
    )


def test_a_tick_dated_after_tomorrow_is_dead_lettered_and_moves_no_clock() -> None:
    harness = Harness()
    _run(harness, _notice_record())
    before = dict(harness.table)
    _run(harness, _tick("2024-03-20"))  # NOW is 2024-03-10
    assert (len(harness.dead), harness.table) == (1, before)


def test_a_settled_clock_is_not_recomputed_by_ticks(tmp_path: Path) -> None:
    harness, _archive = _archiving(tmp_path, "2024-03-20")
    for event in _ended_story().events:
        _run(harness, _event_record(event))
    announced = len(harness.announced)
    _run(harness, _tick("2024-03-20"))
    assert (len(harness.announced), harness.table["81234:E1"]["as_of"]) == (
        announced,
        "2024-03-20",
    )


def test_a_clock_quiet_for_the_retention_leaves_the_hot_table_for_the_archive(
    tmp_path: Path,
) -> None:
    harness, archive = _archiving(tmp_path, "2024-04-20")
    for event in _ended_story().events:
        _run(harness, _event_record(event))
    _run(harness, _tick("2024-04-20"))
    archived = archive.get("81234:E1")
    assert (harness.table, archived and archived.announced and archived.announced.liable_days) == (
        {},
        3,
    )


def _archived_story(tmp_path: Path) -> tuple[Harness, ClockArchive, Episode]:
    """An ended episode whose clock the tick of 2024-04-20 moved to the archive."""
    harness, archive = _archiving(tmp_path, "2024-04-20")
    story = _ended_story()
    for event in story.events:
        _run(harness, _event_record(event))
    _run(harness, _tick("2024-04-20"))
    return harness, archive, story


def test_a_late_event_for_an_archived_clock_restores_it_and_corrects_the_money(
    tmp_path: Path,
) -> None:
    harness, archive, story = _archived_story(tmp_path)
    late_answer = story.answer(at("2024-03-05"), can_receive=True).events[-1]
    _run(harness, _event_record(late_answer))
    restored = harness.worker.store.get("81234:E1")
    assert (
        restored and restored.announced and restored.announced.liable_days,
        archive.get("81234:E1"),
    ) == (
        1,
        None,
    )


def test_a_repeated_event_for_an_archived_clock_leaves_the_clock_billable(
    tmp_path: Path,
) -> None:
    harness, archive, story = _archived_story(tmp_path)
    _run(harness, _event_record(story.events[0]))  # an integration sends an old event again
    kept = harness.worker.store.get("81234:E1") or archive.get("81234:E1")
    assert kept and kept.announced and kept.announced.liable_days == 3


def test_a_bad_record_keyed_by_an_archived_episode_leaves_its_clock_in_the_archive(
    tmp_path: Path,
) -> None:
    harness, archive, _story = _archived_story(tmp_path)
    _run(harness, Consumed(HOSPITAL_EVENTS, 3, 9, b"81234:E1", b"\xff\x00garbage", []))
    assert (harness.table, archive.get("81234:E1") is not None) == ({}, True)


def test_an_event_backdated_beyond_the_window_is_dead_lettered_with_the_reason() -> None:
    harness = Harness()  # today is 2024-03-10
    backdated = Episode().discharge_ready(at("2023-12-01")).events[-1]
    written = dt.datetime(2024, 3, 10, tzinfo=dt.UTC).timestamp()
    _run(harness, dataclasses.replace(_event_record(backdated), timestamp=written))
    reasons = [reason_of(h) or "" for h in harness.dead]
    assert (harness.table, ["before now" in r for r in reasons]) == ({}, [True])


# ---------------------------------------------------------------- write-ahead, crashes
class Crash(BaseException):
    """A SIGKILL in the middle of a send: no handler, no retry, nothing after it runs."""


class CrashingHarness(Harness):
    async def announce(self, _episode_id: str, values: Sequence[bytes]) -> None:
        raise Crash


def _crashed_with_the_notice() -> tuple[Harness, list[bytes]]:
    """A worker killed while announcing the notice's liability events; a new worker on
    the table the changelog gives back, and the bytes the first one was sending."""
    crashed = CrashingHarness()
    with contextlib.suppress(Crash):
        _run(crashed, _notice_record())
    unsent = crashed.worker.store.unsent_of("81234:E1")
    restarted = Harness()
    restarted.table.update(crashed.table)
    return restarted, [base64.b64decode(v) for v in unsent]


def test_the_table_holds_what_a_crash_interrupted_before_anything_is_announced() -> None:
    _restarted, unsent = _crashed_with_the_notice()
    assert len(unsent) == 1  # the period's start, durable before it was sent


def test_what_a_crash_left_unsent_is_announced_again_with_the_same_bytes() -> None:
    restarted, unsent = _crashed_with_the_notice()
    asyncio.run(restarted.worker.flush_unsent({0}, at_once=True))
    assert (restarted.announced, restarted.worker.store.unsent_of("81234:E1")) == (unsent, [])


def test_the_event_redelivered_after_a_crash_announces_only_what_was_unsent() -> None:
    restarted, unsent = _crashed_with_the_notice()
    _run(restarted, _notice_record())  # the offset was not committed: it comes again
    assert restarted.announced == unsent


def test_the_sweep_leaves_what_appeared_since_its_last_pass_to_the_stream() -> None:
    restarted, unsent = _crashed_with_the_notice()
    asyncio.run(restarted.worker.flush_unsent({0}))
    first = list(restarted.announced)
    asyncio.run(restarted.worker.flush_unsent({0}))
    assert (first, restarted.announced) == ([], unsent)


def test_the_sweep_sends_nothing_of_a_partition_this_worker_does_not_own() -> None:
    restarted, _unsent = _crashed_with_the_notice()
    for _ in range(2):
        asyncio.run(restarted.worker.flush_unsent({1, 2}))
    assert restarted.announced == []


class KilledAfterSending(Harness):
    """Killed right after its next announcement was acknowledged."""

    armed = False

    async def announce(self, episode_id: str, values: Sequence[bytes]) -> None:
        await super().announce(episode_id, values)
        if self.armed:
            raise Crash


def _topic_nok(announced: list[bytes]) -> int:
    """What a consumer of the liability topic adds up (each id once)."""
    total, seen = 0, set()
    for value in announced:
        event = LiabilityEvent.FromString(value)
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        if event.WhichOneof("kind") == "day_accrued":
            total += event.day_accrued.day.amount_nok
        elif event.WhichOneof("kind") == "corrected":
            total += event.corrected.delta_nok
    return total


def test_a_kill_after_a_sent_correction_with_the_other_topic_first_counts_each_day_once() -> None:
    # Ready on 4 March, six days announced by the tick of the 10th; the hospital's
    # discharge on the 8th is announced (two days reversed) and the worker is killed.
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    first = KilledAfterSending()
    for event in story.events:
        _run(first, _event_record(event))
    _run(first, _tick("2024-03-10"))
    discharged = story.discharged(at("2024-03-08")).events[-1]
    first.armed = True
    with contextlib.suppress(Crash):
        _run(first, _event_record(discharged))
    # On restart the municipality's service-ready of the 6th comes before the redelivered
    # discharge: it must reverse the 6th and 7th only, not the 8th and 9th again.
    restarted = Harness()
    restarted.table.update(first.table)
    service_ready = story.service_ready(at("2024-03-06")).events[-1]
    _run(restarted, _event_record(service_ready))
    _run(restarted, _event_record(discharged))
    final = restarted.worker.store.get("81234:E1")
    assert final and final.announced
    days = final.announced.days
    assert (_topic_nok(first.announced + restarted.announced), len(days)) == (
        sum(d.amount_nok or 0 for d in days),
        2,
    )


# ---------------------------------------------------------------- batches
def _story_records() -> list[Consumed]:
    story = (
        Episode()
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .answer(at("2024-03-05"), can_receive=False)
    )
    return [_event_record(e) for e in story.events]


def _one_by_one(records: list[Consumed]) -> Harness:
    harness = Harness()
    for record in records:
        _run(harness, record)
    return harness


def _batched(records: list[Consumed]) -> Harness:
    harness = Harness()
    asyncio.run(harness.worker.handle_batch(records))
    return harness


def test_a_batch_announces_what_its_records_announce_one_by_one() -> None:
    story = _story_records()
    records = [*story, _tick("2024-03-09"), *story]  # the repeat: duplicates
    one, batch = _one_by_one(records), _batched(records)
    assert (batch.announced, batch.table) == (one.announced, one.table)


def test_a_bad_record_in_a_batch_is_dead_lettered_and_the_others_count() -> None:
    bad = Consumed(HOSPITAL_EVENTS, 0, 7, b"81234:E1", b"\xff\x00garbage", [])
    records = _story_records()
    batch = _batched([records[0], bad, *records[1:]])
    assert (len(batch.dead), batch.announced) == (1, _one_by_one(records).announced)


def test_a_failed_send_for_a_batch_is_retried_and_every_event_still_counts() -> None:
    records = [*_story_records(), _tick("2024-03-09")]
    harness = Harness(announce_failures=2)
    asyncio.run(harness.worker.handle_batch(records))
    expected = _one_by_one(records)
    assert (harness.dead, harness.announced, harness.table) == (
        [],
        expected.announced,
        expected.table,
    )


def test_a_late_event_after_the_tick_that_archived_its_clock_in_one_batch_restores_it(
    tmp_path: Path,
) -> None:
    harness, _archive = _archiving(tmp_path, "2024-04-20")
    story = _ended_story()
    late_answer = story.answer(at("2024-03-05"), can_receive=True).events[-1]
    records = [*map(_event_record, story.events), _tick("2024-04-20"), _event_record(late_answer)]
    asyncio.run(harness.worker.handle_batch(records))
    restored = harness.worker.store.get("81234:E1")
    assert (restored and restored.announced and restored.announced.liable_days) == 1


def _garbage(offset: int) -> Consumed:
    return Consumed(HOSPITAL_EVENTS, 0, offset, b"81234:E1", b"\xff\x00garbage", [])


def test_a_bad_record_is_dead_lettered_once_when_its_batch_is_retried() -> None:
    harness = Harness(announce_failures=2)
    asyncio.run(harness.worker.handle_batch([_garbage(7), *_story_records()]))
    assert len(harness.dead) == 1


def test_a_bad_record_is_dead_lettered_once_when_its_batch_goes_again_record_by_record() -> None:
    harness = Harness(announce_bug=True)
    asyncio.run(harness.worker.handle_batch([_garbage(7), _notice_record(8)]))
    reasons = [reason_of(h) or "" for h in harness.dead]
    assert ["processing" in r for r in reasons] == [False, True]


def test_a_tick_nested_beyond_the_recursion_limit_is_dead_lettered_as_no_day_tick() -> None:
    harness = Harness()
    deep = Consumed(CLOCK_TICKS, 0, 0, None, b"[" * 2000 + b"]" * 2000, [])
    _run(harness, deep)
    assert ["not a day tick" in (reason_of(h) or "") for h in harness.dead] == [True]
