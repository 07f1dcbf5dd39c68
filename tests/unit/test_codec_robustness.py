"""A bad line stops nothing: every malformed record is that record's
`InvalidEvent(field, reason)`, whatever its bytes, and nothing else escapes the decoder
that replay and every service use."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overgang.codec import (
    CONTENT_TYPE_JSON,
    InvalidEvent,
    decode_event,
    encode_event,
    event_to_json,
    parse_event_json,
)
from overgang.events import EpisodeEvent
from overgang.v1 import events_pb2

from .episode_story import NOTICE_JSON as NOTICE
from .episode_story import Episode, at


def line(**changes: Any) -> str:
    return json.dumps({**NOTICE, **changes})


def field_of(text: str | bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event_json(text)
    return caught.value.field


def binary(mutate: Any) -> bytes:
    msg = events_pb2.Event()
    msg.ParseFromString(encode_event(parse_event_json(line())))
    mutate(msg)
    return msg.SerializeToString()  # type: ignore[no-any-return]


def binary_field_of(value: bytes) -> str:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(value)
    return caught.value.field


def test_a_valid_line_decodes() -> None:
    assert parse_event_json(line()).event_id == "ev-1"


_ANSWER = {"dischargeReadyNotified": None}
MALFORMED = {
    "unknown-enum-number": (line(division=99), "division"),
    "unknown-enum-name": (line(division="PSYCHIATRY"), "division"),
    "bool-in-enum": (line(division=True), "division"),
    "float-in-enum": (line(division=1.5), "division"),
    "list-in-enum": (line(division=["SOMATIC"]), "division"),
    "object-in-enum": (line(division={"x": 1}), "division"),
    "unknown-need-number": (
        line(dischargeReadyNotified={"readyAt": NOTICE["occurredAt"], "needs": [42]}),
        "dischargeReadyNotified.needs[0]",
    ),
    "needs-not-a-list": (
        line(dischargeReadyNotified={"readyAt": NOTICE["occurredAt"], "needs": "HOUSING"}),
        "dischargeReadyNotified.needs",
    ),
    "number-as-id": (line(eventId=5), "eventId"),
    "newline-after-municipality": (line(municipality="1103\n"), "municipality"),
    "arabic-digits-municipality": (line(municipality="\u0661\u0661\u0660\u0663"), "municipality"),
    "timestamp-without-offset": (line(occurredAt="2024-03-04T10:00:00"), "occurredAt"),
    "timestamp-year-0": (line(occurredAt="0000-01-01T00:00:00Z"), "occurredAt"),
    "timestamp-year-9999": (line(occurredAt="9999-12-31T23:59:59Z"), "occurredAt"),
    "timestamp-as-number": (line(occurredAt=1709542800), "occurredAt"),
    "two-payloads": (line(admitted={}), "payload"),
    "payload-not-an-object": (line(dischargeReadyNotified=1), "dischargeReadyNotified"),
    "unknown-field": (line(occuredAt="2024-03-04T10:00:00+01:00"), "occuredAt"),
    "string-as-bool": (
        line(**_ANSWER, municipalityAnswered={"canReceive": "yes"}),
        "municipalityAnswered.canReceive",
    ),
    "basic-format-date": (
        line(**_ANSWER, municipalityAnswered={"expectedReadyDate": "20240304"}),
        "municipalityAnswered.expectedReadyDate",
    ),
    "unknown-destination-number": (
        line(**_ANSWER, discharged={"destination": 77}),
        "discharged.destination",
    ),
    "lone-surrogate": ('{"eventId": "\\ud800"}', "eventId"),
    "array": ("[1, 2]", "$"),
    "string": ('"an event"', "$"),
    "null": ("null", "$"),
    "number": ("42", "$"),
    "5000-digit-number": ('{"division": ' + "9" * 5000 + "}", "$"),
    "deep-nesting": ("[" * 100_000, "$"),
    "not-json": ("{not json", "$"),
}


@pytest.mark.parametrize(("text", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_line_is_its_own_invalid_event(text: str, field: str) -> None:
    assert field_of(text) == field


def test_invalid_utf8_in_a_line_is_its_own_invalid_event() -> None:
    assert field_of(b'{"eventId": "\xff\xfe"}') == "$"


def test_an_unknown_division_number_in_a_protobuf_record_is_its_own_invalid_event() -> None:
    assert binary_field_of(binary(lambda m: setattr(m, "division", 99))) == "division"


def test_an_unknown_need_number_in_a_protobuf_record_is_its_own_invalid_event() -> None:
    value = binary(lambda m: m.discharge_ready_notified.needs.append(42))
    assert binary_field_of(value) == "dischargeReadyNotified.needs[1]"


def test_an_out_of_range_timestamp_in_a_protobuf_record_is_its_own_invalid_event() -> None:
    assert binary_field_of(binary(lambda m: setattr(m.occurred_at, "seconds", 2**40))) == (
        "occurredAt"
    )


def test_garbage_bytes_are_not_a_protobuf_record() -> None:
    assert binary_field_of(b"\xff\xff\xff\xff") == "$"


def test_a_json_record_with_invalid_utf8_is_its_own_invalid_event() -> None:
    with pytest.raises(InvalidEvent):
        decode_event(b"\xc3\x28", CONTENT_TYPE_JSON)


def test_the_json_and_protobuf_forms_round_trip() -> None:
    story = Episode().admission_notice(at("2024-03-01")).discharge_ready(at("2024-03-04"))
    event = story.events[-1]
    assert (parse_event_json(event_to_json(event)), decode_event(encode_event(event))) == (
        event,
        event,
    )


def _outcome(call: Any, value: Any) -> EpisodeEvent | InvalidEvent:
    try:
        return call(value)  # type: ignore[no-any-return]
    except InvalidEvent as exc:
        return exc


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["SOMATIC", "HOUSING", "2024-03-04T10:00:00+01:00", "2024-03-04"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(list(NOTICE)), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [*NOTICE, "admitted", "discharged", "municipalityAnswered", "admissionNotified"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_invalid_event(value: bytes) -> None:
    for call in (decode_event, lambda v: decode_event(v, CONTENT_TYPE_JSON), parse_event_json):
        _outcome(call, value)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_arbitrary_json_only_ever_raises_invalid_event(value: Any) -> None:
    _outcome(parse_event_json, json.dumps(value))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4))
def test_a_valid_event_with_arbitrary_fields_only_ever_raises_invalid_event(
    changes: dict[str, Any],
) -> None:
    _outcome(parse_event_json, json.dumps({**NOTICE, **changes}))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 200), st.binary(min_size=1, max_size=8))
def test_a_corrupted_protobuf_record_only_ever_raises_invalid_event(
    at_byte: int, noise: bytes
) -> None:
    value = bytearray(encode_event(parse_event_json(line())))
    position = at_byte % len(value)
    value[position : position + len(noise)] = noise
    _outcome(decode_event, bytes(value))


def test_a_needs_list_longer_than_the_cap_is_one_error_before_its_entries_are_read() -> None:
    line = json.dumps(
        {
            "eventId": "e1",
            "episodeId": "81234:E1",
            "occurredAt": "2024-03-04T09:00:00Z",
            "municipality": "1103",
            "division": "SOMATIC",
            "dischargeReadyNotified": {
                "readyAt": "2024-03-04T08:00:00Z",
                "needs": ["HOME_NURSING"] * 33,
            },
        }
    )
    with pytest.raises(InvalidEvent) as error:
        parse_event_json(line)
    assert (error.value.field, error.value.reason) == (
        "dischargeReadyNotified.needs",
        "has more than 32 entries",
    )
