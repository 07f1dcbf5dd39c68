"""The task record: which municipal unit must do what, by when, and its life cycle
(OPEN -> CLAIMED -> DONE, or CANCELLED when moot; escalated to the unit's lead once).

Task ids are deterministic, `<episode>:<kind>:<trigger event id>`, so reprocessing a
pathway event never creates a second task. Every transition takes the instant as an
argument: the caller injects the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from coordination.domain.due import DueRule
from overgang.vocabulary import TaskKind

LEAD_SUFFIX = "/lead"
MAX_TASK_ID = 128  # what consumers (the pathway service) accept


class UnitKind(StrEnum):
    HEALTH_OFFICE = "HEALTH_OFFICE"
    HOME_CARE = "HOME_CARE"
    SHORT_TERM_BED = "SHORT_TERM_BED"
    NAV = "NAV"
    IKART = "IKART"
    INNSATSTEAM = "INNSATSTEAM"
    GP = "GP"


class TaskStatus(StrEnum):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


ACTIVE = frozenset({TaskStatus.OPEN, TaskStatus.CLAIMED})


class Priority(StrEnum):
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"


class TaskStateError(ValueError):
    """A task transition that the task's state does not allow."""


@dataclass(frozen=True)
class Task:
    task_id: str
    episode_id: str
    municipality: str
    unit: str
    kind: TaskKind
    title: str
    due_at: dt.datetime
    priority: Priority
    status: TaskStatus
    trigger_event_id: str
    trigger_at: dt.datetime  # event time of the trigger: the base of the due rule
    due_rule: DueRule
    created_at: dt.datetime
    updated_at: dt.datetime
    escalated: bool = False
    escalated_to: str = ""
    claimed_by: str = ""
    cancel_reason: str = ""
    note: str = ""
    version: int = 1

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def _next(self, now: dt.datetime, **changes: Any) -> Task:
        return replace(self, updated_at=now, version=self.version + 1, **changes)

    def claim(self, by: str, now: dt.datetime) -> Task:
        if self.status is TaskStatus.CLAIMED and self.claimed_by == by:
            return self  # a retried claim: nothing changes
        if self.status is TaskStatus.CLAIMED:
            raise TaskStateError(f"task {self.task_id} is already claimed by {self.claimed_by}")
        if self.status is not TaskStatus.OPEN:
            raise TaskStateError(f"task {self.task_id} is {self.status}, only OPEN can be claimed")
        return self._next(now, status=TaskStatus.CLAIMED, claimed_by=by)

    def complete(self, now: dt.datetime, note: str = "") -> Task:
        if not self.active:
            raise TaskStateError(
                f"task {self.task_id} is {self.status}, only OPEN or CLAIMED can be completed"
            )
        return self._next(now, status=TaskStatus.DONE, note=note)

    def cancel(self, reason: str, now: dt.datetime) -> Task:
        if not self.active:
            raise TaskStateError(f"task {self.task_id} is {self.status}, it cannot be cancelled")
        return self._next(now, status=TaskStatus.CANCELLED, cancel_reason=reason)

    def escalate(self, now: dt.datetime) -> Task:
        return self._next(now, escalated=True, escalated_to=f"{self.unit}{LEAD_SUFFIX}")

    def reschedule(self, due_at: dt.datetime, now: dt.datetime) -> Task:
        return self._next(now, due_at=due_at)


def task_id_for(episode_id: str, kind: TaskKind, trigger_event_id: str) -> str:
    """`<episode>:<kind>:<trigger event id>`; when that would be longer than 128
    characters the trigger part is a SHA-256 prefix of the id (still deterministic)."""
    natural = f"{episode_id}:{kind.value}:{trigger_event_id}"
    if len(natural) <= MAX_TASK_ID:
        return natural
    digest = hashlib.sha256(trigger_event_id.encode()).hexdigest()[:24]
    return f"{episode_id}:{kind.value}:h-{digest}"


def overdue(tasks: Iterable[Task], now: dt.datetime) -> list[Task]:
    """Escalate, once, every open or claimed task whose due time has passed."""
    return [t.escalate(now) for t in tasks if t.active and not t.escalated and t.due_at < now]
