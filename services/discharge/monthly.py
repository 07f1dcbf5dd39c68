"""The lines of a monthly statement: per episode the month's liable days of the periods
the payer (or the hospital) is party to, and beside them the disputes of those days."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from discharge.convert import dispute as dispute_message
from discharge.convert import liable_day, period
from discharge.corrections_store import Correction
from discharge.domain.disputes import Dispute, disputed_totals
from discharge.domain.live_clock import ClockEntry
from discharge.domain.statement import priced_nok
from discharge.store import ClockArchive
from overgang.v1 import liability_pb2 as pb


def her_id_of(episode_id: str) -> str:
    return episode_id.partition(":")[0]


def month_span(month: str) -> tuple[dt.date, dt.date]:
    """ "2024-03" -> (its first day, its last day)."""
    first = dt.date.fromisoformat(f"{month}-01")
    return first, (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


async def archived_in_month(
    archive: ClockArchive, request: pb.GetMonthlyStatementRequest
) -> list[ClockEntry]:
    first, last = month_span(request.month)
    found = archive.with_days_in(first, last, request.her_id or None)
    return await asyncio.to_thread(list, found)


def monthly_lines(
    entries: Iterable[ClockEntry], request: pb.GetMonthlyStatementRequest
) -> Iterable[pb.MonthlyStatementLine]:
    """Per episode, the month's liable days of the periods the payer (or the hospital)
    is party to: each period's payer is the municipality on its own notice."""
    for entry in entries:
        if entry.announced is None:
            continue
        if request.her_id and her_id_of(entry.episode_id) != request.her_id:
            continue
        periods = [
            p
            for p in entry.announced.periods
            if request.her_id or p.municipality == request.municipality
        ]
        days = [d for p in periods for d in p.days if d.date.isoformat().startswith(request.month)]
        if not days:
            continue
        yield pb.MonthlyStatementLine(
            episode_id=entry.episode_id,
            municipality=periods[-1].municipality,
            liable_days=len(days),
            pending_days=sum(1 for d in days if d.pending),
            amount_nok=sum(d.amount_nok or 0 for d in days),
            days=[liable_day(d) for d in days],
            periods=[period(p) for p in periods if any(d in days for d in p.days)],
        )


def add_disputes(
    lines: Sequence[pb.MonthlyStatementLine],
    disputes: Mapping[str, Sequence[Dispute]],
    request: pb.GetMonthlyStatementRequest,
) -> None:
    """Each line gets its episode's disputes with days in the month (of the payer, in a
    municipality's statement) and the disputed days / NOK among its liable days. The
    line's liable days and amount stay the clock's."""
    first, last = month_span(request.month)
    for line in lines:
        shown = [
            d
            for d in disputes.get(line.episode_id, ())
            if any(first <= day <= last for day in d.days)
            and request.municipality in ("", d.municipality)
        ]
        liable = {
            dt.date.fromisoformat(day.date): (None if day.rate_pending else day.amount_nok)
            for day in line.days
        }
        totals = disputed_totals(shown, liable)
        line.disputes.extend(dispute_message(d) for d in shown)
        line.disputed_open_days = totals.open_days
        line.disputed_open_nok = totals.open_nok
        line.disputed_accepted_days = totals.accepted_days
        line.disputed_accepted_nok = totals.accepted_nok


def add_corrections(
    lines: list[pb.MonthlyStatementLine],
    corrections: Sequence[Correction],
    request: pb.GetMonthlyStatementRequest,
) -> None:
    """Each line gets its episode's corrections of days of the month (those days only);
    an episode the corrections left without a liable day in the month gets a line of
    its own. In a municipality's statement: the corrections of the episodes it has a
    line for, or whose clock names it as the payer."""
    first, last = month_span(request.month)
    by_episode = {line.episode_id: line for line in lines}
    for c in corrections:
        line = by_episode.get(c.episode_id)
        if line is None and request.municipality not in ("", c.municipality):
            continue
        reversed_ = [d for d in c.reversed if first <= d.date <= last]
        added = [d for d in c.added if first <= d.date <= last]
        if not (reversed_ or added):
            continue
        if line is None:
            line = pb.MonthlyStatementLine(episode_id=c.episode_id, municipality=c.municipality)
            by_episode[c.episode_id] = line
            lines.append(line)
        line.corrections.add(
            event_id=c.event_id,
            cause_event_id=c.cause_event_id,
            as_of=c.as_of.isoformat(),
            reversed=[liable_day(d) for d in reversed_],
            added=[liable_day(d) for d in added],
            delta_nok=priced_nok(added) - priced_nok(reversed_),
            delta_pending_days=sum(d.pending for d in added) - sum(d.pending for d in reversed_),
        )
    lines.sort(key=lambda line: line.episode_id)
