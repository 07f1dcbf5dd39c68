"""The fast JSON path changes nothing but speed: for every line, `parse_event_json` gives
what the reference decoder (mapping checks + `json_format` + `event_from_proto`) gives,
the same event or the same error; and whatever the fast path accepts, plain
`json_format.Parse` + `event_from_proto` decodes to the same event."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overgang.codec import (
    InvalidEvent,
    event_from_proto,
    event_to_json,
    parse_event_json,
    parse_event_json_reference,
)
from overgang.events import EpisodeEvent
from overgang.fast_json import event_from_json
from overgang.national_ids import contains_national_id
from overgang.v1 import events_pb2
from tooling.simulation import all_events, simulate_month

from .episode_story import NOTICE_JSON as NOTICE
from .test_codec_robustness import json_values

FNR = "01019010046"  # synthetic, valid check digits


def outcome(call: Any, text: str | bytes) -> tuple[str, ...]:
    """An event by its repr (so time zones and enum members count), an error by its text."""
    try:
        event: EpisodeEvent = call(text)
    except InvalidEvent as exc:
        return ("error", exc.field, exc.reason, str(exc))
    return ("event", repr(event))


def assert_same(text: str | bytes) -> None:
    assert outcome(parse_event_json, text) == outcome(parse_event_json_reference, text)
    if isinstance(text, str):
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            return
        fast = event_from_json(raw)
        if fast is not None:
            msg = json_format.Parse(text, events_pb2.Event())
            assert repr(event_from_proto(msg)) == repr(fast)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` nine times in ten, so that many generated events are valid throughout."""
    return st.sampled_from(range(10)).flatmap(lambda roll: odd if roll == 9 else usual)


def _stamp(when: dt.datetime, digits: str, offset: str) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + offset


valid_stamps = st.builds(
    _stamp,
    mostly(
        st.datetimes(dt.datetime(2024, 2, 25), dt.datetime(2024, 4, 5)),
        st.datetimes(dt.datetime(1999, 12, 31), dt.datetime(2100, 1, 1, 23, 59)),
    ),
    st.integers(0, 10).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n)),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "+02:00", "-05:30", "+23:59"]),
)
odd_stamps = st.one_of(
    st.sampled_from(
        [
            "2023-02-29T10:00:00+01:00",
            "2024-02-31T10:00:00Z",
            "2024-03-04T10:00:00z",
            "2024-03-04t10:00:00Z",
            "2024-03-04 10:00:00+01:00",
            "2024-03-04T10:00:00",
            "2024-03-04T10:00:00+0100",
            "2024-03-04T24:00:00Z",
            f"2024-03-04T{FNR}Z",
        ]
    ),
    json_values,
)
timestamps = mostly(valid_stamps, odd_stamps)
event_ids = mostly(
    st.from_regex(r"[A-Za-z0-9._:@/-]{1,24}", fullmatch=True),
    st.sampled_from(["", "x" * 129, f"ev-{FNR}", "ev 1", "év"]) | json_values,
)
episode_ids = mostly(
    st.from_regex(r"[0-9]{1,9}:[A-Za-z0-9._-]{1,16}", fullmatch=True),
    st.sampled_from(["81234", f"81234:{FNR}", "1234567890:E1", "81234:E 1"]) | json_values,
)
municipalities = mostly(
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.sampled_from(["110", "11033", "1103\n", "\u0661\u0661\u0660\u0663"]) | json_values,
)
enum_names = st.sampled_from(
    ["SOMATIC", "MENTAL_HEALTH", "HOUSING", "HOME", "OTHER_HOSPITAL", "somatic", FNR]
) | st.sampled_from(["DIVISION_UNSPECIFIED", "NEED_UNSPECIFIED", "DESTINATION_UNSPECIFIED"])
odd_enums = st.one_of(enum_names, st.integers(-1, 9), st.booleans(), st.none(), json_values)
divisions = mostly(st.sampled_from(["SOMATIC", "MENTAL_HEALTH", "SUBSTANCE_USE"]), odd_enums)
destinations = mostly(
    st.sampled_from(["HOME", "SHORT_TERM_BED", "NURSING_HOME", "HOUSING", "OTHER_HOSPITAL"]),
    odd_enums,
)
need_names = st.sampled_from(["HOME_NURSING", "HOUSING", "REHABILITATION", "GP_FOLLOW_UP"])
needs = mostly(st.lists(mostly(need_names, odd_enums), max_size=5), odd_enums)
dates = mostly(
    st.sampled_from(["", "2024-03-04", "2024-02-29"]) | st.dates().map(dt.date.isoformat),
    st.sampled_from(["2024-02-30", "20240304", "2024-3-4", FNR]) | json_values,
)
answers = mostly(st.booleans(), json_values)


