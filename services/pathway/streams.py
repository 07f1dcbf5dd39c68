"""The Kafka wiring of the pathway service, kept thin: one aiokafka consumer of hospital
events, municipal events and coordination task updates, handed record by record to
`PathwayWorker`, and a producer for dead letters.

Offsets are committed only after the records' SQL transactions committed (or their dead
letters were acknowledged), so a crash re-delivers and the redelivery is a no-op. The
loop never stops on bad input or a bug (the worker dead-letters the record with the
reason and the loop moves on); a record that fails with an infrastructure error
(database down, Kafka) is sought back to and read again after a backoff that grows as
`overgang.retry`'s does, and so are the records after it in its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from overgang.config import Settings
from overgang.kafka.records import ConsumedRecord, Headers
from overgang.kafka.security import aiokafka_security
from overgang.kafka.topics import COORDINATION_TASKS, DEAD_LETTER, HOSPITAL_EVENTS, MUNICIPAL_EVENTS
from overgang.logging import get_logger
from overgang.metrics import process_metrics
from overgang.metrics_watch import aiokafka_lags
from overgang.retry import FIRST_DELAY_S, MAX_DELAY_S
from pathway.worker import SERVICE, PathwayWorker

log = get_logger(__name__)

GROUP_ID = "overgang-pathway"
TOPICS = (HOSPITAL_EVENTS, MUNICIPAL_EVENTS, COORDINATION_TASKS)
RETRY_SECONDS = 2.0  # after a failed poll or commit (e.g. during a rebalance)


class PathwayStreams:
    def __init__(
        self,
        settings: Settings,
        worker: PathwayWorker,
        *,
        group_id: str = GROUP_ID,
        auto_offset_reset: str = "earliest",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self._sleep = sleep  # the backoff's (tests pass a fast one)
        self._delay = FIRST_DELAY_S  # before reading a failed record again; grows
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()  # set once partitions are assigned

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            **aiokafka_security(self.settings),
        )
        try:
            await producer.start()
        except Exception:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        return producer

    async def start(self) -> None:
        await self._start_producer()
        self._consumer = AIOKafkaConsumer(
            *TOPICS,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
            isolation_level="read_committed",
            **aiokafka_security(self.settings),
        )
        await self._consumer.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def run(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "start() first"
        while True:
            try:
                await self._poll_once(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. a commit refused during a rebalance: re-read
                log.error("pathway.consumer_error", error=repr(exc))
                await self._sleep(RETRY_SECONDS)

    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=200)
        if consumer.assignment():
            self.ready.set()
        metrics = process_metrics()
        for tp, records in batches.items():
            done: int | None = None
            for record in records:
                metrics.record_in(SERVICE, record.topic)
                try:
                    await self.worker.handle(record, self.send_dead_letter)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # database down etc.: read it again later
                    consumer.seek(tp, record.offset)
                    await self._back_off(record, exc)
                    break
                metrics.record_processed(SERVICE, record.topic)
                self._delay = FIRST_DELAY_S
                done = record.offset + 1
            if done is not None:
                # Only after the records' SQL transactions committed.
                await consumer.commit({TopicPartition(tp.topic, tp.partition): done})
        metrics.consumer_lags(SERVICE, await aiokafka_lags(consumer))

    async def _back_off(self, record: ConsumedRecord, exc: Exception) -> None:
        """Only infrastructure errors reach the loop (the worker dead-letters the rest)."""
        log.warning(
            "pathway.record_retry",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            delay_s=self._delay,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
        await self._sleep(self._delay)
        self._delay = min(self._delay * 2, MAX_DELAY_S)

    async def send_dead_letter(
        self, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        producer = self._producer or await self._start_producer()
        try:
            await producer.send_and_wait(DEAD_LETTER, value=value, key=key, headers=headers)
        except Exception:
            # An idempotent producer whose send failed (broker gone) can stay out of
            # sequence with the broker for good (OutOfOrderSequenceNumber on every later
            # send, aiokafka #1017): the retry gets a new one.
            self._producer = None
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
