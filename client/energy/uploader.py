"""Uploader: batches readings onto `IngestService.StreamReadings` and never loses one.

Readings are gathered into messages (at most `max_readings_per_message`, or
whatever arrived within `linger_s` of the first), each with a sequence
number. A message stays in memory until the server acknowledges it, which
it does only after committing it. When the stream breaks (server restart,
network loss, overload) the uploader reconnects with backoff and resends,
in order, every message not yet acknowledged; readings that had been
committed without their acknowledgement come back as duplicates, so the
database ends as if the stream had never broken.

Memory is bounded: `add()` waits while `max_unacknowledged_readings` are
unacknowledged. `flush()` returns once everything added so far is
acknowledged; `close()` flushes and ends the stream. If the server answers
with a code that retrying cannot fix (say PERMISSION_DENIED), `add()`,
`flush()` and `close()` raise it as ClientError and `unacknowledged()`
returns the readings the server never confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from grpc import aio

from energy.errors import ClientError, Violation
from energy.retry import RetryPolicy
from energy.v1 import ingest_pb2, reading_pb2

if TYPE_CHECKING:
    from energy.v1 import ingest_pb2_grpc

__all__ = ["UploadReport", "Uploader"]

_log = logging.getLogger(__name__)

# Besides the policy's codes, a broken stream may end with these; resending
# is always safe (duplicates are absorbed), so the uploader reconnects.
_STREAM_BREAK_CODES = frozenset({grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED})
# A stream reset mid-upload (say the server ended the call while this side
# was still sending) surfaces as INTERNAL or UNKNOWN made by gRPC itself, not
# by the server: that is a broken connection and is retried like UNAVAILABLE.
# The same codes *from the server* are retried only this many times in a row
# without an acknowledgement: a server that keeps failing a message has a bug
# that resending will not fix.
_TRANSPORT_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
_MAX_BLIND_RETRIES = 5


@dataclass(slots=True)
class UploadReport:
    """What the server said about every reading added, indexes counting from 0 in `add()` order.

    A reading committed just before a connection broke is resent and then
    counted as a duplicate: `accepted + stale` is what this upload stored.
    """

    added: int = 0
    accepted: int = 0
    duplicate: int = 0
    stale: int = 0
    rejected: int = 0
    rejections: list[tuple[int, tuple[Violation, ...]]] = field(default_factory=list)
    reconnects: int = 0

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicate + self.stale + self.rejected

    def add(self, summary: ingest_pb2.IngestSummary, first_index: int) -> None:
        self.accepted += summary.accepted_count
        self.duplicate += summary.duplicate_count
        self.stale += summary.stale_count
        self.rejected += summary.rejected_count
        for rejection in summary.rejections:
            violations = tuple(Violation(v.field, v.description) for v in rejection.field_violations)
            self.rejections.append((first_index + rejection.index, violations))


@dataclass(slots=True)
class _Message:
    sequence: int
    first_index: int
    readings: list[reading_pb2.Reading]
    sent_at: float = 0.0


class Uploader:
    """A batching, resending uploader over one bidirectional stream at a time."""

    @dataclass(frozen=True, slots=True)
    class Ack:
        """One acknowledged message, handed to `on_ack`."""

        sequence: int
        first_index: int
        reading_count: int
        summary: ingest_pb2.IngestSummary
        # Seconds from the message's (last) send to its acknowledgement.
        latency_s: float

    def __init__(
        self,
        stub: ingest_pb2_grpc.IngestServiceAsyncStub,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        retry: RetryPolicy | None = None,
        max_readings_per_message: int = 500,
        linger_s: float = 0.05,
        max_unacknowledged_readings: int = 50_000,
        on_ack: Callable[[Uploader.Ack], None] | None = None,
        on_reconnect: Callable[[BaseException], None] | None = None,
    ) -> None:
        if max_readings_per_message < 1 or max_unacknowledged_readings < max_readings_per_message:
            raise ValueError("need 1 <= max_readings_per_message <= max_unacknowledged_readings")
        self._stub = stub
        self._metadata = tuple(metadata)
        self._retry = retry or RetryPolicy()
        self._max_per_message = max_readings_per_message
        self._linger_s = linger_s
        self._max_unacked = max_unacknowledged_readings
        self._on_ack = on_ack
        self._on_reconnect = on_reconnect
        self.report = UploadReport()
        self._buffer: list[reading_pb2.Reading] = []
        self._linger: asyncio.TimerHandle | None = None
        self._next_sequence = 1
        self._unacked: OrderedDict[int, _Message] = OrderedDict()
        self._unacked_readings = 0
        self._outbox: list[_Message] = []
        self._acked_through = 0
        self._closing = False
        self._failure: ClientError | None = None
        self._changed = asyncio.Condition()
        self._work = asyncio.Event()
        self._connection: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Uploader:
        return self

    async def __aexit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc is None:
            await self.close()
        else:
            await self.abort()

    # Public surface

    async def add(self, reading: reading_pb2.Reading) -> None:
        """Queue one reading; waits while too many are unacknowledged."""
        self._check_usable()
        if self._unacked_readings + len(self._buffer) >= self._max_unacked:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: (
                        self._failure is not None
                        or self._unacked_readings + len(self._buffer) < self._max_unacked
                    )
                )
            self._check_usable()
        self._buffer.append(reading)
        self.report.added += 1
        if len(self._buffer) >= self._max_per_message:
            self._seal()
        elif len(self._buffer) == 1 and self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(self._linger_s, self._seal)

    async def add_many(self, readings: Iterable[reading_pb2.Reading]) -> None:
        for reading in readings:
            await self.add(reading)

    async def flush(self) -> None:
        """Return once every reading added so far is acknowledged."""
        self._seal()
        target = self._next_sequence - 1
        async with self._changed:
            await self._changed.wait_for(lambda: self._failure is not None or self._acked_through >= target)
        if self._failure is not None:
            raise self._failure

    async def close(self) -> UploadReport:
        """Flush, end the stream, and return the report."""
        try:
            await self.flush()
        finally:
            self._closing = True
            self._work.set()
            if self._connection is not None:
                await asyncio.gather(self._connection, return_exceptions=True)
        return self.report

    async def abort(self) -> None:
        """Stop at once; unacknowledged readings stay available from `unacknowledged()`."""
        self._closing = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._connection is not None:
            self._connection.cancel()
            await asyncio.gather(self._connection, return_exceptions=True)

    def unacknowledged(self) -> list[reading_pb2.Reading]:
        """Readings added but not (yet) acknowledged, in the order they were added."""
        pending = [reading for message in self._unacked.values() for reading in message.readings]
        return pending + list(self._buffer)

    # Batching

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise RuntimeError("the uploader is closed")

    def _seal(self) -> None:
        """Turn the buffered readings into a message and hand it to the connection."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if not self._buffer or self._failure is not None:
            return
        message = _Message(self._next_sequence, self.report.added - len(self._buffer), self._buffer)
        self._next_sequence += 1
        self._buffer = []
        self._unacked[message.sequence] = message
        self._unacked_readings += len(message.readings)
        self._outbox.append(message)
        self._work.set()
        if self._connection is None:
            self._connection = asyncio.create_task(self._run(), name="energy-uploader")

    # The connection

    async def _run(self) -> None:
        attempt = 0
        while not (self._closing and not self._unacked):
            if not self._unacked:
                self._work.clear()
                await self._work.wait()
                continue
            call = self._stub.StreamReadings(metadata=self._metadata)
            acked_before = self._acked_through
            try:
                await self._serve_stream(call)
                attempt = 0
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception as failure:
                call.cancel()
                error = failure if isinstance(failure, ClientError) else _as_client_error(failure)
                if self._acked_through > acked_before:
                    attempt = 0  # the stream made progress before it broke
                if not self._unacked and error.code in _STREAM_BREAK_CODES:
                    continue  # an idle stream the server closed: reopen when there is work
                retryable = error.code in self._retry.retryable_codes | _STREAM_BREAK_CODES or (
                    error.code in _TRANSPORT_CODES and (not error.from_server or attempt < _MAX_BLIND_RETRIES)
                )
                if not retryable:
                    await self._fail(error)
                    return
                self.report.reconnects += 1
                if self._on_reconnect is not None:
                    self._on_reconnect(error)
                _log.info("upload stream broke (%s); resending %d messages", error, len(self._unacked))
                delay = self._retry.delay_s(attempt, error)
                if self._retry.on_retry is not None:
                    self._retry.on_retry(error, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def _serve_stream(
        self, call: aio.StreamStreamCall[ingest_pb2.StreamReadingsRequest, ingest_pb2.StreamReadingsResponse]
    ) -> None:
        """Resend what is unacknowledged, then send new messages as they come, until closed."""
        self._outbox = list(self._unacked.values())
        reader = asyncio.create_task(self._read_acks(call))
        loop = asyncio.get_running_loop()
        try:
            while not reader.done():
                # Cleared before looking, so a message sealed meanwhile is never missed.
                self._work.clear()
                while self._outbox:
                    message = self._outbox.pop(0)
                    message.sent_at = loop.time()
                    request = ingest_pb2.StreamReadingsRequest(
                        sequence=message.sequence, readings=message.readings
                    )
                    try:
                        await call.write(request)
                    except (grpc.RpcError, asyncio.InvalidStateError):
                        # The call is over: its status is what the reader raises below.
                        self._outbox.insert(0, message)
                        break
                else:
                    if self._closing and not self._unacked:
                        await call.done_writing()
                        break
                    waiter = asyncio.ensure_future(self._work.wait())
                    await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                break
            await reader
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.RpcError, ClientError):
                    await reader

    async def _read_acks(
        self, call: aio.StreamStreamCall[ingest_pb2.StreamReadingsRequest, ingest_pb2.StreamReadingsResponse]
    ) -> None:
        while True:
            response = await call.read()
            if response is aio.EOF:
                if self._unacked and not self._closing:
                    raise ClientError(grpc.StatusCode.UNAVAILABLE, "the server ended the stream early")
                return
            assert isinstance(response, ingest_pb2.StreamReadingsResponse)
            await self._acknowledge(response)

    async def _acknowledge(self, response: ingest_pb2.StreamReadingsResponse) -> None:
        message = self._unacked.pop(response.sequence, None)
        if message is None:
            raise ClientError(
                grpc.StatusCode.INTERNAL, f"acknowledgement for unknown sequence {response.sequence}"
            )
        self._unacked_readings -= len(message.readings)
        self._acked_through = max(self._acked_through, response.sequence)
        self.report.add(response.summary, message.first_index)
        if self._on_ack is not None:
            latency = asyncio.get_running_loop().time() - message.sent_at
            self._on_ack(
                Uploader.Ack(
                    message.sequence, message.first_index, len(message.readings), response.summary, latency
                )
            )
        async with self._changed:
            self._changed.notify_all()
        if self._closing and not self._unacked:
            self._work.set()

    async def _fail(self, error: ClientError) -> None:
        self._failure = error
        _log.error("upload failed for good: %s", error)
        async with self._changed:
            self._changed.notify_all()


def _as_client_error(failure: Exception) -> ClientError:
    if isinstance(failure, grpc.RpcError):
        return ClientError.from_rpc_error(failure)
    return ClientError(grpc.StatusCode.UNKNOWN, f"{type(failure).__name__}: {failure}")
