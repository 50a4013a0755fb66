"""The one table from domain errors to gRPC status codes, with rich details."""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from energy_server.errors import (
    DatabaseUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
    OutOfRange,
    Overloaded,
    PermissionDenied,
    StorageFailure,
    StreamIdle,
    Unauthenticated,
    WriteConflict,
)

__all__ = ["CODE_OF", "abort_with"]

_log = logging.getLogger(__name__)

CODE_OF: dict[type[DomainError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DatabaseUnavailable: grpc.StatusCode.UNAVAILABLE,
    WriteConflict: grpc.StatusCode.ABORTED,
    StorageFailure: grpc.StatusCode.INTERNAL,
    StreamIdle: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

# Codes after which the same call may succeed later: the caller is told when.
_RETRYABLE = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}


async def abort_with(
    context: aio.ServicerContext[object, object], error: Exception, retry_delay_ms: int, request_id: str
) -> NoReturn:
    """End the call with the status `error` maps to; never returns.

    Anything that is not a DomainError is a bug: it is logged with its
    traceback and the caller gets INTERNAL without its text, but with the
    request id that finds the traceback in the log.
    """
    code = CODE_OF.get(type(error)) if isinstance(error, DomainError) else None
    if code is None or code is grpc.StatusCode.INTERNAL:
        _log.error("internal error", exc_info=error)
        code = grpc.StatusCode.INTERNAL
        message = f"internal error; the server's log has the details (request id {request_id})"
    else:
        message = str(error)
    status = status_pb2.Status(code=code.value[0], message=message)
    # The call's trailing metadata is replaced by abort's: the request id goes again.
    trailing: list[tuple[str, str]] = [("x-request-id", request_id)]
    if isinstance(error, InvalidInput) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        status.details.append(_packed(bad_request))
    if code in _RETRYABLE:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(retry_delay_ms)
        status.details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
        trailing.append(("grpc-retry-pushback-ms", str(retry_delay_ms)))
    rich = rpc_status.to_status(status)
    await context.abort(code, message, trailing_metadata=tuple(rich.trailing_metadata) + tuple(trailing))


def _packed(detail: error_details_pb2.BadRequest | error_details_pb2.RetryInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(detail)
    return packed
