"""Norwegian working days in Europe/Oslo: Monday to Friday except public holidays.

Public holidays (lov om 1. og 17. mai som høgtidsdager; helligdagsfredloven): 1. nyttårsdag,
skjærtorsdag, langfredag, 1. and 2. påskedag, 1. mai, 17. mai, Kristi himmelfartsdag,
1. and 2. pinsedag, 1. and 2. juledag. Easter Sunday by the anonymous Gregorian algorithm.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from overgang.events import OSLO


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@lru_cache(maxsize=64)
def public_holidays(year: int) -> dict[dt.date, str]:
    easter = easter_sunday(year)

    def rel(days: int) -> dt.date:
        return easter + dt.timedelta(days=days)

    return {
        dt.date(year, 1, 1): "1. nyttårsdag",
        rel(-3): "skjærtorsdag",
        rel(-2): "langfredag",
        easter: "1. påskedag",
        rel(1): "2. påskedag",
        dt.date(year, 5, 1): "1. mai",
        dt.date(year, 5, 17): "17. mai",
        rel(39): "Kristi himmelfartsdag",
        rel(49): "1. pinsedag",
        rel(50): "2. pinsedag",
        dt.date(year, 12, 25): "1. juledag",
        dt.date(year, 12, 26): "2. juledag",
    }


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


def add_working_days(day: dt.date, count: int) -> dt.date:
    """The `count`-th working day after `day` (`day` itself is never counted)."""
    if count < 0:
        raise ValueError("count must not be negative")
    current = day
    remaining = count
    while remaining:
        current += dt.timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def end_of_day(day: dt.date) -> dt.datetime:
    """The last second of an Oslo calendar day (a deadline "by the end of the day")."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=OSLO)


def start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=OSLO)
