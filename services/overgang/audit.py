"""The audit trail: who read which patient's data, and which calls were refused.

Reads of a pathway, task streams, liability reads and every refused call (unauthenticated
or out of scope) become an `AuditRecord`: the caller's identity and role, the peer
address, the service and RPC, the episode id(s) or the query, the outcome and the time.
Records go to a sink of their own, not to the log, so `LOG_LEVEL=WARNING` keeps them:
`overgang.kafka.audit_sink.KafkaAuditSink` (topic `overgang.audit.v1`, read by ops with
`overgang audit`), `MemoryAuditSink` in tests, and `LogAuditSink` (log lines at WARNING)
where a service was given no sink. Recording never blocks and never fails the call.

`audited_rpc` wraps each servicer method: it names the RPC for the records, and turns an
unexpected exception into INTERNAL with a reference instead of grpc's default, which
sends the exception text (a database error quoting a national id) to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import functools
import inspect
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

import grpc

# The record itself lives apart (no gRPC, Kafka or SQL there); re-exported for callers.
from overgang.audit_record import AUDIT_TOPIC as AUDIT_TOPIC
from overgang.audit_record import OK as OK
from overgang.audit_record import REFUSED as REFUSED
from overgang.audit_record import AuditRecord as AuditRecord
from overgang.grpc.roles import Caller
from overgang.logging import get_logger, redact, redact_text
from overgang.retry import is_transient

log = get_logger(__name__)

_RPC: contextvars.ContextVar[str] = contextvars.ContextVar("overgang_audit_rpc", default="")
F = TypeVar("F", bound=Callable[..., Any])


class AuditSink(Protocol):
    def record(self, entry: AuditRecord) -> None:
        """Take the record; never blocks, never raises."""


class MemoryAuditSink:
    """Keeps the records (tests, and services run without Kafka)."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def record(self, entry: AuditRecord) -> None:
        self.records.append(entry)


class LogAuditSink:
    """The fallback of a service given no sink: one log line per record at WARNING."""

    def record(self, entry: AuditRecord) -> None:
        log.warning("audit", **asdict(entry))


def peer_of(context: Any) -> str:
    try:
        return str(context.peer())
    except Exception:
        return "unknown"


class Audit:
    """The audit trail of one service: builds the records and hands them to the sink."""

    def __init__(
        self,
        service: str,
        sink: AuditSink | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.service = service
        self.sink: AuditSink = sink if sink is not None else LogAuditSink()
        self.clock = clock

    def read(
        self,
        context: Any,
        caller: Caller,
        *,
        episode_id: str = "",
        episode_ids: Sequence[str] = (),
        query: Mapping[str, object] | None = None,
        detail: str = "",
    ) -> None:
        """A read of patient data was answered (a list or stream: the episodes it gave)."""
        self._record(context, caller, OK, episode_id, episode_ids, query, detail)

    def shown(
        self,
        context: Any,
        caller: Caller,
        episode_ids: Iterable[str],
        query: Mapping[str, object] | None = None,
    ) -> None:
        """A stream sent data of these episodes (an empty batch is no record)."""
        if ids := sorted(set(episode_ids)):
            self.read(context, caller, episode_ids=ids, query=query)

    def refused(
        self,
        context: Any,
        caller: Caller | None,
        detail: str,
        *,
        episode_id: str = "",
    ) -> None:
        """A call ends UNAUTHENTICATED (no caller) or PERMISSION_DENIED."""
        self._record(context, caller, REFUSED, episode_id, (), None, detail)

    def _record(
        self,
        context: Any,
        caller: Caller | None,
        outcome: str,
        episode_id: str,
        episode_ids: Sequence[str],
        query: Mapping[str, object] | None,
        detail: str,
    ) -> None:
        try:
            entry = AuditRecord(
                at=self.clock().astimezone(dt.UTC).isoformat(),
                service=self.service,
                rpc=_RPC.get(),
                identity=caller.identity if caller else "",
                role=str(caller.role) if caller else "",
                peer=peer_of(context),
                outcome=outcome,
                episode_id=redact_text(episode_id),
                episode_ids=tuple(redact_text(e) for e in episode_ids),
                query={k: str(redact(v)) for k, v in (query or {}).items() if v not in ("", 0)},
                detail=redact_text(detail),
            )
            self.sink.record(entry)
        except Exception as exc:  # the audit must never fail the call it records
            log.error("audit.record_failed", error=repr(exc))


def current_rpc() -> str:
    return _RPC.get()


async def _internal_error(context: Any, name: str, exc: Exception) -> None:
    reference = uuid.uuid4().hex[:12]
    if is_transient(exc):  # a database or Kafka outage: the client should retry
        log.warning("grpc.unavailable", rpc=name, reference=reference, error=repr(exc))
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, f"temporarily unavailable, retry ({reference})"
        )
    log.error("grpc.internal_error", rpc=name, reference=reference, error=repr(exc))
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error; the service logged it as {reference}"
    )


def audited_rpc(method: F) -> F:
    """For a servicer method (unary or server-streaming): names the RPC in audit records,
    and ends an unexpected exception as INTERNAL with a reference (details in the log)."""
    name = method.__name__
    passing = (grpc.aio.AbortError, asyncio.CancelledError)

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> Any:
            _RPC.set(name)
            try:
                async with contextlib.aclosing(method(self, request, context)) as items:
                    async for item in items:
                        yield item
            except passing:
                raise
            except Exception as exc:
                await _internal_error(context, name, exc)

        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        _RPC.set(name)
        try:
            return await method(self, request, context)
        except passing:
            raise
        except Exception as exc:
            await _internal_error(context, name, exc)

    return unary  # type: ignore[return-value]
