"""The payment-liability clock (forskrift om kommunal betaling for utskrivningsklare
pasienter), as a pure function of an episode's event history and an "as of" date.

Rules (domain.md, profile no-2019):
1. A period starts on the Oslo day on which the patient is both declared discharge-ready
   and notified to the municipality (the later of the two days); that day is day 1.
2. A day is liable while the municipality has answered "cannot receive" or not answered.
   An answer takes effect on its own Oslo day, so "can receive" on the start day means
   nothing is owed unless a later answer reverses it.
3. The period ends on the day of service ready, discharge, withdrawal or death; the end
   day is not billed. A new notice after an end starts a new period.
4. No admission notice before the discharge-ready notice voids the period (or, with the
   `delay` profile, moves its start to the day the admission notice came).
5. Amount = sum of each liable day's rate for that day's year.
6. The payer is the municipality on the notice that opened the period.
7. Late events are simply part of the history: the result is recomputed, and callers
   that emitted an earlier result emit the difference (see `liability_diff`).

Only days strictly before `as_of` are counted: `as_of` is the first day not yet over,
so a running period shows its complete days. Ended periods do not depend on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from discharge.domain.profile import NO_2019, LateAdmissionNotice, RuleProfile
from discharge.domain.rates import RateTable
from overgang.events import EpisodeEvent, EventKind, oslo_day


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


_END_CAUSE = {
    EventKind.SERVICE_READY: EndCause.SERVICE_READY,
    EventKind.DISCHARGED: EndCause.DISCHARGED,
    EventKind.DISCHARGE_READY_WITHDRAWN: EndCause.WITHDRAWN,
    EventKind.DIED: EndCause.DIED,
}


@dataclass(frozen=True)
class LiableDay:
    date: dt.date
    amount_nok: int


@dataclass(frozen=True)
class Period:
    notice_event_id: str
    municipality: str
    start: dt.date
    end: dt.date | None
    end_cause: EndCause | None
    status: PeriodStatus
    void_reason: VoidReason | None
    days: tuple[LiableDay, ...]

    @property
    def liable_days(self) -> int:
        return len(self.days)

    @property
    def amount_nok(self) -> int:
        return sum(d.amount_nok for d in self.days)


@dataclass(frozen=True)
class Statement:
    episode_id: str
    municipality: str
    as_of: dt.date
    periods: tuple[Period, ...]

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

    @property
    def days(self) -> tuple[LiableDay, ...]:
        return tuple(day for period in self.periods for day in period.days)

    @property
    def liable_days(self) -> int:
        return sum(p.liable_days for p in self.periods)

    @property
    def amount_nok(self) -> int:
        return sum(p.amount_nok for p in self.periods)


@dataclass(frozen=True)
class Conflict:
    """Two events with one id but different content: the choice is deterministic
    (the smaller canonical form), and the conflict is reported, never hidden."""

    event_id: str
    kept: EpisodeEvent
    dropped: EpisodeEvent


def _canonical(event: EpisodeEvent) -> str:
    return repr(
        tuple(
            v.astimezone(dt.UTC).isoformat() if isinstance(v, dt.datetime) else repr(v)
            for v in dataclasses.astuple(event)
        )
    )


def unique_events(events: Iterable[EpisodeEvent]) -> tuple[list[EpisodeEvent], list[Conflict]]:
    """Drop duplicates by event id, then order by event time (ties: causes first)."""
    by_id: dict[str, EpisodeEvent] = {}
    conflicts: list[Conflict] = []
    for event in events:
        seen = by_id.get(event.event_id)
        if seen is None or seen == event:
            by_id[event.event_id] = event
            continue
        kept, dropped = sorted((seen, event), key=_canonical)
        by_id[event.event_id] = kept
        conflicts.append(Conflict(event.event_id, kept, dropped))
    return sorted(by_id.values(), key=EpisodeEvent.sort_key), conflicts


@dataclass
class _OpenPeriod:
    notice: EpisodeEvent
    start: dt.date
    position: int  # index of the notice in the ordered history
    answers: list[tuple[dt.date, bool]] = dataclasses.field(default_factory=list)
    end: dt.date | None = None
    end_cause: EndCause | None = None
    end_position: int | None = None


def _periods(ordered: list[EpisodeEvent]) -> list[_OpenPeriod]:
    periods: list[_OpenPeriod] = []
    current: _OpenPeriod | None = None
    for position, event in enumerate(ordered):
        if event.kind is EventKind.DISCHARGE_READY_NOTIFIED:
            # A repeated notice while one is in force (an update) opens nothing new.
            if current is None:
                assert event.ready_at is not None
                start = max(oslo_day(event.ready_at), event.oslo_day)
                current = _OpenPeriod(notice=event, start=start, position=position)
                periods.append(current)
        elif event.kind is EventKind.MUNICIPALITY_ANSWERED:
            if current is not None:
                current.answers.append((event.oslo_day, bool(event.can_receive)))
        elif event.kind in _END_CAUSE and current is not None:
            current.end = event.oslo_day
            current.end_cause = _END_CAUSE[event.kind]
            current.end_position = position
            current = None
    return periods


def _first_position(ordered: list[EpisodeEvent], kind: EventKind, before: int | None) -> int | None:
    for position, event in enumerate(ordered):
        if before is not None and position >= before:
            return None
        if event.kind is kind:
            return position
    return None


def _precondition(
    ordered: list[EpisodeEvent],
    period: _OpenPeriod,
    kind: EventKind,
    late_delays: bool,
) -> tuple[dt.date | None, bool]:
    """(earliest allowed start, satisfied) for a precondition event of `kind`.

    Satisfied if the event precedes the notice; if it comes later while the period is
    open and late events only delay, the start moves to its day."""
    position = _first_position(ordered, kind, period.end_position)
    if position is None:
        return None, False
    if position < period.position:
        return None, True
    if late_delays:
        return ordered[position].oslo_day, True
    return None, False


def _answer_allows_liability(answers: list[tuple[dt.date, bool]], day: dt.date) -> bool:
    can_receive: bool | None = None  # not answered
    for answered_on, can in answers:
        if answered_on > day:
            break
        can_receive = can
    return can_receive is not True


def compute_statement(
    episode_id: str,
    events: Iterable[EpisodeEvent],
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile = NO_2019,
) -> Statement:
    """The statement for one episode. Raises MissingRate for a liable day whose year has
    no rate. Events of other episodes must not be passed in."""
    ordered, _conflicts = unique_events(events)
    periods: list[Period] = []
    for open_period in _periods(ordered):
        notice = open_period.notice
        start = open_period.start
        void_reason: VoidReason | None = None

        admission_start, admission_ok = _precondition(
            ordered,
            open_period,
            EventKind.ADMISSION_NOTIFIED,
            late_delays=profile.late_admission_notice is LateAdmissionNotice.DELAY,
        )
        if not admission_ok:
            void_reason = VoidReason.MISSING_ADMISSION_NOTICE
        elif admission_start is not None:
            start = max(start, admission_start)

        if void_reason is None and notice.division in profile.cooperation_meeting_required_for:
            meeting_start, meeting_ok = _precondition(
                ordered, open_period, EventKind.COOPERATION_MEETING_HELD, late_delays=True
            )
            if not meeting_ok:
                void_reason = VoidReason.MISSING_COOPERATION_MEETING
            elif meeting_start is not None:
                start = max(start, meeting_start)

        days: list[LiableDay] = []
        if void_reason is None:
            stop = as_of if open_period.end is None else min(open_period.end, as_of)
            day = start
            while day < stop:
                if _answer_allows_liability(open_period.answers, day):
                    days.append(LiableDay(day, rates.rate_for(day)))
                day += dt.timedelta(days=1)

        if void_reason is not None:
            status = PeriodStatus.VOID
        elif open_period.end is None:
            status = PeriodStatus.RUNNING
        else:
            status = PeriodStatus.ENDED
        periods.append(
            Period(
                notice_event_id=notice.event_id,
                municipality=notice.municipality,
                start=start,
                end=open_period.end,
                end_cause=open_period.end_cause,
                status=status,
                void_reason=void_reason,
                days=tuple(days),
            )
        )
    if periods:
        municipality = periods[-1].municipality
    else:
        municipality = ordered[-1].municipality if ordered else ""
    return Statement(episode_id, municipality, as_of, tuple(periods))
