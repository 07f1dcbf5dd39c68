"""A gRPC aio server interceptor that counts every call by method and status code and
times unary-response calls (`overgang_grpc_requests_total`,
`overgang_grpc_request_duration_seconds`). `GrpcServer` installs it on every service.

Only registered methods are counted (an unknown path has no handler and would make the
method label unbounded). The code is the one the call ended with: set by the servicer
(`set_code`, `abort`), UNKNOWN for an exception grpc turns into one, CANCELLED when the
client went away.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from overgang.metrics import Metrics, process_metrics

Continuation = Callable[[Any], Awaitable[Any]]


def _code(context: Any, default: grpc.StatusCode) -> str:
    """The call's status code name: the servicer's, if it set one."""
    try:
        code = context.code()
    except Exception:
        code = None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        for known in grpc.StatusCode:
            if known.value[0] == code:
                return str(known.name)
    return str(default.name)


def _failed(context: Any, exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return str(grpc.StatusCode.CANCELLED.name)
    return _code(context, grpc.StatusCode.UNKNOWN)


def _timed(behavior: Any, method: str, metrics: Metrics) -> Any:
    """unary-unary and stream-unary: counted and timed."""

    async def handle(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        try:
            response = await behavior(request, context)
        except BaseException as exc:
            metrics.grpc_handled(method, _failed(context, exc), time.perf_counter() - start)
            raise
        metrics.grpc_handled(
            method, _code(context, grpc.StatusCode.OK), time.perf_counter() - start
        )
        return response

    return handle


def _streamed(behavior: Any, method: str, metrics: Metrics) -> Any:
    """unary-stream and stream-stream: counted when the stream ends."""
    if inspect.isasyncgenfunction(behavior):

        async def generate(request: Any, context: Any) -> AsyncIterator[Any]:
            responses = behavior(request, context)
            try:
                async for response in responses:
                    yield response
            except BaseException as exc:
                metrics.grpc_handled(method, _failed(context, exc), None)
                raise
            finally:
                await responses.aclose()
            metrics.grpc_handled(method, _code(context, grpc.StatusCode.OK), None)

        return generate

    async def write(request: Any, context: Any) -> None:  # the servicer calls context.write
        try:
            await behavior(request, context)
        except BaseException as exc:
            metrics.grpc_handled(method, _failed(context, exc), None)
            raise
        metrics.grpc_handled(method, _code(context, grpc.StatusCode.OK), None)

    return write


def instrument(handler: Any, method: str, metrics: Metrics) -> Any:
    """The same RPC method handler, counting (and timing) each call."""
    if handler.request_streaming and handler.response_streaming:
        behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
        return handler  # a synchronous handler: not ours, left as it is
    wrap = _streamed if handler.response_streaming else _timed
    return make(
        wrap(behavior, method, metrics),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or process_metrics()

    async def intercept_service(self, continuation: Continuation, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return None
        return instrument(handler, str(details.method), self.metrics)
