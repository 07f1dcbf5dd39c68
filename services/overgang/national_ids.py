"""Recognising a Norwegian national id (fødselsnummer, D-number) without ever keeping it.

Eleven digits: the birth date `ddmmyy`, a three-digit individual number, then two mod-11
check digits (weights below). A check digit of 10 makes the number invalid; 11 becomes 0.
A D-number adds 4 to the first digit (day + 40). H-numbers (month + 40) and synthetic
test numbers (month + 80) are recognised too, so that nothing the pathway service would
accept as a national id can pass anywhere else as an identifier.

The kernel uses `contains_national_id` to refuse ids (event ids, episode ids) that carry
one; the pathway service validates the national ids it stores with the same digits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

# Eleven digits, not part of a longer run of digits, optionally written `ddmmyy-nnnnn`.
_CANDIDATE = re.compile(r"(?<!\d)(\d{6})[ .-]?(\d{5})(?!\d)")


def check_digit(digits: str, weights: Sequence[int]) -> int | None:
    """The mod-11 check digit of `digits` (as many digits as weights), or None when it
    would be 10 (no valid number continues these digits)."""
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    check = 11 - remainder
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def with_check_digits(first_nine: str) -> str | None:
    """The 11-digit number for a birth date + individual number, or None when a check
    digit would be 10."""
    k1 = check_digit(first_nine, K1_WEIGHTS)
    if k1 is None:
        return None
    k2 = check_digit(first_nine + str(k1), K2_WEIGHTS)
    return None if k2 is None else f"{first_nine}{k1}{k2}"


def has_valid_check_digits(value: str) -> bool:
    """Eleven ASCII digits whose two check digits match."""
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    return with_check_digits(value[:9]) == value


def encodes_birth_date(value: str) -> bool:
    """The first six digits are a day and month (D-number: day + 40; H-number: month + 40;
    synthetic: month + 80). The century is not known, so 29 February always passes."""
    day, month = int(value[0:2]), int(value[2:4])
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    try:
        dt.date(2000, month, day)  # a leap year
    except ValueError:
        return False
    return True


def is_valid_national_id(text: str) -> bool:
    """A fødselsnummer or D-number (or H-number): 11 digits, both check digits, a date."""
    value = text.strip()
    return has_valid_check_digits(value) and encodes_birth_date(value)


def contains_national_id(text: str) -> bool:
    """Whether `text` holds a valid national id as a run of 11 digits (or `ddmmyy-nnnnn`)."""
    return any(is_valid_national_id(a + b) for a, b in _CANDIDATE.findall(text))
