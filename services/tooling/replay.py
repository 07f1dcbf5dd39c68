"""`overgang replay FILE.jsonl [--json]`: the offline, public form of the clock.

One event per line (proto3 JSON of overgang.v1.Event), any order. A line that does not
parse or breaks a rule is reported with its number and reason and does not stop the
others. Episodes are printed in episodeId order, each with its periods and their
evidence; an episode that could not be computed is still listed, with its error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from discharge.domain.clock import Conflict, Period, Statement, compute_statement
from discharge.domain.profile import RuleProfile
from discharge.domain.rates import RateTable, missing_rate_message
from overgang.codec import InvalidEvent, parse_event_json
from overgang.events import EpisodeEvent


@dataclass(frozen=True)
class LineError:
    line: int  # counted from 1
    reason: str


@dataclass(frozen=True)
class EpisodeResult:
    episode_id: str
    statement: Statement | None  # None: could not be computed, see `error`
    municipality: str = ""
    error: str | None = None
    # (liable days, rate-pending days, NOK): summed once for table, totals and notes.
    totals: tuple[int, int, int] = (0, 0, 0)

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return self.statement.conflicts if self.statement else ()


@dataclass
class ReplayResult:
    episodes: list[EpisodeResult] = field(default_factory=list)
    line_errors: list[LineError] = field(default_factory=list)

    @property
    def statements(self) -> list[Statement]:
        return [e.statement for e in self.episodes if e.statement is not None]

    @property
    def reported(self) -> bool:
        """Some line or episode was reported: a bad line, a conflict, an error."""
        return bool(self.line_errors) or any(e.error or e.conflicts for e in self.episodes)


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """No cyclic garbage collection while a batch builds its events and statements, and
    none of them scanned again afterwards: on a national year the collector's full passes
    would otherwise walk a million objects again and again. They hold no cycles, so they
    are moved to the collector's permanent generation (`gc.freeze`) and freed by reference
    counting as always."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def read_events(lines: Iterable[bytes | str]) -> tuple[list[EpisodeEvent], list[LineError]]:
    """Lines as read from the file (bytes: invalid UTF-8 is that line's error), one at a
    time: the file is streamed, only the decoded events are kept."""
    events: list[EpisodeEvent] = []
    errors: list[LineError] = []
    with _no_gc_pauses():
        for number, line in enumerate(lines, start=1):
            try:
                events.append(parse_event_json(line))
            except InvalidEvent as exc:
                if line.strip():  # a blank line is no event and no error
                    errors.append(LineError(number, str(exc)))
    return events, errors


def _episode(
    episode_id: str,
    events: list[EpisodeEvent],
    as_of: dt.date,
    rates: RateTable,
    profile: RuleProfile,
) -> EpisodeResult:
    try:
        statement = compute_statement(episode_id, events, as_of, rates, profile)
    except Exception as exc:  # one episode's failure must not hide the others
        municipality = max(events, key=EpisodeEvent.sort_key).municipality
        return EpisodeResult(episode_id, None, municipality, f"{type(exc).__name__}: {exc}")
    return EpisodeResult(episode_id, statement, statement.municipality, totals=statement.totals())


def replay(
    events: Iterable[EpisodeEvent], as_of: dt.date, rates: RateTable, profile: RuleProfile
) -> ReplayResult:
    by_episode: dict[str, list[EpisodeEvent]] = defaultdict(list)
    with _no_gc_pauses():
        for event in events:
            by_episode[event.episode_id].append(event)
        return ReplayResult(
            [_episode(e, by_episode[e], as_of, rates, profile) for e in sorted(by_episode)]
        )


# Output -------------------------------------------------------------------------------


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def period_json(p: Period) -> dict[str, Any]:
    e = p.evidence
    return {
        "start": p.start.isoformat(),
        "end": _day(p.end),
        "status": p.status.value,
        "municipality": p.municipality,
        "voidReason": p.void_reason.value if p.void_reason else None,
        "endCause": p.end_cause.value if p.end_cause else None,
        "liableDays": p.liable_days,
        "pendingDays": p.pending_days,
        "amountNok": p.amount_nok,
        "notLiableReason": p.not_liable_reason,
        "evidence": {
            "startedBy": e.started_by,
            "endedBy": e.ended_by,
            "voidedBy": e.voided_by,
            "admissionNotice": e.admission_notice,
            "cooperationMeeting": e.cooperation_meeting,
            "answers": list(e.answers),
            "updates": list(e.updates),
        },
    }


def conflict_json(c: Conflict) -> dict[str, Any]:
    return {
        "kind": c.kind.value,
        "eventId": c.event_id,
        "relatedEventId": c.related_event_id,
        "reason": c.reason,
    }


def episode_json(result: EpisodeResult) -> dict[str, Any]:
    s = result.statement
    liable, pending, nok = result.totals
    return {
        "episodeId": result.episode_id,
        "status": s.status.value if s else None,
        "liableDays": liable,
        "pendingDays": pending,
        "amountNok": nok,
        "voidReason": s.void_reason.value if s and s.void_reason else None,
        "municipality": result.municipality,
        "error": result.error,
        "conflicts": [conflict_json(c) for c in result.conflicts],
        "periods": [period_json(p) for p in s.periods] if s else [],
    }


def write_json(result: ReplayResult, out: TextIO) -> None:
    json.dump({"episodes": [episode_json(e) for e in result.episodes]}, out, indent=2)
    out.write("\n")


_COLUMNS = (
    "episode",
    "status",
    "start",
    "end",
    "days",
    "pending",
    "nok",
    "void_reason",
    "municipality",
)


def _row(result: EpisodeResult) -> tuple[str, ...]:
    s = result.statement
    if s is None:
        return (result.episode_id, "ERROR", "-", "-", "-", "-", "-", "-", result.municipality)
    liable, pending, nok = result.totals
    return (
        result.episode_id,
        s.status.value,
        _day(s.start) or "-",
        _day(s.end) or "-",
        str(liable),
        str(pending),
        str(nok),
        s.void_reason.value if s.void_reason else "-",
        s.municipality,
    )


def _sums(result: ReplayResult) -> tuple[int, int, int]:
    """(liable days, rate-pending days, NOK) over every episode that was computed."""
    totals = [e.totals for e in result.episodes]
    return sum(t[0] for t in totals), sum(t[1] for t in totals), sum(t[2] for t in totals)


def write_table(result: ReplayResult, out: TextIO) -> None:
    rows = [_COLUMNS, *(_row(e) for e in result.episodes)]
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths).format
    out.write("\n".join(line(*row).rstrip() for row in rows))
    days, pending, nok = _sums(result)
    out.write(
        f"\ntotal: {len(rows) - 1} episodes, {days} liable days ({pending} rate-pending), "
        f"NOK {nok}\n"
    )


def write_errors(result: ReplayResult, err: TextIO) -> None:
    """Bad lines, episode errors and conflicts; and a note on rate-pending days."""
    for line_error in result.line_errors:
        err.write(f"line {line_error.line}: {line_error.reason}\n")
    for episode in result.episodes:
        if episode.error:
            err.write(f"episode {episode.episode_id}: not computed: {episode.error}\n")
        for c in episode.conflicts:
            err.write(f"episode {episode.episode_id}: {c.kind.value} {c.event_id}: {c.reason}\n")
    pending_years = {
        year
        for e in result.episodes
        if e.statement is not None and e.totals[1]
        for year in e.statement.pending_years
    }
    if pending_years:
        pending = _sums(result)[1]
        err.write(
            f"note: {pending} liable days are rate-pending (not in NOK): "
            f"{missing_rate_message(pending_years)}\n"
        )
