"""Records that cannot be decoded or break a rule go to the dead-letter topic, unchanged,
with the reason and their origin in headers, so nothing is lost and nothing crashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter(
    *,
    reason: str,
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    service: str,
    original_headers: Headers | None = None,
) -> DeadLetter:
    headers: Headers = [
        ("dlq.reason", reason.encode("utf-8")[:1000]),
        ("dlq.source.topic", source_topic.encode()),
        ("dlq.source.partition", str(partition).encode()),
        ("dlq.source.offset", str(offset).encode()),
        ("dlq.service", service.encode()),
    ]
    headers.extend(original_headers or [])
    return DeadLetter(key=key, value=value, headers=headers)


class ConsumedRecord(Protocol):
    """What aiokafka's ConsumerRecord and Faust's Message both have."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_for(
    record: ConsumedRecord, reason: str, service: str, original_headers: Headers
) -> DeadLetter:
    return dead_letter(
        reason=reason,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        service=service,
        original_headers=original_headers,
    )


def reason_of(headers: Headers) -> str | None:
    for name, value in headers:
        if name == "dlq.reason":
            return value.decode("utf-8", "replace")
    return None
