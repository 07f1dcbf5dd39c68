"""The audit trail on Kafka: `KafkaAuditSink` writes `overgang.audit.v1` (one JSON
`AuditRecord` per record, keyed by the caller's identity), `read_audit` reads it back for
`overgang audit`.

`record()` only appends to a bounded in-memory queue and wakes the sender, so a call is
never slowed or failed by its audit record. The sender publishes in batches; while Kafka
is away it keeps the batch and retries, and when the queue is full the oldest records go
(counted, and logged as an error), since blocking the RPCs would be worse.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition

from overgang.audit import AUDIT_TOPIC, Audit, AuditRecord, MemoryAuditSink
from overgang.config import Settings
from overgang.kafka.security import aiokafka_security, kafka_python_security
from overgang.logging import get_logger

log = get_logger(__name__)


class KafkaAuditSink:
    def __init__(
        self,
        settings: Settings,
        *,
        max_queued: int = 10_000,
        batch: int = 500,
        retry_seconds: float = 2.0,
        producer: Any = None,
    ) -> None:
        """`producer`: an AIOKafkaProducer-like object (tests); default one from the
        settings' bootstrap and TLS/SASL options."""
        self.settings = settings
        self.batch = batch
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._queue: collections.deque[AuditRecord] = collections.deque(maxlen=max_queued)
        self._producer = producer
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending: asyncio.Lock | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(self, entry: AuditRecord) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit.dropped", dropped=self.dropped, queued=len(self._queue))
        self._queue.append(entry)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                acks="all",
                linger_ms=20,
                **aiokafka_security(self.settings),
            )
        await self._producer.start()
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._wake.set()  # what was recorded before start
        self._sending = asyncio.Lock()
        self._task = asyncio.create_task(self._run(), name="audit-sink")

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most `timeout` seconds), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain(), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._queue:
            log.error("audit.not_sent", records=len(self._queue))
        if self._producer is not None:
            await self._producer.stop()

    async def _drain(self) -> None:
        assert self._sending is not None
        async with self._sending:  # stop() waits for the batch in flight
            while self._queue:
                await self._send_batch()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: the batch was put back; retry later
                log.warning("audit.publish_failed", error=repr(exc), queued=len(self._queue))
                await asyncio.sleep(self.retry_seconds)
                self._wake.set()

    async def _send_batch(self) -> None:
        taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
        try:
            futures = [
                await self._producer.send(
                    AUDIT_TOPIC, value=entry.to_json(), key=entry.identity.encode()
                )
                for entry in taken
            ]
            await asyncio.gather(*futures)
        except BaseException:
            # Back to the front, in order (a full queue drops the newest of them).
            space = (self._queue.maxlen or len(taken)) - len(self._queue)
            self._queue.extendleft(reversed(taken[: max(space, 0)]))
            raise


def read_audit(
    settings: Settings, since: dt.datetime | None = None, timeout_ms: int = 10_000
) -> Iterator[AuditRecord]:
    """Every record of the audit topic written at or after `since` (all: None), partition
    by partition up to the end offsets at the start of the call."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=timeout_ms,
        **kafka_python_security(settings),
    )
    try:
        partitions = consumer.partitions_for_topic(AUDIT_TOPIC) or set()
        assigned = [TopicPartition(AUDIT_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        starts = consumer.beginning_offsets(assigned)
        if since is not None:
            found = consumer.offsets_for_times(
                {tp: int(since.timestamp() * 1000) for tp in assigned}
            )
            starts = {tp: (hit.offset if hit else ends[tp]) for tp, hit in found.items()}
        for tp in assigned:
            consumer.seek(tp, starts[tp])
        remaining = {tp for tp in assigned if starts[tp] < ends[tp]}
        while remaining:
            polled = consumer.poll(timeout_ms=timeout_ms)
            if not polled:
                raise TimeoutError("the audit topic did not answer in time")
            for tp, records in polled.items():
                for message in records:
                    if message.offset >= ends[tp]:
                        continue
                    try:
                        yield AuditRecord.from_json(message.value)
                    except ValueError:
                        log.warning(
                            "audit.unreadable", partition=tp.partition, offset=message.offset
                        )
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


class AuditTrail:
    """A service's audit trail as its runtime starts and stops it: on Kafka when the
    service runs with Kafka, in memory otherwise (in-process tests)."""

    def __init__(self, service: str, settings: Settings, clock: Any, *, kafka: bool = True) -> None:
        self._kafka_sink = KafkaAuditSink(settings) if kafka else None
        sink = self._kafka_sink if self._kafka_sink is not None else MemoryAuditSink()
        self.audit = Audit(service, sink, clock=clock)

    async def start(self) -> None:
        if self._kafka_sink is not None:
            await self._kafka_sink.start()

    async def stop(self) -> None:
        if self._kafka_sink is not None:
            await self._kafka_sink.stop()
