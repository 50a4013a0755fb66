import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import error_details_pb2 as _error_details_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MeterReading(_message.Message):
    __slots__ = ("meter_id", "kwh_consumed_ac", "voltage", "timestamp")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    KWH_CONSUMED_AC_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    kwh_consumed_ac: float
    voltage: float
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, meter_id: _Optional[str] = ..., kwh_consumed_ac: _Optional[float] = ..., voltage: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VehicleReading(_message.Message):
    __slots__ = ("vehicle_id", "soc", "kwh_delivered_dc", "battery_temp", "timestamp")
    VEHICLE_ID_FIELD_NUMBER: _ClassVar[int]
    SOC_FIELD_NUMBER: _ClassVar[int]
    KWH_DELIVERED_DC_FIELD_NUMBER: _ClassVar[int]
    BATTERY_TEMP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    vehicle_id: str
    soc: float
    kwh_delivered_dc: float
    battery_temp: float
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, vehicle_id: _Optional[str] = ..., soc: _Optional[float] = ..., kwh_delivered_dc: _Optional[float] = ..., battery_temp: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Reading(_message.Message):
    __slots__ = ("meter", "vehicle")
    METER_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    meter: MeterReading
    vehicle: VehicleReading
    def __init__(self, meter: _Optional[_Union[MeterReading, _Mapping]] = ..., vehicle: _Optional[_Union[VehicleReading, _Mapping]] = ...) -> None: ...

class ErrorDetails(_message.Message):
    __slots__ = ("bad_request", "retry_info")
    BAD_REQUEST_FIELD_NUMBER: _ClassVar[int]
    RETRY_INFO_FIELD_NUMBER: _ClassVar[int]
    bad_request: _error_details_pb2.BadRequest
    retry_info: _error_details_pb2.RetryInfo
    def __init__(self, bad_request: _Optional[_Union[_error_details_pb2.BadRequest, _Mapping]] = ..., retry_info: _Optional[_Union[_error_details_pb2.RetryInfo, _Mapping]] = ...) -> None: ...
