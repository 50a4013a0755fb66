"""Write the API reference (Markdown) from the descriptor set `make gen` builds.

Usage: api_reference.py DESCRIPTORS.binpb OUT.md

Every service, RPC, message, field, enum and value of `energy.v1`, each with
the comment written on it in `protos/`: the reference the original's `/docs`
page gave, generated so it cannot drift from the contract (`make check-gen`
fails when it is stale).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    _F.TYPE_DOUBLE: "double",
    _F.TYPE_FLOAT: "float",
    _F.TYPE_INT64: "int64",
    _F.TYPE_UINT64: "uint64",
    _F.TYPE_INT32: "int32",
    _F.TYPE_FIXED64: "fixed64",
    _F.TYPE_FIXED32: "fixed32",
    _F.TYPE_BOOL: "bool",
    _F.TYPE_STRING: "string",
    _F.TYPE_BYTES: "bytes",
    _F.TYPE_UINT32: "uint32",
    _F.TYPE_SFIXED32: "sfixed32",
    _F.TYPE_SFIXED64: "sfixed64",
    _F.TYPE_SINT32: "sint32",
    _F.TYPE_SINT64: "sint64",
}
# Source-info paths: field numbers of FileDescriptorProto / DescriptorProto / ...
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


class _Comments:
    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path = {
            tuple(location.path): location.leading_comments for location in file.source_code_info.location
        }

    def __call__(self, path: Sequence[int]) -> str:
        return _clean(self._by_path.get(tuple(path), ""))


def _clean(comment: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return "\n".join(lines).strip()


def _cell(comment: str) -> str:
    """A comment inside a table cell: one line, pipes escaped."""
    paragraphs = [" ".join(p.split()) for p in comment.split("\n\n")]
    return "<br><br>".join(paragraphs).replace("|", "\\|")


def _type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    name = _SCALARS.get(field.type) or field.type_name.lstrip(".")
    if name.startswith("energy.v1."):
        short = name.removeprefix("energy.v1.")
        name = f"[`{short}`](#{_anchor(name)})"
    else:
        name = f"`{name}`"
    if field.label == _F.LABEL_REPEATED:
        return f"repeated {name}"
    if field.proto3_optional:
        return f"optional {name}"
    return name


def _anchor(full_name: str) -> str:
    return full_name.replace(".", "").lower()


def _message(
    comments: _Comments,
    message: descriptor_pb2.DescriptorProto,
    scope: str,
    path: list[int],
) -> Iterator[str]:
    full = f"{scope}.{message.name}"
    yield f'### <a id="{_anchor(full)}"></a>`{full.removeprefix("energy.v1.")}`\n'
    doc = comments(path)
    if doc:
        yield f"{doc}\n"
    oneofs = {
        index: oneof.name
        for index, oneof in enumerate(message.oneof_decl)
        # A proto3 `optional` field's synthetic oneof is no choice a reader makes.
        if not any(f.proto3_optional and f.oneof_index == index for f in message.field)
    }
    if message.field:
        yield "| Field | Type | Meaning |\n|---|---|---|"
        for index, field in enumerate(message.field):
            note = comments([*path, _MESSAGE_FIELD, index])
            if field.HasField("oneof_index") and field.oneof_index in oneofs:
                note = f"(one of `{oneofs[field.oneof_index]}`) {note}"
            yield f"| `{field.name}` = {field.number} | {_type(field)} | {_cell(note)} |"
        yield ""
    else:
        yield "No fields.\n"
    for index, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            yield from _message(comments, nested, full, [*path, _MESSAGE_NESTED, index])
    for index, enum in enumerate(message.enum_type):
        yield from _enum(comments, enum, full, [*path, _MESSAGE_ENUM, index])


def _enum(
    comments: _Comments, enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: list[int]
) -> Iterator[str]:
    full = f"{scope}.{enum.name}"
    yield f'### <a id="{_anchor(full)}"></a>`{full.removeprefix("energy.v1.")}` (enum)\n'
    doc = comments(path)
    if doc:
        yield f"{doc}\n"
    yield "| Value | Number | Meaning |\n|---|---|---|"
    for index, value in enumerate(enum.value):
        yield f"| `{value.name}` | {value.number} | {_cell(comments([*path, _ENUM_VALUE, index]))} |"
    yield ""


def _service(
    comments: _Comments, service: descriptor_pb2.ServiceDescriptorProto, package: str, path: list[int]
) -> Iterator[str]:
    full = f"{package}.{service.name}"
    yield f'## <a id="{_anchor(full)}"></a>`{full}`\n'
    doc = comments(path)
    if doc:
        yield f"{doc}\n"
    for index, method in enumerate(service.method):
        request = method.input_type.lstrip(".")
        response = method.output_type.lstrip(".")
        stream_in = "stream " if method.client_streaming else ""
        stream_out = "stream " if method.server_streaming else ""
        yield (
            f"### `{service.name}.{method.name}`\n\n"
            f"`rpc {method.name}({stream_in}{request.removeprefix(package + '.')}) returns "
            f"({stream_out}{response.removeprefix(package + '.')})`: request "
            f"[`{request.removeprefix(package + '.')}`](#{_anchor(request)}), response "
            f"[`{response.removeprefix(package + '.')}`](#{_anchor(response)})\n"
        )
        method_doc = comments([*path, _SERVICE_METHOD, index])
        if method_doc:
            yield f"{method_doc}\n"


def render(descriptors: descriptor_pb2.FileDescriptorSet) -> str:
    files = sorted(descriptors.file, key=lambda f: f.name)
    out = [
        "# `energy.v1` API reference",
        "",
        "Generated by `make gen` from the comments in [`protos/energy/v1/`](../protos/energy/v1/);",
        "do not edit (`make check-gen` fails when it is stale). grpcurl shows the same text",
        "through server reflection: `grpcurl -plaintext localhost:50051 describe energy.v1.MeterReading`.",
        "",
        "Services: "
        + ", ".join(
            f"[`{f.package}.{s.name}`](#{_anchor(f'{f.package}.{s.name}')})" for f in files for s in f.service
        )
        + ".",
        "",
    ]
    for file in files:
        comments = _Comments(file)
        for index, service in enumerate(file.service):
            out.extend(_service(comments, service, file.package, [_SERVICE, index]))
    out.append("# Messages and enums\n")
    for file in files:
        comments = _Comments(file)
        out.append(f"Defined in `{file.name}`.\n")
        for index, message in enumerate(file.message_type):
            out.extend(_message(comments, message, file.package, [_MESSAGE, index]))
        for index, enum in enumerate(file.enum_type):
            out.extend(_enum(comments, enum, file.package, [_ENUM, index]))
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(Path(argv[1]).read_bytes())
    Path(argv[2]).parent.mkdir(parents=True, exist_ok=True)
    Path(argv[2]).write_text(render(descriptors), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
