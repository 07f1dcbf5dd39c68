"""What the live clock announces: the difference between the statement it announced last
and the statement the event history determines now.

A day tick only moves `as_of`, so its differences are new complete days (`DAY_ACCRUED`,
id = episode + date). An event can change history retroactively, so its day differences
are one `CORRECTED` (reversed + added days, id = episode + cause event). Every id is
deterministic: announcing the same difference twice after a crash is recognisable.

A rate-pending day (`amount_nok` None) is announced like any other day. When its year's
rate is added, the day differs: it comes back as a correction that reverses the pending
day and adds the priced one (cause: the rate table, e.g. `rates-<fingerprint>`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from discharge.domain.clock import LiableDay, Period, PeriodStatus, Statement
from discharge.domain.statement import pending_count, priced_nok


class ChangeKind(StrEnum):
    PERIOD_STARTED = "PERIOD_STARTED"
    PERIOD_VOIDED = "PERIOD_VOIDED"
    DAY_ACCRUED = "DAY_ACCRUED"
    CORRECTED = "CORRECTED"
    PERIOD_ENDED = "PERIOD_ENDED"


@dataclass(frozen=True)
class LiabilityChange:
    event_id: str
    kind: ChangeKind
    episode_id: str
    municipality: str
    period: Period | None = None
    day: LiableDay | None = None
    reversed: tuple[LiableDay, ...] = ()
    added: tuple[LiableDay, ...] = ()
    cause_event_id: str = ""

    @property
    def delta_nok(self) -> int:
        """The change in priced NOK (rate-pending days count 0)."""
        return priced_nok(self.added) - priced_nok(self.reversed)

    @property
    def delta_pending_days(self) -> int:
        """The change in rate-pending days."""
        return pending_count(self.added) - pending_count(self.reversed)


def _period_changes(
    previous: Statement | None, current: Statement, cause: str
) -> tuple[list[LiabilityChange], list[LiabilityChange]]:
    """(changes announced before the day changes, changes announced after them)."""
    before: list[LiabilityChange] = []
    after: list[LiabilityChange] = []
    old_periods = {p.notice_event_id: p for p in previous.periods} if previous else {}

    def change(kind: ChangeKind, period: Period) -> LiabilityChange:
        return LiabilityChange(
            event_id=f"{current.episode_id}:{period.notice_event_id}:{kind.lower()}:{cause}",
            kind=kind,
            episode_id=current.episode_id,
            municipality=period.municipality,
            period=period,
            cause_event_id=cause,
        )

    for period in current.periods:
        old = old_periods.pop(period.notice_event_id, None)
        if old is not None and (old.status, old.start, old.end) == (
            period.status,
            period.start,
            period.end,
        ):
            continue
        if period.status is PeriodStatus.VOID:
            if old is None or old.status is not PeriodStatus.VOID:
                before.append(change(ChangeKind.PERIOD_VOIDED, period))
            continue
        if (
            old is None
            or old.status is PeriodStatus.VOID
            or old.start != period.start
            or (old.status is PeriodStatus.ENDED and period.status is PeriodStatus.RUNNING)
        ):
            before.append(change(ChangeKind.PERIOD_STARTED, period))
        if period.status is PeriodStatus.ENDED:
            after.append(change(ChangeKind.PERIOD_ENDED, period))
    # A period a corrected history no longer has (its notice became a mere update).
    for vanished in old_periods.values():
        if vanished.status is not PeriodStatus.VOID:
            before.append(change(ChangeKind.PERIOD_VOIDED, vanished))
    return before, after


def _same(day: LiableDay | None, other: LiableDay) -> bool:
    return day is other or day == other


def liability_diff(
    previous: Statement | None, current: Statement, cause_event_id: str | None
) -> list[LiabilityChange]:
    """`cause_event_id` is the event just applied, or None for a day tick."""
    cause = cause_event_id or f"tick-{current.as_of.isoformat()}"
    before, after = _period_changes(previous, current, cause)
    old_days = {d.date: d for d in previous.days} if previous else {}
    new_days = {d.date: d for d in current.days}
    # `is` first: a tick's statement shares the unchanged days with the previous one.
    added = tuple(d for date, d in sorted(new_days.items()) if not _same(old_days.get(date), d))
    reversed_ = tuple(d for date, d in sorted(old_days.items()) if not _same(new_days.get(date), d))
    days: list[LiabilityChange] = []
    if cause_event_id is None and not reversed_:
        days = [
            LiabilityChange(
                event_id=f"{current.episode_id}:day:{day.date.isoformat()}",
                kind=ChangeKind.DAY_ACCRUED,
                episode_id=current.episode_id,
                municipality=current.municipality,
                day=day,
            )
            for day in added
        ]
    elif added or reversed_:
        days = [
            LiabilityChange(
                event_id=f"{current.episode_id}:corrected:{cause}",
                kind=ChangeKind.CORRECTED,
                episode_id=current.episode_id,
                municipality=current.municipality,
                reversed=reversed_,
                added=added,
                cause_event_id=cause_event_id or "",
            )
        ]
    return [*before, *days, *after]
