"""A day tick without recomputing the history: when no event lies between the day a
statement was computed as of and the new day, only a running period's days move on.

`compute_statement` reads `as_of` in two places only: which events are seen (those before
its Oslo midnight) and where a period's days stop. With the same events seen, every
period, its evidence, the conflicts and the payer are what they were; a running period
gains the days from the old `as_of` to the new one, each liable unless the period's last
answer (in effect on every such day: all seen answers are earlier) is "can receive".
`tests/unit/test_liability_tick_extension.py` checks it against `compute_statement` day
by day over simulated histories (rate-year boundaries, rate-pending years, DST days)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from discharge.domain.profile import RuleProfile
from discharge.domain.rates import RateTable
from discharge.domain.statement import LiableDay, Period, PeriodStatus, Statement
from overgang.events import EpisodeEvent, oslo_midnight


def extended(
    statement: Statement,
    events: Sequence[EpisodeEvent],
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile,
) -> Statement | None:
    """`compute_statement(episode, events, as_of, rates, profile)`, given `statement` as
    that function gave it for the same events, rates and profile as of an earlier day;
    None when this cannot be told without recomputing (the caller then recomputes)."""
    if as_of <= statement.as_of or statement.conflicts:
        return None  # a conflict means an id has two versions: look-ups by id could err
    old_cut, new_cut = oslo_midnight(statement.as_of), oslo_midnight(as_of)
    if any(old_cut <= e.occurred_at < new_cut for e in events):
        return None  # an event becomes seen: the history is different
    periods = statement.periods
    if periods and periods[-1].status is PeriodStatus.RUNNING:
        running = _running(periods[-1], events, statement.as_of, as_of, rates, profile)
        periods = (*periods[:-1], running)
    return dataclasses.replace(statement, as_of=as_of, periods=periods)


def _running(
    period: Period,
    events: Sequence[EpisodeEvent],
    old_as_of: dt.date,
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile,
) -> Period:
    """A running period is the last one, with no end: its days stop at `as_of`."""
    by_id = {e.event_id: e for e in events}  # one version per id (no conflicts)
    evidence = period.evidence
    if evidence.answers and by_id[evidence.answers[-1]].can_receive:
        return period
    first = max(old_as_of, period.start)
    covered_from = profile.coverage_start(by_id[evidence.started_by].division)
    if covered_from is not None:
        first = max(first, covered_from)
    days = [LiableDay(day, rates.price(day)) for day in _days(first, as_of)]
    return dataclasses.replace(period, days=(*period.days, *days)) if days else period


def _days(first: dt.date, stop: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((stop - first).days)]
