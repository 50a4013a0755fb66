from energy.v1 import reading_pb2 as _reading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestReadingsRequest(_message.Message):
    __slots__ = ("readings",)
    READINGS_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[_reading_pb2.Reading]
    def __init__(self, readings: _Optional[_Iterable[_Union[_reading_pb2.Reading, _Mapping]]] = ...) -> None: ...

class IngestReadingsResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: IngestSummary
    def __init__(self, summary: _Optional[_Union[IngestSummary, _Mapping]] = ...) -> None: ...

class UploadReadingsRequest(_message.Message):
    __slots__ = ("readings",)
    READINGS_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[_reading_pb2.Reading]
    def __init__(self, readings: _Optional[_Iterable[_Union[_reading_pb2.Reading, _Mapping]]] = ...) -> None: ...

class UploadReadingsResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: IngestSummary
    def __init__(self, summary: _Optional[_Union[IngestSummary, _Mapping]] = ...) -> None: ...

class StreamReadingsRequest(_message.Message):
    __slots__ = ("sequence", "readings")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    readings: _containers.RepeatedCompositeFieldContainer[_reading_pb2.Reading]
    def __init__(self, sequence: _Optional[int] = ..., readings: _Optional[_Iterable[_Union[_reading_pb2.Reading, _Mapping]]] = ...) -> None: ...

class StreamReadingsResponse(_message.Message):
    __slots__ = ("sequence", "summary")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    summary: IngestSummary
    def __init__(self, sequence: _Optional[int] = ..., summary: _Optional[_Union[IngestSummary, _Mapping]] = ...) -> None: ...

class IngestSummary(_message.Message):
    __slots__ = ("accepted_count", "duplicate_count", "stale_count", "rejected_count", "duplicate_indexes", "stale_indexes", "rejections")
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_COUNT_FIELD_NUMBER: _ClassVar[int]
    STALE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    STALE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    duplicate_count: int
    stale_count: int
    rejected_count: int
    duplicate_indexes: _containers.RepeatedScalarFieldContainer[int]
    stale_indexes: _containers.RepeatedScalarFieldContainer[int]
    rejections: _containers.RepeatedCompositeFieldContainer[ReadingRejection]
    def __init__(self, accepted_count: _Optional[int] = ..., duplicate_count: _Optional[int] = ..., stale_count: _Optional[int] = ..., rejected_count: _Optional[int] = ..., duplicate_indexes: _Optional[_Iterable[int]] = ..., stale_indexes: _Optional[_Iterable[int]] = ..., rejections: _Optional[_Iterable[_Union[ReadingRejection, _Mapping]]] = ...) -> None: ...

class ReadingRejection(_message.Message):
    __slots__ = ("index", "field_violations")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    index: int
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, index: _Optional[int] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...
