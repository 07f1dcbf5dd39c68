"""The wiring of one process: migrations, topics, outbox relay, the Faust app and the
gRPC server, started and stopped in order, so tests can run the whole service
in-process. The clock is chosen here (the settings' wall clock unless one is given) and
injected into the store, the worker and the gRPC API."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from sqlmodel import col

from coordination.domain.task import ACTIVE
from coordination.grpc_api import SERVICE_NAME, CoordinationServicer, register
from coordination.models import TaskRow
from coordination.rulebook import RuleBook
from coordination.store import Clock, TaskStore
from coordination.streams import APP_ID, DEFAULT_SLA_SECONDS, create_app
from coordination.watch import UpdateSignal
from coordination.worker import SERVICE, CoordinationWorker
from overgang.config import Settings, wall_clock
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.kafka.audit_sink import AuditTrail
from overgang.kafka.topics import PATHWAY_EVENTS, ensure_topics
from overgang.logging import get_logger
from overgang.metrics_watch import ServiceMetrics, UnitTasks, count_by
from overgang.plausibility import load_windows
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
        clock: Clock | None = None,
        rules_dir: str | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        clock = clock if clock is not None else wall_clock(settings)
        self.engine = make_engine(settings.coordination_database_url)
        self.rulebook = RuleBook(rules_dir or settings.coordination_rules_dir or None)
        self.store = TaskStore(self.engine, self.rulebook, clock)
        self.relay: OutboxRelay | None = (
            # TLS/SASL from these settings, like the Faust app's.
            OutboxRelay(self.engine, settings.kafka_bootstrap, settings=settings) if kafka else None
        )
        self.signal = UpdateSignal()
        self.worker = CoordinationWorker(self.store, clock, on_commit=self._committed)
        self.audit_trail = AuditTrail(SERVICE, settings, clock, kafka=kafka)
        self.auth = Authenticator.from_settings(settings, audit=self.audit_trail.audit)
        self.servicer = CoordinationServicer(
            self.store,
            self.auth,
            clock,
            signal=self.signal,
            on_commit=self._committed,
            poll_seconds=poll_seconds,
            audit=self.audit_trail.audit,
            windows=load_windows(settings.plausibility_file or None),
        )
        self.grpc = GrpcServer(
            grpc_address or settings.coordination_grpc,
            [SERVICE_NAME],
            register(self.servicer),
            settings,
        )
        self.app: Any = (
            create_app(settings, self.worker, app_id=app_id, sla_seconds=sla_seconds)
            if kafka
            else None
        )
        self._relay_task: asyncio.Task[None] | None = None
        self.metrics = ServiceMetrics(SERVICE)

    def _task_counts(self) -> dict[tuple[str, ...], UnitTasks]:
        """Open, overdue and escalated tasks per (municipality, unit), for the metrics."""
        keys = (col(TaskRow.municipality), col(TaskRow.unit))
        active = col(TaskRow.status).in_([s.value for s in ACTIVE])
        due = col(TaskRow.due_at) < self.store.clock()
        opened = count_by(self.engine, *keys, where=[active])
        overdue = count_by(self.engine, *keys, where=[active, due])
        escalated = count_by(self.engine, *keys, where=[active, col(TaskRow.escalated).is_(True)])
        return {k: UnitTasks(n, overdue.get(k, 0), escalated.get(k, 0)) for k, n in opened.items()}

    def _committed(self) -> None:
        """After every commit: wake the task streams and the outbox relay."""
        self.signal.notify()
        if self.relay is not None:
            self.relay.notify()

    @property
    def grpc_port(self) -> int:
        return int(self.grpc.port)

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.engine, MIGRATIONS)
        self.metrics.watch_outbox(self.engine)
        self.metrics.watch_tasks(self._task_counts)
        if self.app is not None:
            self.metrics.watch_faust_lag(self.app, [PATHWAY_EVENTS])
        self.metrics.serve(self.settings.coordination_metrics)
        await self.audit_trail.start()
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
        await self.audit_trail.stop()
        self.metrics.close()
        self.engine.dispose()
        log.info("coordination.stopped")
