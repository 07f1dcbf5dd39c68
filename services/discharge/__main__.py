"""`python -m discharge`: the liability clock worker with its gRPC LiabilityService."""

from __future__ import annotations

import asyncio
import sys

import faust

from discharge.grpc_api import LiabilityServicer
from discharge.rules import load_profile, load_rates
from discharge.store import Rules
from discharge.worker import create_app
from overgang.config import load_settings
from overgang.grpc.auth import Authenticator
from overgang.grpc.server import GrpcServer
from overgang.kafka.topics import (
    CLOCK_TICKS,
    HOSPITAL_EVENTS,
    MUNICIPAL_EVENTS,
    ensure_topics,
    require_co_partitioned,
)
from overgang.logging import configure_logging, get_logger
from overgang.v1 import liability_pb2, liability_pb2_grpc

log = get_logger(__name__)


def main() -> int:
    configure_logging("discharge")
    settings = load_settings()
    rules = Rules(
        rates=load_rates(settings.rates_file or None),
        profile=load_profile(settings.rule_profile_file or None),
    )
    created = ensure_topics(settings)
    require_co_partitioned(settings, [HOSPITAL_EVENTS, MUNICIPAL_EVENTS, CLOCK_TICKS])
    log.info(
        "topics.ensured", created=created, rates=rules.rates.source, profile=rules.profile.name
    )

    clock = create_app(settings, rules)
    auth = Authenticator(settings.auth_tokens)
    if not auth.enabled:
        log.warning("auth.disabled", hint="set OVERGANG_AUTH_TOKENS outside a laptop")
    servicer = LiabilityServicer(clock, auth)

    @clock.app.task
    async def serve_grpc() -> None:
        # Runs after table recovery: queries never see a half-restored table.
        server = GrpcServer(
            settings.discharge_grpc,
            [liability_pb2.DESCRIPTOR.services_by_name["LiabilityService"].full_name],
            lambda s: liability_pb2_grpc.add_LiabilityServiceServicer_to_server(servicer, s),
            settings,
        )
        await server.start()
        try:
            await asyncio.Event().wait()  # until the app stops and cancels this task
        finally:
            await server.stop()

    worker = faust.Worker(clock.app, loglevel="WARNING", redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
