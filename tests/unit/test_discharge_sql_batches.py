"""The discharge worker's SQL in batches, on each backend: a batch's archived clocks are
found in one lookup, its corrections are written in one statement, and a repeat of either
is harmless."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from discharge.corrections_store import CorrectionLog
from discharge.domain.live_clock import ClockEntry, Rules, apply_event
from discharge.models import CorrectionRow
from discharge.rules import load_profile
from discharge.runtime import MIGRATIONS
from discharge.store import ClockArchive
from overgang.sql.migrations import migrate

from .episode_story import RATES, Episode, at
from .sql_backends import BACKENDS, empty_engine
from .test_liability_corrections_since import _march_change

NOW = dt.datetime(2024, 4, 20, 12, tzinfo=dt.UTC)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    for engine in empty_engine(request.param, tmp_path / "discharge.db"):
        migrate(engine, MIGRATIONS)
        yield engine


def _settled(episode_id: str) -> ClockEntry:
    story = (
        Episode(episode_id)
        .admission_notice(at("2024-03-01"))
        .discharge_ready(at("2024-03-04"))
        .service_ready(at("2024-03-07"))
    )
    entry = ClockEntry(episode_id, 0, dt.date(2024, 3, 10))
    for event in story.events:
        entry = apply_event(entry, event, Rules(RATES, load_profile())).entry
    return entry


def test_a_batch_finds_the_archived_clocks_of_its_episodes_in_one_lookup(engine: Engine) -> None:
    archive = ClockArchive(engine, lambda: NOW)
    settled = _settled("81234:E1")
    archive.put_many([settled, _settled("81234:E2"), _settled("81234:E3")])
    found = archive.find_many(["81234:E1", "81234:E3", "81234:E9"])
    assert (sorted(found), found["81234:E1"]) == (["81234:E1", "81234:E3"], settled)


def test_clocks_marked_restored_leave_the_statements_but_are_still_found(engine: Engine) -> None:
    archive = ClockArchive(engine, lambda: NOW)
    archive.put_many([_settled("81234:E1"), _settled("81234:E2")])
    archive.mark_restored(["81234:E1"])
    found = archive.find_many(["81234:E1", "81234:E2"])
    assert (archive.get("81234:E1"), archive.get("81234:E2") is not None, sorted(found)) == (
        None,
        True,
        ["81234:E1", "81234:E2"],
    )


def test_a_correction_written_twice_in_one_batch_and_again_is_one_row(engine: Engine) -> None:
    log = CorrectionLog(engine)
    change = _march_change()
    log.put_many([change, change], NOW)
    log.put_many([change], NOW + dt.timedelta(hours=1))
    with Session(engine) as session:
        rows = list(session.exec(select(CorrectionRow)))
    assert [(r.event_id, r.emitted_at.hour) for r in rows] == [("81234:E1:corrected:ev-9", 13)]
