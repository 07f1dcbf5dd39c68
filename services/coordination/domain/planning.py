"""From a pathway change to task changes: what coordination remembers of the episode,
which occasions a change is, and the plan (reactions, new tasks, rescheduled due times).

Routing: unit kind -> concrete unit, e.g. one of Stavanger's four health offices.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace

from coordination.domain.due import EPISODE_DEPENDENT, due_at
from coordination.domain.rules import Occasion, RuleSet
from coordination.domain.task import Task, TaskStatus, UnitKind, task_id_for
from overgang.events import EpisodeEvent, EventKind, Need, oslo_day
from overgang.vocabulary import Stage


@dataclass(frozen=True)
class PathwayChange:
    """A pathway event as coordination sees it (from overgang.v1.PathwayEvent)."""

    event_id: str  # the pathway event's id
    episode_id: str
    at: dt.datetime  # event time of the change (the cause's occurred_at)
    municipality: str
    division: str
    patient_pseudonym: str = ""
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    cause: EpisodeEvent | None = None
    needs: tuple[Need, ...] = ()  # the pathway's needs after the change

    @property
    def trigger_event_id(self) -> str:
        return self.cause.event_id if self.cause is not None else self.event_id

    @property
    def cause_needs(self) -> tuple[Need, ...]:
        return self.cause.needs if self.cause is not None else ()

    def entered(self, stage: Stage) -> bool:
        return self.to_stage is stage and self.from_stage is not stage


@dataclass(frozen=True)
class Episode:
    """What coordination remembers about an episode (it learns them from pathway events)."""

    episode_id: str
    municipality: str
    division: str
    patient_pseudonym: str = ""
    stage: Stage | None = None
    needs: tuple[Need, ...] = ()
    ready_day: dt.date | None = None  # Oslo day the patient was declared discharge-ready
    expected_ready_date: dt.date | None = None  # from the municipality's answer
    reception_day: dt.date | None = None  # Oslo day of discharge to municipal care

    @property
    def planned_reception_day(self) -> dt.date | None:
        return self.reception_day or self.expected_ready_date or self.ready_day


def advance_episode(episode: Episode | None, change: PathwayChange) -> Episode:
    if episode is None:
        episode = Episode(change.episode_id, change.municipality, change.division)
    updated = replace(
        episode,
        municipality=change.municipality or episode.municipality,
        division=change.division or episode.division,
        patient_pseudonym=change.patient_pseudonym or episode.patient_pseudonym,
        stage=change.to_stage or episode.stage,
        needs=change.needs or change.cause_needs or episode.needs,
    )
    cause = change.cause
    if cause is not None and cause.kind is EventKind.DISCHARGE_READY_NOTIFIED:
        ready = cause.ready_at or cause.occurred_at
        updated = replace(updated, ready_day=oslo_day(ready), expected_ready_date=None)
    elif cause is not None and cause.kind is EventKind.MUNICIPALITY_ANSWERED:
        expected = cause.expected_ready_date
        if expected is None and cause.can_receive:
            expected = cause.oslo_day
        updated = replace(updated, expected_ready_date=expected)
    elif cause is not None and cause.kind is EventKind.DISCHARGE_READY_WITHDRAWN:
        updated = replace(updated, ready_day=None, expected_ready_date=None)
    if change.entered(Stage.RECEIVED):
        updated = replace(updated, reception_day=oslo_day(change.at))
    return updated


_OCCASION_OF_CAUSE = {
    EventKind.DISCHARGE_READY_NOTIFIED: Occasion.DISCHARGE_READY_NOTICE,
    EventKind.DISCHARGE_READY_WITHDRAWN: Occasion.DISCHARGE_READY_WITHDRAWN,
    EventKind.MUNICIPALITY_ANSWERED: Occasion.MUNICIPALITY_ANSWERED,
    EventKind.SERVICE_READY: Occasion.SERVICE_READY,
    EventKind.DIED: Occasion.DIED,
}
_OCCASION_OF_STAGE = (
    (Stage.RECEIVED, Occasion.RECEPTION),
    (Stage.REHABILITATION, Occasion.REHABILITATION_START),
    (Stage.FOLLOW_UP, Occasion.FOLLOW_UP_START),
    (Stage.CLOSED, Occasion.CLOSED),
)


def occasions_of(change: PathwayChange) -> list[Occasion]:
    found: list[Occasion] = []
    cause = change.cause
    if cause is not None:
        if cause.kind is EventKind.ADMISSION_NOTIFIED and cause.needs:
            found.append(Occasion.ADMISSION_NOTICE)
        if cause.kind in _OCCASION_OF_CAUSE:
            found.append(_OCCASION_OF_CAUSE[cause.kind])
    found.extend(occasion for stage, occasion in _OCCASION_OF_STAGE if change.entered(stage))
    return found


def route(kind: UnitKind, episode: Episode, rules: RuleSet) -> str:
    """The concrete unit. With offices configured, a stable hash of the patient's
    pseudonym picks one: a documented stand-in for address-based districts (the
    pseudonym is stable for a patient, so all of a patient's tasks go to one office)."""
    offices = rules.offices.get(kind, ())
    if not offices:
        return kind.value
    key = episode.patient_pseudonym or episode.episode_id
    index = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(offices)
    return f"{kind.value}/{offices[index]}"


def plan(
    change: PathwayChange,
    episode: Episode,
    tasks: Iterable[Task],
    rules: RuleSet,
    now: dt.datetime,
) -> list[Task]:
    """The tasks this change creates or changes (new versions), in a stable order.

    `episode` is the state after the change (`advance_episode`); `tasks` are the
    episode's existing tasks. Reactions (complete / cancel) apply to tasks that existed
    before the change; then rules create tasks that do not exist yet; then open tasks
    whose due date depends on the episode (reception day) are rescheduled.
    """
    current = {t.task_id: t for t in tasks}
    changed: dict[str, Task] = {}

    def put(task: Task) -> None:
        current[task.task_id] = task
        changed[task.task_id] = task

    occasions = occasions_of(change)
    for occasion in occasions:
        reaction = rules.reactions.get(occasion)
        if reaction is None:
            continue
        for task in sorted(current.values(), key=lambda t: t.task_id):
            if not task.active or task.trigger_event_id == change.trigger_event_id:
                continue  # a task never reacts to its own trigger (reprocessing)
            if task.kind in reaction.complete:
                put(task.complete(now, note=reaction.reason))
            elif reaction.cancels(task.kind):
                put(task.cancel(reaction.reason, now))

    needs = set(change.cause_needs or episode.needs)
    for rule in rules.rules:
        if rule.trigger not in occasions:
            continue
        if rule.needs_any and not (rule.needs_any & needs):
            continue
        task_id = task_id_for(change.episode_id, rule.task, change.trigger_event_id)
        if task_id in current:
            continue  # reprocessing: the task exists already
        put(
            Task(
                task_id=task_id,
                episode_id=change.episode_id,
                municipality=episode.municipality,
                unit=route(rule.unit, episode, rules),
                kind=rule.task,
                title=rule.title,
                due_at=due_at(rule.due, change.at, episode, rules.rehab_period_days),
                priority=rule.priority,
                status=TaskStatus.OPEN,
                trigger_event_id=change.trigger_event_id,
                trigger_at=change.at,
                due_rule=rule.due,
                created_at=now,
                updated_at=now,
            )
        )

    for task in sorted(current.values(), key=lambda t: t.task_id):
        if task.active and task.due_rule.kind in EPISODE_DEPENDENT:
            new_due = due_at(task.due_rule, task.trigger_at, episode, rules.rehab_period_days)
            if new_due != task.due_at:
                put(task.reschedule(new_due, now))
    return list(changed.values())
