"""One episode's clock as kept in the Faust table: its event history, the date up to
which days are announced, and what was announced. JSON with the events as base64
protobuf (the JSON form of each event cost a millisecond per event to parse: make bench)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from discharge.domain.clock import (
    EndCause,
    LiableDay,
    Period,
    PeriodStatus,
    Statement,
    VoidReason,
    compute_statement,
)
from discharge.domain.liability_diff import LiabilityChange, liability_diff
from discharge.domain.profile import RuleProfile
from discharge.domain.rates import MissingRate, RateTable
from overgang.codec import decode_event, encode_event
from overgang.events import EpisodeEvent


@dataclass(frozen=True)
class ClockEntry:
    episode_id: str
    partition: int
    as_of: dt.date
    events: tuple[EpisodeEvent, ...] = ()
    announced: Statement | None = None
    # Why the last recomputation could not be announced (e.g. a missing rate).
    error: str | None = None

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


def _recompute(entry: ClockEntry, rules: Rules, cause_event_id: str | None) -> Outcome:
    try:
        current = compute_statement(
            entry.episode_id, entry.events, entry.as_of, rules.rates, rules.profile
        )
    except MissingRate as exc:
        # Nothing is announced until the operator adds the rate; the next tick retries
        # against what was announced, so no day is lost.
        return Outcome(replace(entry, error=str(exc)))
    changes = liability_diff(entry.announced, current, cause_event_id)
    return Outcome(replace(entry, announced=current, error=None), changes)


def apply_event(entry: ClockEntry, event: EpisodeEvent, rules: Rules) -> Outcome:
    if entry.has(event):
        return Outcome(entry)  # a duplicate: already part of the history
    return _recompute(replace(entry, events=(*entry.events, event)), rules, event.event_id)


def apply_tick(entry: ClockEntry, today: dt.date, rules: Rules) -> Outcome:
    if today <= entry.as_of and entry.error is None:
        return Outcome(entry)
    return _recompute(replace(entry, as_of=max(today, entry.as_of)), rules, None)


# JSON form ----------------------------------------------------------------------------


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def statement_to_json(statement: Statement) -> dict[str, Any]:
    return {
        "episode_id": statement.episode_id,
        "municipality": statement.municipality,
        "as_of": statement.as_of.isoformat(),
        "periods": [
            {
                "notice_event_id": p.notice_event_id,
                "municipality": p.municipality,
                "start": p.start.isoformat(),
                "end": _day(p.end),
                "end_cause": p.end_cause.value if p.end_cause else None,
                "status": p.status.value,
                "void_reason": p.void_reason.value if p.void_reason else None,
                "days": [[d.date.isoformat(), d.amount_nok] for d in p.days],
            }
            for p in statement.periods
        ],
    }


def statement_from_json(data: dict[str, Any]) -> Statement:
    return Statement(
        episode_id=data["episode_id"],
        municipality=data["municipality"],
        as_of=dt.date.fromisoformat(data["as_of"]),
        periods=tuple(
            Period(
                notice_event_id=p["notice_event_id"],
                municipality=p["municipality"],
                start=dt.date.fromisoformat(p["start"]),
                end=_date(p["end"]),
                end_cause=EndCause(p["end_cause"]) if p["end_cause"] else None,
                status=PeriodStatus(p["status"]),
                void_reason=VoidReason(p["void_reason"]) if p["void_reason"] else None,
                days=tuple(LiableDay(dt.date.fromisoformat(d), int(a)) for d, a in p["days"]),
            )
            for p in data["periods"]
        ),
    )


def entry_to_json(entry: ClockEntry) -> dict[str, Any]:
    return {
        "episode_id": entry.episode_id,
        "partition": entry.partition,
        "as_of": entry.as_of.isoformat(),
        "events": [base64.b64encode(encode_event(e)).decode() for e in entry.events],
        "announced": statement_to_json(entry.announced) if entry.announced else None,
        "error": entry.error,
    }


def entry_from_json(data: dict[str, Any]) -> ClockEntry:
    return ClockEntry(
        episode_id=data["episode_id"],
        partition=int(data["partition"]),
        as_of=dt.date.fromisoformat(data["as_of"]),
        events=tuple(decode_event(base64.b64decode(e)) for e in data["events"]),
        announced=statement_from_json(data["announced"]) if data["announced"] else None,
        error=data.get("error"),
    )
