"""One client process of the open-streams benchmark (bench/streams.py).

Holds `--streams` bidirectional StreamReadings streams, one per simulated
charger, spread over `--connections` connections; each sends one reading
every `--interval` seconds and waits for its ack. Starts are spread over
`--ramp` seconds. Once every stream has had its first ack it prints `open` to
stderr, measures for `--duration` seconds, closes its streams and prints one
JSON object: acks in the measured window, their latencies, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime

import grpc
from grpc import aio

from energy.v1 import ingest_pb2, ingest_pb2_grpc, reading_pb2


def _request(sequence: int, device: str) -> ingest_pb2.StreamReadingsRequest:
    reading = reading_pb2.Reading(
        meter=reading_pb2.MeterReading(meter_id=device, kwh_consumed_ac=0.25, voltage=230.0)
    )
    reading.meter.timestamp.FromDatetime(datetime.now(UTC))
    return ingest_pb2.StreamReadingsRequest(sequence=sequence, readings=[reading])


class Tally:
    def __init__(self, streams: int) -> None:
        self.opened = 0
        self.all_open = asyncio.Event()
        self.streams = streams
        self.measure_from = float("inf")
        self.measure_until = float("inf")
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}

    def open_one(self) -> None:
        self.opened += 1
        if self.opened == self.streams:
            self.all_open.set()


async def _charger(
    stub: ingest_pb2_grpc.IngestServiceAsyncStub, device: str, delay: float, interval: float, tally: Tally
) -> None:
    await asyncio.sleep(delay)
    call = stub.StreamReadings()
    sequence = 0
    first = True
    next_at = time.monotonic()
    try:
        while time.monotonic() < tally.measure_until:
            sequence += 1
            sent = time.monotonic()
            await call.write(_request(sequence, device))
            ack = await call.read()
            if not isinstance(ack, ingest_pb2.StreamReadingsResponse) or ack.sequence != sequence:
                tally.errors["bad ack"] = tally.errors.get("bad ack", 0) + 1
                return
            now = time.monotonic()
            if tally.measure_from <= sent < tally.measure_until:
                tally.latencies.append(now - sent)
            if first:
                first = False
                tally.open_one()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await call.done_writing()
        while await call.read() is not aio.EOF:
            pass
    except grpc.aio.AioRpcError as error:
        # Before its first ack a stream may still be waiting for the server to take
        # the call (gRPC's backlog of calls not yet taken drops some when it grows).
        key = error.code().name + (" before the first ack" if first else "")
        tally.errors[key] = tally.errors.get(key, 0) + 1
        if first:
            tally.open_one()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="number of this process's first charger")
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds the stream starts are spread over")
    args = parser.parse_args()
    tally = Tally(args.streams)
    # A local subchannel pool per channel: otherwise channels to one target share a connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with contextlib.AsyncExitStack() as stack:
        channels = [
            await stack.enter_async_context(aio.insecure_channel(args.target, options=options))
            for _ in range(args.connections)
        ]
        stubs: list[ingest_pb2_grpc.IngestServiceAsyncStub] = [
            ingest_pb2_grpc.IngestServiceStub(channel) for channel in channels
        ]
        chargers = [
            asyncio.create_task(
                _charger(
                    stubs[i % len(stubs)],
                    f"M-OPEN-{args.first + i:06d}",
                    args.ramp * i / args.streams,
                    args.interval,
                    tally,
                )
            )
            for i in range(args.streams)
        ]
        await tally.all_open.wait()
        print("open", file=sys.stderr, flush=True)
        tally.measure_from = time.monotonic()
        tally.measure_until = tally.measure_from + args.duration
        lags = asyncio.create_task(_loop_lags(tally.measure_until))
        await asyncio.gather(*chargers)
    report = {"streams": args.streams, "latencies": tally.latencies, "errors": tally.errors}
    print(json.dumps({**report, "loop_lags": await lags}))


async def _loop_lags(until: float) -> list[float]:
    """How late this process's event loop wakes a 10 ms timer: the share of an
    ack's latency that is the client's own, not the server's."""
    lags = []
    while time.monotonic() < until:
        asked = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append(time.monotonic() - asked - 0.01)
    return lags


if __name__ == "__main__":
    asyncio.run(main())
