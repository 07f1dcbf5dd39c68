"""The coordination service's asynchronous core, shared by the Faust agent, the SLA
timer and the gRPC API: runs the blocking SQL work in threads and, after each commit,
wakes the task streams and the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from coordination.convert import decode_pathway_event
from coordination.domain.due import DueRuleError
from coordination.domain.planning import Episode, PathwayChange
from coordination.domain.task import Task
from coordination.store import TaskStore
from overgang.codec import InvalidEvent
from overgang.events import EpisodeEvent
from overgang.kafka.records import ConsumedRecord, Headers, send_dead_letter
from overgang.logging import get_logger
from overgang.v1 import coordination_pb2

log = get_logger(__name__)
SERVICE = "coordination"


class UpdateSignal:
    """Wakes every waiting stream when new task updates were committed in-process.

    Take `current()` before reading the database and wait on it afterwards: a commit in
    between has already set it, so no wake-up is lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)


class Coordination:
    def __init__(
        self,
        store: TaskStore,
        *,
        signal: UpdateSignal | None = None,
        on_commit: Callable[[], None] | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.signal = signal or UpdateSignal()
        self._on_commit = on_commit
        self.retry_seconds = retry_seconds

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        return self.store.clock

    def committed(self) -> None:
        self.signal.notify()
        if self._on_commit is not None:
            self._on_commit()

    # ------------------------------------------------------------ pathway events (Faust)
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
        self.committed()
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
        self.committed()
        return changed

    async def _retrying(self, fn: Callable[..., Any], *args: Any) -> Any:
        delay = self.retry_seconds
        for attempt in range(1, 8):
            try:
                return await asyncio.to_thread(fn, *args)
            except OperationalError as exc:  # database down or locked: wait and retry
                if attempt == 7:
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
            self.committed()
        return escalated

    # ------------------------------------------------------------------------- gRPC side
    async def claim(self, task_id: str, by: str, allowed: Callable[[str], bool]) -> Task:
        task: Task = await asyncio.to_thread(self.store.claim, task_id, by, allowed)
        self.committed()
        return task

    async def complete(self, task_id: str, note: str, allowed: Callable[[str], bool]) -> Task:
        task: Task = await asyncio.to_thread(self.store.complete, task_id, note, allowed)
        self.committed()
        return task

    async def task(self, task_id: str) -> Task | None:
        return await asyncio.to_thread(self.store.task, task_id)

    async def tasks_of(self, episode_id: str) -> list[Task]:
        return await asyncio.to_thread(self.store.tasks_of, episode_id)

    async def episode(self, episode_id: str) -> Episode | None:
        return await asyncio.to_thread(self.store.episode, episode_id)

    async def publish_event(self, event: EpisodeEvent) -> None:
        await asyncio.to_thread(self.store.publish_event, event)
        self.committed()

    async def backlog(self, unit: str) -> tuple[list[coordination_pb2.TaskUpdate], int]:
        return await asyncio.to_thread(self.store.backlog, unit)

    async def updates_after(
        self, unit: str, after: int, limit: int = 500
    ) -> Sequence[coordination_pb2.TaskUpdate]:
        return await asyncio.to_thread(self.store.updates_after, unit, after, limit)
