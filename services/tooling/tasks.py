"""Every coordination task as the CoordinationService streams give them, and the counts
per unit that the views show (open, overdue, escalated = SLA breached)."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from overgang.v1 import coordination_pb2
from tooling.clients import Clients, drain

# The unit kinds; a StreamTasks on a kind covers its sub-units ("HEALTH_OFFICE/MADLA").
UNIT_KINDS = tuple(
    value.name.removeprefix("UNIT_KIND_")
    for value in coordination_pb2.UnitKind.DESCRIPTOR.values
    if value.number != coordination_pb2.UNIT_KIND_UNSPECIFIED
)
ACTIVE = (coordination_pb2.TASK_STATUS_OPEN, coordination_pb2.TASK_STATUS_CLAIMED)


def latest(tasks: dict[str, Any], task: Any) -> bool:
    """Keeps `task` in `tasks` (by id) if it is the newest version seen; True if it was."""
    known = tasks.get(task.task_id)
    if known is not None and known.version > task.version:
        return False
    tasks[task.task_id] = task
    return True


def all_tasks(clients: Clients, units: Iterable[str] = UNIT_KINDS, idle: float = 1.5) -> list[Any]:
    """The newest version of every task of `units`. StreamTasks has no "from the start"
    position (after_sequence 0 means the backlog of open tasks), so this reads the backlog
    and every update after sequence 1: a task's first update is OPEN, so one whose only
    update is sequence 1 is still open and in the backlog."""
    units = list(units)
    calls = [clients.task_stream(unit, 0) for unit in units]
    calls += [clients.task_stream(unit, 1) for unit in units]
    tasks: dict[str, Any] = {}
    for update in drain(calls, idle):
        latest(tasks, update.task)
    return sorted(tasks.values(), key=lambda t: t.task_id)


def due(task: Any) -> dt.datetime:
    return task.due_at.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]


def overdue(task: Any, now: dt.datetime) -> bool:
    return task.status in ACTIVE and due(task) < now


@dataclass
class UnitCounts:
    tasks: int = 0
    active: int = 0  # open or claimed
    overdue: int = 0  # active and past due at `now`
    escalated: int = 0  # SLA breached: escalated to the unit's lead (any status)
    done: int = 0
    cancelled: int = 0


def per_unit(tasks: Iterable[Any], now: dt.datetime) -> dict[str, UnitCounts]:
    """Counts per concrete unit (e.g. HEALTH_OFFICE/MADLA_HILLEVAAG), in unit order."""
    units: dict[str, UnitCounts] = collections.defaultdict(UnitCounts)
    for task in tasks:
        counts = units[task.unit]
        counts.tasks += 1
        counts.active += task.status in ACTIVE
        counts.overdue += overdue(task, now)
        counts.escalated += bool(task.escalated)
        counts.done += task.status == coordination_pb2.TASK_STATUS_DONE
        counts.cancelled += task.status == coordination_pb2.TASK_STATUS_CANCELLED
    return dict(sorted(units.items()))
