"""An event's Oslo day is computed once and kept on the event (a memo, not a field): the
day stays the Europe/Oslo calendar day of its instant, and the event is the same value
(equality, hash, repr, fields) whether or not the day was read."""

from __future__ import annotations

import dataclasses
import datetime as dt

from overgang.events import Division, EpisodeEvent, EventKind


def _event(at: dt.datetime) -> EpisodeEvent:
    return EpisodeEvent("e1", "81234:P1", at, "0301", Division.SOMATIC, EventKind.ADMITTED)


def test_oslo_day_is_the_oslo_calendar_day_on_the_night_summer_time_begins() -> None:
    # 2024-03-30 23:30 UTC is 00:30 CET on the 31st, the day the clocks go forward.
    assert _event(dt.datetime(2024, 3, 30, 23, 30, tzinfo=dt.UTC)).oslo_day == dt.date(2024, 3, 31)


def test_oslo_day_is_the_oslo_calendar_day_on_the_night_summer_time_ends() -> None:
    # 2024-10-26 22:30 UTC is 00:30 CEST on the 27th, the day the clocks go back.
    assert _event(dt.datetime(2024, 10, 26, 22, 30, tzinfo=dt.UTC)).oslo_day == dt.date(
        2024, 10, 27
    )


def test_a_replaced_instant_gets_its_own_oslo_day_not_the_memo() -> None:
    event = _event(dt.datetime(2024, 3, 30, 12, 0, tzinfo=dt.UTC))
    assert event.oslo_day == dt.date(2024, 3, 30)
    later = dataclasses.replace(event, occurred_at=dt.datetime(2024, 4, 2, 12, 0, tzinfo=dt.UTC))
    assert later.oslo_day == dt.date(2024, 4, 2)


def test_reading_the_oslo_day_leaves_the_event_the_same_value() -> None:
    at = dt.datetime(2024, 3, 30, 23, 30, tzinfo=dt.UTC)
    read, unread = _event(at), _event(at)
    assert read.oslo_day
    assert read == unread
    assert hash(read) == hash(unread)
    assert repr(read) == repr(unread)
    assert dataclasses.astuple(read) == dataclasses.astuple(unread)
