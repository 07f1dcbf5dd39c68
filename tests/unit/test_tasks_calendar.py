"""Norwegian working days (Europe/Oslo): weekends and public holidays, Easter-based ones
included."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordination.domain.calendar import add_working_days, easter_sunday, end_of_day, is_working_day

D = dt.date


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2024, D(2024, 3, 31)), (2025, D(2025, 4, 20)), (2026, D(2026, 4, 5)), (2027, D(2027, 3, 28))],
)
def test_easter_sunday_is_computed_for_the_year(year: int, easter: dt.date) -> None:
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(
    "holiday",
    [
        D(2026, 1, 1),  # 1. nyttårsdag (Thursday)
        D(2026, 4, 2),  # skjærtorsdag
        D(2026, 4, 3),  # langfredag
        D(2026, 4, 6),  # 2. påskedag
        D(2026, 5, 1),  # 1. mai (Friday)
        D(2026, 5, 14),  # Kristi himmelfartsdag
        D(2026, 5, 25),  # 2. pinsedag
        D(2027, 5, 17),  # 17. mai (Monday)
        D(2026, 12, 25),  # 1. juledag (Friday)
        D(2025, 12, 26),  # 2. juledag (Friday)
    ],
)
def test_public_holiday_on_a_weekday_is_not_a_working_day(holiday: dt.date) -> None:
    assert holiday.weekday() < 5
    assert not is_working_day(holiday)


def test_one_working_day_after_a_friday_is_the_monday() -> None:
    assert add_working_days(D(2026, 3, 13), 1) == D(2026, 3, 16)


def test_one_working_day_after_wednesday_before_easter_is_the_tuesday_after() -> None:
    assert add_working_days(D(2026, 4, 1), 1) == D(2026, 4, 7)


def test_one_working_day_after_friday_before_17_may_on_monday_is_the_tuesday() -> None:
    assert add_working_days(D(2027, 5, 14), 1) == D(2027, 5, 18)


def test_end_of_day_is_the_last_second_of_the_oslo_day_in_summer_time() -> None:
    assert end_of_day(D(2026, 6, 1)).astimezone(dt.UTC) == dt.datetime(
        2026, 6, 1, 21, 59, 59, tzinfo=dt.UTC
    )


@given(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)), st.integers(0, 30))
def test_adding_n_working_days_passes_exactly_n_working_days(start: dt.date, n: int) -> None:
    end = add_working_days(start, n)
    days = [start + dt.timedelta(days=i) for i in range(1, (end - start).days + 1)]
    assert sum(is_working_day(d) for d in days) == n and (n == 0 or is_working_day(end))
