"""The lines of a monthly statement: per episode the month's liable days of the periods
the payer (or the hospital) is party to, and beside them the disputes of those days."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from discharge.convert import dispute as dispute_message
from discharge.convert import liable_day, period
from discharge.domain.disputes import Dispute, disputed_totals
from discharge.domain.live_clock import ClockEntry
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
