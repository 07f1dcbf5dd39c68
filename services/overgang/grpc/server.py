"""A gRPC aio server with health checking, reflection, TLS/mTLS, resource limits and
graceful shutdown, so each service only registers its servicer.

Every call is counted by method and status code, and unary-response calls timed, in the
process's metrics (`overgang.metrics_grpc`).

Closed by default: without auth (no tokens) or without TLS it binds only to a loopback
address (the laptop, `make demo`), unless `OVERGANG_INSECURE_DEV=1`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from overgang.config import Settings, is_loopback
from overgang.grpc.auth import Authenticator
from overgang.grpc.tls import TlsConfigError, server_credentials, server_tls_enabled
from overgang.logging import get_logger
from overgang.metrics import Metrics
from overgang.metrics_grpc import MetricsInterceptor

__all__ = [
    "SERVER_OPTIONS",
    "GrpcServer",
    "InsecureServerError",
    "TlsConfigError",
    "install_shutdown_handlers",
    "server_credentials",
    "server_options",
]

log = get_logger(__name__)

# Keepalive: ping idle clients every 20 s, drop them after 10 s without an answer; accept
# client pings no more often than every 10 s (two strikes, then GOAWAY).
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_connection_idle_ms", 15 * 60_000),
]


class InsecureServerError(RuntimeError):
    """The server would be reachable beyond this machine without auth or without TLS."""


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    limit = settings.grpc_max_message_bytes
    return [
        *SERVER_OPTIONS,
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", max(limit, 4 * 1024 * 1024)),
    ]


def check_exposure(address: str, settings: Settings, auth_enabled: bool) -> None:
    """Refuse what would expose the service; warn about what is fine on a laptop only."""
    tls = server_tls_enabled(settings)  # raises on a partial TLS configuration
    if is_loopback(address):
        if not auth_enabled:
            log.warning(
                "auth.disabled",
                address=address,
                detail="no OVERGANG_AUTH_TOKENS(_FILE): every caller is ops (loopback only)",
            )
        return
    missing = [what for what, ok in (("auth tokens", auth_enabled), ("TLS", tls)) if not ok]
    if not missing:
        return
    if not settings.insecure_dev:
        raise InsecureServerError(
            f"refusing to listen on {address} without {' and '.join(missing)}: set "
            "OVERGANG_AUTH_TOKENS_FILE and OVERGANG_TLS_CERT/OVERGANG_TLS_KEY, bind to "
            "127.0.0.1, or (throwaway development only) OVERGANG_INSECURE_DEV=1"
        )
    log.warning("grpc.insecure_dev", address=address, missing=missing)


class GrpcServer:
    def __init__(
        self,
        address: str,
        service_names: Iterable[str],
        register: Callable[[grpc.aio.Server], None],
        settings: Settings,
        *,
        auth: Authenticator | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        """`auth`: the services' authenticator (default: the one the settings describe);
        only whether it has tokens matters here. `metrics`: default the process's."""
        auth_enabled = (auth or Authenticator.from_settings(settings)).enabled
        check_exposure(address, settings, auth_enabled)
        creds = server_credentials(settings)
        self.address = address
        self.service_names = list(service_names)
        self.server = grpc.aio.server(
            options=server_options(settings),
            maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
            interceptors=[MetricsInterceptor(metrics)],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        register(self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        if creds is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, creds)

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("grpc.started", address=self.address, port=self.port)

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        log.info("grpc.stopped", address=self.address)


def install_shutdown_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
