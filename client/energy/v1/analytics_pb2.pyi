import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeWindow(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetVehiclePerformanceRequest(_message.Message):
    __slots__ = ("vehicle_id", "window")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    window: TimeWindow
    def __init__(self, vehicle_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ...) -> None: ...

class GetVehiclePerformanceResponse(_message.Message):
    __slots__ = ("vehicle_id", "meter_id", "window", "ac_consumed_kwh", "dc_delivered_kwh", "efficiency_ratio", "avg_battery_temp_celsius", "meter_reading_count", "vehicle_reading_count")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    AC_CONSUMED_KWH_FIELD_NUMBER: _ClassVar[int]
    DC_DELIVERED_KWH_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_RATIO_FIELD_NUMBER: _ClassVar[int]
    AVG_BATTERY_TEMP_CELSIUS_FIELD_NUMBER: _ClassVar[int]
    METER_READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_READING_COUNT_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    meter_id: str
    window: TimeWindow
    ac_consumed_kwh: float
    dc_delivered_kwh: float
    efficiency_ratio: float
    avg_battery_temp_celsius: float
    meter_reading_count: int
    vehicle_reading_count: int
    def __init__(self, vehicle_id: _Optional[str] = ..., meter_id: _Optional[str] = ..., window: _Optional[_Union[TimeWindow, _Mapping]] = ..., ac_consumed_kwh: _Optional[float] = ..., dc_delivered_kwh: _Optional[float] = ..., efficiency_ratio: _Optional[float] = ..., avg_battery_temp_celsius: _Optional[float] = ..., meter_reading_count: _Optional[int] = ..., vehicle_reading_count: _Optional[int] = ...) -> None: ...

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
