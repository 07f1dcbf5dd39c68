"""Norwegian national identity numbers: fødselsnummer, D-number and H-number.

Two mod-11 check digits (weights below). A check digit of 10 makes the number
invalid; 11 becomes 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class InvalidNationalId(ValueError):
    """The reason never contains the number itself."""


@dataclass(frozen=True)
class NationalId:
    value: str
    kind: str  # "FNR", "DNR" or "HNR"

    def __repr__(self) -> str:  # never print the number
        return f"NationalId(kind={self.kind!r}, value=<redacted>)"

    __str__ = __repr__


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def with_check_digits(first_nine: str) -> str | None:
    """The 11-digit number for a birth date + individual number, or None when a check
    digit would be 10 (no valid number with those nine digits)."""
    k1 = _check_digit(first_nine, _K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = _check_digit(first_nine + str(k1), _K2_WEIGHTS)
    return None if k2 is None else f"{first_nine}{k1}{k2}"


def validate_national_id(raw: str) -> NationalId:
    value = raw.strip().replace(" ", "")
    if len(value) != 11 or not value.isdigit():
        raise InvalidNationalId("must be exactly 11 digits")
    k1 = _check_digit(value[:9], _K1_WEIGHTS)
    if k1 is None or k1 != int(value[9]):
        raise InvalidNationalId("first check digit (mod 11) does not match")
    k2 = _check_digit(value[:10], _K2_WEIGHTS)
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
