"""Daily rates (døgnpris) by calendar year. A year without a rate is never guessed: its
liable days still count, as rate-pending days, until the operator adds the rate."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

HOW_TO_ADD_RATES = "add it to the rate table (--rates FILE or OVERGANG_RATES_FILE)"


def missing_rate_message(years: Iterable[int]) -> str:
    listed = ", ".join(str(y) for y in sorted(set(years)))
    return f"no daily rate configured for {listed}: {HOW_TO_ADD_RATES}"


class MissingRate(LookupError):
    def __init__(self, year: int) -> None:
        super().__init__(missing_rate_message([year]))
        self.year = year


@dataclass(frozen=True)
class RateTable:
    nok_per_day: Mapping[int, int] = field(default_factory=dict)
    source: str = ""

    def price(self, day: dt.date) -> int | None:
        """The day's rate, or None when its year has none (the day is rate-pending)."""
        return self.nok_per_day.get(day.year)

    def rate_for(self, day: dt.date) -> int:
        """The day's rate; raises MissingRate when its year has none."""
        rate = self.price(day)
        if rate is None:
            raise MissingRate(day.year)
        return rate

    def years(self) -> tuple[int, ...]:
        """The years that have a rate, ascending."""
        return tuple(sorted(self.nok_per_day))

    def missing_years(self, first: int, last: int) -> tuple[int, ...]:
        """The years from `first` to `last` (both included) without a rate."""
        return tuple(y for y in range(first, last + 1) if y not in self.nok_per_day)

    @functools.cached_property  # a tick compares it for every clock: hash the table once
    def fingerprint(self) -> str:
        """A short, stable id of the table's content (not its source): e.g. the cause of
        the corrections announced when an operator changes the rates."""
        content = ",".join(f"{y}={self.nok_per_day[y]}" for y in self.years())
        return hashlib.sha256(content.encode()).hexdigest()[:12]
