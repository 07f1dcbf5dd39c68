"""Wiring of the discharge service: rules, topics, the Faust app and, once the clock
table is recovered, the gRPC LiabilityService."""

from __future__ import annotations

import asyncio

import faust

from discharge.domain.live_clock import Rules
from discharge.grpc_api import LiabilityServicer
from discharge.rules import load_profile, load_rates
from discharge.streams import ClockStreams, create_streams
from overgang.config import Settings, wall_clock
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.kafka.topics import (
    CLOCK_TICKS,
    HOSPITAL_EVENTS,
    MUNICIPAL_EVENTS,
    ensure_topics,
    require_co_partitioned,
)
from overgang.logging import get_logger
from overgang.v1 import liability_pb2, liability_pb2_grpc

log = get_logger(__name__)
SERVICE_NAME = liability_pb2.DESCRIPTOR.services_by_name["LiabilityService"].full_name


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
    streams = create_streams(settings, rules, wall_clock(settings))
    auth = Authenticator(settings.auth_tokens)
    if not auth.enabled:
        log.warning("auth.disabled", hint="set OVERGANG_AUTH_TOKENS outside a laptop")
    servicer = LiabilityServicer(streams, auth)

    @streams.app.task
    async def serve_grpc() -> None:
        # Runs after table recovery: queries never see a half-restored table.
        server = GrpcServer(
            settings.discharge_grpc,
            [SERVICE_NAME],
            lambda s: liability_pb2_grpc.add_LiabilityServiceServicer_to_server(servicer, s),
            settings,
        )
        await server.start()
        try:
            await asyncio.Event().wait()  # until the app stops and cancels this task
        finally:
            await server.stop()

    return streams


def run(settings: Settings) -> None:
    """Until SIGTERM/SIGINT: the Faust worker owns the event loop and the signals."""
    streams = build(settings)
    worker = faust.Worker(streams.app, loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()
