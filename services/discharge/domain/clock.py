"""The payment-liability clock (forskrift om kommunal betaling for utskrivningsklare
pasienter), as a pure function of an episode's event history and an "as of" date.

Rules (domain.md, profile no-2019):
1. A period starts on the Oslo day on which the patient is both declared discharge-ready
   and notified to the municipality (the later of the two days); that day is day 1.
2. A day is liable while the municipality has answered "cannot receive" or not answered.
   An answer takes effect on its own Oslo day, so "can receive" on the start day means
   nothing is owed unless a later answer reverses it.
3. The period ends on the day of service ready, discharge, withdrawal or death; the end
   day is not billed. A new notice after an end starts a new period, except after a
   death: such a notice opens nothing and is reported as a conflict.
4. No admission notice before the discharge-ready notice voids the period (or, with the
   `delay` profile, moves its start to the day the admission notice came).
5. Amount = sum of each liable day's rate for that day's year. A day whose year has no
   rate still counts, as rate-pending (`LiableDay.amount_nok` is None), never guessed.
6. The payer is the municipality on the notice that opened the period. Days before the
   division's coverage start (profile `coverage_starts`) are not liable, and the period
   says so (`not_liable_reason`).
7. Late events are simply part of the history: the result is recomputed, and callers
   that emitted an earlier result emit the difference (see `liability_diff`).

As of means as of: `as_of` is the first day not yet over. Only events that occurred
before it began (Europe/Oslo) are seen, and only days strictly before it are counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from discharge.domain.history import OpenPeriod, fold_periods, seen_as_of, unique_events
from discharge.domain.profile import NO_2019, LateAdmissionNotice, RuleProfile
from discharge.domain.rates import RateTable
from discharge.domain.statement import (
    Conflict,
    ConflictKind,
    EndCause,
    Evidence,
    LiableDay,
    Period,
    PeriodStatus,
    Statement,
    VoidReason,
    not_covered_before,
)
from overgang.events import EpisodeEvent, EventKind

__all__ = [
    "Conflict",
    "ConflictKind",
    "EndCause",
    "Evidence",
    "LiableDay",
    "Period",
    "PeriodStatus",
    "Statement",
    "VoidReason",
    "compute_statement",
    "unique_events",
]


class _Precondition(NamedTuple):
    event: EpisodeEvent | None  # the first such event before the period ended
    met: bool
    earliest_start: dt.date | None = None  # a late event that only delays: its day


_NONE_BEFORE_END = _Precondition(None, met=False)


def _precondition(
    ordered: list[EpisodeEvent], period: OpenPeriod, kind: EventKind, late_delays: bool
) -> _Precondition:
    """Met if the event precedes the notice; if it comes later while the period is open
    and late events only delay, the start moves to its day; otherwise not met."""
    stop = len(ordered) if period.end_position is None else period.end_position
    position = next((i for i in range(stop) if ordered[i].kind is kind), None)
    if position is None:
        return _NONE_BEFORE_END
    event = ordered[position]
    if position < period.position:
        return _Precondition(event, met=True)
    if late_delays:
        return _Precondition(event, met=True, earliest_start=event.oslo_day)
    return _Precondition(event, met=False)


def _liable_days(
    period: OpenPeriod, first: dt.date, as_of: dt.date, rates: RateTable
) -> tuple[LiableDay, ...]:
    """Each day from `first` is liable unless the answer in effect on it (the last one on
    or before its day; answers are in event-time order) is "can receive"."""
    stop = as_of if period.end is None else min(period.end, as_of)
    answers = period.answers
    next_answer, can_receive = 0, False  # not answered: liable
    days: list[LiableDay] = []
    one_day = dt.timedelta(days=1)
    day = first
    while day < stop:
        while next_answer < len(answers) and answers[next_answer].oslo_day <= day:
            can_receive = bool(answers[next_answer].can_receive)
            next_answer += 1
        if not can_receive:
            days.append(LiableDay(day, rates.price(day)))
        day += one_day
    return tuple(days)


def _period(
    ordered: list[EpisodeEvent],
    period: OpenPeriod,
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile,
) -> Period:
    notice = period.notice
    late_delays = profile.late_admission_notice is LateAdmissionNotice.DELAY
    admission = _precondition(ordered, period, EventKind.ADMISSION_NOTIFIED, late_delays)
    meeting = None
    if notice.division in profile.cooperation_meeting_required_for:
        meeting = _precondition(
            ordered, period, EventKind.COOPERATION_MEETING_HELD, late_delays=True
        )
    # The first precondition not met voids the period (the admission notice first).
    void_reason: VoidReason | None = None
    voided_by: EpisodeEvent | None = None
    if not admission.met:
        void_reason, voided_by = VoidReason.MISSING_ADMISSION_NOTICE, admission.event
    elif meeting is not None and not meeting.met:
        void_reason, voided_by = VoidReason.MISSING_COOPERATION_MEETING, meeting.event

    start = period.start
    for check in (admission, meeting):
        if check is not None and check.earliest_start and check.earliest_start > start:
            start = check.earliest_start
    if period.end is not None:
        start = min(start, period.end)  # ended before it could start: no days
    first_liable, not_liable_reason = start, None
    covered_from = profile.coverage_start(notice.division)
    if covered_from is not None and start < covered_from:
        first_liable, not_liable_reason = covered_from, not_covered_before(covered_from)

    days: tuple[LiableDay, ...] = ()
    if void_reason is None:
        days = _liable_days(period, first_liable, as_of, rates)
    if void_reason is not None:
        status = PeriodStatus.VOID
    elif period.end is None:
        status = PeriodStatus.RUNNING
    else:
        status = PeriodStatus.ENDED

    def met(check: _Precondition | None) -> str | None:
        return check.event.event_id if check and check.met and check.event else None

    return Period(
        municipality=notice.municipality,
        start=start,
        end=period.end,
        end_cause=period.end_cause,
        status=status,
        void_reason=void_reason,
        days=days,
        evidence=Evidence(
            started_by=notice.event_id,
            ended_by=period.end_event.event_id if period.end_event else None,
            voided_by=voided_by.event_id if voided_by else None,
            admission_notice=met(admission),
            cooperation_meeting=met(meeting),
            answers=tuple(a.event_id for a in period.answers),
            answered_at=tuple(a.occurred_at for a in period.answers),
            updates=tuple(period.updates),
        ),
        not_liable_reason=None if void_reason else not_liable_reason,
    )


def compute_statement(
    episode_id: str,
    events: Iterable[EpisodeEvent],
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile = NO_2019,
) -> Statement:
    """The statement for one episode as of `as_of`. Never raises for a missing rate (such
    days are rate-pending). Events of other episodes must not be passed in."""
    ordered, duplicates = unique_events(events)
    seen = seen_as_of(ordered, as_of)
    open_periods, late_notices = fold_periods(seen)
    periods = tuple(_period(seen, p, as_of, rates, profile) for p in open_periods)
    # The payer of the last period; without one, the municipality of the last event.
    last = periods[-1] if periods else (seen[-1] if seen else None)
    municipality = last.municipality if last else ""
    return Statement(
        episode_id, municipality, as_of, periods, conflicts=(*duplicates, *late_notices)
    )
