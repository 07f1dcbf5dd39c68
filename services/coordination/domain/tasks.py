"""Coordination tasks: which municipal unit must do what, by when, for a pathway change.

Pure: no Kafka, gRPC or SQL. The routing rules are data (a mapping read from TOML by the
coordination service): a default rule set mirroring domain.md's "Coordination tasks"
table, deep-merged with an optional per-municipality override. Everything that depends
on time takes the instant as an argument, so callers inject the clock.

Vocabulary
* occasion: what a pathway change means for coordination (discharge-ready notice,
  reception, rehabilitation start, withdrawal, death, closing...).
* rule: occasion (+ optional needs) -> one task of a kind for a unit kind, with a due rule.
* reaction: occasion -> open tasks of some kinds are completed or cancelled (moot).
* routing: unit kind -> concrete unit, e.g. one of Stavanger's four health offices.

Task ids are deterministic, `<episode>:<kind>:<trigger event id>`, so reprocessing a
pathway event never creates a second task.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from coordination.domain.calendar import add_working_days, end_of_day, start_of_day
from overgang.events import EpisodeEvent, EventKind, Need, oslo_day
from overgang.vocabulary import Stage, TaskKind

LEAD_SUFFIX = "/lead"
DEFAULT_REHAB_PERIOD_DAYS = 28
UNIT_PART = re.compile(r"^[A-Z0-9_]{1,64}$")


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


class Occasion(StrEnum):
    ADMISSION_NOTICE = "admission_notice"  # admissionNotified with expected needs
    DISCHARGE_READY_NOTICE = "discharge_ready_notice"
    DISCHARGE_READY_WITHDRAWN = "discharge_ready_withdrawn"
    MUNICIPALITY_ANSWERED = "municipality_answered"
    SERVICE_READY = "service_ready"
    RECEPTION = "reception"  # the pathway entered RECEIVED (discharged to municipal care)
    REHABILITATION_START = "rehabilitation_start"  # entered REHABILITATION
    FOLLOW_UP_START = "follow_up_start"  # entered FOLLOW_UP
    DIED = "died"
    CLOSED = "closed"  # entered CLOSED


class RuleError(ValueError):
    """A rule file that does not make sense; the message names the offending key."""


class TaskStateError(ValueError):
    """A task transition that the task's state does not allow."""


# ------------------------------------------------------------------------------ due rules
class DueKind(StrEnum):
    SAME_DAY = "same day"
    WORKING_DAYS = "working days"
    DAYS = "days"
    RECEPTION_DAY = "reception day"
    BEFORE_RECEPTION = "before reception"
    END_OF_REHAB_PERIOD = "end of rehab period"


_DUE_COUNT = re.compile(r"^(\d{1,3}) (working )?days?( after reception)?$")
EPISODE_DEPENDENT = frozenset({DueKind.RECEPTION_DAY, DueKind.BEFORE_RECEPTION})


@dataclass(frozen=True)
class DueRule:
    """When a task is due, relative to its trigger (or to the episode's reception day).

    Text forms: "same day" (end of the trigger's Oslo day), "N working day(s)" (end of the
    N-th working day after the trigger day; "... after reception" is accepted for rules
    triggered by reception), "N day(s)" (end of the day N calendar days later),
    "reception day" (end of the expected ready date, else the discharge day, else the
    day the patient was declared ready), "before reception" (start of the expected ready
    date from the municipality's answer, else 1 working day), "end of rehab period"
    (end of the day `rehab_period_days` after the trigger).
    """

    kind: DueKind
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> DueRule:
        norm = " ".join(text.strip().lower().split())
        for kind in (
            DueKind.SAME_DAY,
            DueKind.RECEPTION_DAY,
            DueKind.BEFORE_RECEPTION,
            DueKind.END_OF_REHAB_PERIOD,
        ):
            if norm == kind.value:
                return cls(kind)
        match = _DUE_COUNT.match(norm)
        if match is None:
            raise RuleError(f"unknown due rule {text!r}")
        count = int(match.group(1))
        return cls(DueKind.WORKING_DAYS if match.group(2) else DueKind.DAYS, count)

    def __str__(self) -> str:
        if self.kind is DueKind.WORKING_DAYS:
            return f"{self.count} working day{'s' if self.count != 1 else ''}"
        if self.kind is DueKind.DAYS:
            return f"{self.count} day{'s' if self.count != 1 else ''}"
        return self.kind.value


# ------------------------------------------------------------------------------- rule set
@dataclass(frozen=True)
class Rule:
    name: str
    trigger: Occasion
    task: TaskKind
    unit: UnitKind
    due: DueRule
    priority: Priority
    title: str
    # Empty: always. Otherwise the rule fires when the patient has any of these needs.
    needs_any: frozenset[Need] = frozenset()


