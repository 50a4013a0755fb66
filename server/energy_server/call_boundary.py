"""CallBoundary: the interceptor every RPC passes through.

It gives every call a request id (the caller's `x-request-id`, else a new
one), returned in the call's trailing metadata and carried by every log line
of the call. It is where callers are authenticated (through the Authorizer, before any
handler runs), where errors cross into gRPC (through `status.abort_with`,
once) and where each call leaves its one log line: method, peer, caller,
status, readings and duration. The caller is the token's name, never the
token.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

from energy_server.auth import Authorizer
from energy_server.domain import FieldViolation
from energy_server.errors import DomainError, InvalidInput
from energy_server.logs import request_id
from energy_server.metrics import ServerMetrics
from energy_server.status import CODE_OF, abort_with

__all__ = ["CallBoundary", "count_readings"]

_log = logging.getLogger("energy_server.rpc")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")

# The readings the current call handled; servicers add to it, the boundary logs it.
_call_readings: ContextVar[list[int]] = ContextVar("call_readings")


def count_readings(count: int) -> None:
    """Add `count` to the readings of the call being served (for its log line)."""
    tally = _call_readings.get(None)
    if tally is not None:
        tally[0] += count


# What a caller's x-request-id may be; anything else is replaced by an id of ours.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def _request_id_of(context: aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and _REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


class _CallRecord:
    __slots__ = ("caller", "code", "kind", "method", "metrics", "peer", "request_id", "started", "tally")

    def __init__(
        self, method: str, kind: str, context: aio.ServicerContext[Any, Any], metrics: ServerMetrics
    ) -> None:
        self.method = method
        self.kind = kind
        self.metrics = metrics
        metrics.record_call_started(method, kind)
        self.request_id = _request_id_of(context)
        request_id.set(self.request_id)
        context.set_trailing_metadata((("x-request-id", self.request_id),))
        # Read now: a streaming handler can be finalised after its server stopped,
        # and touching the call's context then crashes gRPC's C core (seen: SIGSEGV).
        self.peer = context.peer()
        self.caller = "-"
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        self.tally = [0]
        # Never reset: each call runs in a task, and so a context, of its own; and a
        # streaming handler may be finalised from another context, where reset() fails.
        _call_readings.set(self.tally)

    def finish(self) -> None:
        seconds = time.perf_counter() - self.started
        self.metrics.record_call(self.method, self.kind, self.code.name, seconds)
        level = logging.INFO if self.method.startswith("/energy.") else logging.DEBUG
        _log.log(
            level,
            "rpc method=%s peer=%s caller=%s status=%s readings=%d duration_ms=%.2f request_id=%s",
            self.method,
            self.peer,
            self.caller,
            self.code.name,
            self.tally[0],
            seconds * 1000,
            self.request_id,
        )


class _Undecodable:
    """Stands in for a request whose bytes are not the method's message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    """A deserializer that never raises: gRPC would answer UNKNOWN or INTERNAL with the
    exception's text; undecodable bytes are the client's mistake, INVALID_ARGUMENT."""

    def parse(data: bytes) -> Any:
        if deserialize is None:
            return data
        try:
            return deserialize(data)
        except DecodeError as error:
            return _Undecodable(str(error))

    return parse


def _check_decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidInput(
            f"the request is not a valid protobuf message: {request.reason}",
            [FieldViolation("request", "bytes that do not decode as this method's request message")],
        )
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _check_decoded(request)


def _decoded(request: Any, streaming: bool) -> Any:
    """The request (or request stream) with undecodable messages turned into InvalidInput."""
    return _checked_stream(request) if streaming else _check_decoded(request)


class CallBoundary(aio.ServerInterceptor):
    """Turns errors into statuses and logs one line per call."""

    def __init__(self, retry_delay_ms: int, authorizer: Authorizer, metrics: ServerMetrics) -> None:
        self._retry_delay_ms = retry_delay_ms
        self._authorizer = authorizer
        self._metrics = metrics
        # Wrapping is per method, not per call: handlers never change once registered.
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        # The stubs type behaviors as synchronous; under grpc.aio they are coroutines
        # or async generators, hence the Any.
        behaviors: Any = handler
        common: dict[str, Any] = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        # The kinds are the grpc_type label values of the ecosystem's gRPC dashboards.
        if behaviors.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary_response(method, "unary", behaviors.unary_unary, streaming=False), **common
            )
        if behaviors.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary_response(method, "client_stream", behaviors.stream_unary, streaming=True),
                **common,
            )
        if behaviors.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream_response(method, "server_stream", behaviors.unary_stream, streaming=False),
                **common,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream_response(method, "bidi_stream", behaviors.stream_stream, streaming=True), **common
        )

    def _unary_response(
        self,
        method: str,
        kind: str,
        behavior: Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]],
        *,
        streaming: bool,
    ) -> Callable[[Any, aio.ServicerContext[Any, Any]], Awaitable[Any]]:
        async def handle(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            record = _CallRecord(method, kind, context, self._metrics)
            try:
                self._authorize(record, context)
                return await behavior(_decoded(request, streaming), context)
            except BaseException as error:
                await self._fail(record, error, context)
                raise
            finally:
                record.finish()

        return handle

    def _stream_response(
        self,
        method: str,
        kind: str,
        behavior: Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any]],
        *,
        streaming: bool,
    ) -> Callable[[Any, aio.ServicerContext[Any, Any]], AsyncIterator[Any]]:
        async def handle(request: Any, context: aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            record = _CallRecord(method, kind, context, self._metrics)
            try:
                self._authorize(record, context)
                responses = behavior(_decoded(request, streaming), context)
                if inspect.isawaitable(responses):
                    # Handlers may write with context.write() instead of yielding.
                    await responses
                    return
                async for response in responses:
                    yield response
            except BaseException as error:
                await self._fail(record, error, context)
                raise
            finally:
                record.finish()

        return handle

    def _authorize(self, record: _CallRecord, context: aio.ServicerContext[Any, Any]) -> None:
        principal = self._authorizer.check(record.method, context.invocation_metadata())
        if principal is not None:
            record.caller = principal.name

    async def _fail(
        self, record: _CallRecord, error: BaseException, context: aio.ServicerContext[Any, Any]
    ) -> None:
        """Abort with the status of `error` (raising AbortError), or note a cancellation."""
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            record.code = grpc.StatusCode.CANCELLED
            return
        if isinstance(error, aio.AbortError):
            # The handler chose its own status with context.abort().
            code: Any = context.code()  # a StatusCode at run time, whatever the stubs say
            record.code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            return
        if not isinstance(error, Exception):
            return
        code = CODE_OF.get(type(error)) if isinstance(error, DomainError) else None
        record.code = code or grpc.StatusCode.INTERNAL
        await abort_with(context, error, self._retry_delay_ms, record.request_id)
