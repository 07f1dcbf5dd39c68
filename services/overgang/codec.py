"""The wire forms of an episode event (protobuf binary, proto3 JSON) and their validation.

Everything entering the system passes `event_from_proto`, so gRPC intake, Kafka
consumers and `overgang replay` reject the same things for the same reasons.

A bad record (invalid UTF-8, a JSON array, an unknown enum number, a wrong type, a huge
number...) raises `InvalidEvent(field, reason)` and nothing else. Reasons name the field
and the rule, never the value: it may be a national id, and error texts reach logs and
dead letters. An `eventId` or `episodeId` holding a valid national id is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import DecodeError

from overgang.event_rules import (
    DATE,
    EARLIEST,
    EPISODE_ID,
    EVENT_ID,
    LATEST,
    MAX_READY_AFTER_NOTICE,
    MAX_REPEATED,
    MUNICIPALITY,
    InvalidEvent,
)
from overgang.events import Destination, Division, EpisodeEvent, EventKind, Need
from overgang.fast_json import event_from_json
from overgang.json_mapping import check_json_mapping
from overgang.national_ids import contains_national_id
from overgang.v1 import events_pb2

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTO",
    "DATE",
    "EARLIEST",
    "EPISODE_ID",
    "EVENT_ID",
    "LATEST",
    "MUNICIPALITY",
    "InvalidEvent",
    "decode_event",
    "encode_event",
    "event_from_proto",
    "event_to_json",
    "event_to_proto",
    "parse_event_json",
    "parse_event_json_reference",
]

E = TypeVar("E", bound=StrEnum)

CONTENT_TYPE_PROTO = b"application/x-protobuf; messageType=overgang.v1.Event"
CONTENT_TYPE_JSON = b"application/json"

# Proto field name of the oneof payload -> domain kind (its value is the JSON name).
_PAYLOAD = events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"]
_PAYLOAD_KIND = {field.name: EventKind(field.json_name) for field in _PAYLOAD.fields}
_KIND_PAYLOAD = {kind: name for name, kind in _PAYLOAD_KIND.items()}


def _timestamp(
    msg: events_pb2.Event | events_pb2.DischargeReadyNotified, name: str, path: str
) -> dt.datetime:
    if not msg.HasField(name):  # type: ignore[arg-type]
        raise InvalidEvent(path, "is required (RFC 3339 timestamp with offset)")
    stamp = getattr(msg, name)
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (EARLIEST.timestamp() <= seconds < LATEST.timestamp() and 0 <= nanos < 10**9):
        raise InvalidEvent(path, "must lie in the years 2000 to 2099")
    return stamp.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]


def _enum(number: int, descriptor: EnumDescriptor, kind: type[E], path: str) -> E:
    """The domain value of a proto enum number; unspecified and unknown numbers (an open
    proto3 enum keeps them) are this field's error."""
    value = descriptor.values_by_number.get(number)
    if number != 0 and value is not None and value.name in kind.__members__:
        return kind(value.name)
    names = ", ".join(n for n in kind.__members__ if n in descriptor.values_by_name)
    rule = "is required" if number == 0 else "is not a known value"
    raise InvalidEvent(path, f"{rule}: one of {names}")


def _needs(values: Sequence[int], path: str) -> tuple[Need, ...]:
    if len(values) > MAX_REPEATED:  # before any element is read
        raise InvalidEvent(path, f"has more than {MAX_REPEATED} entries")
    needs: list[Need] = []
    for i, value in enumerate(values):
        need = _enum(value, events_pb2.Need.DESCRIPTOR, Need, f"{path}[{i}]")
        if need not in needs:
            needs.append(need)
    return tuple(needs)


