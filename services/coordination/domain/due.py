"""The due-time grammar: when a task is due, relative to its trigger or to the episode's
reception day, in Oslo working days (Norwegian public holidays included).

Text forms: "same day" (end of the trigger's Oslo day), "N working day(s)" (end of the
N-th working day after the trigger day; "... after reception" is accepted for rules
triggered by reception), "N day(s)" (end of the day N calendar days later),
"reception day" (end of the expected ready date, else the discharge day, else the day
the patient was declared ready), "before reception" (start of the expected ready date
from the municipality's answer, else 1 working day), "end of rehab period" (end of the
day `rehab_period_days` after the trigger).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from coordination.domain.calendar import add_working_days, end_of_day, start_of_day
from overgang.events import oslo_day


class DueRuleError(ValueError):
    """A due rule text outside the grammar."""


class DueKind(StrEnum):
    SAME_DAY = "same day"
    WORKING_DAYS = "working days"
    DAYS = "days"
    RECEPTION_DAY = "reception day"
    BEFORE_RECEPTION = "before reception"
    END_OF_REHAB_PERIOD = "end of rehab period"


_DUE_COUNT = re.compile(r"^(\d{1,3}) (working )?days?( after reception)?$")
_NAMED = (
    DueKind.SAME_DAY,
    DueKind.RECEPTION_DAY,
    DueKind.BEFORE_RECEPTION,
    DueKind.END_OF_REHAB_PERIOD,
)
# Due times that move when the episode's reception day becomes known or changes.
EPISODE_DEPENDENT = frozenset({DueKind.RECEPTION_DAY, DueKind.BEFORE_RECEPTION})


@dataclass(frozen=True)
class DueRule:
    """One due rule of the grammar (see the module docstring); `str()` is its text."""

    kind: DueKind
    count: int = 0

    @classmethod
    def parse(cls, text: str) -> DueRule:
        norm = " ".join(text.strip().lower().split())
        for kind in _NAMED:
            if norm == kind.value:
                return cls(kind)
        match = _DUE_COUNT.match(norm)
        if match is None:
            raise DueRuleError(f"unknown due rule {text!r}")
        count = int(match.group(1))
        return cls(DueKind.WORKING_DAYS if match.group(2) else DueKind.DAYS, count)

    def __str__(self) -> str:
        if self.kind is DueKind.WORKING_DAYS:
            return f"{self.count} working day{'s' if self.count != 1 else ''}"
        if self.kind is DueKind.DAYS:
            return f"{self.count} day{'s' if self.count != 1 else ''}"
        return self.kind.value


class ReceptionDates(Protocol):
    """What a due time may depend on besides its trigger (an `Episode` has these)."""

    @property
    def reception_day(self) -> dt.date | None: ...

    @property
    def expected_ready_date(self) -> dt.date | None: ...

    @property
    def planned_reception_day(self) -> dt.date | None: ...


def due_at(
    rule: DueRule, trigger_at: dt.datetime, episode: ReceptionDates, rehab_period_days: int
) -> dt.datetime:
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
    return end_of_day(day + dt.timedelta(days=rehab_period_days))
