"""The metrics interceptor every GrpcServer carries: each call counted by method and the
code it ended with, unary-response calls timed, streams counted when they end, unknown
methods not counted (the method label stays bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from overgang.config import Settings
from overgang.grpc.server import GrpcServer
from overgang.metrics import Metrics

SERVICE = "overgang.test.Probe"
IDENTITY = (lambda b: b, lambda b: b)


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _invalid(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no")
    raise AssertionError("unreachable")


async def _bug(request: bytes, context: Any) -> bytes:
    raise RuntimeError("a bug")


async def _not_found(request: bytes, context: Any) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    return b""


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(int(request or b"3")):
        yield b"x"


async def _forever(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()
    yield b"never"


def _register(server: grpc.aio.Server) -> None:
    unary = {"Echo": _echo, "Invalid": _invalid, "Bug": _bug, "NotFound": _not_found}
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(f, *IDENTITY) for name, f in unary.items()
    }
    handlers["Stream"] = grpc.unary_stream_rpc_method_handler(_stream, *IDENTITY)
    handlers["Forever"] = grpc.unary_stream_rpc_method_handler(_forever, *IDENTITY)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])


def _count(metrics: Metrics, method: str, code: str) -> float:
    value = metrics.registry.get_sample_value(
        "overgang_grpc_requests_total", {"method": f"/{SERVICE}/{method}", "code": code}
    )
    return value or 0.0


def _timed(metrics: Metrics, method: str, code: str) -> float:
    value = metrics.registry.get_sample_value(
        "overgang_grpc_request_duration_seconds_count",
        {"method": method if method.startswith("/") else f"/{SERVICE}/{method}", "code": code},
    )
    return value or 0.0


async def _calls(metrics: Metrics) -> None:
    server = GrpcServer("127.0.0.1:0", [SERVICE], _register, Settings(), metrics=metrics)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:

            def unary(name: str) -> Any:
                return channel.unary_unary(f"/{SERVICE}/{name}", *IDENTITY)

            assert await unary("Echo")(b"hi") == b"hi"
            assert await unary("Echo")(b"again") == b"again"
            for name, code in (
                ("Invalid", grpc.StatusCode.INVALID_ARGUMENT),
                ("Bug", grpc.StatusCode.UNKNOWN),
                ("NotFound", grpc.StatusCode.NOT_FOUND),
                ("Missing", grpc.StatusCode.UNIMPLEMENTED),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await unary(name)(b"")
                assert refused.value.code() == code
            stream = channel.unary_stream(f"/{SERVICE}/Stream", *IDENTITY)
            assert [m async for m in stream(b"4")] == [b"x"] * 4
            forever = channel.unary_stream(f"/{SERVICE}/Forever", *IDENTITY)(b"")
            assert await forever.read() == b"first"
            forever.cancel()
            health = health_pb2_grpc.HealthStub(channel)
            await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
            await asyncio.sleep(0.2)  # the server side of the cancelled stream ends
    finally:
        await server.stop(0)


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    metrics = Metrics()
    asyncio.run(_calls(metrics))
    return metrics


def test_every_call_is_counted_by_method_and_code(metrics: Metrics) -> None:
    assert _count(metrics, "Echo", "OK") == 2
    assert _count(metrics, "Invalid", "INVALID_ARGUMENT") == 1
    assert _count(metrics, "Bug", "UNKNOWN") == 1
    assert _count(metrics, "NotFound", "NOT_FOUND") == 1
    assert _count(metrics, "Stream", "OK") == 1
    assert _count(metrics, "Forever", "CANCELLED") == 1
    health = {"method": "/grpc.health.v1.Health/Check", "code": "OK"}
    assert metrics.registry.get_sample_value("overgang_grpc_requests_total", health) == 1


def test_unary_calls_are_timed_and_streams_are_not(metrics: Metrics) -> None:
    assert _timed(metrics, "Echo", "OK") == 2
    assert _timed(metrics, "Invalid", "INVALID_ARGUMENT") == 1
    assert _timed(metrics, "Stream", "OK") == 0
    assert _timed(metrics, "/grpc.health.v1.Health/Check", "OK") == 1


def test_unknown_methods_are_not_counted(metrics: Metrics) -> None:
    methods = {
        sample.labels["method"]
        for family in metrics.registry.collect()
        if family.name == "overgang_grpc_requests"
        for sample in family.samples
    }
    assert f"/{SERVICE}/Missing" not in methods
    assert methods <= {f"/{SERVICE}/{m}" for m in ("Echo", "Invalid", "Bug", "NotFound")} | {
        f"/{SERVICE}/Stream",
        f"/{SERVICE}/Forever",
        "/grpc.health.v1.Health/Check",
    }
