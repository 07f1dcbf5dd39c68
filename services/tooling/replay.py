"""`overgang replay FILE.jsonl [--json]`: the offline, public form of the clock.

One event per line (proto3 JSON of overgang.v1.Event), any order. A line that does not
parse or breaks a rule is reported with its number and reason and does not stop the
others. Episodes are printed in episodeId order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from discharge.domain.clock import Statement, compute_statement, unique_events
from discharge.domain.profile import RuleProfile
from discharge.domain.rates import MissingRate, RateTable
from overgang.codec import InvalidEvent, parse_event_json
from overgang.events import EpisodeEvent


@dataclass
class ReplayResult:
    statements: list[Statement] = field(default_factory=list)
    # (line number or None, reason); line numbers count from 1.
    errors: list[tuple[int | None, str]] = field(default_factory=list)


def read_events(lines: Iterable[str]) -> tuple[list[EpisodeEvent], list[tuple[int | None, str]]]:
    events: list[EpisodeEvent] = []
    errors: list[tuple[int | None, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_event_json(line))
        except InvalidEvent as exc:
            errors.append((number, str(exc)))
    return events, errors


def replay(
    events: Iterable[EpisodeEvent], as_of: dt.date, rates: RateTable, profile: RuleProfile
) -> ReplayResult:
    result = ReplayResult()
    by_episode: dict[str, list[EpisodeEvent]] = defaultdict(list)
    for event in events:
        by_episode[event.episode_id].append(event)
    for episode_id in sorted(by_episode):
        ordered, conflicts = unique_events(by_episode[episode_id])
        for conflict in conflicts:
            result.errors.append(
                (
                    None,
                    f"event {conflict.event_id}: two different events share this id; "
                    "kept the one that sorts first",
                )
            )
        try:
            result.statements.append(compute_statement(episode_id, ordered, as_of, rates, profile))
        except MissingRate as exc:
            result.errors.append((None, f"episode {episode_id}: {exc}"))
    return result


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def statement_json(statement: Statement) -> dict[str, Any]:
    return {
        "episodeId": statement.episode_id,
        "status": statement.status.value,
        "liableDays": statement.liable_days,
        "amountNok": statement.amount_nok,
        "voidReason": statement.void_reason.value if statement.void_reason else None,
        "municipality": statement.municipality,
        "periods": [
            {
                "start": _day(p.start),
                "end": _day(p.end) or None,
                "days": p.liable_days,
                "amountNok": p.amount_nok,
            }
            for p in statement.periods
        ],
    }


def write_json(result: ReplayResult, out: TextIO) -> None:
    json.dump({"episodes": [statement_json(s) for s in result.statements]}, out, indent=2)
    out.write("\n")


_COLUMNS = ("episode", "status", "start", "end", "days", "nok", "void_reason", "municipality")


def write_table(result: ReplayResult, out: TextIO) -> None:
    rows = [
        (
            s.episode_id,
            s.status.value,
            _day(s.start) or "-",
            _day(s.end) or "-",
            str(s.liable_days),
            str(s.amount_nok),
            s.void_reason.value if s.void_reason else "-",
            s.municipality,
        )
        for s in result.statements
    ]
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    for row in [_COLUMNS, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    total_days = sum(s.liable_days for s in result.statements)
    total_nok = sum(s.amount_nok for s in result.statements)
    out.write(f"total: {len(rows)} episodes, {total_days} liable days, NOK {total_nok}\n")


def write_errors(result: ReplayResult, err: TextIO) -> None:
    for line, reason in result.errors:
        where = f"line {line}" if line is not None else "error"
        err.write(f"{where}: {reason}\n")
