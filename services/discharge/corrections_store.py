"""The CORRECTED liability events in SQL, shared by every worker: the clock worker writes
each before announcing it, monthly statements list those after a date."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from discharge.domain.liability_diff import LiabilityChange
from discharge.domain.statement import LiableDay
from discharge.models import CorrectionRow
from overgang.sql.upsert import upsert


@dataclass(frozen=True)
class Correction:
    event_id: str
    episode_id: str
    municipality: str
    as_of: dt.date
    cause_event_id: str
    reversed: tuple[LiableDay, ...]
    added: tuple[LiableDay, ...]


def _days(days: Sequence[LiableDay]) -> list[list[object]]:
    return [[d.date.isoformat(), d.amount_nok] for d in days]


def _liable(raw: list[list[object]]) -> tuple[LiableDay, ...]:
    return tuple(LiableDay(dt.date.fromisoformat(str(d)), n) for d, n in raw)  # type: ignore[arg-type]


class CorrectionLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put_many(self, changes: Sequence[tuple[LiabilityChange, dt.date]], at: dt.datetime) -> None:
        """(change, the clock's as_of) of CORRECTED changes; a repeat replaces its row."""
        emitted_at = at.astimezone(dt.UTC)
        rows = []
        for change, as_of in changes:
            dates = [d.date for d in (*change.reversed, *change.added)]
            rows.append(
                {
                    "event_id": change.event_id,
                    "episode_id": change.episode_id,
                    "her_id": change.episode_id.partition(":")[0],
                    "municipality": change.municipality,
                    "as_of": as_of,
                    "first_day": min(dates),
                    "last_day": max(dates),
                    "cause_event_id": change.cause_event_id,
                    "days_json": json.dumps(
                        {"reversed": _days(change.reversed), "added": _days(change.added)}
                    ),
                    "emitted_at": emitted_at,
                }
            )
        with self.engine.begin() as connection:
            upsert(connection, CorrectionRow, rows)

    def after(
        self, since: dt.date, first: dt.date, last: dt.date, her_id: str | None = None
    ) -> list[Correction]:
        """Corrections made after `since` (as_of later) touching days first..last."""
        query = select(CorrectionRow).where(
            col(CorrectionRow.as_of) > since,
            col(CorrectionRow.first_day) <= last,
            col(CorrectionRow.last_day) >= first,
        )
        if her_id:
            query = query.where(CorrectionRow.her_id == her_id)
        query = query.order_by(col(CorrectionRow.episode_id), col(CorrectionRow.emitted_at))
        with Session(self.engine) as session:
            rows = list(session.exec(query))
        found = []
        for row in rows:
            days = json.loads(row.days_json)
            found.append(
                Correction(
                    row.event_id,
                    row.episode_id,
                    row.municipality,
                    row.as_of,
                    row.cause_event_id,
                    _liable(days["reversed"]),
                    _liable(days["added"]),
                )
            )
        return found
