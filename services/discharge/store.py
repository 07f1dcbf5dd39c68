"""The archive of settled clocks in SQL (SQLite by default, PostgreSQL in production),
shared by every discharge worker: a late event for an archived episode brings its clock
back to the hot table, and statements for past months read it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from discharge.domain.live_clock import ClockEntry
from discharge.entry_json import entry_from_json, entry_to_json
from discharge.models import ArchivedClockRow


def _entry(row: ArchivedClockRow) -> ClockEntry:
    return entry_from_json(json.loads(row.entry_json))


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    # SQLite limits the parameters of one statement.
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _her_id(episode_id: str) -> str:
    return episode_id.partition(":")[0]


class ClockArchive:
    def __init__(self, engine: Engine, now: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.now = now

    def put(self, entry: ClockEntry) -> None:
        self.put_many([entry])

    def put_many(self, entries: list[ClockEntry]) -> None:
        """Archive (or re-archive) clocks in one transaction; idempotent, so a crash
        between this and the table's delete only archives them twice."""
        now = self.now()
        with Session(self.engine) as session:
            for entry in entries:
                session.merge(self._row(entry, now))
            session.commit()

    @staticmethod
    def _row(entry: ClockEntry, now: dt.datetime) -> ArchivedClockRow:
        days = entry.announced.days if entry.announced else ()
        return ArchivedClockRow(
            episode_id=entry.episode_id,
            her_id=_her_id(entry.episode_id),
            first_day=min((d.date for d in days), default=None),
            last_day=max((d.date for d in days), default=None),
            entry_json=json.dumps(entry_to_json(entry), separators=(",", ":")),
            archived_at=now,
            restored=False,
        )

    def get(self, episode_id: str) -> ClockEntry | None:
        """The archived clock, unless a late event brought it back to the hot table."""
        with Session(self.engine) as session:
            row = session.get(ArchivedClockRow, episode_id)
            return _entry(row) if row and not row.restored else None

    def find_many(self, episode_ids: list[str]) -> dict[str, ClockEntry]:
        """The archived clocks of these episodes, restored or not (after a crash between
        `mark_restored` and the table's write, the clock is still found here)."""
        with Session(self.engine) as session:
            rows: list[ArchivedClockRow] = []
            for chunk in _chunks(episode_ids):
                query = select(ArchivedClockRow).where(col(ArchivedClockRow.episode_id).in_(chunk))
                rows.extend(session.exec(query))
            return {row.episode_id: _entry(row) for row in rows}

    def mark_restored(self, episode_ids: list[str]) -> None:
        """These clocks are back in the hot table: statements no longer read them here."""
        with self.engine.begin() as connection:
            for chunk in _chunks(episode_ids):
                connection.execute(
                    update(ArchivedClockRow)
                    .where(col(ArchivedClockRow.episode_id).in_(chunk))
                    .values(restored=True)
                )

    def with_days_in(
        self, first: dt.date, last: dt.date, her_id: str | None = None
    ) -> Iterator[ClockEntry]:
        """The archived clocks with liable days between `first` and `last` (inclusive)."""
        query = select(ArchivedClockRow).where(
            col(ArchivedClockRow.first_day) <= last,
            col(ArchivedClockRow.last_day) >= first,
            col(ArchivedClockRow.restored).is_(False),
        )
        if her_id:
            query = query.where(ArchivedClockRow.her_id == her_id)
        with Session(self.engine) as session:
            rows = list(session.exec(query.order_by(col(ArchivedClockRow.episode_id))))
        for row in rows:
            yield _entry(row)

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(ArchivedClockRow)).one())