def body(name: str, **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=optional).map(lambda content: {name: content})


payloads = st.one_of(
    body("admissionNotified", expectedNeeds=needs),
    body("dischargeReadyNotified", readyAt=timestamps, needs=needs),
    body("dischargeReadyNotified", readyAt=timestamps, needs=needs),
    body("municipalityAnswered", canReceive=answers, expectedReadyDate=dates),
    body("discharged", destination=destinations),
    st.sampled_from(
        ["admitted", "dischargeReadyWithdrawn", "serviceReady", "died", "cooperationMeetingHeld"]
    ).flatmap(
        lambda name: mostly(st.just({}), st.sampled_from([None, {"x": 1}, []])).map(
            lambda content: {name: content}
        )
    ),
)
BASE = ["eventId", "episodeId", "occurredAt", "municipality", "division"]
near_valid_events = st.builds(
    lambda base, payload, extra, dropped: {
        k: v for k, v in {**base, **payload, **extra}.items() if k not in dropped
    },
    st.fixed_dictionaries(
        {
            "eventId": event_ids,
            "episodeId": episode_ids,
            "occurredAt": timestamps,
            "municipality": municipalities,
            "division": divisions,
        }
    ),
    payloads,
    mostly(
        st.just({}),
        st.dictionaries(
            st.sampled_from(["event_id", "occurred_at", "admitted", "serviceReady", "foo", FNR]),
            st.sampled_from([None, {}, "ev-2", 1]),
            min_size=1,
            max_size=2,
        ),
    ),
    mostly(st.just(set()), st.sets(st.sampled_from(BASE), min_size=1)),
)


def valid(**changes: Any) -> dict[str, Any]:
    return {**NOTICE, **changes}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_events)
def test_a_near_valid_event_decodes_as_the_reference_decodes_it(event: dict[str, Any]) -> None:
    assert_same(json.dumps(event))


OFFSETS = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=1)), dt.timezone(-dt.timedelta(hours=3))]
)


