"""A storm of firmware streams against one server: many concurrent
StreamReadings calls of large messages (a fleet reconnecting after an
outage), some of which never read their acknowledgements, while health is
watched. Used by the fault suite; `python -m tests.storm --target host:port`
runs it by hand and prints what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from energy.v1 import ingest_pb2, ingest_pb2_grpc

# Every stream's readings are its own devices at increasing timestamps: all new.
_BASE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class StormReport:
    streams: int = 0
    silent_streams: int = 0
    messages_sent: int = 0
    messages_acknowledged: int = 0
    readings_acknowledged: int = 0
    # Final status of every stream, by code name.
    stream_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    # Every (stream, message number) the server acknowledged: its readings are stored.
    acknowledged: set[tuple[int, int]] = field(default_factory=set)
    health_checks: int = 0
    # Health answers other than SERVING, and checks that failed (by code name).
    health_problems: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest_health_check_s: float = 0.0
    details: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self) -> dict[str, object]:
        return {
            "streams": self.streams,
            "silent_streams": self.silent_streams,
            "messages_sent": self.messages_sent,
            "messages_acknowledged": self.messages_acknowledged,
            "readings_acknowledged": self.readings_acknowledged,
            "stream_codes": dict(self.stream_codes),
            "health_checks": self.health_checks,
            "health_problems": dict(self.health_problems),
            "slowest_health_check_s": round(self.slowest_health_check_s, 3),
            "details": dict(self.details.most_common(5)),
        }


def _message(stream: int, number: int, readings: int) -> ingest_pb2.StreamReadingsRequest:
    """Message `number` of `stream`: readings of meters STORM-<stream>-M<even i> and vehicles
    STORM-<stream>-V<odd i>, all at _BASE + `number` seconds (so `unstored` can rebuild them)."""
    at = _BASE + timedelta(seconds=number)
    request = ingest_pb2.StreamReadingsRequest(sequence=number + 1)
    for i in range(readings):
        reading = request.readings.add()
        if i % 2:
            reading.vehicle.vehicle_id = f"STORM-{stream}-V{i}"
            reading.vehicle.soc = 50.0
            reading.vehicle.kwh_delivered_dc = 0.1
            reading.vehicle.battery_temp = 30.0
            reading.vehicle.timestamp.FromDatetime(at)
        else:
            reading.meter.meter_id = f"STORM-{stream}-M{i}"
            reading.meter.kwh_consumed_ac = 0.1
            reading.meter.voltage = 230.0
            reading.meter.timestamp.FromDatetime(at)
    return request


async def unstored(database_url: str, report: StormReport, readings_per_message: int) -> int:
    """How many readings of acknowledged messages are missing from history (must be 0)."""
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        await connection.execute("CREATE TEMPORARY TABLE acked (stream int, message int)")
        async with connection.cursor().copy("COPY acked (stream, message) FROM STDIN") as copy:
            for row in report.acknowledged:
                await copy.write_row(row)
        cursor = await connection.execute(
            """
            SELECT count(*) FROM acked a, generate_series(0, %(last)s) AS i
            WHERE NOT EXISTS (
              SELECT 1 FROM meter_readings m
              WHERE i %% 2 = 0 AND m.meter_id = format('STORM-%%s-M%%s', a.stream, i)
                AND m.ts = %(base)s + make_interval(secs => a.message)
            ) AND NOT EXISTS (
              SELECT 1 FROM vehicle_readings v
              WHERE i %% 2 = 1 AND v.vehicle_id = format('STORM-%%s-V%%s', a.stream, i)
                AND v.ts = %(base)s + make_interval(secs => a.message)
            )
            """,
            {"last": readings_per_message - 1, "base": _BASE},
        )
        counted = await cursor.fetchone()
        assert counted is not None
        return int(counted[0])


async def _stream(
    channel: aio.Channel,
    number: int,
    readings: int,
    window: int,
    deadline: float,
    report: StormReport,
    *,
    read_acks: bool,
) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    room = asyncio.Semaphore(window)
    call = stub.StreamReadings()

    async def write() -> None:
        message_number = 0
        while time.monotonic() < deadline:
            if read_acks:
                await room.acquire()
            request = _message(number, message_number, readings)
            await call.write(request)
            report.messages_sent += 1
            message_number += 1
        await call.done_writing()

    writer = asyncio.create_task(write())
    try:
        if read_acks:
            async for ack in call:
                room.release()
                report.messages_acknowledged += 1
                outcomes = ack.summary
                report.readings_acknowledged += outcomes.accepted_count + outcomes.stale_count
                report.acknowledged.add((number, ack.sequence - 1))
        else:
            # A peer that never reads what the server answers, until the storm ends.
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            call.cancel()
        code = await call.code()
    except aio.AioRpcError as error:
        code = error.code()
        report.details[f"{code.name}: {error.details()}"] += 1
    finally:
        writer.cancel()
        # The writer ends with the call: cancelled, or refused by a call that is over.
        await asyncio.gather(writer, return_exceptions=True)
    report.stream_codes[code.name] += 1


def _watch_health(target: str, stop: threading.Event, report: StormReport, timeout_s: float) -> None:
    """Health/Check every quarter second from a thread and channel of its own, so
    that what it measures is the server, not this busy load generator's event loop."""
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            started = time.monotonic()
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
                if answer.status != health_pb2.HealthCheckResponse.SERVING:
                    name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
                    report.health_problems[name] += 1
            except grpc.RpcError as error:
                report.health_problems[error.code().name] += 1
            elapsed = time.monotonic() - started
            report.health_checks += 1
            report.slowest_health_check_s = max(report.slowest_health_check_s, elapsed)
            stop.wait(max(0.0, 0.25 - elapsed))


async def run_storm(
    target: str,
    *,
    streams: int = 500,
    silent_streams: int = 50,
    readings_per_message: int = 500,
    window: int = 16,
    duration_s: float = 20.0,
    channels: int = 8,
    health_timeout_s: float = 2.0,
) -> StormReport:
    """Open the streams over `channels` connections, keep them sending for
    `duration_s`, and watch health over a connection of its own."""
    report = StormReport(streams=streams, silent_streams=silent_streams)
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    opened = [aio.insecure_channel(target, options=options) for _ in range(channels)]
    stop_watching = threading.Event()
    watcher = threading.Thread(
        target=_watch_health, args=(target, stop_watching, report, health_timeout_s), daemon=True
    )
    watcher.start()
    deadline = time.monotonic() + duration_s
    try:
        await asyncio.gather(
            *(
                _stream(
                    opened[i % channels],
                    i,
                    readings_per_message,
                    window,
                    deadline,
                    report,
                    read_acks=i >= silent_streams,
                )
                for i in range(streams + silent_streams)
            ),
        )
    finally:
        stop_watching.set()
        await asyncio.to_thread(watcher.join)
        for channel in opened:
            await channel.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--silent-streams", type=int, default=50)
    parser.add_argument("--readings-per-message", type=int, default=500)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    report = asyncio.run(
        run_storm(
            args.target,
            streams=args.streams,
            silent_streams=args.silent_streams,
            readings_per_message=args.readings_per_message,
            duration_s=args.duration,
        )
    )
    print(json.dumps(report.summary(), indent=2))


if __name__ == "__main__":
    main()
