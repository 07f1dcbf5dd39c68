"""The coordination service's stream handlers, called by the Faust wiring
(`coordination.streams`): pathway events become task changes, and the SLA timer
escalates overdue tasks. The blocking SQL work runs in threads; after each commit
`on_commit` wakes the task streams and the outbox relay. Time comes only from the
injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError

from coordination.convert import decode_pathway_event
from coordination.domain.due import DueRuleError
from coordination.domain.planning import PathwayChange
from coordination.domain.task import Task
from coordination.store import Clock, TaskStore
from overgang.codec import InvalidEvent
from overgang.kafka.records import ConsumedRecord, Headers, send_dead_letter
from overgang.logging import get_logger

log = get_logger(__name__)
SERVICE = "coordination"
DB_ATTEMPTS = 7


class CoordinationWorker:
    def __init__(
        self,
        store: TaskStore,
        clock: Clock,
        *,
        on_commit: Callable[[], None] = lambda: None,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self._on_commit = on_commit
        self.retry_seconds = retry_seconds

    # ------------------------------------------------------------------ pathway events
    async def handle_record(self, record: ConsumedRecord) -> list[Task]:
        """One record of overgang.pathway-events.v1. Never raises for a bad record: it goes
        to the dead-letter topic with the reason; a database outage is retried."""
        try:
            change = decode_pathway_event(record.value, received_at=self.clock())
            return await self.apply(change)
        except (InvalidEvent, DueRuleError) as exc:
            reason = str(exc)
        except OperationalError:
            raise  # apply() retried already; let the caller's supervisor decide
        except Exception as exc:  # a bug must not stop the partition; keep the record
            log.exception("coordination.record_failed", topic=record.topic, offset=record.offset)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        await send_dead_letter(self._dead_letter_sink, record, reason, SERVICE, log)
        self._on_commit()
        return []

    async def _dead_letter_sink(
        self, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        # Through the outbox: the dead letter is as durable as the task changes.
        await self._retrying(self.store.dead_letter, key, value, headers)

    async def apply(self, change: PathwayChange) -> list[Task]:
        changed: list[Task] = await self._retrying(self.store.apply_change, change)
        if changed:
            log.info(
                "coordination.tasks_changed",
                episode_id=change.episode_id,
                event_id=change.event_id,
                tasks=[f"{t.kind}:{t.status}" for t in changed],
            )
        self._on_commit()
        return changed

    async def _retrying(self, fn: Callable[..., Any], *args: Any) -> Any:
        delay = self.retry_seconds
        for attempt in range(1, DB_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(fn, *args)
            except OperationalError as exc:  # database down or locked: wait and retry
                if attempt == DB_ATTEMPTS:
                    raise
                log.warning("coordination.db_retry", attempt=attempt, error=str(exc)[:200])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

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