@dataclass(frozen=True)
class Reaction:
    """What an occasion does to the episode's open tasks."""

    complete: frozenset[TaskKind] = frozenset()
    cancel: frozenset[TaskKind] = frozenset()
    cancel_all: bool = False
    reason: str = ""

    def cancels(self, kind: TaskKind) -> bool:
        return self.cancel_all or kind in self.cancel


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    reactions: Mapping[Occasion, Reaction] = field(default_factory=dict)
    # Unit kind -> offices; a patient is routed to one office by a stable hash.
    offices: Mapping[UnitKind, tuple[str, ...]] = field(default_factory=dict)
    rehab_period_days: int = DEFAULT_REHAB_PERIOD_DAYS

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RuleSet:
        _only(data, {"settings", "rules", "on", "units"}, "")
        settings = data.get("settings", {})
        _only(settings, {"rehab_period_days"}, "settings")
        rehab = settings.get("rehab_period_days", DEFAULT_REHAB_PERIOD_DAYS)
        if not isinstance(rehab, int) or isinstance(rehab, bool) or not 1 <= rehab <= 365:
            raise RuleError("settings.rehab_period_days: must be an integer 1-365")
        rules = tuple(
            _rule(name, body)
            for name, body in data.get("rules", {}).items()
            if not (isinstance(body, Mapping) and body.get("enabled", True) is False)
        )
        seen: set[tuple[Occasion, TaskKind]] = set()
        for rule in rules:
            if (rule.trigger, rule.task) in seen:
                raise RuleError(
                    f"rules.{rule.name}: a second {rule.task} task on {rule.trigger} "
                    "(task ids are <episode>:<kind>:<trigger>, so they would collide)"
                )
            seen.add((rule.trigger, rule.task))
        reactions = {
            _enum(Occasion, occ, f"on.{occ}"): _reaction(occ, body)
            for occ, body in data.get("on", {}).items()
        }
        offices: dict[UnitKind, tuple[str, ...]] = {}
        for kind, body in data.get("units", {}).items():
            path = f"units.{kind}"
            _only(body, {"offices", "select"}, path)
            select = body.get("select", "patient_pseudonym_hash")
            if select != "patient_pseudonym_hash":
                raise RuleError(f"{path}.select: only 'patient_pseudonym_hash' is supported")
            names = tuple(body.get("offices", ()))
            for office in names:
                if not isinstance(office, str) or not UNIT_PART.match(office):
                    raise RuleError(f"{path}.offices: {office!r} is not [A-Z0-9_]")
            if len(set(names)) != len(names):
                raise RuleError(f"{path}.offices: duplicate office")
            offices[_enum(UnitKind, kind, path)] = names
        return cls(rules=rules, reactions=reactions, offices=offices, rehab_period_days=rehab)


