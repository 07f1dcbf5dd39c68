"""Coordination tasks as the pathway tracks them: the latest version of each task (its
unit is open while the task is), and the completions that move the later stages.
No Kafka, gRPC or SQL here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from overgang.vocabulary import TaskKind
from pathway.domain.state_machine import STAGE_MOVING_TASKS, TaskCompleted

DONE = "DONE"
OPEN_STATUSES = ("OPEN", "CLAIMED")


@dataclass(frozen=True)
class TaskReport:
    """One version of a coordination task. `kind` and `status` are the enum names without
    their prefixes (e.g. FOLLOW_UP_VISIT, DONE); `updated_at` is time-zone aware."""

    task_id: str
    episode_id: str
    unit: str
    kind: str
    status: str
    version: int
    updated_at: dt.datetime


class CompletionIsFinal(ValueError):
    """A task already done was reported not done again: the update is ignored."""


def task_input_id(task_id: str) -> str:
    return f"task:{task_id}:done"


def track(stored: TaskReport | None, update: TaskReport) -> TaskReport | None:
    """The task as tracked after `update`, or None when the update is not newer than the
    tracked version. A task keeps its episode and kind; a done task stays done (else
    `CompletionIsFinal`) and keeps the time it was done at."""
    if stored is None:
        return update
    if stored.version >= update.version:
        return None
    if stored.status == DONE and update.status != DONE:
        raise CompletionIsFinal(f"task {stored.task_id} is done; version {update.version} is not")
    return replace(
        stored,
        unit=update.unit,
        status=update.status,
        version=update.version,
        updated_at=stored.updated_at if stored.status == DONE else update.updated_at,
    )


def completion(task: TaskReport) -> TaskCompleted | None:
    """The pathway input of a done task whose kind moves the pathway, else None."""
    if task.status != DONE or task.kind not in STAGE_MOVING_TASKS:
        return None
    return TaskCompleted(
        event_id=task_input_id(task.task_id),
        episode_id=task.episode_id,
        task_id=task.task_id,
        kind=TaskKind(task.kind),
        occurred_at=task.updated_at,
    )
