"""Norwegian national identity numbers: fødselsnummer, D-number and H-number.

Two mod-11 check digits (weights and check digits: `overgang.national_ids`). A check
digit of 10 makes the number invalid; 11 becomes 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from overgang.national_ids import K1_WEIGHTS, K2_WEIGHTS, check_digit, with_check_digits

__all__ = ["InvalidNationalId", "NationalId", "validate_national_id", "with_check_digits"]


class InvalidNationalId(ValueError):
    """The reason never contains the number itself."""


@dataclass(frozen=True)
class NationalId:
    value: str
    kind: str  # "FNR", "DNR" or "HNR"

    def __repr__(self) -> str:  # never print the number
        return f"NationalId(kind={self.kind!r}, value=<redacted>)"

    __str__ = __repr__


def validate_national_id(raw: str) -> NationalId:
    value = raw.strip().replace(" ", "")
    if len(value) != 11 or not value.isdigit():
        raise InvalidNationalId("must be exactly 11 digits")
    k1 = check_digit(value[:9], K1_WEIGHTS)
    if k1 is None or k1 != int(value[9]):
        raise InvalidNationalId("first check digit (mod 11) does not match")
    k2 = check_digit(value[:10], K2_WEIGHTS)
    if k2 is None or k2 != int(value[10]):
        raise InvalidNationalId("second check digit (mod 11) does not match")
    day, month = int(value[0:2]), int(value[2:4])
    kind = "FNR"
    if day > 40:
        kind, day = "DNR", day - 40
    # Synthetic test numbers (Tenor) add 80 to the month.
    if month > 80:
        month -= 80
    elif month > 40:
        kind, month = "HNR", month - 40
    year = 2000 + int(value[4:6])  # any leap year check; century needs the individual number
    try:
        dt.date(2000 if day == 29 and month == 2 else year, month, day)
    except ValueError:
        raise InvalidNationalId("does not encode a valid date of birth") from None
    return NationalId(value=value, kind=kind)
