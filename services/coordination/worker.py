"""The coordination service's stream handlers, called by the Faust wiring
(`coordination.streams`): pathway events become task changes, and the SLA timer
escalates overdue tasks. The blocking SQL work runs in threads; after each commit
`on_commit` wakes the task streams and the outbox relay. Time comes only from the
injected clock.

A record is finished only when its task changes are committed or it is in the
dead-letter topic (through the outbox, as durable as the tasks). Infrastructure errors
(database down or locked) are waited out with `overgang.retry`, so the agent, and with
it the partition's offsets, waits and nothing is acknowledged meanwhile; a record that is
bad in itself, or that hits a bug, is dead-lettered with the reason. The handler never
raises for a record: a Faust agent that dies acknowledges the event it was on anyway
(faust-streaming #315), so raising would drop it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from coordination.convert import decode_pathway_event
from coordination.domain.due import DueRuleError
from coordination.domain.planning import PathwayChange
from coordination.domain.task import Task
from coordination.store import Clock, TaskStore
from overgang.codec import InvalidEvent
from overgang.kafka.records import ConsumedRecord, Headers, processing_failed, send_dead_letter
from overgang.logging import get_logger
from overgang.retry import until_done

log = get_logger(__name__)
SERVICE = "coordination"


class CoordinationWorker:
    def __init__(
        self,
        store: TaskStore,
        clock: Clock,
        *,
        on_commit: Callable[[], None] = lambda: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.clock = clock
        self._on_commit = on_commit
        self._sleep = sleep  # the retry backoff's (tests pass a fast one)

    # ------------------------------------------------------------------ pathway events
    async def handle_record(self, record: ConsumedRecord) -> list[Task]:
        """One record of overgang.pathway-events.v1: the tasks it changed. Never raises
        for a record; returns only once it is applied or dead-lettered."""
        try:
            change = decode_pathway_event(record.value, received_at=self.clock())
            return await self.apply(change)
        except (InvalidEvent, DueRuleError) as exc:
            reason = str(exc)
        except Exception as exc:  # a bug must not stop the partition; keep the record
            log.exception("coordination.record_failed", topic=record.topic, offset=record.offset)
            reason = processing_failed(exc)
        await self.dead_letter(record, reason)
        return []

    async def apply(self, change: PathwayChange) -> list[Task]:
        """Apply one pathway event, waiting out database outages (a repeat is a no-op:
        the store applies each event id once, and task ids are deterministic)."""
        changed: list[Task] = await until_done(
            lambda: asyncio.to_thread(self.store.apply_change, change),
            "coordination.apply",
            log,
            sleep=self._sleep,
        )
        if changed:
            log.info(
                "coordination.tasks_changed",
                episode_id=change.episode_id,
                event_id=change.event_id,
                tasks=[f"{t.kind}:{t.status}" for t in changed],
            )
        self._on_commit()
        return changed

    async def dead_letter(self, record: ConsumedRecord, reason: str) -> None:
        """Into the outbox, waiting out database outages. Should even that fail for good
        (a bug), the record is logged with the reason: raising would not keep it either."""
        try:
            await until_done(
                lambda: send_dead_letter(self._dead_letter_sink, record, reason, SERVICE, log),
                "coordination.dead_letter",
                log,
                sleep=self._sleep,
            )
        except Exception:
            log.exception(
                "coordination.dead_letter_failed",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=reason,
            )
            return
        self._on_commit()

    async def _dead_letter_sink(
        self, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        # Through the outbox: the dead letter is as durable as the task changes.
        await asyncio.to_thread(self.store.dead_letter, key, value, headers)

    # ------------------------------------------------------------------------ SLA timer
    async def escalate_overdue(self) -> list[Task]:
        escalated: list[Task] = await asyncio.to_thread(self.store.escalate_overdue)
        if escalated:
            log.info("coordination.escalated", tasks=[t.task_id for t in escalated])
            self._on_commit()
        return escalated

    async def sla_tick(self) -> None:
        """The timer's call: never raises, the next tick retries."""
        try:
            await self.escalate_overdue()
        except Exception:
            log.exception("coordination.escalation_failed")
