"""The rule set, as plain frozen data: which occasion creates which task for which unit
kind, what an occasion does to the open tasks, and how a unit kind splits into offices.

The rule book (`coordination.rulebook`, at the edge) reads it from TOML and validates it;
the domain only uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from coordination.domain.due import DueRule
from coordination.domain.task import Priority, UnitKind
from overgang.events import Need
from overgang.vocabulary import TaskKind

DEFAULT_REHAB_PERIOD_DAYS = 28


class Occasion(StrEnum):
    """What a pathway change means for coordination."""

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


@dataclass(frozen=True)
class Rule:
    """Occasion (+ optional needs) -> one task of a kind for a unit kind, with a due rule."""

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
