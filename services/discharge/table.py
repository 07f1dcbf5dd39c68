"""The clock table's values: one episode's `ClockEntry` as JSON, with the events as base64
protobuf (the JSON form of each event cost a millisecond per event to parse: make bench),
and the table as the worker and the gRPC API read it."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterator, MutableMapping
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


class ClockTable:
    """Episode id -> ClockEntry over a table of JSON values (a Faust table in the
    service, a dict in tests and benchmarks)."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table

    def get(self, episode_id: str) -> ClockEntry | None:
        value = self.table.get(episode_id)
        return entry_from_json(value) if value else None

    def put(self, entry: ClockEntry) -> None:
        self.table[entry.episode_id] = entry_to_json(entry)

    def delete(self, episode_id: str) -> None:
        self.table.pop(episode_id, None)

    def entries(self, partition: int | None = None, *, quiet: bool = True) -> Iterator[ClockEntry]:
        """The clocks (of one partition); `quiet=False` leaves out, without decoding
        them, the clocks only a new event can change (what a tick visits)."""
        for _key, value in list(self.table.items()):
            if not value or (partition is not None and value["partition"] != partition):
                continue
            if quiet or value.get("quiet_since") is None:
                yield entry_from_json(value)

    def quiet_before(self, partition: int, day: dt.date) -> list[str]:
        """Episodes of the partition quiet since before `day` (to be archived)."""
        cutoff = day.isoformat()
        return [
            key
            for key, value in list(self.table.items())
            if value
            and value["partition"] == partition
            and (since := value.get("quiet_since")) is not None
            and since < cutoff
        ]


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _evidence_from_json(data: dict[str, Any]) -> Evidence:
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return Evidence(**fields)


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
                "evidence": dataclasses.asdict(p.evidence),
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


def entry_to_json(entry: ClockEntry) -> dict[str, Any]:
    return {
        "episode_id": entry.episode_id,
        "partition": entry.partition,
        "as_of": entry.as_of.isoformat(),
        "events": [base64.b64encode(encode_event(e)).decode() for e in entry.events],
        "announced": statement_to_json(entry.announced) if entry.announced else None,
        "error": entry.error,
        "rates": entry.rates,
        # Read without decoding the entry: ticks skip quiet clocks, archiving finds them.
        "quiet_since": _day(quiet_since(entry)),
    }


def entry_from_json(data: dict[str, Any]) -> ClockEntry:
    return ClockEntry(
        episode_id=data["episode_id"],
        partition=int(data["partition"]),
        as_of=dt.date.fromisoformat(data["as_of"]),
        events=tuple(decode_event(base64.b64decode(e)) for e in data["events"]),
        announced=statement_from_json(data["announced"]) if data["announced"] else None,
        error=data.get("error"),
        rates=data.get("rates", ""),
    )
