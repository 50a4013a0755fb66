import datetime

from energy.v1 import reading_pb2 as _reading_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_UNSPECIFIED: _ClassVar[Resolution]
    RESOLUTION_RAW: _ClassVar[Resolution]
    RESOLUTION_HOURLY: _ClassVar[Resolution]

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_METER: _ClassVar[DeviceKind]
    DEVICE_KIND_VEHICLE: _ClassVar[DeviceKind]

class TimeBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_BUCKET_UNSPECIFIED: _ClassVar[TimeBucket]
    TIME_BUCKET_ONE_MINUTE: _ClassVar[TimeBucket]
    TIME_BUCKET_FIFTEEN_MINUTES: _ClassVar[TimeBucket]
    TIME_BUCKET_ONE_HOUR: _ClassVar[TimeBucket]
    TIME_BUCKET_ONE_DAY: _ClassVar[TimeBucket]

class AnomalyKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANOMALY_KIND_UNSPECIFIED: _ClassVar[AnomalyKind]
    ANOMALY_KIND_BELOW_THRESHOLD: _ClassVar[AnomalyKind]
    ANOMALY_KIND_ABOVE_ONE: _ClassVar[AnomalyKind]
RESOLUTION_UNSPECIFIED: Resolution
RESOLUTION_RAW: Resolution
RESOLUTION_HOURLY: Resolution
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_METER: DeviceKind
DEVICE_KIND_VEHICLE: DeviceKind
TIME_BUCKET_UNSPECIFIED: TimeBucket
TIME_BUCKET_ONE_MINUTE: TimeBucket
TIME_BUCKET_FIFTEEN_MINUTES: TimeBucket
TIME_BUCKET_ONE_HOUR: TimeBucket
TIME_BUCKET_ONE_DAY: TimeBucket
ANOMALY_KIND_UNSPECIFIED: AnomalyKind
ANOMALY_KIND_BELOW_THRESHOLD: AnomalyKind
ANOMALY_KIND_ABOVE_ONE: AnomalyKind

