"""A clock entry's stored form: JSON, with the events as base64 protobuf (the JSON form of
each event cost a millisecond per event to parse: make bench) and the announced statement
as plain JSON."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from discharge.domain.live_clock import ClockEntry, quiet_since
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
)
from overgang.codec import decode_event, encode_event
from overgang.events import EpisodeEvent

_EVIDENCE_FIELDS = dataclasses.fields(Evidence)


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _evidence_json(e: Evidence) -> dict[str, Any]:
    # Field by field: dataclasses.asdict deep-copies, a third of a tick's cost.
    value = {f.name: getattr(e, f.name) for f in _EVIDENCE_FIELDS}
    value["answered_at"] = [t.isoformat() for t in e.answered_at]
    return value


def _evidence_from_json(data: dict[str, Any]) -> Evidence:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    fields["answered_at"] = tuple(map(dt.datetime.fromisoformat, data.get("answered_at", ())))
    return Evidence(**fields)


def _with_answer_times(statement: Statement, events: Iterable[EpisodeEvent]) -> Statement:
    """A statement stored before evidence carried answer times gets them from the entry's
    own history (the clock would give the same), so no stored clock needs migrating."""
    if all(len(p.evidence.answered_at) == len(p.evidence.answers) for p in statement.periods):
        return statement
    when = {e.event_id: e.occurred_at for e in events}

    def timed(period: Period) -> Period:
        answers = period.evidence.answers
        if not all(a in when for a in answers):  # not this history's statement: as stored
            return period
        evidence = dataclasses.replace(period.evidence, answered_at=tuple(when[a] for a in answers))
        return dataclasses.replace(period, evidence=evidence)

    return dataclasses.replace(statement, periods=tuple(map(timed, statement.periods)))


def statement_to_json(statement: Statement) -> dict[str, Any]:
    return {
        "episode_id": statement.episode_id,
        "municipality": statement.municipality,
        "as_of": statement.as_of.isoformat(),
        "periods": [
            {
                "municipality": p.municipality,
                "start": p.start.isoformat(),
                "end": _day(p.end),
                "end_cause": p.end_cause.value if p.end_cause else None,
                "status": p.status.value,
                "void_reason": p.void_reason.value if p.void_reason else None,
                "days": [[d.date.isoformat(), d.amount_nok] for d in p.days],
                "evidence": _evidence_json(p.evidence),
                "not_liable_reason": p.not_liable_reason,
            }
            for p in statement.periods
        ],
        "conflicts": [dataclasses.asdict(c) for c in statement.conflicts],
    }


def statement_from_json(data: dict[str, Any]) -> Statement:
    return Statement(
        episode_id=data["episode_id"],
        municipality=data["municipality"],
        as_of=dt.date.fromisoformat(data["as_of"]),
        periods=tuple(
            Period(
                municipality=p["municipality"],
                start=dt.date.fromisoformat(p["start"]),
                end=_date(p["end"]),
                end_cause=EndCause(p["end_cause"]) if p["end_cause"] else None,
                status=PeriodStatus(p["status"]),
                void_reason=VoidReason(p["void_reason"]) if p["void_reason"] else None,
                days=tuple(LiableDay(dt.date.fromisoformat(d), a) for d, a in p["days"]),
                evidence=_evidence_from_json(p["evidence"]),
                not_liable_reason=p["not_liable_reason"],
            )
            for p in data["periods"]
        ),
        conflicts=tuple(
            Conflict(ConflictKind(c["kind"]), c["event_id"], c["related_event_id"], c["reason"])
            for c in data["conflicts"]
        ),
    )


def encoded_event(event: EpisodeEvent) -> str:
    return base64.b64encode(encode_event(event)).decode()


def entry_to_json(
    entry: ClockEntry,
    encoded: list[str] | None = None,
    announced: dict[str, Any] | None = None,  # the statement's JSON, if already made
) -> dict[str, Any]:
    if announced is None and entry.announced:
        announced = statement_to_json(entry.announced)
    return {
        "episode_id": entry.episode_id,
        "partition": entry.partition,
        "as_of": entry.as_of.isoformat(),
        "events": encoded if encoded is not None else [encoded_event(e) for e in entry.events],
        "announced": announced,
        "error": entry.error,
        "rates": entry.rates,
        "profile": entry.profile,
        # Read without decoding the entry: ticks skip quiet clocks, archiving finds them.
        "quiet_since": _day(quiet_since(entry)),
    }


def entry_from_json(
    data: dict[str, Any],
    events: tuple[EpisodeEvent, ...] | None = None,
    announced: Statement | None = None,  # the statement, if already decoded
) -> ClockEntry:
    if events is None:
        events = tuple(decode_event(base64.b64decode(e)) for e in data["events"])
    if announced is None and data["announced"]:
        # Statements stored before answers had times get them from the history.
        announced = _with_answer_times(statement_from_json(data["announced"]), events)
    return ClockEntry(
        episode_id=data["episode_id"],
        partition=int(data["partition"]),
        as_of=dt.date.fromisoformat(data["as_of"]),
        events=events,
        announced=announced,
        error=data.get("error"),
        rates=data.get("rates", ""),
        profile=data.get("profile", ""),  # older values: recomputed at the next tick
    )
