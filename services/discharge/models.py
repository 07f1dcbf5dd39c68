"""The discharge service's SQL tables: the archive of settled clocks and the disputes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Text
from sqlmodel import Column, Field, SQLModel

TABLE_NAMES = ("discharge_clock_archive", "discharge_disputes", "discharge_corrections")


class ArchivedClockRow(SQLModel, table=True):
    """A settled clock (no running period, no rate-pending day, quiet for the retention):
    out of the hot Faust table, so ticks and recovery cost what the open clocks cost."""

    __tablename__ = "discharge_clock_archive"

    episode_id: str = Field(primary_key=True, max_length=100)
    her_id: str = Field(max_length=12, index=True)
    # Liable days span (for month queries); None when the clock has no liable day.
    first_day: dt.date | None = Field(default=None, index=True)
    last_day: dt.date | None = Field(default=None, index=True)
    entry_json: str = Field(sa_column=Column(Text, nullable=False))
    archived_at: dt.datetime
    # A late event brought the clock back to the hot table, which is now the truth; the
    # row stays (a crash before the table's changelog is written must find it again).
    restored: bool = False


class DisputeRow(SQLModel, table=True):
    """A municipality's dispute of liable days (`discharge.domain.disputes`): beside the
    clock, never in it. Shared by every worker, so any of them records and resolves."""

    __tablename__ = "discharge_disputes"

    dispute_id: str = Field(primary_key=True, max_length=100)  # the client's
    episode_id: str = Field(max_length=100, index=True)
    her_id: str = Field(max_length=12, index=True)
    municipality: str = Field(max_length=4, index=True)
    days_json: str = Field(sa_column=Column(Text, nullable=False))  # ["YYYY-MM-DD", ...]
    first_day: dt.date = Field(index=True)
    last_day: dt.date = Field(index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=10, index=True)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    opened_at: dt.datetime
    opened_by: str = Field(default="", max_length=200)
    resolved_at: dt.datetime | None = None
    resolved_by: str = Field(default="", max_length=200)


class CorrectionRow(SQLModel, table=True):
    """A CORRECTED liability event as announced (keyed by its deterministic id, so a
    repeat after a crash writes it once): what "corrections since the last statement"
    lists, for episodes whose month no longer has any liable day too."""

    __tablename__ = "discharge_corrections"

    event_id: str = Field(primary_key=True, max_length=300)
    episode_id: str = Field(max_length=100, index=True)
    her_id: str = Field(max_length=12, index=True)
    municipality: str = Field(max_length=4, index=True)
    as_of: dt.date = Field(index=True)
    first_day: dt.date = Field(index=True)  # of the reversed and added days
    last_day: dt.date = Field(index=True)
    cause_event_id: str = Field(default="", max_length=300)
    # {"reversed": [["YYYY-MM-DD", nok or null], ...], "added": [...]}
    days_json: str = Field(sa_column=Column(Text, nullable=False))
    emitted_at: dt.datetime
