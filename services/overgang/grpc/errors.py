"""Rich gRPC errors: INVALID_ARGUMENT carries google.rpc.BadRequest field violations."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

FieldViolation = tuple[str, str]  # (field path, reason)


def bad_request_status(violations: list[FieldViolation]) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=r)
                for f, r in violations
            ]
        )
    )
    message = "; ".join(f"{f}: {r}" for f, r in violations)
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    )


async def abort_invalid(
    context: grpc.aio.ServicerContext[Any, Any], violations: list[FieldViolation]
) -> NoReturn:
    await context.abort_with_status(bad_request_status(violations))
    raise AssertionError("unreachable")  # abort_with_status raises


def field_violations(error: grpc.RpcError) -> list[FieldViolation]:
    """Client side: the field violations of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return []
    found: list[FieldViolation] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found
