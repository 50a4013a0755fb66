"""Server reflection, v1 and v1alpha, that every gRPC tool can use.

grpcio-reflection answers from Python's descriptor pool, which cannot find
the file of a *method* (`energy.v1.IngestService.IngestReadings`: what ghz
and `grpcurl describe` ask for, grpc/grpc#34743), speaks only v1alpha, and
serves descriptors stripped of their comments. This servicer answers from
the descriptor set `make gen` writes with source info, so tools show the
units and semantics written in the protos, and from an index of every
symbol the files define: packages' services, methods, messages, fields,
oneofs, enums, enum values and extensions.

Files the protos import, the health and reflection services' own files and
`google/rpc/error_details.proto` (so grpcurl and grpcui can decode the
BadRequest and RetryInfo details of our errors) come from the descriptors
their Python modules registered, without comments.

The v1 and v1alpha protocols differ only in their package name, so both are
served by one implementation over the v1alpha messages (their wire form is
the same).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Final

import grpc
from google.protobuf import descriptor, descriptor_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import energy.v1
from energy.v1 import analytics_pb2, ingest_pb2, metrics_pb2, reading_pb2

__all__ = ["REFLECTION_SERVICES", "add_reflection_to_server"]

_V1ALPHA: Final = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name
_V1: Final = "grpc.reflection.v1.ServerReflection"
REFLECTION_SERVICES: Final = (_V1, _V1ALPHA)
_V1_FILE: Final = "grpc/reflection/v1/reflection.proto"
# The descriptor set `make gen` writes next to the generated modules.
_DESCRIPTOR_SET: Final = "descriptors.binpb"


def _v1_file(v1alpha: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection file: v1alpha's messages under the v1 package (the
    upstream files differ in nothing else a client reads)."""
    v1 = descriptor_pb2.FileDescriptorProto()
    v1.CopyFrom(v1alpha)
    v1.name = _V1_FILE
    v1.package = "grpc.reflection.v1"
    v1.ClearField("options")
    for service in v1.service:
        for method in service.method:
            method.input_type = method.input_type.replace(".v1alpha.", ".v1.")
            method.output_type = method.output_type.replace(".v1alpha.", ".v1.")
    for message in v1.message_type:
        for field in message.field:
            field.type_name = field.type_name.replace(".v1alpha.", ".v1.")
    return v1