class TimeWindow(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValueStatistics(_message.Message):
    __slots__ = ("sum", "mean", "min", "max")
    SUM_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    sum: float
    mean: float
    min: float
    max: float
    def __init__(self, sum: _Optional[float] = ..., mean: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class MeterAggregate(_message.Message):
    __slots__ = ("reading_count", "kwh_consumed_ac", "voltage", "first_reading_time", "last_reading_time")
    READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    KWH_CONSUMED_AC_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    FIRST_READING_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_READING_TIME_FIELD_NUMBER: _ClassVar[int]
    reading_count: int
    kwh_consumed_ac: ValueStatistics
    voltage: ValueStatistics
    first_reading_time: _timestamp_pb2.Timestamp
    last_reading_time: _timestamp_pb2.Timestamp
    def __init__(self, reading_count: _Optional[int] = ..., kwh_consumed_ac: _Optional[_Union[ValueStatistics, _Mapping]] = ..., voltage: _Optional[_Union[ValueStatistics, _Mapping]] = ..., first_reading_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reading_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VehicleAggregate(_message.Message):
    __slots__ = ("reading_count", "soc", "kwh_delivered_dc", "battery_temp", "first_reading_time", "last_reading_time")
    READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOC_FIELD_NUMBER: _ClassVar[int]
    KWH_DELIVERED_DC_FIELD_NUMBER: _ClassVar[int]
    BATTERY_TEMP_FIELD_NUMBER: _ClassVar[int]
    FIRST_READING_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_READING_TIME_FIELD_NUMBER: _ClassVar[int]
    reading_count: int
    soc: ValueStatistics
    kwh_delivered_dc: ValueStatistics
    battery_temp: ValueStatistics
    first_reading_time: _timestamp_pb2.Timestamp
    last_reading_time: _timestamp_pb2.Timestamp
    def __init__(self, reading_count: _Optional[int] = ..., soc: _Optional[_Union[ValueStatistics, _Mapping]] = ..., kwh_delivered_dc: _Optional[_Union[ValueStatistics, _Mapping]] = ..., battery_temp: _Optional[_Union[ValueStatistics, _Mapping]] = ..., first_reading_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_reading_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetVehiclePerformanceRequest(_message.Message):
    __slots__ = ("vehicle_id", "window")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    window: TimeWindow
    def __init__(self, vehicle_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetVehiclePerformanceResponse(_message.Message):
    __slots__ = ("vehicle_id", "meter_id", "window", "ac_consumed_kwh", "dc_delivered_kwh", "efficiency_ratio", "avg_battery_temp_celsius", "meter_reading_count", "vehicle_reading_count", "resolution")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    AC_CONSUMED_KWH_FIELD_NUMBER: _ClassVar[int]
    DC_DELIVERED_KWH_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    AVG_BATTERY_TEMP_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    METER_READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    meter_id: str
    window: TimeWindow
    ac_consumed_kwh: float
    dc_delivered_kwh: float
    efficiency_ratio: float
    avg_battery_temp_celsius: float
    meter_reading_count: int
    vehicle_reading_count: int
    resolution: Resolution
    def __init__(self, vehicle_id: _Optional[str] = ..., meter_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ..., ac_consumed_kwh: _Optional[float] = ..., dc_delivered_kwh: _Optional[float] = ..., efficiency_ratio: _Optional[float] = ..., avg_battery_temp_celsius: _Optional[float] = ..., meter_reading_count: _Optional[int] = ..., vehicle_reading_count: _Optional[int] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class VehicleLink(_message.Message):
    __slots__ = ("vehicle_id", "meter_id", "update_time")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    meter_id: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, vehicle_id: _Optional[str] = ..., meter_id: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LinkVehicleRequest(_message.Message):
    __slots__ = ("vehicle_id", "meter_id")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    meter_id: str
    def __init__(self, vehicle_id: _Optional[str] = ..., meter_id: _Optional[str] = ...) -> None: ...

class LinkVehicleResponse(_message.Message):
    __slots__ = ("link",)
    LINK_FIELD_NUMBER: _ClassVar[int]
    link: VehicleLink
    def __init__(self, link: _Optional[_Union[VehicleLink, _Mapping]] = ...) -> None: ...

class GetVehicleLinkRequest(_message.Message):
    __slots__ = ("vehicle_id",)
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    def __init__(self, vehicle_id: _Optional[str] = ...) -> None: ...

class GetVehicleLinkResponse(_message.Message):
    __slots__ = ("link",)
    LINK_FIELD_NUMBER: _ClassVar[int]
    link: VehicleLink
    def __init__(self, link: _Optional[_Union[VehicleLink, _Mapping]] = ...) -> None: ...

class ListVehicleLinksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVehicleLinksResponse(_message.Message):
    __slots__ = ("links", "next_page_token")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[VehicleLink]
    next_page_token: str
    def __init__(self, links: _Optional[_Iterable[_Union[VehicleLink, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMeterStatsRequest(_message.Message):
    __slots__ = ("meter_id", "window")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    window: TimeWindow
    def __init__(self, meter_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetMeterStatsResponse(_message.Message):
    __slots__ = ("meter_id", "window", "current", "aggregate", "resolution")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    window: TimeWindow
    current: _reading_pb2.MeterReading
    aggregate: MeterAggregate
    resolution: Resolution
    def __init__(self, meter_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ..., current: _Optional[_Union[_reading_pb2.MeterReading, _Mapping]] = ..., aggregate: _Optional[_Union[MeterAggregate, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class GetVehicleStatsRequest(_message.Message):
    __slots__ = ("vehicle_id", "window")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    window: TimeWindow
    def __init__(self, vehicle_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetVehicleStatsResponse(_message.Message):
    __slots__ = ("vehicle_id", "window", "current", "aggregate", "resolution")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    window: TimeWindow
    current: _reading_pb2.VehicleReading
    aggregate: VehicleAggregate
    resolution: Resolution
    def __init__(self, vehicle_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ..., current: _Optional[_Union[_reading_pb2.VehicleReading, _Mapping]] = ..., aggregate: _Optional[_Union[VehicleAggregate, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class GetMeterFleetSummaryRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetMeterFleetSummaryResponse(_message.Message):
    __slots__ = ("window", "device_count", "aggregate", "resolution")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    device_count: int
    aggregate: MeterAggregate
    resolution: Resolution
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ..., device_count: _Optional[int] = ..., aggregate: _Optional[_Union[MeterAggregate, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class GetVehicleFleetSummaryRequest(_message.Message):
    __slots__ = ("window",)
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetVehicleFleetSummaryResponse(_message.Message):
    __slots__ = ("window", "device_count", "aggregate", "resolution")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    device_count: int
    aggregate: VehicleAggregate
    resolution: Resolution
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ..., device_count: _Optional[int] = ..., aggregate: _Optional[_Union[VehicleAggregate, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class GetCurrentReadingRequest(_message.Message):
    __slots__ = ("kind", "device_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    kind: DeviceKind
    device_id: str
    def __init__(self, kind: _Optional[_Union[DeviceKind, str]] = ..., device_id: _Optional[str] = ...) -> None: ...

class GetCurrentReadingResponse(_message.Message):
    __slots__ = ("reading",)
    READING_FIELD_NUMBER: _ClassVar[int]
    reading: _reading_pb2.Reading
    def __init__(self, reading: _Optional[_Union[_reading_pb2.Reading, _Mapping]] = ...) -> None: ...

class ListCurrentReadingsRequest(_message.Message):
    __slots__ = ("kind", "seen_since", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEEN_SINCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: DeviceKind
    seen_since: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[DeviceKind, str]] = ..., seen_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCurrentReadingsResponse(_message.Message):
    __slots__ = ("readings", "next_page_token")
    READINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    readings: _containers.RepeatedCompositeFieldContainer[_reading_pb2.Reading]
    next_page_token: str
    def __init__(self, readings: _Optional[_Iterable[_Union[_reading_pb2.Reading, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTimeSeriesRequest(_message.Message):
    __slots__ = ("kind", "device_id", "window", "bucket")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    kind: DeviceKind
    device_id: str
    window: TimeWindow
    bucket: TimeBucket
    def __init__(self, kind: _Optional[_Union[DeviceKind, str]] = ..., device_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ..., bucket: _Optional[_Union[TimeBucket, str]] = ...) -> None: ...

class TimeSeriesPoint(_message.Message):
    __slots__ = ("start_time", "meter", "vehicle")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    meter: MeterAggregate
    vehicle: VehicleAggregate
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., meter: _Optional[_Union[MeterAggregate, _Mapping]] = ..., vehicle: _Optional[_Union[VehicleAggregate, _Mapping]] = ...) -> None: ...

class GetTimeSeriesResponse(_message.Message):
    __slots__ = ("window", "points", "resolution")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    points: _containers.RepeatedCompositeFieldContainer[TimeSeriesPoint]
    resolution: Resolution
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ..., points: _Optional[_Iterable[_Union[TimeSeriesPoint, _Mapping]]] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...

class ListEfficiencyAnomaliesRequest(_message.Message):
    __slots__ = ("window", "threshold", "page_size", "page_token")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    threshold: float
    page_size: int
    page_token: str
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ..., threshold: _Optional[float] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class EfficiencyAnomaly(_message.Message):
    __slots__ = ("vehicle_id", "meter_id", "ac_consumed_kwh", "dc_delivered_kwh", "efficiency_ratio", "kind", "deviation")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    AC_CONSUMED_KWH_FIELD_NUMBER: _ClassVar[int]
    DC_DELIVERED_KWH_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEVIATION_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    meter_id: str
    ac_consumed_kwh: float
    dc_delivered_kwh: float
    efficiency_ratio: float
    kind: AnomalyKind
    deviation: float
    def __init__(self, vehicle_id: _Optional[str] = ..., meter_id: _Optional[str] = ..., ac_consumed_kwh: _Optional[float] = ..., dc_delivered_kwh: _Optional[float] = ..., efficiency_ratio: _Optional[float] = ..., kind: _Optional[_Union[AnomalyKind, str]] = ..., deviation: _Optional[float] = ...) -> None: ...

class ListEfficiencyAnomaliesResponse(_message.Message):
    __slots__ = ("window", "anomalies", "next_page_token", "resolution")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    window: TimeWindow
    anomalies: _containers.RepeatedCompositeFieldContainer[EfficiencyAnomaly]
    next_page_token: str
    resolution: Resolution
    def __init__(self, window: _Optional[_Union[TimeWindow, _Mapping]] = ..., anomalies: _Optional[_Iterable[_Union[EfficiencyAnomaly, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., resolution: _Optional[_Union[Resolution, str]] = ...) -> None: ...
