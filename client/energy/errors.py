"""ClientError: the one exception the client raises for a failed call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = ["ClientError", "Violation"]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_PUSHBACK_KEY = "grpc-retry-pushback-ms"


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: the offending field's path and what is wrong with it."""

    field: str
    description: str


class ClientError(Exception):
    """A call that failed, with its gRPC status code and what the server said about it.

    `violations` lists the offending fields of an INVALID_ARGUMENT answer;
    `retry_delay_s` is the server's hint (RetryInfo or the pushback trailer)
    for how long to wait before trying again, when it gave one.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: tuple[Violation, ...] = (),
        retry_delay_s: float | None = None,
        from_server: bool = True,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = violations
        self.retry_delay_s = retry_delay_s
        # False when gRPC itself made the status (a broken connection, a reset
        # stream): the server never answered, whatever the code says.
        self.from_server = from_server

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ClientError:
        """Read code, message and rich status details off a failed call."""
        # grpc.aio.AioRpcError and the sync channel's errors share these methods,
        # but not a base class that declares them.
        call: Any = error
        code = call.code() if hasattr(call, "code") else grpc.StatusCode.UNKNOWN
        message = (call.details() if hasattr(call, "details") else None) or ""
        trailers = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
        violations: list[Violation] = []
        retry_delay_s: float | None = None
        from_server = False
        for key, value in trailers or ():
            if key == _PUSHBACK_KEY and isinstance(value, str) and value.isdigit():
                retry_delay_s = int(value) / 1000
            elif key == _STATUS_DETAILS_KEY and isinstance(value, bytes):
                from_server = True
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                        bad_request = error_details_pb2.BadRequest()
                        detail.Unpack(bad_request)
                        violations += [
                            Violation(v.field, v.description) for v in bad_request.field_violations
                        ]
                    elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                        info = error_details_pb2.RetryInfo()
                        detail.Unpack(info)
                        retry_delay_s = info.retry_delay.ToTimedelta().total_seconds()
        return cls(code or grpc.StatusCode.UNKNOWN, message, tuple(violations), retry_delay_s, from_server)