def _date(text: str, path: str) -> dt.date | None:
    if not text:
        return None
    try:
        if not DATE.match(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(path, "must be a date YYYY-MM-DD") from None


def _identifier(value: str, pattern: re.Pattern[str], path: str, rule: str) -> None:
    if not pattern.match(value):
        raise InvalidEvent(path, rule)
    if contains_national_id(value):
        raise InvalidEvent(path, "must not contain a national id (fødselsnummer or D-number)")


def event_from_proto(msg: events_pb2.Event) -> EpisodeEvent:
    _identifier(
        msg.event_id, EVENT_ID, "eventId", "is required: 1-128 characters of [A-Za-z0-9._:@/-]"
    )
    _identifier(
        msg.episode_id, EPISODE_ID, "episodeId", "must be '<HER-id digits>:<local episode number>'"
    )
    occurred_at = _timestamp(msg, "occurred_at", "occurredAt")
    if not MUNICIPALITY.match(msg.municipality):
        raise InvalidEvent("municipality", "must be a four-digit kommunenummer")
    division = _enum(msg.division, events_pb2.Division.DESCRIPTOR, Division, "division")
    payload = msg.WhichOneof("payload")
    if payload is None:
        raise InvalidEvent(
            "payload", f"exactly one of {', '.join(sorted(k.value for k in EventKind))} is required"
        )
    kind = _PAYLOAD_KIND[payload]
    base = {
        "event_id": msg.event_id,
        "episode_id": msg.episode_id,
        "occurred_at": occurred_at,
        "municipality": msg.municipality,
        "division": division,
        "kind": kind,
    }
    if kind is EventKind.ADMISSION_NOTIFIED:
        needs = _needs(msg.admission_notified.expected_needs, "admissionNotified.expectedNeeds")
        return EpisodeEvent(**base, needs=needs)  # type: ignore[arg-type]
    if kind is EventKind.DISCHARGE_READY_NOTIFIED:
        body = msg.discharge_ready_notified
        ready_at = _timestamp(body, "ready_at", "dischargeReadyNotified.readyAt")
        if ready_at > occurred_at + MAX_READY_AFTER_NOTICE:
            raise InvalidEvent(
                "dischargeReadyNotified.readyAt", "is more than 31 days after the notice"
            )
        needs = _needs(body.needs, "dischargeReadyNotified.needs")
        return EpisodeEvent(**base, ready_at=ready_at, needs=needs)  # type: ignore[arg-type]
    if kind is EventKind.MUNICIPALITY_ANSWERED:
        body_a = msg.municipality_answered
        expected = _date(body_a.expected_ready_date, "municipalityAnswered.expectedReadyDate")
        return EpisodeEvent(
            **base,  # type: ignore[arg-type]
            can_receive=body_a.can_receive,
            expected_ready_date=expected,
        )
    if kind is EventKind.DISCHARGED:
        destination = _enum(
            msg.discharged.destination,
            events_pb2.Discharged.Destination.DESCRIPTOR,
            Destination,
            "discharged.destination",
        )
        return EpisodeEvent(**base, destination=destination)  # type: ignore[arg-type]
    return EpisodeEvent(**base)  # type: ignore[arg-type]


def event_to_proto(event: EpisodeEvent) -> events_pb2.Event:
    msg = events_pb2.Event(
        event_id=event.event_id,
        episode_id=event.episode_id,
        municipality=event.municipality,
        division=events_pb2.Division.Value(event.division.value),
    )
    msg.occurred_at.FromDatetime(event.occurred_at.astimezone(dt.UTC))
    payload = getattr(msg, _KIND_PAYLOAD[event.kind])
    payload.SetInParent()
    needs = [events_pb2.Need.Value(n.value) for n in event.needs]
    if event.kind is EventKind.ADMISSION_NOTIFIED:
        payload.expected_needs.extend(needs)
    elif event.kind is EventKind.DISCHARGE_READY_NOTIFIED:
        assert event.ready_at is not None
        payload.ready_at.FromDatetime(event.ready_at.astimezone(dt.UTC))
        payload.needs.extend(needs)
    elif event.kind is EventKind.MUNICIPALITY_ANSWERED:
        payload.can_receive = bool(event.can_receive)
        if event.expected_ready_date:
            payload.expected_ready_date = event.expected_ready_date.isoformat()
    elif event.kind is EventKind.DISCHARGED:
        assert event.destination is not None
        payload.destination = events_pb2.Discharged.Destination.Value(event.destination.value)
    return msg


def _load_json(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("$", "is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent("$", f"is not valid JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError):  # e.g. an integer of thousands of digits
        raise InvalidEvent(
            "$", "is not JSON this decoder can read (too large or too deep)"
        ) from None


def _event_from_json_reference(raw: Any) -> EpisodeEvent:
    """Through protobuf: check the mapping, parse into `Event`, validate the message."""
    check_json_mapping(raw, events_pb2.Event.DESCRIPTOR)
    msg = events_pb2.Event()
    try:
        json_format.ParseDict(raw, msg)
    except (json_format.ParseError, ValueError, TypeError, OverflowError):
        raise InvalidEvent(
            "$", "does not follow the proto3 JSON mapping of overgang.v1.Event"
        ) from None
    return event_from_proto(msg)


def _fast_load(text: str | bytes) -> Any:
    """orjson's reading of the line, or None where it declines (invalid UTF-8 or JSON,
    NaN, lone surrogates, depth). Where it reads differently from `json.loads` (integers
    beyond 64 bits become floats) the fast path declines anyway: it accepts no number."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def parse_event_json(text: str | bytes) -> EpisodeEvent:
    """One line of the replay format (proto3 JSON mapping of `Event`), as text or bytes.

    A plain valid line takes the fast path (orjson, then `fast_json`); any other line is
    read again with `json.loads` by the reference decoder, which gives the event or the
    error (the same as `parse_event_json_reference` for every input)."""
    event = event_from_json(_fast_load(text))
    return event if event is not None else _event_from_json_reference(_load_json(text))


def parse_event_json_reference(text: str | bytes) -> EpisodeEvent:
    """The decoder without the fast path: what `parse_event_json` must equal."""
    return _event_from_json_reference(_load_json(text))


def event_to_json(event: EpisodeEvent) -> str:
    return json_format.MessageToJson(event_to_proto(event), indent=None)


def encode_event(event: EpisodeEvent) -> bytes:
    return event_to_proto(event).SerializeToString(deterministic=True)  # type: ignore[no-any-return]


def decode_event(value: bytes | None, content_type: bytes | None = None) -> EpisodeEvent:
    """A Kafka record value: protobuf binary by default, JSON when the header says so."""
    if value is None:
        raise InvalidEvent("$", "record has no value")
    if content_type is not None and content_type.startswith(CONTENT_TYPE_JSON):
        return parse_event_json(value)
    msg = events_pb2.Event()
    try:
        msg.ParseFromString(value)
    except (DecodeError, ValueError, RuntimeError):
        raise InvalidEvent("$", "is not a protobuf overgang.v1.Event") from None
    return event_from_proto(msg)
