"""One process: migrations, topics, outbox relay, the Faust app and the gRPC server;
started and stopped in order, so tests can run the whole service in-process."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from coordination.grpc_api import SERVICE_NAME, CoordinationServicer, register
from coordination.rulebook import RuleBook
from coordination.store import Clock, TaskStore, utc_now
from coordination.streams import APP_ID, DEFAULT_SLA_SECONDS, create_app
from coordination.worker import Coordination
from overgang.config import Settings
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.kafka.topics import ensure_topics
from overgang.logging import get_logger
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.sql.outbox import OutboxRelay

log = get_logger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


class CoordinationRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        kafka: bool = True,
        grpc_address: str | None = None,
        app_id: str = APP_ID,
        sla_seconds: float = DEFAULT_SLA_SECONDS,
        poll_seconds: float = 1.0,
        clock: Clock = utc_now,
        rules_dir: str | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.engine = make_engine(settings.coordination_database_url)
        self.rulebook = RuleBook(rules_dir or settings.coordination_rules_dir or None)
        self.store = TaskStore(self.engine, self.rulebook, clock)
        self.relay: OutboxRelay | None = (
            OutboxRelay(self.engine, settings.kafka_bootstrap) if kafka else None
        )
        self.core = Coordination(self.store, on_commit=self.relay.notify if self.relay else None)
        self.auth = Authenticator(settings.auth_tokens)
        self.servicer = CoordinationServicer(self.core, self.auth, poll_seconds=poll_seconds)
        self.grpc = GrpcServer(
            grpc_address or settings.coordination_grpc,
            [SERVICE_NAME],
            register(self.servicer),
            settings,
        )
        self.app: Any = (
            create_app(settings, self.core, app_id=app_id, sla_seconds=sla_seconds)
            if kafka
            else None
        )
        self._relay_task: asyncio.Task[None] | None = None

    @property
    def grpc_port(self) -> int:
        return int(self.grpc.port)

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.engine, MIGRATIONS)
        if not self.auth.enabled:
            log.warning("coordination.auth_disabled", hint="set OVERGANG_AUTH_TOKENS")
        if self.kafka:
            created = await asyncio.to_thread(ensure_topics, self.settings)
            log.info("coordination.topics", created=created)
            assert self.relay is not None
            await self.relay.start()
            self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
            await self.app.start()
        await self.grpc.start()
        log.info("coordination.started", grpc_port=self.grpc.port, kafka=self.kafka)

    async def stop(self) -> None:
        """Graceful: stop taking calls, stop consuming (commits offsets), flush the outbox."""
        await self.grpc.stop()
        if self.app is not None:
            await self.app.stop()
        if self.relay is not None:
            if self._relay_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.relay.publish_pending(), timeout=5)
                self._relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._relay_task
            await self.relay.stop()
        self.engine.dispose()
        log.info("coordination.stopped")
