"""The wire forms of an episode event (protobuf binary, proto3 JSON) and their validation.

Everything entering the system passes `event_from_proto`, so gRPC intake, Kafka
consumers and `overgang replay` reject the same things for the same reasons.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from overgang.events import (
    Destination,
    Division,
    EpisodeEvent,
    EventKind,
    Need,
)
from overgang.v1 import events_pb2

EPISODE_ID = re.compile(r"^(\d{1,9}):([A-Za-z0-9._-]{1,64})$")
EVENT_ID = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")
MUNICIPALITY = re.compile(r"^\d{4}$")
CONTENT_TYPE_PROTO = b"application/x-protobuf; messageType=overgang.v1.Event"
CONTENT_TYPE_JSON = b"application/json"

# Proto field name of the oneof payload -> domain kind.
_PAYLOAD_KIND = {
    "admitted": EventKind.ADMITTED,
    "admission_notified": EventKind.ADMISSION_NOTIFIED,
    "discharge_ready_notified": EventKind.DISCHARGE_READY_NOTIFIED,
    "discharge_ready_withdrawn": EventKind.DISCHARGE_READY_WITHDRAWN,
    "municipality_answered": EventKind.MUNICIPALITY_ANSWERED,
    "service_ready": EventKind.SERVICE_READY,
    "discharged": EventKind.DISCHARGED,
    "died": EventKind.DIED,
    "cooperation_meeting_held": EventKind.COOPERATION_MEETING_HELD,
}
_KIND_PAYLOAD = {kind: name for name, kind in _PAYLOAD_KIND.items()}


class InvalidEvent(ValueError):
    """A record that breaks the contract. `field` uses the JSON (camelCase) path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _timestamp(
    msg: events_pb2.Event | events_pb2.DischargeReadyNotified, name: str, path: str
) -> dt.datetime:
    if not msg.HasField(name):  # type: ignore[arg-type]
        raise InvalidEvent(path, "is required (RFC 3339 timestamp with offset)")
    stamp = getattr(msg, name)
    return stamp.ToDatetime(tzinfo=dt.UTC)  # type: ignore[no-any-return]


def _needs(values: Sequence[int], path: str) -> tuple[Need, ...]:
    needs: list[Need] = []
    for i, value in enumerate(values):
        if value == events_pb2.NEED_UNSPECIFIED:
            raise InvalidEvent(f"{path}[{i}]", "is unspecified")
        need = Need(events_pb2.Need.Name(value))  # type: ignore[arg-type]
        if need not in needs:
            needs.append(need)
    return tuple(needs)


def event_from_proto(msg: events_pb2.Event) -> EpisodeEvent:
    if not EVENT_ID.match(msg.event_id):
        raise InvalidEvent("eventId", "is required: 1-128 characters of [A-Za-z0-9._:@/-]")
    if not EPISODE_ID.match(msg.episode_id):
        raise InvalidEvent("episodeId", "must be '<HER-id digits>:<local episode number>'")
    occurred_at = _timestamp(msg, "occurred_at", "occurredAt")
    if not MUNICIPALITY.match(msg.municipality):
        raise InvalidEvent("municipality", "must be a four-digit kommunenummer")
    if msg.division == events_pb2.DIVISION_UNSPECIFIED:
        raise InvalidEvent("division", "must be SOMATIC, MENTAL_HEALTH or SUBSTANCE_USE")
    division = Division(events_pb2.Division.Name(msg.division))
    payload = msg.WhichOneof("payload")
    if payload is None:
        raise InvalidEvent(
            "payload", f"exactly one of {', '.join(sorted(_json_names()))} is required"
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
        if ready_at > occurred_at + dt.timedelta(days=31):
            raise InvalidEvent(
                "dischargeReadyNotified.readyAt", "is more than 31 days after the notice"
            )
        needs = _needs(body.needs, "dischargeReadyNotified.needs")
        return EpisodeEvent(**base, ready_at=ready_at, needs=needs)  # type: ignore[arg-type]
    if kind is EventKind.MUNICIPALITY_ANSWERED:
        body_a = msg.municipality_answered
        expected: dt.date | None = None
        if body_a.expected_ready_date:
            try:
                expected = dt.date.fromisoformat(body_a.expected_ready_date)
            except ValueError:
                raise InvalidEvent(
                    "municipalityAnswered.expectedReadyDate", "must be a date YYYY-MM-DD"
                ) from None
            if len(body_a.expected_ready_date) != 10:
                raise InvalidEvent(
                    "municipalityAnswered.expectedReadyDate", "must be a date YYYY-MM-DD"
                )
        return EpisodeEvent(
            **base,  # type: ignore[arg-type]
            can_receive=body_a.can_receive,
            expected_ready_date=expected,
        )
    if kind is EventKind.DISCHARGED:
        value = msg.discharged.destination
        if value == events_pb2.Discharged.DESTINATION_UNSPECIFIED:
            raise InvalidEvent("discharged.destination", "is required")
        destination = Destination(events_pb2.Discharged.Destination.Name(value))
        return EpisodeEvent(**base, destination=destination)  # type: ignore[arg-type]
    return EpisodeEvent(**base)  # type: ignore[arg-type]


def _json_names() -> list[str]:
    descriptor = events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"]
    return [field.json_name for field in descriptor.fields]


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


def parse_event_json(text: str) -> EpisodeEvent:
    """One line of the replay format (proto3 JSON mapping of `Event`)."""
    msg = events_pb2.Event()
    try:
        json_format.Parse(text, msg)
    except json_format.ParseError as exc:
        raise InvalidEvent("$", f"not a valid event: {exc}") from None
    return event_from_proto(msg)


def event_to_json(event: EpisodeEvent) -> str:
    return json_format.MessageToJson(event_to_proto(event), indent=None)


def encode_event(event: EpisodeEvent) -> bytes:
    return event_to_proto(event).SerializeToString(deterministic=True)  # type: ignore[no-any-return]


def decode_event(value: bytes | None, content_type: bytes | None = None) -> EpisodeEvent:
    """A Kafka record value: protobuf binary by default, JSON when the header says so."""
    if value is None:
        raise InvalidEvent("$", "record has no value")
    if content_type is not None and content_type.startswith(CONTENT_TYPE_JSON):
        try:
            return parse_event_json(value.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidEvent("$", "JSON record is not UTF-8") from None
    msg = events_pb2.Event()
    try:
        msg.ParseFromString(value)
    except DecodeError as exc:
        raise InvalidEvent("$", f"not a protobuf overgang.v1.Event: {exc}") from None
    return event_from_proto(msg)