def _symbols(file: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    """Every fully qualified name `file` defines. Enum values are scoped like
    their enum's siblings, as protobuf's C++ scoping rules say."""
    package = f"{file.package}." if file.package else ""

    def enum(scope: str, value: descriptor_pb2.EnumDescriptorProto) -> Iterator[str]:
        yield f"{scope}{value.name}"
        for number in value.value:
            yield f"{scope}{number.name}"

    def message(scope: str, value: descriptor_pb2.DescriptorProto) -> Iterator[str]:
        name = f"{scope}{value.name}"
        yield name
        inner = f"{name}."
        for field in (*value.field, *value.extension):
            yield f"{inner}{field.name}"
        for oneof in value.oneof_decl:
            yield f"{inner}{oneof.name}"
        for nested in value.nested_type:
            yield from message(inner, nested)
        for nested_enum in value.enum_type:
            yield from enum(inner, nested_enum)

    for top_message in file.message_type:
        yield from message(package, top_message)
    for top_enum in file.enum_type:
        yield from enum(package, top_enum)
    for extension in file.extension:
        yield f"{package}{extension.name}"
    for service in file.service:
        yield f"{package}{service.name}"
        for method in service.method:
            yield f"{package}{service.name}.{method.name}"


class DescriptorIndex:
    """The files reflection serves, by name and by the symbols they define."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self._files = {file.name: file for file in files}
        self._serialized = {name: file.SerializeToString() for name, file in self._files.items()}
        self._file_of_symbol = {
            symbol: file.name for file in self._files.values() for symbol in _symbols(file)
        }
        self._extensions: dict[str, dict[int, str]] = {}
        for file in self._files.values():
            for extension in _all_extensions(file):
                self._extensions.setdefault(extension.extendee.lstrip("."), {})[extension.number] = file.name

    @classmethod
    def of_served_files(cls) -> DescriptorIndex:
        with_comments = descriptor_pb2.FileDescriptorSet.FromString(
            importlib.resources.files(energy.v1).joinpath(_DESCRIPTOR_SET).read_bytes()
        )
        files = {file.name: file for file in with_comments.file}
        roots = [
            *(module.DESCRIPTOR for module in (analytics_pb2, ingest_pb2, metrics_pb2, reading_pb2)),
            health_pb2.DESCRIPTOR,
            reflection_pb2.DESCRIPTOR,
            error_details_pb2.DESCRIPTOR,
            status_pb2.DESCRIPTOR,
        ]
        for root in roots:
            _add_with_dependencies(root, files)
        files[_V1_FILE] = _v1_file(files[reflection_pb2.DESCRIPTOR.name])
        return cls(files.values())

    def file(self, name: str) -> descriptor_pb2.FileDescriptorProto | None:
        return self._files.get(name)

    def file_of_symbol(self, symbol: str) -> str | None:
        return self._file_of_symbol.get(symbol)

    def file_of_extension(self, message: str, number: int) -> str | None:
        return self._extensions.get(message, {}).get(number)

    def extension_numbers(self, message: str) -> list[int] | None:
        if self._file_of_symbol.get(message) is None:
            return None
        return sorted(self._extensions.get(message, {}))

    def with_dependencies(self, name: str) -> list[bytes]:
        """`name` first, then every file it needs, each once: a client can build
        the file's descriptors from this one answer."""
        ordered: list[str] = []
        pending = [name]
        while pending:
            current = pending.pop()
            if current in ordered or current not in self._files:
                continue
            ordered.append(current)
            pending.extend(reversed(self._files[current].dependency))
        return [self._serialized[file] for file in ordered]


def _all_extensions(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[descriptor_pb2.FieldDescriptorProto]:
    yield from file.extension
    pending = list(file.message_type)
    while pending:
        message = pending.pop()
        yield from message.extension
        pending.extend(message.nested_type)


def _add_with_dependencies(
    file: descriptor.FileDescriptor, into: dict[str, descriptor_pb2.FileDescriptorProto]
) -> None:
    if file.name not in into:
        into[file.name] = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
    for dependency in file.dependencies:
        _add_with_dependencies(dependency, into)


def _error(request: reflection_pb2.ServerReflectionRequest, code: grpc.StatusCode, message: str) -> Any:
    return reflection_pb2.ServerReflectionResponse(
        valid_host=request.host,
        original_request=request,
        error_response=reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message),
    )


class ReflectionServicer:
    """`ServerReflectionInfo` of both protocol versions over one DescriptorIndex."""

    def __init__(self, index: DescriptorIndex, service_names: Iterable[str]) -> None:
        self._index = index
        self._services = sorted(service_names)

    async def ServerReflectionInfo(
        self,
        requests: AsyncIterator[reflection_pb2.ServerReflectionRequest],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: reflection_pb2.ServerReflectionRequest) -> Any:
        kind = request.WhichOneof("message_request")
        response = reflection_pb2.ServerReflectionResponse(valid_host=request.host, original_request=request)
        if kind == "list_services":
            response.list_services_response.service.extend(
                reflection_pb2.ServiceResponse(name=name) for name in self._services
            )
            return response
        if kind == "file_by_filename":
            name: str | None = request.file_by_filename
            what = f"file {request.file_by_filename!r}"
        elif kind == "file_containing_symbol":
            name = self._index.file_of_symbol(request.file_containing_symbol)
            what = f"symbol {request.file_containing_symbol!r}"
        elif kind == "file_containing_extension":
            extension = request.file_containing_extension
            name = self._index.file_of_extension(extension.containing_type, extension.extension_number)
            what = f"extension {extension.extension_number} of {extension.containing_type!r}"
        elif kind == "all_extension_numbers_of_type":
            numbers = self._index.extension_numbers(request.all_extension_numbers_of_type)
            if numbers is None:
                return _error(
                    request,
                    grpc.StatusCode.NOT_FOUND,
                    f"type {request.all_extension_numbers_of_type!r} not found",
                )
            response.all_extension_numbers_response.base_type_name = request.all_extension_numbers_of_type
            response.all_extension_numbers_response.extension_number.extend(numbers)
            return response
        else:
            return _error(request, grpc.StatusCode.INVALID_ARGUMENT, "no message_request set")
        files = [] if name is None else self._index.with_dependencies(name)
        if not files:
            return _error(request, grpc.StatusCode.NOT_FOUND, f"{what} not found")
        response.file_descriptor_response.file_descriptor_proto.extend(files)
        return response


def add_reflection_to_server(server: aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection (v1 and v1alpha) listing `service_names` and itself."""
    servicer = ReflectionServicer(DescriptorIndex.of_served_files(), (*service_names, *REFLECTION_SERVICES))
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        tuple(
            grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler})
            for service in REFLECTION_SERVICES
        )
    )