def merge_rule_data(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge of tables: the override replaces leaves and lists, adds new rules, and a
    rule set to `enabled = false` drops that default rule."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_rule_data(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _only(body: Any, allowed: set[str], path: str) -> None:
    if not isinstance(body, Mapping):
        raise RuleError(f"{path or 'rule file'}: must be a table")
    unknown = sorted(set(body) - allowed)
    if unknown:
        where = f"{path}." if path else ""
        raise RuleError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")


E = TypeVar("E", bound=StrEnum)


def _enum(enum: type[E], value: Any, path: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise RuleError(f"{path}: {value!r} is not one of {allowed}") from None


def _rule(name: str, body: Any) -> Rule:
    path = f"rules.{name}"
    keys = {"trigger", "task", "unit", "due", "priority", "title", "needs_any", "enabled"}
    _only(body, keys, path)
    for key in ("trigger", "task", "unit", "due"):
        if key not in body:
            raise RuleError(f"{path}.{key}: is required")
    try:
        due = DueRule.parse(str(body["due"]))
    except RuleError as exc:
        raise RuleError(f"{path}.due: {exc}") from None
    task = _enum(TaskKind, body["task"], f"{path}.task")
    return Rule(
        name=name,
        trigger=_enum(Occasion, body["trigger"], f"{path}.trigger"),
        task=task,
        unit=_enum(UnitKind, body["unit"], f"{path}.unit"),
        due=due,
        priority=_enum(Priority, body.get("priority", "NORMAL"), f"{path}.priority"),
        title=str(body.get("title", task.value.replace("_", " ").capitalize())),
        needs_any=frozenset(_enum(Need, n, f"{path}.needs_any") for n in body.get("needs_any", ())),
    )


def _reaction(occasion: str, body: Any) -> Reaction:
    path = f"on.{occasion}"
    _only(body, {"complete", "cancel", "reason"}, path)
    cancel = list(body.get("cancel", ()))
    cancel_all = "*" in cancel
    return Reaction(
        complete=frozenset(
            _enum(TaskKind, k, f"{path}.complete") for k in body.get("complete", ())
        ),
        cancel=frozenset(_enum(TaskKind, k, f"{path}.cancel") for k in cancel if k != "*"),
        cancel_all=cancel_all,
        reason=str(body.get("reason", occasion.replace("_", " "))),
    )


# -------------------------------------------------------------------------------- episode
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
        needs=change.needs or _cause_needs(change) or episode.needs,
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


def _cause_needs(change: PathwayChange) -> tuple[Need, ...]:
    return change.cause.needs if change.cause is not None else ()


def occasions_of(change: PathwayChange) -> list[Occasion]:
    found: list[Occasion] = []
    cause = change.cause
    if cause is not None:
        if cause.kind is EventKind.ADMISSION_NOTIFIED and cause.needs:
            found.append(Occasion.ADMISSION_NOTICE)
        by_kind = {
            EventKind.DISCHARGE_READY_NOTIFIED: Occasion.DISCHARGE_READY_NOTICE,
            EventKind.DISCHARGE_READY_WITHDRAWN: Occasion.DISCHARGE_READY_WITHDRAWN,
            EventKind.MUNICIPALITY_ANSWERED: Occasion.MUNICIPALITY_ANSWERED,
            EventKind.SERVICE_READY: Occasion.SERVICE_READY,
            EventKind.DIED: Occasion.DIED,
        }
        if cause.kind in by_kind:
            found.append(by_kind[cause.kind])
    for stage, occasion in (
        (Stage.RECEIVED, Occasion.RECEPTION),
        (Stage.REHABILITATION, Occasion.REHABILITATION_START),
        (Stage.FOLLOW_UP, Occasion.FOLLOW_UP_START),
        (Stage.CLOSED, Occasion.CLOSED),
    ):
        if change.entered(stage):
            found.append(occasion)
    return found


# ----------------------------------------------------------------------------------- task
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


MAX_TASK_ID = 128  # what consumers (the pathway service) accept


def task_id_for(episode_id: str, kind: TaskKind, trigger_event_id: str) -> str:
    """`<episode>:<kind>:<trigger event id>`; when that would be longer than 128
    characters the trigger part is a SHA-256 prefix of the id (still deterministic)."""
    natural = f"{episode_id}:{kind.value}:{trigger_event_id}"
    if len(natural) <= MAX_TASK_ID:
        return natural
    digest = hashlib.sha256(trigger_event_id.encode()).hexdigest()[:24]
    return f"{episode_id}:{kind.value}:h-{digest}"


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


def due_at(rule: DueRule, trigger_at: dt.datetime, episode: Episode, rules: RuleSet) -> dt.datetime:
    day = oslo_day(trigger_at)
    if rule.kind is DueKind.SAME_DAY:
        return end_of_day(day)
    if rule.kind is DueKind.WORKING_DAYS:
        return end_of_day(add_working_days(day, rule.count))
    if rule.kind is DueKind.DAYS:
        return end_of_day(day + dt.timedelta(days=rule.count))
    if rule.kind is DueKind.RECEPTION_DAY:
        return end_of_day(episode.planned_reception_day or day)
    if rule.kind is DueKind.BEFORE_RECEPTION:
        known = episode.reception_day or episode.expected_ready_date
        return start_of_day(known) if known else end_of_day(add_working_days(day, 1))
    return end_of_day(day + dt.timedelta(days=rules.rehab_period_days))


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

    needs = set(_cause_needs(change) or episode.needs)
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
                due_at=due_at(rule.due, change.at, episode, rules),
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
            new_due = due_at(task.due_rule, task.trigger_at, episode, rules)
            if new_due != task.due_at:
                put(task.reschedule(new_due, now))
    return list(changed.values())


def overdue(tasks: Iterable[Task], now: dt.datetime) -> list[Task]:
    """Escalate, once, every open or claimed task whose due time has passed."""
    return [t.escalate(now) for t in tasks if t.active and not t.escalated and t.due_at < now]


def unit_matches(unit: str, scope: str) -> bool:
    """`scope` covers `unit`: the same unit or one of its sub-units ("HEALTH_OFFICE"
    covers "HEALTH_OFFICE/MADLA_HILLEVAAG")."""
    return unit == scope or unit.startswith(scope + "/")


def needs_of(values: Sequence[str]) -> tuple[Need, ...]:
    return tuple(Need(v) for v in values)
