"""One episode's live clock: its event history, the date up to which days are announced,
and what was announced; and the two things that move it, an event and a day tick.

Pure: what the live clock announces is `liability_diff` between what it announced last
and what `compute_statement` gives for the history now, so the live numbers are the
replayed numbers by construction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from discharge.domain.clock import Statement, compute_statement
from discharge.domain.extension import extended
from discharge.domain.first_answers import FirstAnswer, new_first_answers
from discharge.domain.liability_diff import LiabilityChange, liability_diff
from discharge.domain.profile import RuleProfile
from discharge.domain.rates import RateTable
from discharge.domain.statement import PeriodStatus
from overgang.events import EpisodeEvent


@dataclass(frozen=True)
class ClockEntry:
    episode_id: str
    partition: int
    as_of: dt.date
    events: tuple[EpisodeEvent, ...] = ()
    announced: Statement | None = None
    # Why the last recomputation could not be announced. The clock itself never fails
    # (a missing rate makes rate-pending days); kept for the table's stored form.
    error: str | None = None
    # The fingerprint of the rate table `announced` was priced with: a worker whose rate
    # table differs re-prices the entry (`apply_rates`) and announces the difference.
    rates: str = ""
    # The fingerprint of the rule profile `announced` was computed under: a tick extends
    # `announced` only under the same rules (and rates), else it recomputes.
    profile: str = ""

    def has(self, event: EpisodeEvent) -> bool:
        return event in self.events


@dataclass(frozen=True)
class Rules:
    rates: RateTable
    profile: RuleProfile


@dataclass
class Outcome:
    entry: ClockEntry
    changes: list[LiabilityChange] = field(default_factory=list)
    # Periods whose first answer the statement now has and did not before (a metric).
    answered: list[FirstAnswer] = field(default_factory=list)


def _recompute(entry: ClockEntry, rules: Rules, cause_event_id: str | None) -> Outcome:
    current = compute_statement(
        entry.episode_id, entry.events, entry.as_of, rules.rates, rules.profile
    )
    changes = liability_diff(entry.announced, current, cause_event_id)
    answered = new_first_answers(entry.announced, current, entry.events)
    priced = replace(
        entry,
        announced=current,
        error=None,
        rates=rules.rates.fingerprint,
        profile=rules.profile.fingerprint,
    )
    return Outcome(priced, changes, answered)


def apply_event(entry: ClockEntry, event: EpisodeEvent, rules: Rules) -> Outcome:
    if entry.has(event):
        return Outcome(entry)  # a duplicate: already part of the history
    return _recompute(replace(entry, events=(*entry.events, event)), rules, event.event_id)


def apply_tick(entry: ClockEntry, today: dt.date, rules: Rules) -> Outcome:
    if today <= entry.as_of and entry.error is None:
        return Outcome(entry)
    as_of = max(today, entry.as_of)
    current = _extended(entry, as_of, rules)
    if current is None:
        return _recompute(replace(entry, as_of=as_of), rules, None)
    # Exactly what `_recompute` would give (see `extension`), without the history.
    changes = liability_diff(entry.announced, current, None)
    return Outcome(replace(entry, as_of=as_of, announced=current), changes)


def _extended(entry: ClockEntry, as_of: dt.date, rules: Rules) -> Statement | None:
    """The statement as of `as_of` from the announced one, if that was computed from
    these events under these rules and rates (else None: recompute)."""
    announced = entry.announced
    if (
        announced is None
        or entry.error is not None
        or entry.rates != rules.rates.fingerprint
        or entry.profile != rules.profile.fingerprint
    ):
        return None
    return extended(announced, entry.events, as_of, rules.rates, rules.profile)


def rates_cause(rates: RateTable) -> str:
    """The cause id of the corrections a new rate table brings (same table, same id)."""
    return f"rates-{rates.fingerprint}"


def apply_rates(entry: ClockEntry, rules: Rules) -> Outcome:
    """The operator changed the rate table: rate-pending days of a year that now has a
    rate (or days whose rate changed) are announced as one correction."""
    if entry.rates == rules.rates.fingerprint:
        return Outcome(entry)
    return _recompute(entry, rules, rates_cause(rules.rates))


def quiet_since(entry: ClockEntry) -> dt.date | None:
    """The Oslo day from which this clock has nothing left to announce by itself (no
    running period, no rate-pending day: only a new event can change it), or None while
    ticks still move it. Such a clock is skipped by ticks and, after the retention,
    leaves the hot table for the archive."""
    statement = entry.announced
    if statement is None or entry.error or statement.pending_days:
        return None
    if any(p.status is PeriodStatus.RUNNING for p in statement.periods):
        return None
    return max((event.oslo_day for event in entry.events), default=entry.as_of)


def catch_up(entry: ClockEntry, today: dt.date) -> ClockEntry:
    """A quiet clock's `as_of` is not moved by ticks; bring it to today before an event
    is applied, so a late event that opens a new period counts its days to today."""
    return entry if entry.as_of >= today else replace(entry, as_of=today)
