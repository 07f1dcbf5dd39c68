"""The clock table keeps the announced statement it last wrote next to that JSON: reading
its own write back decodes nothing, and a value that came from elsewhere (the changelog
after a restart or rebalance: a new object) is decoded, never served from the memo."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

from discharge.domain.live_clock import ClockEntry, Rules, apply_event
from discharge.rules import load_profile, load_rates
from discharge.table import ClockTable
from overgang.events import OSLO, Division, EpisodeEvent, EventKind

RULES = Rules(load_rates(), load_profile())
EPISODE = "81234:P1"


def _event(n: int, kind: EventKind, day: int, **extra: Any) -> EpisodeEvent:
    at = dt.datetime(2024, 3, day, 10, tzinfo=OSLO)
    return EpisodeEvent(f"e{n}", EPISODE, at, "0301", Division.SOMATIC, kind, **extra)


def _running_entry() -> ClockEntry:
    entry = ClockEntry(EPISODE, 0, dt.date(2024, 3, 20))
    notice = dt.datetime(2024, 3, 5, 9, tzinfo=OSLO)
    for event in (
        _event(1, EventKind.ADMISSION_NOTIFIED, 1),
        _event(2, EventKind.DISCHARGE_READY_NOTIFIED, 5, ready_at=notice),
    ):
        entry = apply_event(entry, event, RULES).entry
    return entry


def _written(entry: ClockEntry) -> tuple[ClockTable, dict[str, Any]]:
    table: dict[str, Any] = {}
    store = ClockTable(table)
    asyncio.run(store.put_unsent([(entry, [b"announcement"])]))
    store.mark_sent([entry])
    return store, table


def test_reading_back_its_own_write_gives_the_statement_it_wrote() -> None:
    entry = _running_entry()
    store, _ = _written(entry)
    read = store.get(EPISODE)
    assert read is not None and read.announced is entry.announced


def test_a_value_from_the_changelog_is_decoded_not_taken_from_the_memo() -> None:
    entry = _running_entry()
    store, table = _written(entry)
    recovered = copy.deepcopy(table[EPISODE])
    recovered["announced"]["periods"][0]["days"] = recovered["announced"]["periods"][0]["days"][:1]
    table[EPISODE] = recovered
    read = store.get(EPISODE)
    assert read is not None and read.announced is not None
    assert read.announced.liable_days == 1
