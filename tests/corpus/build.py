"""Corpus records (`*.jsonl` beside this module, see README.md) as what each entry point
receives: Kafka key, value and content type, and the raw SubmitHospitalEventRequest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from overgang.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTO
from overgang.kafka import topics
from overgang.v1 import coordination_pb2, events_pb2, pathway_pb2

HERE = Path(__file__).resolve().parent
FILES = ("events.jsonl", "messages.jsonl")
TOPICS = {
    "hospital": topics.HOSPITAL_EVENTS,
    "municipal": topics.MUNICIPAL_EVENTS,
    "pathway-events": topics.PATHWAY_EVENTS,
    "tasks": topics.COORDINATION_TASKS,
    "ticks": topics.CLOCK_TICKS,
}
CONSUMERS = {
    "hospital": ("pathway", "discharge"),
    "municipal": ("pathway", "discharge"),
    "pathway-events": ("coordination",),
    "tasks": ("pathway",),
    "ticks": ("discharge",),
}
MESSAGES: dict[str, tuple[type[Message], bytes]] = {
    "event": (events_pb2.Event, CONTENT_TYPE_PROTO),
    "pathwayEvent": (
        pathway_pb2.PathwayEvent,
        b"application/x-protobuf; messageType=overgang.v1.PathwayEvent",
    ),
    "taskUpdate": (
        coordination_pb2.TaskUpdate,
        b"application/x-protobuf; messageType=overgang.v1.TaskUpdate",
    ),
}
# Every national id of the corpus, as written there (for the leak checks).
_ID = re.compile(r"(?<!\d)\d{6}[ -]?\d{5}(?!\d)")
Slot = tuple[str, str]  # (topic alias, consuming service)


@dataclass(frozen=True)
class Record:
    id: str
    what: str
    value: bytes | None
    content_type: bytes | None
    key: bytes | None
    national_id: str
    grpc: str  # the status code name SubmitHospitalEvent answers with
    outcomes: dict[Slot, str]  # (topic alias, service) -> processed / dead-letter / refused
    pending: dict[Slot, str] = field(default_factory=dict)  # slot -> the change awaited
    event_id: str = ""  # what a consumer records it by (event id, task id)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def grpc_request(record: Record) -> bytes:
    """SubmitHospitalEventRequest{event: <the record's bytes>, national_id}, byte for byte,
    so that what is no Event reaches the service as it is."""
    body = _field(1, record.value) if record.value is not None else b""
    return body + (_field(2, record.national_id.encode()) if record.national_id else b"")


def _set(message: Message, path: str, value: Any) -> None:
    *parents, name = path.split(".")
    for parent in parents:
        message = getattr(message, parent)
    setattr(message, name, value)


def _generated(name: str, message: Message | None) -> bytes:
    if name == "huge-needs":
        assert isinstance(message, events_pb2.Event)
        message.discharge_ready_notified.needs.extend([events_pb2.HOME_NURSING] * 20_000)
        return bytes(message.SerializeToString())
    if name == "pad-4mib":
        assert message is not None
        return bytes(message.SerializeToString()) + _field(99, b"x" * (4 * 1024 * 1024))
    if name == "unknown-field-nid":
        assert message is not None
        return bytes(message.SerializeToString()) + _field(99, b"01019010046")
    if name == "json-huge-number":
        return b'{"division": ' + b"9" * 5000 + b"}"
    if name == "json-deep":
        return b"[" * 2_000 + b"]" * 2_000
    raise ValueError(f"no generator {name!r}")


def _outcomes(spec: dict[str, Any], key: str) -> dict[Slot, str]:
    """`spec[key]` ("expect" or "pending") per slot; every slot for "expect"."""
    given = spec.get(key, {})
    found: dict[Slot, str] = {}
    for alias, services in CONSUMERS.items():
        value = given.get(alias, given.get("*", "dead-letter" if key == "expect" else None))
        for service in services:
            chosen = value.get(service, "dead-letter") if isinstance(value, dict) else value
            if chosen is not None:
                found[(alias, service)] = chosen
    return found


def record(spec: dict[str, Any]) -> Record:
    message: Message | None = None
    content_type: bytes | None = CONTENT_TYPE_PROTO
    shape = next((s for s in MESSAGES if s in spec), None)
    if shape is not None:
        kind, content_type = MESSAGES[shape]
        message = json_format.ParseDict(spec[shape], kind())
        for path, value in spec.get("rawFields", {}).items():
            _set(message, path, value)
    if "generate" in spec:
        value: bytes | None = _generated(spec["generate"], message)
    elif message is not None:
        value = bytes(message.SerializeToString())
    elif "text" in spec:
        value, content_type = spec["text"].encode(), CONTENT_TYPE_JSON
    else:
        value = bytes.fromhex(spec["hex"]) if spec["hex"] is not None else None
    if "text" in spec:
        content_type = CONTENT_TYPE_JSON
    body: Any = spec.get(shape or "", {})
    if shape is None and spec.get("text"):
        try:
            body = json.loads(spec["text"])
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
    task = body.get("task") if isinstance(body.get("task"), dict) else {}
    episode = body.get("episodeId") or task.get("episodeId", "")
    key = spec.get("key", episode)
    expect = spec.get("expect", {})
    return Record(
        id=spec["id"],
        what=spec["what"],
        value=value,
        content_type=content_type,
        key=key.encode() if key else None,
        national_id=spec.get("nationalId", ""),
        grpc=expect.get("grpc", "INVALID_ARGUMENT"),
        outcomes=_outcomes(spec, "expect"),
        pending=_outcomes(spec, "pending"),
        event_id=str(body.get("eventId") or task.get("taskId", "")),
    )


def load(run: str) -> list[Record]:
    """Every record of the corpus, `{run}` replaced by `run`."""
    records = []
    for name in FILES:
        for line in (HERE / name).read_text().splitlines():
            if line.strip():
                records.append(record(json.loads(line.replace("{run}", run))))
    return records


def national_ids() -> set[str]:
    """Every 11-digit run of the corpus (valid or not), as eleven digits."""
    text = "".join((HERE / name).read_text() for name in FILES)
    return {re.sub(r"\D", "", found) for found in _ID.findall(text)} | {"01019010046"}


def written_forms(national_id: str) -> list[str]:
    """How a number may appear in text: as is, ddmmyy nnnnn, ddmmyy-nnnnn."""
    birth, rest = national_id[:6], national_id[6:]
    return [national_id, f"{birth} {rest}", f"{birth}-{rest}"]
