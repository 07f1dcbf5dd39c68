"""Disputes: the paying municipality objects to liable days of an episode, the hospital
accepts or rejects. A dispute never changes the computed days: the clock's statement
stays what the events determine, and statements show beside it what is disputed, so
finance sees both numbers.

States: OPEN -> ACCEPTED | REJECTED, once. A day is held by at most one dispute that is
open or accepted; after a rejection it may be disputed again (a new dispute).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

DISPUTE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
MAX_TEXT = 500
MAX_DAYS = 366

Violation = tuple[str, str]  # (field, reason), as the gRPC edge reports them


class DisputeState(StrEnum):
    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    episode_id: str
    municipality: str  # the payer of the disputed days
    days: tuple[dt.date, ...]  # ascending, unique
    reason: str
    opened_at: dt.datetime
    opened_by: str = ""
    state: DisputeState = DisputeState.OPEN
    note: str = ""
    resolved_at: dt.datetime | None = None
    resolved_by: str = ""

    @property
    def holds_days(self) -> bool:
        """Open or accepted: its days may not be disputed again."""
        return self.state is not DisputeState.REJECTED

    def same_request(self, episode_id: str, days: Sequence[dt.date], reason: str) -> bool:
        """A repeat of the request that opened it (a retry after a lost answer)."""
        return (self.episode_id, self.days, self.reason) == (episode_id, tuple(days), reason)


class AlreadyResolved(Exception):
    """A second, different resolution of a dispute."""


def text_violations(field: str, text: str) -> list[Violation]:
    if not text.strip():
        return [(field, "is required")]
    if len(text) > MAX_TEXT:
        return [(field, f"must be at most {MAX_TEXT} characters")]
    return []


def id_violations(dispute_id: str) -> list[Violation]:
    if DISPUTE_ID.match(dispute_id):
        return []
    return [("disputeId", "must be 1-100 characters of A-Z a-z 0-9 . _ : -")]


def parse_days(texts: Sequence[str]) -> tuple[tuple[dt.date, ...], list[Violation]]:
    """The disputed dates, ascending; violations for a malformed, repeated or missing one."""
    if not texts:
        return (), [("days", "give at least one YYYY-MM-DD")]
    if len(texts) > MAX_DAYS:
        return (), [("days", f"at most {MAX_DAYS} days per dispute")]
    days: set[dt.date] = set()
    for text in texts:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            return (), [("days", f"{text!r} is not a date YYYY-MM-DD")]
        if len(text) != 10 or day in days:
            reason = "is given twice" if day in days else "is not a date YYYY-MM-DD"
            return (), [("days", f"{text!r} {reason}")]
        days.add(day)
    return tuple(sorted(days)), []


@dataclass(frozen=True)
class DayVerdict:
    payer: str  # the one municipality paying every disputed day ("" if none)
    violations: list[Violation]
    foreign: bool  # some day is paid by another municipality than the caller's


def check_days(
    days: Iterable[dt.date],
    payers: Mapping[dt.date, str],
    municipality: str,
    held: Mapping[dt.date, str],
) -> DayVerdict:
    """May these days be disputed? `payers`: the episode's liable days and who pays each
    (the statement as the clock announced it); `municipality`: the caller's ("" for ops,
    who may dispute for the one payer of the days); `held`: days already held by an open
    or accepted dispute, and its id."""
    days = list(days)
    violations: list[Violation] = []
    not_liable = [d for d in days if d not in payers]
    if not_liable:
        listed = ", ".join(d.isoformat() for d in not_liable[:5])
        violations.append(("days", f"not liable days of the episode's statement: {listed}"))
    by = {payers[d] for d in days if d in payers}
    foreign = bool(municipality) and bool(by - {municipality})
    if len(by) > 1 and not foreign:
        violations.append(("days", "the days are paid by different municipalities: one each"))
    for day in days:
        if day in held:
            violations.append(("days", f"{day.isoformat()} is already disputed in {held[day]}"))
            break
    payer = municipality or (next(iter(by)) if len(by) == 1 else "")
    return DayVerdict(payer, violations, foreign)


def held_days(disputes: Iterable[Dispute]) -> dict[dt.date, str]:
    return {day: d.dispute_id for d in disputes if d.holds_days for day in d.days}


def resolve(
    dispute: Dispute, state: DisputeState, note: str, by: str, at: dt.datetime
) -> tuple[Dispute, bool]:
    """(the dispute resolved, whether this changed it). The same resolution again is a
    repeat; another one after the first raises AlreadyResolved."""
    if state is DisputeState.OPEN:
        raise ValueError("a resolution is ACCEPTED or REJECTED")
    if dispute.state is DisputeState.OPEN:
        return replace(dispute, state=state, note=note, resolved_at=at, resolved_by=by), True
    if (dispute.state, dispute.note) == (state, note):
        return dispute, False
    raise AlreadyResolved(f"dispute {dispute.dispute_id} is already {dispute.state.value}")


@dataclass(frozen=True)
class DisputedTotals:
    open_days: int = 0
    open_nok: int = 0
    accepted_days: int = 0
    accepted_nok: int = 0


def disputed_totals(
    disputes: Iterable[Dispute], liable: Mapping[dt.date, int | None]
) -> DisputedTotals:
    """Disputed days among `liable` (date -> NOK, None while rate-pending) and their NOK
    at the statement's prices; a disputed day the clock no longer counts adds nothing."""
    counts = {DisputeState.OPEN: [0, 0], DisputeState.ACCEPTED: [0, 0]}
    for dispute in disputes:
        if dispute.state not in counts:
            continue
        for day in dispute.days:
            if day in liable:
                counts[dispute.state][0] += 1
                counts[dispute.state][1] += liable[day] or 0
    (od, on), (ad, an) = counts[DisputeState.OPEN], counts[DisputeState.ACCEPTED]
    return DisputedTotals(od, on, ad, an)
