"""Daily rates (døgnpris) by calendar year. A year without a rate is an error naming the
year, never a guess: the operator adds it to the rate table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field


class MissingRate(LookupError):
    def __init__(self, year: int) -> None:
        super().__init__(
            f"no daily rate configured for year {year}: add it to the rate table "
            "(OVERGANG_RATES_FILE)"
        )
        self.year = year


@dataclass(frozen=True)
class RateTable:
    nok_per_day: Mapping[int, int] = field(default_factory=dict)
    source: str = ""

    def rate_for(self, day: dt.date) -> int:
        try:
            return self.nok_per_day[day.year]
        except KeyError:
            raise MissingRate(day.year) from None
