"""Consumed Kafka records as every service reads them: their headers, and the dead letter
for one that cannot be decoded or breaks a rule. A dead letter keeps the record unchanged
and adds the reason and its origin in headers, so nothing is lost and nothing crashes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from overgang.logging import redact_text

Headers = list[tuple[str, bytes]]
REASON = "dlq.reason"
CONTENT_TYPE = "content-type"


def headers_of(raw: Mapping[Any, Any] | Sequence[tuple[Any, Any]] | None) -> Headers:
    """aiokafka gives a sequence of pairs, Faust a sequence or a mapping; values may be None."""
    if not raw:
        return []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


def header(headers: Headers, name: str) -> bytes | None:
    """The first header of that name, case-insensitively."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def content_type(headers: Headers) -> bytes | None:
    return header(headers, CONTENT_TYPE)


class ConsumedRecord(Protocol):
    """What aiokafka's ConsumerRecord, Faust's Message and `Consumed` all have (read-only)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Any: ...


@dataclass(frozen=True)
class Consumed:
    """A consumed record detached from the client that read it (tests, replays)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any = ()


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: Headers


def scrub_reason(reason: str) -> str:
    """A dead-letter reason as it may be stored and logged: national ids replaced (an
    error text can quote the value it refused), at most 1000 characters."""
    return redact_text(reason)[:1000]


def dead_letter_for(record: ConsumedRecord, reason: str, service: str) -> DeadLetter:
    headers: Headers = [
        (REASON, scrub_reason(reason).encode("utf-8")[:1000]),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.service", service.encode()),
    ]
    headers.extend(headers_of(record.headers))
    return DeadLetter(key=record.key, value=record.value, headers=headers)


# Sends one record to the dead-letter topic and returns once the broker (or the outbox
# transaction) has it: (key, value, headers) -> None.
DeadLetterSink = Callable[[bytes | None, bytes | None, Headers], Awaitable[None]]


async def send_dead_letter(
    sink: DeadLetterSink, record: ConsumedRecord, reason: str, service: str, log: Any
) -> None:
    """The one way every service dead-letters a consumed record."""
    reason = scrub_reason(reason)
    letter = dead_letter_for(record, reason, service)
    await sink(letter.key, letter.value, letter.headers)
    log.warning(
        "record.dead_lettered",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason,
    )


def reason_of(headers: Headers) -> str | None:
    value = header(headers, REASON)
    return value.decode("utf-8", "replace") if value is not None else None
