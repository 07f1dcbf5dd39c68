"""The pathway service's record handlers for hospital events, municipal events and
coordination task updates (the consumer loop around them is `pathway.streams`).

Each record is applied in one SQL transaction (`PathwayStore`), deduplicated by event id
(task updates: by task version), so a redelivery is a no-op. PathwayEvents go through the
outbox (see `pathway.store` for why each is written exactly once). A record that cannot
be decoded or breaks a rule goes to the dead-letter topic with the reason, and so does one
that hits a bug (a deterministic error would otherwise stall its partition forever); an
infrastructure error (`overgang.retry.is_transient`: database down, Kafka, timeout)
raises, and the caller retries the record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping

from overgang.codec import InvalidEvent, decode_event
from overgang.events import MUNICIPAL_KINDS
from overgang.kafka.records import (
    ConsumedRecord,
    DeadLetterSink,
    content_type,
    headers_of,
    judged_now,
    processing_failed,
    send_dead_letter,
)
from overgang.kafka.topics import COORDINATION_TASKS, HOSPITAL_EVENTS, MUNICIPAL_EVENTS
from overgang.logging import get_logger
from overgang.plausibility import Windows, describe, event_violations, load_windows
from overgang.retry import is_transient
from pathway.convert import InvalidTask, decode_task_update
from pathway.store import EventIdConflict, PathwayStore, Recorded
from pathway.watch import Broadcaster

log = get_logger(__name__)

SERVICE = "pathway"


class Rejected(ValueError):
    """The record goes to the dead-letter topic with this reason."""


def _noted(recorded: Recorded, skipped: str, **ids: str) -> Recorded:
    """Log an input the fold skips as illegal in its place (stored; a later input may make
    it legal)."""
    if recorded.skipped:
        log.warning(skipped, **ids, reason=recorded.skipped)
    return recorded


class PathwayWorker:
    def __init__(
        self,
        store: PathwayStore,
        municipalities: Mapping[str, str],
        broadcaster: Broadcaster,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        windows: Windows | None = None,
    ) -> None:
        self.store = store
        self.windows = windows or load_windows()
        self.municipalities = municipalities
        self.broadcaster = broadcaster
        self.on_commit = on_commit
        self.clock = clock  # the time of a task update that carries none

    async def handle(self, record: ConsumedRecord, dead_letters: DeadLetterSink) -> None:
        """Apply one record, or dead-letter it with the reason (bad input, a bug); returns
        once either is done. Infrastructure errors raise, also the dead letter's own."""
        try:
            recorded = await self.apply(record)
        except Rejected as exc:
            reason = str(exc)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception(
                "pathway.record_failed",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            reason = processing_failed(exc)
        else:
            if not recorded.duplicate:
                self.on_commit()
                self.broadcaster.publish_local(recorded.announced)
            return
        await send_dead_letter(dead_letters, record, reason, SERVICE, log)

    async def apply(self, record: ConsumedRecord) -> Recorded:
        """Decode, check and record one record; raises `Rejected` for bad input."""
        if record.topic == COORDINATION_TASKS:
            return await self._apply_task(record)
        return await self._apply_event(record)

    async def _apply_task(self, record: ConsumedRecord) -> Recorded:
        record_type = content_type(headers_of(record.headers))
        try:
            report = decode_task_update(record.value, record_type, self.clock())
        except InvalidTask as exc:
            raise Rejected(str(exc)) from None
        recorded = await asyncio.to_thread(self.store.record_task, report)
        ids = {"task_id": report.task_id, "episode_id": report.episode_id}
        return _noted(recorded, "pathway.task_skipped", **ids)

    async def _apply_event(self, record: ConsumedRecord) -> Recorded:
        """A hospital or municipal event, on its own topic, keyed by its episode."""
        try:
            event = decode_event(record.value, content_type(headers_of(record.headers)))
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
        # Against when the record was written; the episode's own history is judged at the
        # gRPC edge only, since records of one episode may come in any order.
        now = judged_now(record, self.clock())
        if violations := event_violations(event, now=now, windows=self.windows):
            raise Rejected(describe(violations))
        try:
            recorded = await asyncio.to_thread(self.store.record_event, event, source=record.topic)
        except EventIdConflict as exc:
            raise Rejected(f"eventId {exc}") from None
        ids = {"event_id": event.event_id, "episode_id": event.episode_id}
        return _noted(recorded, "pathway.event_skipped", **ids)
