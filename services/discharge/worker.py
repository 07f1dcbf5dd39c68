"""The liability clock as a Faust app.

One agent consumes hospital events, municipal events and day ticks; the three topics
have the same partition count and are keyed by episode id, so one episode's events and
the ticks for its partition arrive in one ordered stream, and the `clocks` table
(changelog-backed) holds each episode's history in the partition it came from.

A leader-only crontab at 00:00 Europe/Oslo, and every worker at start-up and every few
minutes, send today's date to every tick partition; a tick recomputes each episode of its
partition as of that date, so days missed while a worker was down are caught up.
Liability events are sent and acknowledged before the table records them as announced:
after a crash they may be announced again, with the same ids.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT
from kafka.partitioner.default import murmur2

from discharge.convert import liability_event
from discharge.domain.liability_diff import LiabilityChange
from discharge.store import (
    ClockEntry,
    Rules,
    apply_event,
    apply_tick,
    entry_from_json,
    entry_to_json,
)
from overgang.codec import CONTENT_TYPE_JSON, InvalidEvent, decode_event
from overgang.config import Settings, wall_clock
from overgang.events import MUNICIPAL_KINDS, OSLO, EpisodeEvent
from overgang.kafka import topics
from overgang.kafka.records import Headers, content_type, headers_of, send_dead_letter
from overgang.logging import get_logger

log = get_logger(__name__)

APP_ID = "overgang-discharge"
SERVICE = "discharge"


@dataclass
class ClockApp:
    app: faust.App
    clocks: Any  # faust Table: episode id -> ClockEntry JSON
    settings: Settings

    def entries(self) -> list[ClockEntry]:
        return [entry_from_json(value) for _key, value in list(self.clocks.items()) if value]

    def entry(self, episode_id: str) -> ClockEntry | None:
        value = self.clocks.get(episode_id)
        return entry_from_json(value) if value else None

    def partition_of(self, episode_id: str) -> int:
        """The partition the default (murmur2) partitioner gives the episode's key."""
        positive = murmur2(episode_id.encode()) & 0x7FFFFFFF
        return int(positive % self.settings.topic_partitions)

    def owns(self, episode_id: str) -> bool:
        """Whether this worker is active for the episode's partition."""
        partition = self.partition_of(episode_id)
        return any(
            tp.topic == topics.HOSPITAL_EVENTS and tp.partition == partition
            for tp in self.app.assignor.assigned_actives()
        )


def _datadir(settings: Settings) -> str:
    path = settings.data_dir / "faust"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def create_app(settings: Settings, rules: Rules) -> ClockApp:
    now = wall_clock(settings)

    def today() -> dt.date:
        return now().astimezone(OSLO).date()

    app = faust.App(
        APP_ID + settings.app_id_suffix,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        timezone=OSLO,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        table_standby_replicas=0,
        datadir=_datadir(settings),
    )
    source = app.topic(
        topics.HOSPITAL_EVENTS,
        topics.MUNICIPAL_EVENTS,
        topics.CLOCK_TICKS,
        key_serializer="raw",
        value_serializer="raw",
    )
    ticks = app.topic(topics.CLOCK_TICKS, key_serializer="raw", value_serializer="raw")
    liability = app.topic(topics.LIABILITY_EVENTS, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(topics.DEAD_LETTER, key_serializer="raw", value_serializer="raw")
    clocks = app.Table(
        "clocks",
        default=None,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
        partitions=settings.topic_partitions,
    )
    clock_app = ClockApp(app, clocks, settings)

    async def send_dead_letter_record(
        key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        await (await dlq.send(key=key, value=value, headers=headers))

    async def to_dead_letter(event: EventT, reason: str) -> None:
        await send_dead_letter(send_dead_letter_record, event.message, reason, SERVICE, log)

    async def announce(entry: ClockEntry, changes: list[LiabilityChange]) -> None:
        now = dt.datetime.now(dt.UTC)
        futures = [
            await liability.send(
                key=entry.episode_id.encode(),
                value=liability_event(change, entry.as_of, now).SerializeToString(),
            )
            for change in changes
        ]
        await asyncio.gather(*futures)  # acknowledged before the table says "announced"

    def check_event(event: EventT) -> EpisodeEvent:
        message = event.message
        decoded = decode_event(message.value, content_type(headers_of(message.headers)))
        if message.key != decoded.episode_id.encode():
            raise InvalidEvent("key", "the record key must be the episode id")
        municipal = decoded.kind in MUNICIPAL_KINDS
        if municipal != (message.topic == topics.MUNICIPAL_EVENTS):
            expected = topics.MUNICIPAL_EVENTS if municipal else topics.HOSPITAL_EVENTS
            raise InvalidEvent("payload", f"{decoded.kind.value} belongs on {expected}")
        return decoded

    async def on_episode_event(event: EventT) -> None:
        message = event.message
        try:
            decoded = check_event(event)
        except InvalidEvent as exc:
            await to_dead_letter(event, str(exc))
            return
        stored = clocks.get(decoded.episode_id)
        entry = (
            entry_from_json(stored)
            if stored
            else ClockEntry(decoded.episode_id, message.partition, today())
        )
        if entry.partition != message.partition:
            await to_dead_letter(
                event,
                f"episode's events arrive on partitions {entry.partition} and "
                f"{message.partition}: producers must key by episode id (default partitioner)",
            )
            return
        outcome = apply_event(entry, decoded, rules)
        if outcome.entry is entry:
            return  # duplicate
        await announce(outcome.entry, outcome.changes)
        clocks[decoded.episode_id] = entry_to_json(outcome.entry)
        if outcome.entry.error:
            log.error("clock.not_announced", episode=entry.episode_id, error=outcome.entry.error)

    async def on_tick(event: EventT) -> None:
        try:
            day = dt.date.fromisoformat(json.loads(event.message.value)["date"])
        except (ValueError, KeyError, TypeError) as exc:
            await to_dead_letter(event, f"not a day tick: {exc}")
            return
        partition = event.message.partition
        for key, value in list(clocks.items()):
            if not value or value["partition"] != partition:
                continue
            entry = entry_from_json(value)
            outcome = apply_tick(entry, day, rules)
            if outcome.entry == entry:
                continue
            await announce(outcome.entry, outcome.changes)
            clocks[key] = entry_to_json(outcome.entry)
            if outcome.entry.error:
                log.error("clock.not_announced", episode=key, error=outcome.entry.error)

    @app.agent(source)
    async def clock(stream: Any) -> None:
        async for event in stream.events():
            try:
                if event.message.topic == topics.CLOCK_TICKS:
                    await on_tick(event)
                else:
                    await on_episode_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not stop every other episode's clock
                log.exception("clock.failed", topic=event.message.topic)
                await to_dead_letter(event, f"processing failed: {type(exc).__name__}: {exc}")

    async def send_ticks() -> None:
        body = json.dumps({"date": today().isoformat()}).encode()
        for partition in range(settings.topic_partitions):
            await ticks.send(
                value=body, partition=partition, headers=[("content-type", CONTENT_TYPE_JSON)]
            )

    @app.crontab("0 0 * * *", timezone=OSLO, on_leader=True)
    async def midnight_tick() -> None:
        await send_ticks()

    @app.timer(interval=300.0)
    async def catch_up_tick() -> None:
        # Idempotent: a tick for a date already reached changes nothing.
        await send_ticks()

    @app.task
    async def start_up_tick() -> None:
        await send_ticks()

    return clock_app
