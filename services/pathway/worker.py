"""Kafka consumer of hospital events, municipal events and coordination task updates.

Each record is applied in one SQL transaction (`PathwayStore`), deduplicated by event id
(task updates: by task version); offsets are committed only after that transaction, so
a crash re-delivers and the redelivery is a no-op. PathwayEvents go through the outbox
(see `pathway.store` for why each is written exactly once). A record that cannot be
decoded or breaks a rule goes to the dead-letter topic with the reason; the loop itself
never stops on bad input, and a database failure retries the same record later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from overgang.codec import InvalidEvent, decode_event
from overgang.config import Settings
from overgang.events import MUNICIPAL_KINDS
from overgang.kafka.records import Headers, content_type, headers_of, send_dead_letter
from overgang.kafka.topics import (
    COORDINATION_TASKS,
    DEAD_LETTER,
    HOSPITAL_EVENTS,
    MUNICIPAL_EVENTS,
)
from overgang.logging import get_logger
from pathway.convert import InvalidTask, decode_task_update
from pathway.store import EventIdConflict, PathwayStore, Recorded
from pathway.watch import Broadcaster

log = get_logger(__name__)

GROUP_ID = "overgang-pathway"
SERVICE = "pathway"
TOPICS = (HOSPITAL_EVENTS, MUNICIPAL_EVENTS, COORDINATION_TASKS)
RETRY_SECONDS = 2.0


class Rejected(ValueError):
    """The record goes to the dead-letter topic with this reason."""


class PathwayConsumer:
    def __init__(
        self,
        store: PathwayStore,
        settings: Settings,
        municipalities: Mapping[str, str],
        broadcaster: Broadcaster,
        on_commit: Callable[[], None],
        *,
        group_id: str = GROUP_ID,
        auto_offset_reset: str = "earliest",
    ) -> None:
        self.store = store
        self.settings = settings
        self.municipalities = municipalities
        self.broadcaster = broadcaster
        self.on_commit = on_commit
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()  # set once partitions are assigned

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            *TOPICS,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
            isolation_level="read_committed",
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def run(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while True:
            try:
                await self._poll_once(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a commit refused during a rebalance: re-read
                log.error("pathway.consumer_error", error=repr(exc))
                await asyncio.sleep(RETRY_SECONDS)

    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=200)
        if consumer.assignment():
            self.ready.set()
        for tp, records in batches.items():
            done: int | None = None
            for record in records:
                try:
                    await self.handle(record)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # database down etc.: retry this record later
                    log.error(
                        "pathway.consume_failed",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        error=repr(exc),
                    )
                    consumer.seek(tp, record.offset)
                    await asyncio.sleep(RETRY_SECONDS)
                    break
                done = record.offset + 1
            if done is not None:
                # Only after the records' SQL transactions committed.
                await consumer.commit({TopicPartition(tp.topic, tp.partition): done})

    async def handle(self, record: Any) -> None:
        """Apply one record; bad input is dead-lettered, infrastructure errors raise."""
        try:
            recorded = await self._apply(record)
        except Rejected as exc:
            await self._dead_letter(record, str(exc))
            return
        if not recorded.duplicate:
            self.on_commit()
            self.broadcaster.publish(recorded.announced)

    async def _apply(self, record: Any) -> Recorded:
        record_type = content_type(headers_of(record.headers))
        if record.topic == COORDINATION_TASKS:
            try:
                report = decode_task_update(record.value, record_type, dt.datetime.now(dt.UTC))
            except InvalidTask as exc:
                raise Rejected(str(exc)) from None
            recorded = await asyncio.to_thread(self.store.record_task, report)
            if recorded.skipped:
                log.warning(
                    "pathway.task_skipped",
                    task_id=report.task_id,
                    episode_id=report.episode_id,
                    reason=recorded.skipped,
                )
            return recorded
        try:
            event = decode_event(record.value, record_type)
        except InvalidEvent as exc:
            raise Rejected(f"{exc.field}: {exc.reason}") from None
        except ValueError as exc:  # e.g. an enum number this version does not know
            raise Rejected(f"not a valid overgang.v1.Event: {exc}") from None
        if record.key is not None and record.key != event.episode_id.encode():
            raise Rejected("record key is not the event's episodeId")
        municipal = event.kind in MUNICIPAL_KINDS
        if record.topic == HOSPITAL_EVENTS and municipal:
            raise Rejected(f"{event.kind.value} is a municipal event, not a hospital event")
        if record.topic == MUNICIPAL_EVENTS and not municipal:
            raise Rejected(f"{event.kind.value} is a hospital event, not a municipal event")
        if event.municipality not in self.municipalities:
            raise Rejected(f"municipality: {event.municipality} is not served by this deployment")
        try:
            recorded = await asyncio.to_thread(self.store.record_event, event, source=record.topic)
        except EventIdConflict as exc:
            raise Rejected(f"eventId {exc}") from None
        if recorded.skipped:
            log.warning(
                "pathway.event_skipped",
                event_id=event.event_id,
                episode_id=event.episode_id,
                reason=recorded.skipped,
            )
        return recorded

    async def _dead_letter(self, record: Any, reason: str) -> None:
        await send_dead_letter(self._send_dead_letter, record, reason, SERVICE, log)

    async def _send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(DEAD_LETTER, value=value, key=key, headers=headers)
