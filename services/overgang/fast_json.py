"""The fast path of the replay-format decoder: a line's `json.loads` result straight into
an `EpisodeEvent`, without building a protobuf message.

`event_from_json(raw)` accepts only an event in its plain, common form, every field
valid: the JSON (camelCase) names, enum values as names, RFC 3339 timestamps in range,
one payload object with known keys and no nulls. For anything else it returns None, and
`codec.parse_event_json` runs the reference decoder (proto3 JSON mapping checks,
`json_format`, `event_from_proto`), which decides: the same event or the exact error.
So this module never writes an error message, and accepting is its only decision:
`tests/unit/test_codec_fast_path.py` shows that whatever it accepts, the reference
decodes to the same event, and whatever it declines, the reference decides alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf.descriptor import EnumDescriptor

from overgang.event_rules import (
    DATE,
    EARLIEST,
    EPISODE_ID,
    EVENT_ID,
    EVENT_ID_CHARS,
    EVENT_ID_MAX,
    LATEST,
    MAX_READY_AFTER_NOTICE,
    MAX_REPEATED,
    MUNICIPALITY,
    RFC3339,
)
from overgang.events import Destination, Division, EpisodeEvent, EventKind, Need
from overgang.national_ids import contains_national_id
from overgang.v1 import events_pb2

E = TypeVar("E", bound=StrEnum)


def _known(descriptor: EnumDescriptor, kind: type[E]) -> dict[str, E]:
    """The enum names the reference decoder turns into a domain value (not UNSPECIFIED,
    not a proto value the domain lacks)."""
    return {
        name: kind(name)
        for name, value in descriptor.values_by_name.items()
        if value.number != 0 and name in kind.__members__
    }


_DIVISIONS = _known(events_pb2.Division.DESCRIPTOR, Division)
_NEEDS = _known(events_pb2.Need.DESCRIPTOR, Need)
_DESTINATIONS = _known(events_pb2.Discharged.Destination.DESCRIPTOR, Destination)
_KINDS = {
    field.json_name: EventKind(field.json_name)
    for field in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields
}
_KEY_COUNT = 6  # eventId, episodeId, occurredAt, municipality, division, the payload
# The keys each payload may have (JSON names only; a proto name goes the reference way).
_BODY_KEYS = {
    EventKind.ADMISSION_NOTIFIED: frozenset({"expectedNeeds"}),
    EventKind.DISCHARGE_READY_NOTIFIED: frozenset({"readyAt", "needs"}),
    EventKind.MUNICIPALITY_ANSWERED: frozenset({"canReceive", "expectedReadyDate"}),
    EventKind.DISCHARGED: frozenset({"destination"}),
}
_EMPTY: frozenset[str] = frozenset()


def _identifier(value: object, pattern: Any) -> bool:
    return (
        type(value) is str and pattern.match(value) is not None and not contains_national_id(value)
    )


def _event_identifier(value: object, episode: str) -> bool:
    """`_identifier(value, EVENT_ID)`, checking only what follows the episode id when the
    event id is `<episode id>:<rest>`: the validated episode id's characters are all event
    id characters and hold no national id, and a national-id candidate (6 + 5 digits,
    bounded by non-digits) cannot span the colon."""
    if type(value) is not str:
        return False
    if value.startswith(episode) and value[len(episode) : len(episode) + 1] == ":":
        rest = value[len(episode) + 1 :]
        if len(value) > EVENT_ID_MAX or rest.strip(EVENT_ID_CHARS):
            return False
        return len(rest) < 11 or not contains_national_id(rest)
    return EVENT_ID.match(value) is not None and not contains_national_id(value)


# An EpisodeEvent built through its slots: the dataclass's frozen `__init__` sets each of
# the eleven fields with `object.__setattr__`, three times the cost. Only this module's
# validated values come here; the field list is checked against the dataclass below.
_FIELDS = (
    "event_id",
    "episode_id",
    "occurred_at",
    "municipality",
    "division",
    "kind",
    "ready_at",
    "needs",
    "can_receive",
    "expected_ready_date",
    "destination",
)
if tuple(f.name for f in dataclasses.fields(EpisodeEvent)) != _FIELDS:
    raise ImportError("fast_json._FIELDS no longer lists EpisodeEvent's fields")
_SET = tuple(getattr(EpisodeEvent, name).__set__ for name in _FIELDS)
_NEW = object.__new__


def _event(
    event_id: str,
    episode_id: str,
    occurred_at: dt.datetime,
    municipality: str,
    division: Division,
    kind: EventKind,
    ready_at: dt.datetime | None = None,
    needs: tuple[Need, ...] = (),
    can_receive: bool | None = None,
    expected_ready_date: dt.date | None = None,
    destination: Destination | None = None,
) -> EpisodeEvent:
    event: EpisodeEvent = _NEW(EpisodeEvent)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = _SET
    s0(event, event_id)
    s1(event, episode_id)
    s2(event, occurred_at)
    s3(event, municipality)
    s4(event, division)
    s5(event, kind)
    s6(event, ready_at)
    s7(event, needs)
    s8(event, can_receive)
    s9(event, expected_ready_date)
    s10(event, destination)
    return event


# Validated identifiers, each kept once: an episode's events (and a municipality's) then
# share one string object instead of a copy per line, and its verdict is not repeated.
_EPISODE_IDS: dict[str, str] = {}
_MUNICIPALITIES: dict[str, str] = {}
_MEMO_SIZE = 1 << 16


def _memo(memo: dict[str, str], value: str) -> str:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[value] = value
    return value


def _episode_id(value: object) -> str | None:
    if type(value) is not str:
        return None
    known = _EPISODE_IDS.get(value)
    if known is None and _identifier(value, EPISODE_ID):
        known = _memo(_EPISODE_IDS, value)
    return known


def _municipality(value: object) -> str | None:
    if type(value) is not str:
        return None
    known = _MUNICIPALITIES.get(value)
    if known is None and MUNICIPALITY.match(value) is not None:
        known = _memo(_MUNICIPALITIES, value)
    return known


def _instant(value: object) -> dt.datetime | None:
    """An RFC 3339 timestamp as a UTC datetime, truncated to microseconds as
    `Timestamp.ToDatetime` does, when it lies in the years 2000 to 2099."""
    if type(value) is not str or RFC3339.fullmatch(value) is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:  # a date that is not in the calendar
        return None
    if stamp.tzinfo is not dt.UTC:
        stamp = stamp.astimezone(dt.UTC)
    return stamp if EARLIEST <= stamp < LATEST else None


def _needs(values: object) -> tuple[Need, ...] | None:
    """Known need names, repeats dropped (first place kept); None if any is not one."""
    if type(values) is not list or len(values) > MAX_REPEATED:
        return None  # the reference path gives the error
    needs: list[Need] = []
    for value in values:
        need = _NEEDS.get(value) if type(value) is str else None
        if need is None:
            return None
        if need not in needs:
            needs.append(need)
    return tuple(needs)


def _date(text: str) -> dt.date | None:
    """A `YYYY-MM-DD` date in the calendar, or None."""
    if DATE.match(text) is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def event_from_json(raw: object) -> EpisodeEvent | None:
    """The event `raw` (a decoded JSON line) holds, or None: let the reference decide."""
    if type(raw) is not dict or len(raw) != _KEY_COUNT:
        return None
    try:
        event_id, episode_id = raw["eventId"], raw["episodeId"]
        occurred, municipality, division = raw["occurredAt"], raw["municipality"], raw["division"]
    except KeyError:
        return None
    name = next(reversed(raw))  # the payload, where `event_to_json` puts it
    if name not in _KINDS:
        name = next((k for k in raw if k in _KINDS), "")
    kind = _KINDS.get(name)
    if kind is None or type(division) is not str:
        return None
    occurred_at = _instant(occurred)
    division_value = _DIVISIONS.get(division)
    episode = _episode_id(episode_id)
    place = _municipality(municipality)
    if (
        occurred_at is None
        or division_value is None
        or episode is None
        or place is None
        or not _event_identifier(event_id, episode)
    ):
        return None
    body = raw[name]
    if type(body) is not dict or not body.keys() <= _BODY_KEYS.get(kind, _EMPTY):
        return None
    base = (event_id, episode, occurred_at, place, division_value, kind)
    if kind is EventKind.ADMISSION_NOTIFIED:
        needs = _needs(body.get("expectedNeeds", []))
        return None if needs is None else _event(*base, needs=needs)
    if kind is EventKind.DISCHARGE_READY_NOTIFIED:
        ready_at = _instant(body.get("readyAt"))
        needs = _needs(body.get("needs", []))
        if ready_at is None or needs is None or ready_at > occurred_at + MAX_READY_AFTER_NOTICE:
            return None
        return _event(*base, ready_at=ready_at, needs=needs)
    if kind is EventKind.MUNICIPALITY_ANSWERED:
        can_receive = body.get("canReceive", False)
        text = body.get("expectedReadyDate", "")  # "" is the proto3 default: no date
        if type(can_receive) is not bool or type(text) is not str:
            return None
        expected = _date(text) if text else None
        if text and expected is None:
            return None
        return _event(*base, can_receive=can_receive, expected_ready_date=expected)
    if kind is EventKind.DISCHARGED:
        destination = body.get("destination")
        value = _DESTINATIONS.get(destination) if type(destination) is str else None
        return None if value is None else _event(*base, destination=value)
    return _event(*base)
