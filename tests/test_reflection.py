"""Server reflection as tools use it: both protocol versions, every kind of
symbol, descriptors with the protos' comments, and the real grpcurl; health
for every service reflection lists."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from energy.v1 import analytics_pb2, ingest_pb2, metrics_pb2, reading_pb2
from energy_server.app import RunningServer
from energy_server.reflection import DescriptorIndex
from tests.test_readme import run

VERSIONS = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
# One symbol of every kind, and the file that defines it.
SYMBOLS = {
    "energy.v1.IngestService": "energy/v1/ingest.proto",
    "energy.v1.IngestService.IngestReadings": "energy/v1/ingest.proto",
    "energy.v1.IngestService.StreamReadings": "energy/v1/ingest.proto",
    "energy.v1.AnalyticsService.GetVehiclePerformance": "energy/v1/analytics.proto",
    "energy.v1.MetricsService.GetServerMetrics": "energy/v1/metrics.proto",
    "energy.v1.MeterReading": "energy/v1/reading.proto",
    "energy.v1.MeterReading.voltage": "energy/v1/reading.proto",
    "energy.v1.Reading.kind": "energy/v1/reading.proto",
    "energy.v1.DeviceKind": "energy/v1/analytics.proto",
    "energy.v1.DEVICE_KIND_METER": "energy/v1/analytics.proto",
    "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
    "google.rpc.BadRequest": "google/rpc/error_details.proto",
    "google.rpc.BadRequest.FieldViolation": "google/rpc/error_details.proto",
    "grpc.health.v1.Health.List": "grpc_health/v1/health.proto",
    "grpc.reflection.v1.ServerReflection.ServerReflectionInfo": "grpc/reflection/v1/reflection.proto",
    "grpc.reflection.v1alpha.ServerReflection": "grpc_reflection/v1alpha/reflection.proto",
}


async def _ask(
    channel: aio.Channel, version: str, *requests: reflection_pb2.ServerReflectionRequest
) -> list[Any]:
    call = channel.stream_stream(
        f"/{version}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return [response async for response in call(iter(requests), timeout=10)]


def _files(response: Any) -> list[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]


@pytest.mark.parametrize("version", VERSIONS)
async def test_both_reflection_versions_list_every_served_service(channel: aio.Channel, version: str) -> None:
    (response,) = await _ask(channel, version, reflection_pb2.ServerReflectionRequest(list_services=""))
    assert {s.name for s in response.list_services_response.service} == {
        "energy.v1.IngestService",
        "energy.v1.AnalyticsService",
        "energy.v1.MetricsService",
        "grpc.health.v1.Health",
        *VERSIONS,
    }


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_kind_of_symbol_resolves_to_its_file_with_its_dependencies(
    channel: aio.Channel, version: str
) -> None:
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in SYMBOLS]
    responses = await _ask(channel, version, *requests)
    for (symbol, expected), response in zip(SYMBOLS.items(), responses, strict=True):
        assert response.WhichOneof("message_response") == "file_descriptor_response", symbol
        files = _files(response)
        assert files[0].name == expected, symbol
        names = {file.name for file in files}
        # Every file a returned file imports is returned too.
        assert all(set(file.dependency) <= names for file in files), symbol


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_symbols_files_and_extensions_are_not_found(channel: aio.Channel, version: str) -> None:
    responses = await _ask(
        channel,
        version,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="energy.v1.IngestService.Nope"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="energy/v1/nope.proto"),
        reflection_pb2.ServerReflectionRequest(
            file_containing_extension=reflection_pb2.ExtensionRequest(
                containing_type="energy.v1.MeterReading", extension_number=100
            )
        ),
        reflection_pb2.ServerReflectionRequest(all_extension_numbers_of_type="energy.v1.Nope"),
    )
    for response in responses:
        assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0], response
        assert response.error_response.error_message
    (known,) = await _ask(
        channel,
        version,
        reflection_pb2.ServerReflectionRequest(all_extension_numbers_of_type="energy.v1.Reading"),
    )
    assert known.all_extension_numbers_response.base_type_name == "energy.v1.Reading"
    assert list(known.all_extension_numbers_response.extension_number) == []


async def test_served_descriptors_carry_the_protos_comments(channel: aio.Channel) -> None:
    (response,) = await _ask(
        channel,
        VERSIONS[0],
        reflection_pb2.ServerReflectionRequest(file_by_filename="energy/v1/reading.proto"),
    )
    reading = _files(response)[0]
    comments = [location.leading_comments for location in reading.source_code_info.location]
    assert any("kilowatt-hours (kWh)" in comment for comment in comments)


def _without_source_info(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """`file` as the generated modules embed it: no comments, no JSON names."""
    stripped = descriptor_pb2.FileDescriptorProto()
    stripped.CopyFrom(file)
    stripped.ClearField("source_code_info")
    messages = list(stripped.message_type)
    while messages:
        message = messages.pop()
        for field in message.field:
            field.ClearField("json_name")
        messages.extend(message.nested_type)
    return stripped


def test_served_descriptors_are_the_generated_modules_descriptors() -> None:
    # The descriptor set with comments and the generated modules come from one
    # `make gen`: without the comments, each file is exactly what the module holds.
    index = DescriptorIndex.of_served_files()
    for module in (analytics_pb2, ingest_pb2, metrics_pb2, reading_pb2):
        served = index.file(module.DESCRIPTOR.name)
        assert served is not None
        stripped = _without_source_info(served)
        assert stripped == descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)


@pytest.mark.parametrize(
    ("symbol", "comment"),
    [
        ("energy.v1.IngestService", "// Stores meter and vehicle readings durably and exactly once."),
        ("energy.v1.IngestService.StreamReadings", "is a method:"),
        ("energy.v1.MeterReading", "// One report from a smart meter on the AC side of a charger."),
        ("energy.v1.MeterReading.voltage", "in volts (V)"),
    ],
)
async def test_grpcurl_describe_prints_the_comments(server: RunningServer, symbol: str, comment: str) -> None:
    code, output = await run(f"grpcurl -plaintext localhost:50051 describe {symbol}", server.port)
    assert code == 0, output
    assert comment in output
    # Every describe shows at least one comment line.
    assert "\n//" in f"\n{output}", output


async def test_grpcurl_decodes_the_bad_request_detail(server: RunningServer) -> None:
    code, output = await run(
        """grpcurl -plaintext -format-error -d '{"readings": [{"meter": {"meterId": "M",
            "kwhConsumedAc": -1, "voltage": 230, "timestamp": "2026-02-11T10:30:00Z"}}]}' \\
          localhost:50051 energy.v1.IngestService/IngestReadings""",
        server.port,
    )
    assert code != 0
    assert '"@type": "type.googleapis.com/google.rpc.BadRequest"' in output, output
    assert '"field": "readings[0].meter.kwh_consumed_ac"' in output, output


async def test_health_lists_every_service_reflection_lists(channel: aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    listed = await health.List(health_pb2.HealthListRequest(), timeout=5)
    (response,) = await _ask(channel, VERSIONS[0], reflection_pb2.ServerReflectionRequest(list_services=""))
    served = {s.name for s in response.list_services_response.service}
    assert set(listed.statuses) == {"", *served}
    assert {status.status for status in listed.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}
    for name in served:
        checked = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert checked.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(aio.AioRpcError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="energy.v1.NopeService"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_list_says_not_serving_for_every_service_once_shutting_down(
    server: RunningServer,
) -> None:
    async with aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        await server.health.shut_down()
        listed = await asyncio.wait_for(health.List(health_pb2.HealthListRequest()), 5)
    assert {status.status for status in listed.statuses.values()} == {
        health_pb2.HealthCheckResponse.NOT_SERVING
    }
