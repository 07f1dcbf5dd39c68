"""Wiring of the discharge service: rules, topics, the Faust app and, once the clock
table is recovered, the gRPC LiabilityService."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import faust
import grpc

from discharge.corrections_store import CorrectionLog
from discharge.disputes_store import DisputeStore
from discharge.domain.live_clock import Rules
from discharge.domain.rates import RateTable
from discharge.grpc_api import LiabilityServicer
from discharge.peers import Peers
from discharge.rules import DEFAULT_RATES, ConfigError, load_profile, load_rates
from discharge.store import ClockArchive
from discharge.streams import ClockStreams, create_streams
from discharge.worker import SERVICE
from overgang.config import Settings, wall_clock
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.grpc.tls import channel_credentials
from overgang.kafka.audit_sink import AuditTrail
from overgang.kafka.topics import (
    CLOCK_TICKS,
    HOSPITAL_EVENTS,
    MUNICIPAL_EVENTS,
    ensure_topics,
    require_co_partitioned,
)
from overgang.logging import get_logger
from overgang.metrics_watch import ServiceMetrics, on_loop
from overgang.sql.engine import make_engine
from overgang.sql.migrations import migrate
from overgang.v1 import liability_pb2, liability_pb2_grpc

log = get_logger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
SERVICE_NAME = liability_pb2.DESCRIPTOR.services_by_name["LiabilityService"].full_name


def rates_reloader(settings: Settings) -> Callable[[], RateTable | None]:
    """Reads the rate table again when its file changed; None when unchanged or broken
    (a broken file is logged and the table in force kept)."""
    path = Path(settings.rates_file) if settings.rates_file else DEFAULT_RATES
    seen = [_stamp(path)]

    def reload() -> RateTable | None:
        stamp = _stamp(path)
        if stamp == seen[0]:
            return None
        seen[0] = stamp
        try:
            return load_rates(path)
        except (ConfigError, OSError) as exc:
            log.error("rates.reload_failed", source=str(path), error=str(exc))
            return None

    return reload


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def load_rules(settings: Settings) -> Rules:
    return Rules(
        rates=load_rates(settings.rates_file or None),
        profile=load_profile(settings.rule_profile_file or None),
    )


def build(settings: Settings) -> ClockStreams:
    rules = load_rules(settings)
    created = ensure_topics(settings)
    require_co_partitioned(settings, [HOSPITAL_EVENTS, MUNICIPAL_EVENTS, CLOCK_TICKS])
    log.info(
        "topics.ensured", created=created, rates=rules.rates.source, profile=rules.profile.name
    )
    now = wall_clock(settings)
    engine = make_engine(settings.discharge_database_url)
    migrate(engine, MIGRATIONS)
    archive = ClockArchive(engine, now)
    disputes = DisputeStore(engine)
    streams = create_streams(settings, rules, now, rates_reloader(settings), archive)
    audit_trail = AuditTrail(SERVICE, settings, now)
    auth = Authenticator.from_settings(settings, audit=audit_trail.audit)
    credentials = channel_credentials(settings)

    def channel(address: str) -> grpc.aio.Channel:
        if credentials is None:
            return grpc.aio.insecure_channel(address)
        return grpc.aio.secure_channel(address, credentials)

    peers = Peers(
        settings.discharge_advertised,
        streams.app.assignor.tables_metadata,
        streams.changelog_topic,
        channel,
    )
    servicer = LiabilityServicer(
        streams.store,
        streams.partition_of,
        streams.owns,
        streams.served_partitions,
        auth,
        peers,
        archive,
        audit_trail.audit,
        disputes,
        now,
        CorrectionLog(engine),
    )

    metrics = ServiceMetrics(SERVICE)
    metrics.watch_disputes(disputes.counts)  # SQL, read in the scrape's thread
    metrics.watch_faust_lag(streams.app, [HOSPITAL_EVENTS, MUNICIPAL_EVENTS, CLOCK_TICKS])

    @streams.app.task
    async def serve_metrics() -> None:
        loop = asyncio.get_running_loop()  # the Faust table is the loop's to read
        metrics.watch_running_clocks(on_loop(loop, streams.store.running_by_municipality))
        metrics.serve(settings.discharge_metrics)
        try:
            await asyncio.Event().wait()  # until the app stops and cancels this task
        finally:
            metrics.close()

    @streams.app.task
    async def serve_grpc() -> None:
        # Runs after table recovery: queries never see a half-restored table.
        server = GrpcServer(
            settings.discharge_grpc,
            [SERVICE_NAME],
            lambda s: liability_pb2_grpc.add_LiabilityServiceServicer_to_server(servicer, s),
            settings,
        )
        await audit_trail.start()
        await server.start()
        try:
            await asyncio.Event().wait()  # until the app stops and cancels this task
        finally:
            await server.stop()
            await audit_trail.stop()

    return streams


def run(settings: Settings) -> None:
    """Until SIGTERM/SIGINT: the Faust worker owns the event loop and the signals."""
    streams = build(settings)
    worker = faust.Worker(streams.app, loglevel=settings.faust_log_level, redirect_stdouts=False)
    worker.execute_from_commandline()
