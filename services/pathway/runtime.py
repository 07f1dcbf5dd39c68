"""Wiring of the pathway service: database + migrations, topics, gRPC server, Kafka
consumer and outbox relay, with an orderly start and a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from sqlmodel import col

from overgang.config import Settings, load_settings, wall_clock
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.kafka.audit_sink import AuditTrail
from overgang.kafka.topics import ensure_topics
from overgang.logging import get_logger
from overgang.metrics_watch import ServiceMetrics, count_by
from overgang.plausibility import load_windows
from overgang.shutdown import bounded
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.sql.outbox import OutboxRelay
from overgang.v1 import pathway_pb2_grpc
from pathway.domain.pseudonym import load_keys
from pathway.grpc_api import SERVICE_NAME, PathwayServicer
from pathway.models import PathwayRow
from pathway.municipalities import load_municipalities
from pathway.store import PathwayStore
from pathway.streams import GROUP_ID, PathwayStreams
from pathway.watch import Broadcaster
from pathway.watch_feed import WatchFeed
from pathway.worker import SERVICE, PathwayWorker

log = get_logger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


class PathwayRuntime:
    """`kafka=False` runs gRPC + SQL only (no topics, consumer or relay): for tests."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        grpc_address: str | None = None,
        kafka: bool = True,
        group_id: str = GROUP_ID,
        auto_offset_reset: str = "earliest",
        municipalities: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.grpc_address = grpc_address or self.settings.pathway_grpc
        self.kafka = kafka
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self.municipalities = dict(municipalities or load_municipalities())
        self.broadcaster = Broadcaster(fed=kafka)
        self.watch_feed: WatchFeed | None = None
        self.engine = make_engine(self.settings.database_url)
        # No dev key beyond loopback: a real, versioned key from OVERGANG_PSEUDONYM_KEY_FILE.
        self.store = PathwayStore(self.engine, load_keys(self.settings, self.grpc_address))
        self.worker = PathwayWorker(
            self.store,
            self.municipalities,
            self.broadcaster,
            on_commit=self._notify,
            clock=wall_clock(self.settings),
            windows=load_windows(self.settings.plausibility_file or None),
        )
        self.relay: OutboxRelay | None = None
        self.streams: PathwayStreams | None = None
        self.server: GrpcServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        # Set when a background loop (consumer, relay) dies: the process should exit.
        self.failed = asyncio.Event()
        self.metrics = ServiceMetrics(SERVICE)
        self.audit_trail = AuditTrail(
            SERVICE, self.settings, wall_clock(self.settings), kafka=self.kafka
        )

    @property
    def port(self) -> int:
        assert self.server is not None, "start() first"
        return int(self.server.port)

    def _notify(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)

        def finished(done: asyncio.Task[Any]) -> None:
            if not done.cancelled():
                log.error("pathway.background_task_died", task=name, error=repr(done.exception()))
                self.failed.set()

        task.add_done_callback(finished)
        self._tasks.append(task)

    def _stages(self) -> dict[str, int]:
        return {stage: n for (stage,), n in count_by(self.engine, col(PathwayRow.stage)).items()}

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.engine, MIGRATIONS)
        self.metrics.watch_outbox(self.engine)
        self.metrics.watch_pathways(self._stages)
        self.metrics.serve(self.settings.pathway_metrics)
        await self.audit_trail.start()
        auth = Authenticator.from_settings(self.settings, audit=self.audit_trail.audit)
        if self.kafka:
            created = await asyncio.to_thread(ensure_topics, self.settings)
            log.info("kafka.topics", created=created)
            self.relay = OutboxRelay(
                self.engine, self.settings.kafka_bootstrap, settings=self.settings
            )
            await self.relay.start()
            self._spawn(self.relay.run(), "outbox-relay")
            self.streams = PathwayStreams(
                self.settings,
                self.worker,
                group_id=self.group_id,
                auto_offset_reset=self.auto_offset_reset,
            )
            await self.streams.start()
            self._spawn(self.streams.run(), "pathway-consumer")
            self.watch_feed = WatchFeed(self.settings, self.broadcaster)
            await self.watch_feed.start()
            self._spawn(self.watch_feed.run(), "pathway-watch-feed")
        servicer = PathwayServicer(
            self.store,
            auth,
            self.municipalities,
            self.broadcaster,
            on_commit=self._notify,
            clock=wall_clock(self.settings),
            audit=self.audit_trail.audit,
            windows=load_windows(self.settings.plausibility_file or None),
        )

        def register(server: grpc.aio.Server) -> None:
            pathway_pb2_grpc.add_PathwayServiceServicer_to_server(servicer, server)

        self.server = GrpcServer(self.grpc_address, [SERVICE_NAME], register, self.settings)
        await self.server.start()
        log.info("pathway.started", port=self.server.port, kafka=self.kafka)

    async def stop(self, grace: float = 5.0) -> None:
        self.broadcaster.close()
        if self.server is not None:
            await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.streams is not None:
            await bounded(self.streams.stop(), "consumer", log)
        if self.watch_feed is not None:
            await bounded(self.watch_feed.stop(), "watch feed", log)
        if self.relay is not None:
            # Publish what the last requests committed; what is left goes at the next start.
            await bounded(self.relay.publish_pending(), "outbox final publish", log, grace)
            await bounded(self.relay.stop(), "outbox relay", log)
        await bounded(self.audit_trail.stop(), "audit sink", log)
        self.metrics.close()
        self.engine.dispose()
        log.info("pathway.stopped")
