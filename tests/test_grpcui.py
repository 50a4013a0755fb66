"""grpcui, the web page that takes the place of the original's Swagger UI, against a
real server through reflection alone: every service on its page, and our error
details decoded when it invokes an RPC."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import re
import shutil
import socket
import urllib.request
from collections.abc import AsyncIterator

import pytest

from energy_server.app import RunningServer
from tests.test_reflection import VERSIONS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def grpcui(server: RunningServer) -> AsyncIterator[str]:
    binary = shutil.which("grpcui")
    assert binary, "grpcui is not on PATH: `make tools` builds it into .tools/bin"
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "-plaintext",
        "-open-browser=false",
        "-bind",
        "127.0.0.1",
        "-port",
        str(port),
        f"127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            # It prints its address once it has read the contract and listens.
            line = await process.stdout.readline()
        assert b"available at" in line, line
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


def _get(opener: urllib.request.OpenerDirector, url: str) -> str:
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


async def test_grpcui_shows_every_service_with_its_comments(grpcui: str, server: RunningServer) -> None:
    page = await asyncio.to_thread(_get, urllib.request.build_opener(), f"{grpcui}/")
    offered = set(re.findall(r'<option value="([\w.]+)">', page))
    assert offered >= {
        "energy.v1.IngestService",
        "energy.v1.AnalyticsService",
        "energy.v1.MetricsService",
        "grpc.health.v1.Health",
        # grpcui lists one reflection service: it hides v1alpha beside v1.
        VERSIONS[0],
    }
    assert "Stores meter and vehicle readings durably and exactly once." in page


def _invoke(base: str, method: str, request: dict[str, object]) -> dict[str, object]:
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    _get(opener, f"{base}/")
    (token,) = [cookie.value for cookie in cookies if cookie.name == "_grpcui_csrf_token"]
    assert token is not None
    call = urllib.request.Request(
        f"{base}/invoke/{method}",
        data=json.dumps({"metadata": [], "data": [request]}).encode(),
        headers={"content-type": "application/json", "x-grpcui-csrf-token": token},
    )
    with opener.open(call, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


async def test_grpcui_decodes_the_bad_request_of_a_rejected_call(grpcui: str) -> None:
    answer = await asyncio.to_thread(
        _invoke,
        grpcui,
        "energy.v1.IngestService.IngestReadings",
        {
            "readings": [
                {
                    "meter": {
                        "meterId": "METER-UI",
                        "kwhConsumedAc": -1,
                        "voltage": 230,
                        "timestamp": "2026-02-11T10:30:00Z",
                    }
                }
            ]
        },
    )
    error = answer["error"]
    assert isinstance(error, dict)
    assert error["name"] == "InvalidArgument"
    (detail,) = error["details"]
    assert detail["message"]["@type"] == "type.googleapis.com/google.rpc.BadRequest", detail
    assert detail["message"]["field_violations"][0]["field"] == "readings[0].meter.kwh_consumed_ac"
