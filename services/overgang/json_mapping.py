"""The proto3 JSON mapping of a message, checked before protobuf parses it, so that
every error of the reference JSON decoder names a field and a rule (protobuf's own
messages quote the offending value, which may be a national id)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from overgang.event_rules import MAX_REPEATED, RFC3339, InvalidEvent
from overgang.national_ids import contains_national_id

# A field name that may be echoed in an error (never digits only, never a national id).
_ECHOABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}", re.ASCII)


def check_json_mapping(value: Any, descriptor: Descriptor) -> None:
    """`value` (a decoded JSON document) follows the proto3 JSON mapping of `descriptor`;
    otherwise `InvalidEvent` naming the first field that does not."""
    _check_object(value, descriptor, "")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@functools.cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by JSON name and by proto name (proto3 JSON accepts both)."""
    return {f.json_name: f for f in descriptor.fields} | {f.name: f for f in descriptor.fields}


def _check_object(value: Any, descriptor: Descriptor, path: str) -> None:
    """`value` follows the proto3 JSON mapping of `descriptor`, checked before protobuf
    parses it, so that every error names a field and a rule (protobuf's own messages
    quote the offending value)."""
    if not isinstance(value, dict):
        raise InvalidEvent(path or "$", "must be a JSON object")
    fields = _fields(descriptor)
    present: set[str] = set()
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if _ECHOABLE_NAME.fullmatch(key) and not contains_national_id(key):
                raise InvalidEvent(_join(path, key), f"is not a field of {descriptor.name}")
            raise InvalidEvent(path or "$", f"has a key that is not a field of {descriptor.name}")
        where = _join(path, field.json_name)
        if item is None:
            continue  # proto3 JSON: null is the default value
        if field.name in present:
            raise InvalidEvent(where, "is given twice")
        present.add(field.name)
        if field.is_repeated:
            if not isinstance(item, list):
                raise InvalidEvent(where, "must be a list")
            if len(item) > MAX_REPEATED:  # before any element is read
                raise InvalidEvent(where, f"has more than {MAX_REPEATED} entries")
            for i, element in enumerate(item):
                _check_value(element, field, f"{where}[{i}]")
        else:
            _check_value(item, field, where)
    for oneof in descriptor.oneofs:
        chosen = [f for f in oneof.fields if f.name in present]
        if len(chosen) > 1:
            names = ", ".join(f.json_name for f in chosen)
            raise InvalidEvent(_join(path, oneof.name), f"exactly one is allowed, got {names}")


def _check_value(item: Any, field: FieldDescriptor, path: str) -> None:
    if field.message_type is Timestamp.DESCRIPTOR:
        match = RFC3339.fullmatch(item) if isinstance(item, str) else None
        try:
            if match is None:
                raise ValueError
            dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            raise InvalidEvent(
                path, "must be an RFC 3339 timestamp with offset, e.g. 2024-03-04T10:00:00+01:00"
            ) from None
    elif field.message_type is not None:
        _check_object(item, field.message_type, path)
    elif field.enum_type is not None:
        values = field.enum_type.values_by_name
        known = isinstance(item, str) and item in values
        if not known and not (type(item) is int and item in field.enum_type.values_by_number):
            names = ", ".join(n for n, v in values.items() if v.number != 0)
            raise InvalidEvent(path, f"must be one of {names}")
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(item, bool):
            raise InvalidEvent(path, "must be true or false")
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(item, str):
            raise InvalidEvent(path, "must be a string")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEvent(path, "is not valid Unicode text") from None
    else:  # pragma: no cover - Event has no other field types
        raise InvalidEvent(path, "has a type this decoder does not read")
