"""What an operator wires into a stack: a request id per call (in the answer's
metadata, in the call's log lines and in an INTERNAL message), JSON log lines,
and the Prometheus names the ecosystem's gRPC dashboards expect."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import grpc
import pytest
from grpc import aio

from energy.v1 import ingest_pb2, ingest_pb2_grpc
from energy_server.app import create_server
from tests.conftest import settings_for_tests
from tests.processes import ServerProcess
from tests.support import BASE_TIME, meter
from tests.test_metrics import _sample, _scrape
from tests.test_unary import rejecting_database_url  # noqa: F401 (a fixture)


def _request_id(metadata: aio.Metadata | None) -> str | None:
    for key, value in metadata or ():
        if key == "x-request-id":
            return str(value)
    return None


async def test_each_call_has_a_request_id_in_its_answer_and_its_log_line(
    ingest: ingest_pb2_grpc.IngestServiceAsyncStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="energy_server.rpc")
    request = ingest_pb2.IngestReadingsRequest(readings=[meter("M-RID", BASE_TIME)])
    given = ingest.IngestReadings(request, metadata=(("x-request-id", "checkout-42"),))
    await given
    assert _request_id(await given.trailing_metadata()) == "checkout-42"
    made = ingest.IngestReadings(request)  # a duplicate now, and no id of the caller's
    await made
    generated = _request_id(await made.trailing_metadata())
    assert generated is not None
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    # An id that is not one (too long, spaces) is replaced, not echoed.
    odd = ingest.IngestReadings(request, metadata=(("x-request-id", "x" * 200),))
    await odd
    assert re.fullmatch(r"[0-9a-f]{32}", _request_id(await odd.trailing_metadata()) or "")
    lines = [r.getMessage() for r in caplog.records if r.name == "energy_server.rpc"]
    assert any("request_id=checkout-42" in line for line in lines), lines
    assert any(f"request_id={generated}" in line for line in lines), lines
    # Refused calls carry it too.
    with pytest.raises(aio.AioRpcError) as refused:
        await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest(), metadata=(("x-request-id", "bad-1"),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _request_id(refused.value.trailing_metadata()) == "bad-1"


async def test_an_internal_answer_names_the_request_id_that_finds_its_traceback(
    rejecting_database_url: str,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await create_server(settings_for_tests(), rejecting_database_url)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(aio.AioRpcError) as raised:
                await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
                    ingest_pb2.IngestReadingsRequest(readings=[meter("REJECTED", BASE_TIME)]),
                    metadata=(("x-request-id", "incident-7"),),
                )
    finally:
        await running.stop(0)
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "request id incident-7" in (raised.value.details() or "")
    assert "trigger" not in (raised.value.details() or "")
    assert _request_id(raised.value.trailing_metadata()) == "incident-7"
    tracebacks = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert tracebacks, caplog.records


async def test_json_log_lines_carry_the_request_id(database_url: str) -> None:
    server = ServerProcess(database_url, {"ENERGY_LOG_FORMAT": "json"})
    port = await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await ingest_pb2_grpc.IngestServiceStub(channel).IngestReadings(
            ingest_pb2.IngestReadingsRequest(readings=[meter("M-JSON", BASE_TIME)]),
            metadata=(("x-request-id", "json-1"),),
        )
    assert await server.stop() == 0
    entries = [json.loads(line) for line in "".join(server.log).splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    (call,) = [entry for entry in entries if entry.get("request_id") == "json-1"]
    assert call["logger"] == "energy_server.rpc"
    assert "method=/energy.v1.IngestService/IngestReadings" in call["message"]


async def test_prometheus_has_the_standard_grpc_process_and_build_metrics(database_url: str) -> None:
    running = await create_server(settings_for_tests(metrics_port=0), database_url)
    try:
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest(readings=[meter("M-P", BASE_TIME)]))
            with pytest.raises(aio.AioRpcError):
                await ingest.IngestReadings(ingest_pb2.IngestReadingsRequest())
        assert running.metrics_port is not None
        text = await asyncio.to_thread(_scrape, running.metrics_port)
    finally:
        await running.stop(0)
    labels = 'grpc_method="IngestReadings",grpc_service="energy.v1.IngestService",grpc_type="unary"'
    assert _sample(text, "grpc_server_started_total", labels) == 2
    assert _sample(text, "grpc_server_handled_total", f'grpc_code="OK",{labels}') == 1
    assert _sample(text, "grpc_server_handled_total", f'grpc_code="INVALID_ARGUMENT",{labels}') == 1
    assert _sample(text, "grpc_server_handling_seconds_count", labels) == 2
    assert _sample(text, "grpc_server_handling_seconds_bucket", f'{labels},le="+Inf"') == 2
    assert _sample(text, "process_resident_memory_bytes") > 0
    assert re.search(r'^energy_build_info\{grpcio="[^"]+",python="[^"]+",version="[^"]+"\} 1\.0$', text, re.M)
