"""Anchor T: a server with the service's proto whose handlers store nothing.

Same grpc.aio server, same options, same message sizes: every request is
decoded and answered (accepted = its reading count) at once. What the load
client gets from it is the transport ceiling of one Python server process.
Prints `port N` on stdout once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

import energy_server  # noqa: F401  (switches off gRPC fork handlers first)
from energy.v1 import ingest_pb2, ingest_pb2_grpc


class NoOpIngest(ingest_pb2_grpc.IngestServiceServicer):
    async def IngestReadings(
        self, request: ingest_pb2.IngestReadingsRequest, context: aio.ServicerContext[Any, Any]
    ) -> ingest_pb2.IngestReadingsResponse:
        return ingest_pb2.IngestReadingsResponse(
            summary=ingest_pb2.IngestSummary(accepted_count=len(request.readings))
        )

    async def UploadReadings(
        self,
        request_iterator: AsyncIterator[ingest_pb2.UploadReadingsRequest],
        context: aio.ServicerContext[Any, Any],
    ) -> ingest_pb2.UploadReadingsResponse:
        count = 0
        async for request in request_iterator:
            count += len(request.readings)
        return ingest_pb2.UploadReadingsResponse(summary=ingest_pb2.IngestSummary(accepted_count=count))

    async def StreamReadings(
        self,
        request_iterator: AsyncIterator[ingest_pb2.StreamReadingsRequest],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.StreamReadingsResponse]:
        async for request in request_iterator:
            yield ingest_pb2.StreamReadingsResponse(
                sequence=request.sequence,
                summary=ingest_pb2.IngestSummary(accepted_count=len(request.readings)),
            )


async def main() -> None:
    server = aio.server(options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)])
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(NoOpIngest(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"port {port}", flush=True)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await stopping.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
