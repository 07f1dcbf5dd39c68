"""Consumed Kafka records as every service reads them: their headers, and the dead letter
for one that cannot be decoded or breaks a rule. A dead letter keeps the record unchanged
and adds the reason and its origin in headers, so nothing is lost and nothing crashes.
Each dead letter is counted in the process's metrics by its reason class (a short fixed
label, never the reason's text: `overgang_records_dead_lettered_total`)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from overgang.logging import redact_text
from overgang.metrics import REASON_CLASSES, process_metrics

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
    timestamp: float | None = None  # seconds since the epoch, as Faust gives it


def written_at(record: Any) -> dt.datetime | None:
    """When the record was written to Kafka (aiokafka: ms, Faust: s), if the client says."""
    stamp = getattr(record, "timestamp", None)
    if not isinstance(stamp, int | float) or stamp <= 0:
        return None
    seconds = stamp / 1000 if stamp > 10**11 else stamp
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def judged_now(record: Any, now: dt.datetime) -> dt.datetime:
    """The "now" a consumer judges a record's event times against: when it was written,
    so a replay of old history is judged as it was then, never later than the clock."""
    written = written_at(record)
    return min(now, written) if written is not None else now


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


# Reason texts of the services' dead letters -> class, first match wins; see reason_class.
_REASON_PATTERNS = (
    ("processing", re.compile(r"^processing failed\b")),
    ("key", re.compile(r"^key: |record key|partitions? .* key|keyed? by", re.IGNORECASE)),
    ("topic", re.compile(r"belongs on |is an? (hospital|municipal) event, not ")),
    ("rule", re.compile(r"not served by|^eventId |dated after|unknown due rule|^rule\b")),
    ("decode", re.compile(r"^not an? |^[$A-Za-z][\w.$\[\]]*: |^[a-z][\w.\[\]]* (is|must|or) ")),
)


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason, one of REASON_CLASSES: `decode` (the record is
    not a valid message), `key` (wrong record key or partition), `topic` (a valid
    message on the wrong topic), `rule` (valid, but breaks a rule of the service),
    `processing` (a bug hit while applying it), `other`."""
    for name, pattern in _REASON_PATTERNS:
        if pattern.search(reason):
            return name
    return "other"


# Sends one record to the dead-letter topic and returns once the broker (or the outbox
# transaction) has it: (key, value, headers) -> None.
DeadLetterSink = Callable[[bytes | None, bytes | None, Headers], Awaitable[None]]


async def send_dead_letter(
    sink: DeadLetterSink,
    record: ConsumedRecord,
    reason: str,
    service: str,
    log: Any,
    *,
    kind: str | None = None,
) -> None:
    """The one way every service dead-letters a consumed record. `kind`: the reason
    class (REASON_CLASSES), when the caller knows it; default: `reason_class(reason)`.
    Counted once the sink has the record."""
    reason = scrub_reason(reason)
    kind = kind if kind in REASON_CLASSES else reason_class(reason)
    letter = dead_letter_for(record, reason, service)
    await sink(letter.key, letter.value, letter.headers)
    process_metrics().dead_lettered(service, record.topic, kind)
    log.warning(
        "record.dead_lettered",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=reason,
        reason_class=kind,
    )


def processing_failed(exc: BaseException) -> str:
    """The dead-letter reason of a record whose handling hit a bug (not a transient error)."""
    return f"processing failed: {type(exc).__name__}: {exc}"


def reason_of(headers: Headers) -> str | None:
    value = header(headers, REASON)
    return value.decode("utf-8", "replace") if value is not None else None
