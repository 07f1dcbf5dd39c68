"""What the clock says about an episode: its periods, their days and the evidence.

A statement is evidence for a finance office: every period names its payer, why it
started, ended or was voided (event ids), which days are liable and which of those are
still waiting for their year's rate (`amount_nok` is None: rate-pending, counted but not
priced), and every conflict found in the history.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class PeriodStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"  # episode without a discharge-ready notice
    RUNNING = "RUNNING"
    ENDED = "ENDED"
    VOID = "VOID"


class VoidReason(StrEnum):
    MISSING_ADMISSION_NOTICE = "VOID_MISSING_ADMISSION_NOTICE"
    MISSING_COOPERATION_MEETING = "VOID_MISSING_COOPERATION_MEETING"


class EndCause(StrEnum):
    SERVICE_READY = "SERVICE_READY"
    DISCHARGED = "DISCHARGED"
    WITHDRAWN = "WITHDRAWN"
    DIED = "DIED"


class ConflictKind(StrEnum):
    # Two events with one id but different content: the one whose canonical form sorts
    # first is kept, the other dropped.
    DUPLICATE_EVENT_ID = "DUPLICATE_EVENT_ID"
    # A discharge-ready notice after the patient's death: it opens no period.
    NOTICE_AFTER_DEATH = "NOTICE_AFTER_DEATH"


def not_covered_before(day: dt.date) -> str:
    """The not-liable reason of a period with days before its division's coverage."""
    return f"NOT_COVERED_BEFORE_{day.isoformat()}"


@dataclass(frozen=True, slots=True)  # a clock holds one per day: keep them small
class LiableDay:
    date: dt.date
    amount_nok: int | None  # None: rate-pending (the day's year has no rate yet)

    @property
    def pending(self) -> bool:
        return self.amount_nok is None


@dataclass(frozen=True)
class Evidence:
    """The ids of the events that made a period what it is."""

    started_by: str  # the discharge-ready notice that opened it
    ended_by: str | None = None  # service ready, discharge, withdrawal or death
    voided_by: str | None = None  # a late precondition event (None: simply missing)
    admission_notice: str | None = None  # the admission notice that satisfied rule 4
    cooperation_meeting: str | None = None  # the meeting, where the profile needs one
    answers: tuple[str, ...] = ()  # the municipality's answers while it was in force
    updates: tuple[str, ...] = ()  # repeated notices while it was in force
    # The event time of each of `answers`, in the same order: the SLA "time to the
    # municipality's answer" runs from the notice to the first.
    answered_at: tuple[dt.datetime, ...] = ()

    @property
    def first_answer_at(self) -> dt.datetime | None:
        return self.answered_at[0] if self.answered_at else None


@dataclass(frozen=True)
class Conflict:
    """Something in the history that the clock had to decide against, reported."""

    kind: ConflictKind
    event_id: str  # the event that was not used (or, for a duplicate, the shared id)
    related_event_id: str  # the event it conflicts with (the kept one, or the death)
    reason: str  # for humans; never contains event content


def priced_nok(days: Iterable[LiableDay]) -> int:
    """The NOK of the priced days (rate-pending days count 0)."""
    return sum(d.amount_nok for d in days if d.amount_nok is not None)


def pending_count(days: Iterable[LiableDay]) -> int:
    return sum(1 for d in days if d.amount_nok is None)


class DayTotals:
    """Totals over a sequence of liable days (a period's, or a whole statement's)."""

    def liable(self) -> tuple[LiableDay, ...]:
        raise NotImplementedError

    @property
    def liable_days(self) -> int:
        """Every liable day, priced or rate-pending."""
        return len(self.liable())

    @property
    def pending_days(self) -> int:
        """Liable days whose year has no rate yet (not in `amount_nok`)."""
        return pending_count(self.liable())

    @property
    def amount_nok(self) -> int:
        """The priced days only."""
        return priced_nok(self.liable())

    @property
    def rate_pending(self) -> bool:
        """Some liable days wait for their year's rate."""
        return self.pending_days > 0

    @property
    def pending_years(self) -> tuple[int, ...]:
        """The years whose rate is missing for some liable day, ascending."""
        return tuple(sorted({d.date.year for d in self.liable() if d.amount_nok is None}))


@dataclass(frozen=True)
class Period(DayTotals):
    municipality: str  # the payer: the municipality on the notice that opened it
    start: dt.date  # never after `end`
    end: dt.date | None  # the end day (not billed); None while RUNNING or VOID unended
    end_cause: EndCause | None
    status: PeriodStatus
    void_reason: VoidReason | None
    days: tuple[LiableDay, ...]  # the liable days, priced or rate-pending
    evidence: Evidence
    not_liable_reason: str | None = None  # e.g. NOT_COVERED_BEFORE_2019-01-01

    @property
    def notice_event_id(self) -> str:
        return self.evidence.started_by

    def liable(self) -> tuple[LiableDay, ...]:
        return self.days


@dataclass(frozen=True)
class Statement(DayTotals):
    episode_id: str
    municipality: str
    as_of: dt.date  # the first day not counted; events from this day on are not seen
    periods: tuple[Period, ...]
    conflicts: tuple[Conflict, ...] = ()

    @property
    def status(self) -> PeriodStatus:
        return self.periods[-1].status if self.periods else PeriodStatus.NOT_STARTED

    @property
    def void_reason(self) -> VoidReason | None:
        return self.periods[-1].void_reason if self.periods else None

    @property
    def start(self) -> dt.date | None:
        return self.periods[0].start if self.periods else None

    @property
    def end(self) -> dt.date | None:
        return self.periods[-1].end if self.periods else None

    @functools.cached_property
    def days(self) -> tuple[LiableDay, ...]:
        # Built once: the totals, the diff, the table and the metrics all read it.
        return tuple(day for period in self.periods for day in period.days)

    def liable(self) -> tuple[LiableDay, ...]:
        return self.days

    def totals(self) -> tuple[int, int, int]:
        """(liable days, rate-pending days, NOK) in one pass over the periods' days: what
        `liable_days`, `pending_days` and `amount_nok` give, without building `days`
        (`overgang replay` reads them for every episode)."""
        liable = pending = nok = 0
        for period in self.periods:
            for day in period.days:
                liable += 1
                if day.amount_nok is None:
                    pending += 1
                else:
                    nok += day.amount_nok
        return liable, pending, nok
