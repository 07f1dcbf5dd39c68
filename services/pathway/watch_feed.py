"""WatchPathways across replicas: every pathway replica reads the whole
`overgang.pathway-events.v1` topic (no consumer group: all partitions, from the end when
it starts) and hands each PathwayEvent to its own watchers, so a watcher sees the
changes every replica makes, once each, in each episode's order."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import DecodeError

from overgang.config import Settings
from overgang.kafka.security import aiokafka_security
from overgang.kafka.topics import PATHWAY_EVENTS, partition_counts
from overgang.logging import get_logger
from overgang.retry import FIRST_DELAY_S, MAX_DELAY_S, is_transient
from overgang.v1 import pathway_pb2
from pathway.watch import Broadcaster

log = get_logger(__name__)


class WatchFeed:
    def __init__(self, settings: Settings, broadcaster: Broadcaster) -> None:
        self.settings = settings
        self.broadcaster = broadcaster
        self._consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()  # positioned at the end of every partition

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **aiokafka_security(self.settings),
        )
        await self._consumer.start()
        counts = await asyncio.to_thread(partition_counts, self.settings, [PATHWAY_EVENTS])
        if not counts.get(PATHWAY_EVENTS):
            raise RuntimeError(f"{PATHWAY_EVENTS} has no partitions: is the topic created?")
        tps = [TopicPartition(PATHWAY_EVENTS, p) for p in range(counts[PATHWAY_EVENTS])]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end now: what is published after start() is seen
            await self._consumer.position(tp)
        self.ready.set()

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def run(self) -> None:
        assert self._consumer is not None, "start() first"
        delay = FIRST_DELAY_S
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("pathway.watch_feed_retry", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            delay = FIRST_DELAY_S
            for records in batches.values():
                self.broadcaster.publish(self._decoded(records))

    @staticmethod
    def _decoded(records: list[object]) -> list[pathway_pb2.PathwayEvent]:
        events = []
        for record in records:
            event = pathway_pb2.PathwayEvent()
            try:
                event.ParseFromString(getattr(record, "value", None) or b"")
            except DecodeError:
                continue  # not ours to judge: watchers only get what decodes
            events.append(event)
        return events