def _rfc3339(when: dt.datetime, nanos: int) -> str:
    offset = when.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return _stamp(when, f"{nanos:09d}" if nanos else "", zone)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.datetimes(dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)),
    st.integers(0, 10**9 - 1),
    OFFSETS,
    OFFSETS,
    st.sampled_from([-86_400, -1, 0, 1, 86_400]),
    st.integers(-1000, 1000),
)
def test_a_notice_near_the_31_day_limit_decodes_as_the_reference_decodes_it(
    occurred: dt.datetime, nanos: int, zone: dt.tzinfo, ready_zone: dt.tzinfo, seconds: int, ns: int
) -> None:
    at = occurred.replace(microsecond=0, tzinfo=zone)
    ready_nanos = (nanos + ns) % 10**9
    carry = (nanos + ns) // 10**9
    ready = (at + dt.timedelta(days=31, seconds=seconds + carry)).astimezone(ready_zone)
    body = {"readyAt": _rfc3339(ready, ready_nanos), "needs": ["HOUSING"]}
    assert_same(json.dumps(valid(occurredAt=_rfc3339(at, nanos), dischargeReadyNotified=body)))


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from([*NOTICE, "admitted", "discharged"]), json_values))
def test_arbitrary_fields_decode_as_the_reference_decodes_them(changes: dict[str, Any]) -> None:
    assert_same(json.dumps(valid(**changes)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_as_the_reference_decodes_them(value: bytes) -> None:
    assert_same(value)


_EVENT_IDS_AROUND_THE_EPISODE_ID = {
    "the episode id and a national id after the colon": f"81234:E1:{FNR}",
    "... written ddmmyy-nnnnn": f"81234:E1:{FNR[:6]}-{FNR[6:]}",
    "... after a short suffix": f"81234:E1:x{FNR}",
    "... touching the episode id (a 12-digit run: no id)": f"81234:E1{FNR}",
    "a national id before the episode id": f"{FNR}:81234:E1",
    "a national id and no episode id": f"81234:E2:{FNR}",
    "a long suffix without one": "81234:E1:0123456789-abcdef",
    "the episode id alone": "81234:E1",
    "the episode id and a colon": "81234:E1:",
}


@pytest.mark.parametrize(
    "event_id", _EVENT_IDS_AROUND_THE_EPISODE_ID.values(), ids=_EVENT_IDS_AROUND_THE_EPISODE_ID
)
def test_a_national_id_in_the_event_id_is_refused_wherever_it_stands(event_id: str) -> None:
    """The fast path scans only past `<episode id>:`; the verdict is the reference's."""
    line = json.dumps(valid(eventId=event_id))
    assert_same(line)
    refused = outcome(parse_event_json, line)[0] == "error"
    assert refused == contains_national_id(event_id)


_EVENT_ID_TAILS = {
    "a space": "81234:E1:a b",
    "a letter beyond ASCII": "81234:E1:é",
    "a newline at the end": "81234:E1:01\n",
    "a slash and an at sign (allowed)": "81234:E1:hf/a@b",
    "129 characters": "81234:E1:" + "x" * 120,
    "128 characters": "81234:E1:" + "x" * 119,
}


@pytest.mark.parametrize("event_id", _EVENT_ID_TAILS.values(), ids=_EVENT_ID_TAILS)
def test_what_follows_the_episode_id_in_an_event_id_is_checked_as_the_reference_does(
    event_id: str,
) -> None:
    assert_same(json.dumps(valid(eventId=event_id)))


_PLAIN = json.dumps(NOTICE)
_ORJSON_READS_OTHERWISE = {
    "an integer beyond 64 bits (orjson: a float)": _PLAIN.replace(
        '"1103"', "123456789012345678901234567890"
    ),
    "a negative integer beyond 64 bits": _PLAIN.replace('"1103"', "-9223372036854775809"),
    "NaN (json reads it, orjson does not)": _PLAIN.replace('"1103"', "NaN"),
    "an exponent beyond a double (json: inf)": _PLAIN.replace('"1103"', "1e400"),
    "a lone surrogate in the event id": _PLAIN.replace('"ev-1"', '"ev-\\ud800"'),
    "a byte-order mark": "\ufeff" + _PLAIN,
    "a key twice (the last wins in both)": _PLAIN[:-1] + ', "eventId": "ev-2"}',
    "nested deeper than orjson reads": _PLAIN.replace('"1103"', "[" * 1100 + "]" * 1100),
}


@pytest.mark.parametrize("line", _ORJSON_READS_OTHERWISE.values(), ids=_ORJSON_READS_OTHERWISE)
def test_a_line_orjson_reads_otherwise_than_json_decodes_as_the_reference_decodes_it(
    line: str,
) -> None:
    for text in (line, line.encode("utf-8", "surrogatepass")):
        assert outcome(parse_event_json, text) == outcome(parse_event_json_reference, text)


def test_a_simulated_month_takes_the_fast_path_and_equals_the_reference() -> None:
    lines = [event_to_json(e) for e in all_events(simulate_month(2024, 3, 200, seed=5))]
    fast = [event_from_json(json.loads(line)) for line in lines]
    assert (None in fast, [repr(e) for e in fast]) == (
        False,
        [repr(parse_event_json_reference(line)) for line in lines],
    )


def test_an_episode_id_and_a_municipality_are_kept_once_for_all_their_events() -> None:
    episode = simulate_month(2024, 3, 1, seed=8)[0]
    events = [event_from_json(json.loads(event_to_json(e))) for e in all_events([episode])]
    assert [(e.episode_id, e.municipality) for e in events if e] == [
        (events[0].episode_id, events[0].municipality)
    ] * len(events)
    assert all(e and e.episode_id is events[0].episode_id for e in events)
