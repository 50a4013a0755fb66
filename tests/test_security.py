"""TLS, mutual TLS, bearer tokens with scopes, and reflection that can be turned off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import trustme
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from energy import ClientError, EnergyClient, Tls, meter
from energy_server.app import RunningServer, create_server, describe_security
from energy_server.auth import Scope, new_token
from energy_server.settings import Settings, SettingsError
from tests.conftest import REPO_ROOT, settings_for_tests
from tests.processes import ServerProcess
from tests.support import BASE_TIME


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    authority = trustme.CA()
    server = authority.issue_cert("localhost", "127.0.0.1")
    client = authority.issue_cert("firmware-0001")
    paths = {
        "ca": authority.cert_pem,
        "server_cert": server.cert_chain_pems[0],
        "server_key": server.private_key_pem,
        "client_cert": client.cert_chain_pems[0],
        "client_key": client.private_key_pem,
        "other_ca": trustme.CA().cert_pem,
    }
    written = {}
    for name, blob in paths.items():
        path = folder / f"{name}.pem"
        blob.write_to_path(str(path))
        written[name] = path
    return Pki(**written)


TOKENS = {scope: new_token(f"{scope.value}-client", [scope]) for scope in Scope}


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "tokens"
    lines = ["# name scopes digest", *(line for _, line in TOKENS.values())]
    path.write_text("\n".join(lines) + "\n")
    return path


def token(scope: Scope) -> str:
    return TOKENS[scope][0]


async def _started(settings: Settings, database_url: str) -> AsyncIterator[RunningServer]:
    running = await create_server(settings, database_url)
    try:
        yield running
    finally:
        await running.stop(0)


@pytest.fixture
async def tls_server(database_url: str, pki: Pki) -> AsyncIterator[RunningServer]:
    settings = settings_for_tests(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    async for running in _started(settings, database_url):
        yield running


@pytest.fixture
async def mtls_server(database_url: str, pki: Pki) -> AsyncIterator[RunningServer]:
    settings = settings_for_tests(
        tls_cert_file=pki.server_cert, tls_key_file=pki.server_key, tls_client_ca_file=pki.ca
    )
    async for running in _started(settings, database_url):
        yield running


@pytest.fixture
async def auth_server(database_url: str, tokens_file: Path) -> AsyncIterator[RunningServer]:
    async for running in _started(settings_for_tests(auth_tokens_file=tokens_file), database_url):
        yield running


async def _ingest_one(client: EnergyClient) -> int:
    summary = await client.ingest([meter("M-TLS", 1.0, 230.0, BASE_TIME)])
    return summary.accepted_count + summary.duplicate_count


async def test_tls_server_serves_a_client_that_trusts_its_ca(tls_server: RunningServer, pki: Pki) -> None:
    tls = Tls.from_files(ca=pki.ca, server_name="localhost")
    async with EnergyClient(f"127.0.0.1:{tls_server.port}", tls=tls) as client:
        assert await _ingest_one(client) == 1


async def test_tls_server_refuses_plaintext_and_untrusting_clients(
    tls_server: RunningServer, pki: Pki
) -> None:
    plaintext = EnergyClient(f"127.0.0.1:{tls_server.port}", timeout_s=2)
    untrusting = EnergyClient(
        f"127.0.0.1:{tls_server.port}",
        tls=Tls.from_files(ca=pki.other_ca, server_name="localhost"),
        timeout_s=2,
    )
    for client in (plaintext, untrusting):
        async with client:
            with pytest.raises(ClientError) as raised:
                await _ingest_one(client)
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_needs_a_client_certificate_from_the_configured_ca(
    mtls_server: RunningServer, pki: Pki
) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    with_certificate = Tls.from_files(pki.ca, pki.client_cert, pki.client_key, server_name="localhost")
    async with EnergyClient(target, tls=with_certificate) as client:
        assert await _ingest_one(client) == 1
    without = Tls.from_files(ca=pki.ca, server_name="localhost")
    async with EnergyClient(target, tls=without, timeout_s=2) as client:
        with pytest.raises(ClientError) as raised:
            await _ingest_one(client)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (Scope.INGEST, {"ingest"}),
        (Scope.ANALYTICS, {"analytics"}),
        (Scope.ADMIN, {"link", "metrics"}),
    ],
)
async def test_each_scope_allows_exactly_its_calls(
    auth_server: RunningServer, scope: Scope, allowed: set[str]
) -> None:
    async with EnergyClient(f"127.0.0.1:{auth_server.port}", token=token(scope), timeout_s=5) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "ingest": lambda: _ingest_one(client),
            "analytics": lambda: client.get_meter_fleet_summary(),
            "link": lambda: client.link_vehicle("V-AUTH", "M-AUTH"),
            "metrics": lambda: client.get_server_metrics(),
        }
        outcome = {}
        for name, call in calls.items():
            try:
                await call()
                outcome[name] = "ok"
            except ClientError as error:
                outcome[name] = error.code.name
    assert outcome == {name: "ok" if name in allowed else "PERMISSION_DENIED" for name in calls}


async def test_missing_or_unknown_token_is_unauthenticated_and_nothing_is_stored(
    auth_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    target = f"127.0.0.1:{auth_server.port}"
    caplog.set_level(logging.DEBUG)
    for presented in (None, "not-a-token"):
        async with EnergyClient(target, token=presented, timeout_s=5) as client:
            with pytest.raises(ClientError) as raised:
                await _ingest_one(client)
            assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert "Bearer" in raised.value.message or "not valid" in raised.value.message
    async with EnergyClient(target, token=token(Scope.ADMIN)) as client:
        metrics = await client.get_server_metrics()
    assert metrics.commits.readings_committed == 0
    # Logs name the caller, never a token.
    logged = caplog.text
    assert "caller=admin-client" in logged
    assert all(secret not in logged for secret, _ in TOKENS.values())
    assert "not-a-token" not in logged


async def test_health_stays_open_with_authentication_on(auth_server: RunningServer) -> None:
    async with aio.insecure_channel(f"127.0.0.1:{auth_server.port}") as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def _list_services(port: int) -> list[str]:
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for response in stub.ServerReflectionInfo(iter([request])):
            return [service.name for service in response.list_services_response.service]
    return []


async def test_reflection_can_be_turned_off(database_url: str, server: RunningServer) -> None:
    assert "energy.v1.IngestService" in await _list_services(server.port)
    async for running in _started(settings_for_tests(reflection=False), database_url):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _list_services(running.port)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_start_up_line_says_how_the_server_is_secured(pki: Pki, tokens_file: Path) -> None:
    assert describe_security(Settings()) == "plaintext, no authentication: for local development"
    secured = Settings(
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca,
        auth_tokens_file=tokens_file,
        reflection=False,
    )
    line = describe_security(secured)
    assert line.startswith("mutual TLS (client certificates required), bearer tokens from ")
    assert line.endswith(", reflection off")
    assert "BEGIN" not in line


async def test_unreadable_security_files_fail_the_start_naming_them(
    database_url: str, tmp_path: Path
) -> None:
    bad_tokens = tmp_path / "tokens"
    bad_tokens.write_text("someone ingest,root sha256:" + "0" * 64 + "\n")
    with pytest.raises(SettingsError, match=r"tokens:1: scopes are"):
        await create_server(settings_for_tests(auth_tokens_file=bad_tokens), database_url)
    with pytest.raises(SettingsError, match="No such file"):
        await create_server(
            settings_for_tests(tls_cert_file=tmp_path / "none.pem", tls_key_file=tmp_path / "none.key"),
            database_url,
        )
    with pytest.raises(SettingsError, match="go together"):
        settings_for_tests(tls_cert_file=tmp_path / "cert.pem")


async def test_make_token_prints_a_token_its_line_grants(database_url: str, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        "-C",
        str(REPO_ROOT),
        "token",
        "NAME=fleet-7",
        "SCOPES=ingest,analytics",
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode == 0
    lines = out.decode().splitlines()
    minted = lines[-3].rsplit(": ", 1)[1]
    tokens = tmp_path / "tokens"
    tokens.write_text(lines[-1] + "\n")
    assert lines[-1].startswith("fleet-7 ingest,analytics sha256:")
    assert minted not in lines[-1]
    async for running in _started(settings_for_tests(auth_tokens_file=tokens), database_url):
        async with EnergyClient(f"127.0.0.1:{running.port}", token=minted) as client:
            assert await _ingest_one(client) == 1
            await client.get_meter_fleet_summary()


async def test_tokens_over_plaintext_start_with_a_warning(database_url: str, tokens_file: Path) -> None:
    plaintext = ServerProcess(database_url, {"ENERGY_AUTH_TOKENS_FILE": str(tokens_file)})
    await plaintext.start()
    assert await plaintext.stop() == 0
    warnings = [line for line in plaintext.log if " WARNING " in line]
    assert any("tokens cross the network in clear" in line for line in warnings), plaintext.log
