"""The SLA "time from the discharge-ready notice to the municipality's answer", as the live
clock sees it: a period's first answer once it becomes part of the statement.

The clock decides which answers belong to a period (those after its notice, while it is
in force: `history.fold_periods`), so this is the same answer the statement names as
evidence and `overgang sla` measures. Measured in event time, from the notice's
`occurred_at` (when it was sent) to the answer's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from discharge.domain.statement import Statement
from overgang.events import Division, EpisodeEvent


@dataclass(frozen=True)
class FirstAnswer:
    municipality: str  # the period's payer
    division: Division  # the notice's
    notice_at: dt.datetime
    answered_at: dt.datetime

    @property
    def seconds(self) -> float:
        # In UTC: two datetimes of one zone subtract as wall-clock times (DST would lie).
        return (
            self.answered_at.astimezone(dt.UTC) - self.notice_at.astimezone(dt.UTC)
        ).total_seconds()


def new_first_answers(
    previous: Statement | None, current: Statement, events: Iterable[EpisodeEvent]
) -> list[FirstAnswer]:
    """The periods (by notice) that had no answer in `previous` and have one in `current`.

    A period whose first answer was already seen is not measured again, even if a late,
    earlier answer now comes first: a histogram cannot take an observation back (the
    statement, and `overgang sla` from it, give the corrected figure)."""
    answered_before = {
        p.notice_event_id for p in (previous.periods if previous else ()) if p.evidence.answers
    }
    fresh = [
        p
        for p in current.periods
        if p.evidence.first_answer_at is not None and p.notice_event_id not in answered_before
    ]
    if not fresh:
        return []
    notices = {e.event_id: e for e in events}
    found: list[FirstAnswer] = []
    for period in fresh:
        notice = notices.get(period.notice_event_id)
        first = period.evidence.first_answer_at
        if notice is None or first is None:  # not this history's statement
            continue
        found.append(FirstAnswer(period.municipality, notice.division, notice.occurred_at, first))
    return found
