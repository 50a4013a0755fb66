"""IngestServicer: the three ingest shapes of `energy.v1.IngestService`.

All three validate each message, hand its valid readings to the shared
GroupCommitter and answer only after the commit; they differ in how
messages and answers pair up.

Every message read takes its size from the server's request budget (one
`Capacity` over all calls) until its readings are committed, and a stream
reads its next message only once the previous one was admitted: memory
for requests is bounded for the whole server, not per stream. What a
committed message leaves behind until its answer is sent is its summary.

A large message is validated on a thread of its own (see
VALIDATED_OFF_LOOP_FROM): validation is pure Python at about 10 µs a
reading, and a fleet reconnecting at once admits hundreds of 500-reading
messages in one turn of the event loop; judged on the loop, they held health
checks and every other call for seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from google.protobuf import message as protobuf_message
from grpc import aio

from energy.v1 import ingest_pb2, ingest_pb2_grpc
from energy_server.admission import Capacity
from energy_server.call_boundary import count_readings
from energy_server.convert import SummaryBuilder, ValidatedMessage, check_reading_count, validate_readings
from energy_server.domain import FieldViolation
from energy_server.errors import InvalidInput, StreamIdle
from energy_server.group_commit import GroupCommitter
from energy_server.metrics import ServerMetrics

__all__ = ["VALIDATED_OFF_LOOP_FROM", "IngestLimits", "IngestServicer"]

# Messages of at least this many readings are validated off the event loop. Below
# it a thread hop (about 0.1 ms) costs more than the loop gets back: on the slow
# 2-core machine of 2026-12-07, 64 readings took 0.64 ms to validate and 500 took 4.7 ms.
VALIDATED_OFF_LOOP_FROM: Final = 64

_Request = TypeVar("_Request", bound=protobuf_message.Message)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """The settings that shape what one call may send."""

    clock_skew_allowance: timedelta
    max_readings_per_message: int
    stream_window: int
    stream_idle_timeout_s: float
    # The oldest timestamp a reading may carry at a given instant: the raw
    # retention horizon (None keeps everything).
    earliest_reading: Callable[[datetime], datetime | None] = lambda _now: None


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """Validates readings and stores them through the group committer."""

    def __init__(
        self,
        committer: GroupCommitter,
        limits: IngestLimits,
        metrics: ServerMetrics,
        request_budget: Capacity,
        validation_thread: Executor,
    ) -> None:
        self._committer = committer
        self._validation_thread = validation_thread
        self._limits = limits
        self._metrics = metrics
        self._budget = request_budget

    async def _admit(self, request: protobuf_message.Message) -> int:
        """Take the request's size from the budget (waiting briefly); returns it."""
        size = request.ByteSize()
        await self._budget.acquire(size)
        return size

    async def _validate(self, readings: Any) -> ValidatedMessage:
        """Every reading judged; a large message off the event loop."""
        check_reading_count(len(readings), self._limits.max_readings_per_message)
        count_readings(len(readings))
        now = datetime.now(UTC)
        judge = functools.partial(
            validate_readings,
            readings,
            now,
            self._limits.clock_skew_allowance,
            self._limits.earliest_reading(now),
        )
        if len(readings) < VALIDATED_OFF_LOOP_FROM:
            validated = judge()
        else:
            # Nothing on the loop touches the request meanwhile: its reader awaits this.
            validated = await asyncio.get_running_loop().run_in_executor(self._validation_thread, judge)
        self._metrics.record_rejected(len(validated.rejections))
        return validated

    async def _store(self, validated: ValidatedMessage, size: int, offset: int = 0) -> SummaryBuilder:
        """Commit a message's valid readings; its summary, with indexes from `offset`.

        Gives the message's share of the budget back however it ends. Only the
        summary outlives the commit: the readings are freed with this frame.
        """
        try:
            outcomes = await self._committer.write(validated.readings)
        finally:
            self._budget.release(size)
        summary = SummaryBuilder()
        summary.add(validated, outcomes, offset)
        return summary

    async def _start_store(self, readings: Any, size: int, offset: int = 0) -> asyncio.Task[SummaryBuilder]:
        """Validate, then `_store` as a task of its own, started now (for read-ahead).

        Validation is awaited here, before the next message is read, so a
        stream's writes start in the order of its messages, as they did when
        every message was validated on the loop.
        """
        try:
            validated = await self._validate(readings)
        except BaseException:
            self._budget.release(size)
            raise
        task = asyncio.ensure_future(self._store(validated, size, offset))
        # A stream that failed or went away leaves its writes to finish unawaited;
        # their errors were told to nobody on purpose and must not be logged as lost.
        task.add_done_callback(_observe)
        return task

    async def IngestReadings(
        self,
        request: ingest_pb2.IngestReadingsRequest,
        context: aio.ServicerContext[ingest_pb2.IngestReadingsRequest, ingest_pb2.IngestReadingsResponse],
    ) -> ingest_pb2.IngestReadingsResponse:
        if not request.readings:
            message = "a request must carry at least one reading"
            raise InvalidInput(message, [FieldViolation("readings", message)])
        size = await self._admit(request)
        try:
            validated = await self._validate(request.readings)
            if not validated.readings:
                raise InvalidInput(
                    f"all {len(request.readings)} readings are invalid", validated.bad_request_violations()
                )
        except BaseException:
            self._budget.release(size)
            raise
        summary = await self._store(validated, size)
        return ingest_pb2.IngestReadingsResponse(summary=summary.to_proto())

    async def UploadReadings(
        self,
        request_iterator: AsyncIterator[ingest_pb2.UploadReadingsRequest],
        context: aio.ServicerContext[ingest_pb2.UploadReadingsRequest, ingest_pb2.UploadReadingsResponse],
    ) -> ingest_pb2.UploadReadingsResponse:
        summary = SummaryBuilder()
        in_flight: collections.deque[asyncio.Task[SummaryBuilder]] = collections.deque()
        offset = 0
        try:
            async for request in self._within_idle_timeout(request_iterator):
                size = await self._admit(request)
                in_flight.append(await self._start_store(request.readings, size, offset))
                offset += len(request.readings)
                # Bounded read-ahead: a fast uploader waits for its oldest commit.
                while len(in_flight) >= self._limits.stream_window:
                    summary.merge(await in_flight.popleft())
            while in_flight:
                summary.merge(await in_flight.popleft())
        finally:
            await _settle(in_flight)
        return ingest_pb2.UploadReadingsResponse(summary=summary.to_proto())

    async def StreamReadings(
        self,
        request_iterator: AsyncIterator[ingest_pb2.StreamReadingsRequest],
        context: aio.ServicerContext[ingest_pb2.StreamReadingsRequest, ingest_pb2.StreamReadingsResponse],
    ) -> AsyncIterator[ingest_pb2.StreamReadingsResponse]:
        # The reader runs ahead of the acks by up to `stream_window` requests;
        # a full queue stops it reading, which is HTTP/2 flow control for the client.
        queue: asyncio.Queue[tuple[int, asyncio.Task[SummaryBuilder]] | BaseException | None] = asyncio.Queue(
            self._limits.stream_window
        )
        reader = asyncio.create_task(self._read_stream(request_iterator, queue))
        current: list[asyncio.Task[SummaryBuilder]] = []
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                sequence, store = item
                current.append(store)
                summary = await store
                current.pop()
                yield ingest_pb2.StreamReadingsResponse(sequence=sequence, summary=summary.to_proto())
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            while not queue.empty():
                leftover = queue.get_nowait()
                if isinstance(leftover, tuple):
                    current.append(leftover[1])
            await _settle(current)

    async def _read_stream(
        self,
        request_iterator: AsyncIterator[ingest_pb2.StreamReadingsRequest],
        queue: asyncio.Queue[tuple[int, asyncio.Task[SummaryBuilder]] | BaseException | None],
    ) -> None:
        previous: int | None = None
        try:
            async for request in self._within_idle_timeout(request_iterator):
                if previous is not None and request.sequence <= previous:
                    message = (
                        f"sequence must increase within a stream: got {request.sequence} after {previous}"
                    )
                    raise InvalidInput(message, [FieldViolation("sequence", message)])
                previous = request.sequence
                size = await self._admit(request)
                await queue.put((request.sequence, await self._start_store(request.readings, size)))
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # handed to the acking side, which ends the call
            await queue.put(error)
            return
        await queue.put(None)

    async def _within_idle_timeout(self, requests: AsyncIterator[_Request]) -> AsyncIterator[_Request]:
        """The requests of a stream; StreamIdle when the client goes silent too long."""
        iterator = aiter(requests)
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
            # cancellation that lands as the message arrives, and the stream's
            # reader then outlives its call (seen as a stuck stream when the
            # database went down mid-upload).
            try:
                async with asyncio.timeout(self._limits.stream_idle_timeout_s):
                    request = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise StreamIdle(
                    f"no message for {self._limits.stream_idle_timeout_s:g} s; stream closed"
                ) from None
            yield request


def _observe(task: asyncio.Task[SummaryBuilder]) -> None:
    if not task.cancelled():
        task.exception()


async def _settle(tasks: Iterable[asyncio.Task[SummaryBuilder]]) -> None:
    """Wait for writes a failed call started, so none outlives its call unseen.

    They are not cancelled: a write already queued commits or fails as a
    whole, and the client, told nothing, resends and meets duplicates.
    """
    pending = list(tasks)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
