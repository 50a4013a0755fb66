"""A load process for the ingest benchmark: one shape, fixed for a duration.

Messages are built and serialized before the clock starts, so the figure is
the server's and not this process's protobuf cost. Every reading is unique
(distinct device and timestamp), so every acknowledged reading is a new row.
Prints one JSON object: readings acknowledged, seconds, ack latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from grpc import aio

from energy.v1 import ingest_pb2, reading_pb2

START = datetime(2026, 1, 1, tzinfo=UTC)


def _readings(first: int, count: int, devices: int, start: datetime = START) -> list[reading_pb2.Reading]:
    readings = []
    for n in range(first, first + count):
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(start + timedelta(seconds=n // devices))
        device = n % devices
        if n % 2:
            readings.append(
                reading_pb2.Reading(
                    meter=reading_pb2.MeterReading(
                        meter_id=f"M-{device:05d}", kwh_consumed_ac=0.25, voltage=230.0, timestamp=stamp
                    )
                )
            )
        else:
            readings.append(
                reading_pb2.Reading(
                    vehicle=reading_pb2.VehicleReading(
                        vehicle_id=f"V-{device:05d}",
                        soc=50.0,
                        kwh_delivered_dc=0.21,
                        battery_temp=31.0,
                        timestamp=stamp,
                    )
                )
            )
    return readings


async def _stream(
    channel: aio.Channel,
    messages: list[bytes],
    per_message: int,
    window: int,
    deadline: float,
    latencies: list[float],
) -> int:
    # Pre-serialized requests go out as they are: no serializer on this method.
    call: Any = channel.stream_stream("/energy.v1.IngestService/StreamReadings")()
    sent_at: dict[int, float] = {}
    acked = 0
    credits = asyncio.Semaphore(window)

    async def send() -> None:
        for sequence, body in enumerate(messages, 1):
            await credits.acquire()
            if time.perf_counter() >= deadline:
                break
            sent_at[sequence] = time.perf_counter()
            await call.write(body)
        await call.done_writing()

    sender = asyncio.create_task(send())
    while (raw := await call.read()) is not aio.EOF:
        ack = ingest_pb2.StreamReadingsResponse.FromString(raw)
        latencies.append(time.perf_counter() - sent_at.pop(ack.sequence))
        acked += per_message
        credits.release()
    await sender
    return acked


async def _unary(
    channel: aio.Channel, messages: list[bytes], per_message: int, deadline: float, latencies: list[float]
) -> int:
    method: Any = channel.unary_unary("/energy.v1.IngestService/IngestReadings")
    acked = 0
    for body in messages:
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        await method(body)
        latencies.append(time.perf_counter() - started)
        acked += per_message
    return acked


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--shape", choices=("stream", "unary"), required=True)
    parser.add_argument("--per-message", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="streams or concurrent unary callers")
    parser.add_argument("--window", type=int, default=8, help="requests in flight per stream")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--budget", type=int, default=600_000, help="readings prepared per worker")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--offset", type=int, default=0, help="first reading number (distinct runs)")
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=START,
        help="timestamp of reading 0 (ISO 8601); reading n is n // devices seconds later",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="TCP connections the workers are spread over (server processes sharing a port get connections)",
    )
    args = parser.parse_args()

    per_worker = max(1, args.budget // args.per_message)
    workers = []
    for w in range(args.concurrency):
        first = args.offset + w * per_worker * args.per_message
        bodies = []
        for m in range(per_worker):
            readings = _readings(first + m * args.per_message, args.per_message, args.devices, args.start)
            if args.shape == "stream":
                bodies.append(
                    ingest_pb2.StreamReadingsRequest(sequence=m + 1, readings=readings).SerializeToString()
                )
            else:
                bodies.append(ingest_pb2.IngestReadingsRequest(readings=readings).SerializeToString())
        workers.append(bodies)

    latencies: list[float] = []
    # A local subchannel pool per channel: otherwise channels to one target share a connection.
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
    async with contextlib.AsyncExitStack() as channels:
        connections = [
            await channels.enter_async_context(aio.insecure_channel(args.target, options=options))
            for _ in range(args.connections)
        ]
        for channel in connections:
            await channel.channel_ready()
        print("load: messages prepared, sending", file=sys.stderr, flush=True)
        started = time.perf_counter()
        deadline = started + args.duration

        def send(worker: int, messages: list[bytes]) -> Awaitable[int]:
            channel = connections[worker % len(connections)]
            if args.shape == "stream":
                return _stream(channel, messages, args.per_message, args.window, deadline, latencies)
            return _unary(channel, messages, args.per_message, deadline, latencies)

        counts = await asyncio.gather(*(send(i, messages) for i, messages in enumerate(workers)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        json.dumps(
            {
                "readings": sum(counts),
                "seconds": elapsed,
                "readings_per_s": sum(counts) / elapsed,
                "exhausted_budget": any(
                    len(b) * args.per_message <= c for b, c in zip(workers, counts, strict=True)
                ),
                "ack_p50_ms": quantiles[49] * 1000,
                "ack_p99_ms": quantiles[98] * 1000,
            }
        )
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except grpc.aio.AioRpcError as error:
        raise SystemExit(f"load failed: {error.code().name}: {error.details()}") from None
