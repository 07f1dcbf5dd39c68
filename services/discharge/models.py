"""The discharge service's SQL tables: the archive of settled clocks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Text
from sqlmodel import Column, Field, SQLModel

TABLE_NAMES = ("discharge_clock_archive",)


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
