"""WatchPathways across replicas: every pathway replica reads the whole
`overgang.pathway-events.v1` topic (no consumer group: all partitions, from the end when
it starts) and hands each PathwayEvent to its own watchers, so a watcher sees the
changes every replica makes, once each, in each episode's order.

Once each needs the feed's help: the outbox relay publishes at least once, and every
replica runs one over the shared outbox, so two relays can both send a row before either
marks it published (and a relay re-sends its batch after a failed pass). The topic can
then hold a PathwayEvent twice; the feed hands on the first copy of an event id only."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

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

# A repeat follows its first copy within a relay pass or two (200 rows a pass per
# replica), so this many ids are ample; at roughly 200 bytes an id, a few MB.
RECENT_EVENT_IDS = 20_000


class RecentIds:
    """The last `size` event ids seen; the oldest is forgotten first (bounded memory)."""

    def __init__(self, size: int = RECENT_EVENT_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first(self, event_id: str) -> bool:
        """True unless `event_id` is among the last `size` ids seen."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class WatchFeed:
    def __init__(self, settings: Settings, broadcaster: Broadcaster) -> None:
        self.settings = settings
        self.broadcaster = broadcaster
        self._consumer: AIOKafkaConsumer | None = None
        self._delivered = RecentIds()  # why: the module's docstring (at-least-once relay)
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
                events = self._decoded(records)
                self.broadcaster.publish([e for e in events if self._delivered.first(e.event_id)])

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
