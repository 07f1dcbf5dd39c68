"""A national id is never echoed: decoder errors name the field and the rule, never the
value; an eventId or episodeId that holds a valid fødselsnummer or D-number is refused."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from overgang.codec import InvalidEvent, parse_event_json
from overgang.national_ids import (
    check_digit,
    contains_national_id,
    is_valid_national_id,
    with_check_digits,
)

from .episode_story import NOTICE_JSON as NOTICE

FNR = "01019010046"  # synthetic: 1 January 1990, both check digits valid
DNR = "41019010110"  # the same date as a D-number (first digit + 4)


def error_of(event: dict[str, Any]) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_event_json(json.dumps(event))
    return caught.value


def test_a_fodselsnummer_is_valid() -> None:
    assert is_valid_national_id(FNR)


def test_a_d_number_is_valid() -> None:
    assert is_valid_national_id(DNR)


def test_a_wrong_first_check_digit_is_not_a_national_id() -> None:
    assert not is_valid_national_id(FNR[:9] + str((int(FNR[9]) + 1) % 10) + FNR[10])


def test_a_wrong_second_check_digit_is_not_a_national_id() -> None:
    assert not is_valid_national_id(FNR[:10] + str((int(FNR[10]) + 1) % 10))


def test_eleven_digits_without_a_birth_date_are_not_a_national_id() -> None:
    number = next(n for i in range(100, 200) if (n := with_check_digits(f"320190{i}")))
    assert not is_valid_national_id(number)


def test_the_check_digits_follow_the_mod_11_weights() -> None:
    assert (check_digit(FNR[:9], (3, 7, 6, 1, 8, 9, 4, 5, 2)), with_check_digits(FNR[:9])) == (
        int(FNR[9]),
        FNR,
    )


@pytest.mark.parametrize(
    "text",
    [f"81234:{FNR}", f"81234:P{FNR}x", "81234:010190-10046", f"ev-{DNR}"],
    ids=["local-number", "inside", "with-dash", "d-number"],
)
def test_an_identifier_holding_a_national_id_contains_one(text: str) -> None:
    assert contains_national_id(text)


def test_a_longer_run_of_digits_holds_no_national_id() -> None:
    assert not contains_national_id(f"81234:9{FNR}")


@pytest.mark.parametrize("field", ["eventId", "episodeId"])
def test_an_id_holding_a_valid_national_id_is_refused(field: str) -> None:
    value = f"81234:{FNR}" if field == "episodeId" else f"ev-{FNR}"
    assert error_of({**NOTICE, field: value}).field == field


def _placements() -> dict[str, dict[str, Any]]:
    answer = {k: v for k, v in NOTICE.items() if k != "dischargeReadyNotified"}
    return {
        "enum-name": {**NOTICE, "division": FNR},
        "enum-number": {**NOTICE, "division": int(DNR)},
        "need": {
            **NOTICE,
            "dischargeReadyNotified": {"readyAt": NOTICE["occurredAt"], "needs": [FNR]},
        },
        "field-name": {**NOTICE, FNR: 1},
        "letter-field-name": {**NOTICE, f"x{FNR}": 1},
        "nested-field-name": {**NOTICE, "dischargeReadyNotified": {FNR: 1}},
        "timestamp": {**NOTICE, "occurredAt": FNR},
        "timestamp-like": {**NOTICE, "occurredAt": f"2024-03-04T{FNR}Z"},
        "municipality": {**NOTICE, "municipality": FNR},
        "event-id": {**NOTICE, "eventId": FNR},
        "episode-id": {**NOTICE, "episodeId": FNR},
        "date": {**answer, "municipalityAnswered": {"expectedReadyDate": FNR}},
        "destination": {**answer, "discharged": {"destination": FNR}},
        "bool": {**answer, "municipalityAnswered": {"canReceive": FNR}},
    }


@pytest.mark.parametrize("event", _placements().values(), ids=_placements().keys())
def test_a_decoder_error_never_echoes_a_national_id(event: dict[str, Any]) -> None:
    error = error_of(event)
    assert (FNR in f"{error} {error.field}", DNR in f"{error} {error.field}") == (False, False)


@pytest.mark.parametrize(
    ("field", "template"),
    list(
        itertools.product(
            [*NOTICE, "admitted", "municipalityAnswered"],
            ["{}", "[{}]", '{{"{}": 1}}', '"2024-03-04T{}Z"', '"x{}"', '"81234:{}"'],
        )
    ),
)
def test_no_placement_of_a_national_id_is_ever_echoed(field: str, template: str) -> None:
    event = {**NOTICE, field: json.loads(template.format(DNR))}
    try:
        parse_event_json(json.dumps(event))
    except InvalidEvent as error:
        assert DNR not in f"{error} {error.field}"
