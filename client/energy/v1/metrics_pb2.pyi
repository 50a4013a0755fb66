import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetServerMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerMetricsResponse(_message.Message):
    __slots__ = ("start_time", "readings", "commits", "pools", "pending_readings", "limits")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    PENDING_READINGS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    readings: ReadingCounts
    commits: CommitMetrics
    pools: _containers.RepeatedCompositeFieldContainer[PoolMetrics]
    pending_readings: int
    limits: _containers.RepeatedCompositeFieldContainer[LimitMetrics]
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., readings: _Optional[_Union[ReadingCounts, _Mapping]] = ..., commits: _Optional[_Union[CommitMetrics, _Mapping]] = ..., pools: _Optional[_Iterable[_Union[PoolMetrics, _Mapping]]] = ..., pending_readings: _Optional[int] = ..., limits: _Optional[_Iterable[_Union[LimitMetrics, _Mapping]]] = ...) -> None: ...

class LimitMetrics(_message.Message):
    __slots__ = ("name", "limit", "in_use", "high_water")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    HIGH_WATER_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    in_use: int
    high_water: int
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ..., in_use: _Optional[int] = ..., high_water: _Optional[int] = ...) -> None: ...

class ReadingCounts(_message.Message):
    __slots__ = ("accepted", "duplicate", "stale", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicate: int
    stale: int
    rejected: int
    def __init__(self, accepted: _Optional[int] = ..., duplicate: _Optional[int] = ..., stale: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class CommitMetrics(_message.Message):
    __slots__ = ("batches_committed", "batches_failed", "readings_committed", "commit_seconds_total", "commit_seconds", "batch_readings")
    BATCHES_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FAILED_FIELD_NUMBER: _ClassVar[int]
    READINGS_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    COMMIT_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    COMMIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_READINGS_FIELD_NUMBER: _ClassVar[int]
    batches_committed: int
    batches_failed: int
    readings_committed: int
    commit_seconds_total: float
    commit_seconds: _containers.RepeatedCompositeFieldContainer[HistogramBucket]
    batch_readings: _containers.RepeatedCompositeFieldContainer[HistogramBucket]
    def __init__(self, batches_committed: _Optional[int] = ..., batches_failed: _Optional[int] = ..., readings_committed: _Optional[int] = ..., commit_seconds_total: _Optional[float] = ..., commit_seconds: _Optional[_Iterable[_Union[HistogramBucket, _Mapping]]] = ..., batch_readings: _Optional[_Iterable[_Union[HistogramBucket, _Mapping]]] = ...) -> None: ...

class HistogramBucket(_message.Message):
    __slots__ = ("upper_bound", "cumulative_count")
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_bound: float
    cumulative_count: int
    def __init__(self, upper_bound: _Optional[float] = ..., cumulative_count: _Optional[int] = ...) -> None: ...

class PoolMetrics(_message.Message):
    __slots__ = ("name", "size", "available", "waiting", "requests", "requests_waited", "wait_seconds_total", "request_errors")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_WAITED_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ERRORS_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    available: int
    waiting: int
    requests: int
    requests_waited: int
    wait_seconds_total: float
    request_errors: int
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., available: _Optional[int] = ..., waiting: _Optional[int] = ..., requests: _Optional[int] = ..., requests_waited: _Optional[int] = ..., wait_seconds_total: _Optional[float] = ..., request_errors: _Optional[int] = ...) -> None: ...
