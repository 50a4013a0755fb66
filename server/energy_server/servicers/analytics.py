"""AnalyticsServicer: `energy.v1.AnalyticsService`, request in, repository, answer out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from grpc import aio

from energy.v1 import analytics_pb2, analytics_pb2_grpc
from energy_server import convert
from energy_server.domain import Coverage, DeviceKind, MeterValues, VehicleValues, Window
from energy_server.errors import NotFound
from energy_server.storage.repository import AnalyticsRepository

__all__ = ["AnalyticsServicer"]

_Context = aio.ServicerContext[Any, Any]
_NEVER = datetime(1, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)
# The keys each listing's page tokens carry: a token of another listing is foreign.
_LINKS_TOKEN = frozenset({"after"})
_CURRENT_TOKEN = frozenset({"kind", "seen_since", "after"})
_ANOMALIES_TOKEN = frozenset({"start", "end", "threshold", "offset"})


def _now() -> datetime:
    return datetime.now(UTC)


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    """Read-side RPCs over the AnalyticsRepository."""

    def __init__(self, repository: AnalyticsRepository) -> None:
        self._repository = repository

    def _window(self, request: Any) -> Window:
        return convert.requested_window(request.window if request.HasField("window") else None, _now())

    def _covered(self, request: Any) -> Coverage:
        """The window the answer covers (retention may have narrowed it) and its resolution."""
        return self._repository.coverage(self._window(request))

    async def GetVehiclePerformance(
        self, request: analytics_pb2.GetVehiclePerformanceRequest, context: _Context
    ) -> analytics_pb2.GetVehiclePerformanceResponse:
        vehicle_id = convert.requested_device_id(request.vehicle_id, "vehicle_id")
        coverage = self._covered(request)
        window = coverage.window
        link, ac, dc = await self._repository.vehicle_performance(vehicle_id, window)
        ac_kwh = ac.fields["kwh_consumed_ac"].sum
        dc_kwh = dc.fields["kwh_delivered_dc"].sum
        response = analytics_pb2.GetVehiclePerformanceResponse(
            vehicle_id=vehicle_id,
            meter_id=link.meter_id,
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            ac_consumed_kwh=ac_kwh,
            dc_delivered_kwh=dc_kwh,
            meter_reading_count=ac.reading_count,
            vehicle_reading_count=dc.reading_count,
        )
        # Undefined, so unset: no AC, or both totals beyond the largest double (inf / inf).
        if ac_kwh != 0 and not (math.isinf(ac_kwh) and math.isinf(dc_kwh)):
            response.efficiency_ratio = dc_kwh / ac_kwh
        if dc.reading_count:
            response.avg_battery_temp_celsius = dc.fields["battery_temp"].sum / dc.reading_count
        return response

    async def LinkVehicle(
        self, request: analytics_pb2.LinkVehicleRequest, context: _Context
    ) -> analytics_pb2.LinkVehicleResponse:
        link = await self._repository.link_vehicle(
            convert.requested_device_id(request.vehicle_id, "vehicle_id"),
            convert.requested_device_id(request.meter_id, "meter_id"),
        )
        return analytics_pb2.LinkVehicleResponse(link=convert.link_to_proto(link))

    async def GetVehicleLink(
        self, request: analytics_pb2.GetVehicleLinkRequest, context: _Context
    ) -> analytics_pb2.GetVehicleLinkResponse:
        link = await self._repository.vehicle_link(
            convert.requested_device_id(request.vehicle_id, "vehicle_id")
        )
        return analytics_pb2.GetVehicleLinkResponse(link=convert.link_to_proto(link))

    async def ListVehicleLinks(
        self, request: analytics_pb2.ListVehicleLinksRequest, context: _Context
    ) -> analytics_pb2.ListVehicleLinksResponse:
        size = convert.requested_page_size(request.page_size)
        after = str(convert.decode_page_token(request.page_token, _LINKS_TOKEN).get("after", ""))
        links = await self._repository.vehicle_links(after, size + 1)
        response = analytics_pb2.ListVehicleLinksResponse(
            links=[convert.link_to_proto(link) for link in links[:size]]
        )
        if len(links) > size:
            response.next_page_token = convert.encode_page_token({"after": links[size - 1].vehicle_id})
        return response

    async def _current(self, kind: DeviceKind, device_id: str) -> MeterValues | VehicleValues:
        current = await self._repository.current(kind, device_id)
        if current is None:
            raise NotFound(f"{kind.value} {device_id!r} has never reported")
        return current

    async def GetMeterStats(
        self, request: analytics_pb2.GetMeterStatsRequest, context: _Context
    ) -> analytics_pb2.GetMeterStatsResponse:
        meter_id = convert.requested_device_id(request.meter_id, "meter_id")
        coverage = self._covered(request)
        window = coverage.window
        current = await self._current(DeviceKind.METER, meter_id)
        assert isinstance(current, MeterValues)
        aggregate = await self._repository.device_aggregate(DeviceKind.METER, meter_id, window)
        return analytics_pb2.GetMeterStatsResponse(
            meter_id=meter_id,
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            current=convert.meter_reading_to_proto(current),
            aggregate=convert.meter_aggregate_to_proto(aggregate),
        )

    async def GetVehicleStats(
        self, request: analytics_pb2.GetVehicleStatsRequest, context: _Context
    ) -> analytics_pb2.GetVehicleStatsResponse:
        vehicle_id = convert.requested_device_id(request.vehicle_id, "vehicle_id")
        coverage = self._covered(request)
        window = coverage.window
        current = await self._current(DeviceKind.VEHICLE, vehicle_id)
        assert isinstance(current, VehicleValues)
        aggregate = await self._repository.device_aggregate(DeviceKind.VEHICLE, vehicle_id, window)
        return analytics_pb2.GetVehicleStatsResponse(
            vehicle_id=vehicle_id,
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            current=convert.vehicle_reading_to_proto(current),
            aggregate=convert.vehicle_aggregate_to_proto(aggregate),
        )

    async def GetMeterFleetSummary(
        self, request: analytics_pb2.GetMeterFleetSummaryRequest, context: _Context
    ) -> analytics_pb2.GetMeterFleetSummaryResponse:
        coverage = self._covered(request)
        window = coverage.window
        devices, aggregate = await self._repository.fleet_aggregate(
            DeviceKind.METER, window, coverage.resolution
        )
        return analytics_pb2.GetMeterFleetSummaryResponse(
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            device_count=devices,
            aggregate=convert.meter_aggregate_to_proto(aggregate),
        )

    async def GetVehicleFleetSummary(
        self, request: analytics_pb2.GetVehicleFleetSummaryRequest, context: _Context
    ) -> analytics_pb2.GetVehicleFleetSummaryResponse:
        coverage = self._covered(request)
        window = coverage.window
        devices, aggregate = await self._repository.fleet_aggregate(
            DeviceKind.VEHICLE, window, coverage.resolution
        )
        return analytics_pb2.GetVehicleFleetSummaryResponse(
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            device_count=devices,
            aggregate=convert.vehicle_aggregate_to_proto(aggregate),
        )

    async def GetCurrentReading(
        self, request: analytics_pb2.GetCurrentReadingRequest, context: _Context
    ) -> analytics_pb2.GetCurrentReadingResponse:
        kind = convert.requested_kind(request.kind)
        current = await self._current(kind, convert.requested_device_id(request.device_id, "device_id"))
        return analytics_pb2.GetCurrentReadingResponse(reading=convert.reading_to_proto(current))

    async def ListCurrentReadings(
        self, request: analytics_pb2.ListCurrentReadingsRequest, context: _Context
    ) -> analytics_pb2.ListCurrentReadingsResponse:
        kind = convert.requested_kind(request.kind)
        size = convert.requested_page_size(request.page_size)
        seen_since = (
            convert.datetime_from_timestamp(request.seen_since, "seen_since")
            if request.HasField("seen_since")
            else _NEVER
        )
        query: dict[str, object] = {"kind": kind.value, "seen_since": seen_since.isoformat()}
        position = convert.decode_page_token(request.page_token, _CURRENT_TOKEN)
        convert.check_same_query(position, query)
        currents = await self._repository.currents(
            kind, after=str(position.get("after", "")), seen_since=seen_since, limit=size + 1
        )
        response = analytics_pb2.ListCurrentReadingsResponse(
            readings=[convert.reading_to_proto(current) for current in currents[:size]]
        )
        if len(currents) > size:
            last = currents[size - 1]
            after = last.meter_id if isinstance(last, MeterValues) else last.vehicle_id
            response.next_page_token = convert.encode_page_token({**query, "after": after})
        return response

    async def GetTimeSeries(
        self, request: analytics_pb2.GetTimeSeriesRequest, context: _Context
    ) -> analytics_pb2.GetTimeSeriesResponse:
        kind = convert.requested_kind(request.kind)
        device_id = convert.requested_device_id(request.device_id, "device_id")
        asked = self._window(request)
        bucket = convert.requested_bucket(request.bucket, asked)
        coverage = self._repository.coverage(asked, finer_than_hours=bucket % _HOUR != timedelta(0))
        window = coverage.window
        series = await self._repository.time_series(kind, device_id, window, bucket)
        response = analytics_pb2.GetTimeSeriesResponse(
            window=convert.window_to_proto(window),
            resolution=convert.resolution_to_proto(coverage.resolution),
        )
        for start, aggregate in series:
            point = response.points.add(start_time=convert.timestamp_of(start))
            if kind is DeviceKind.METER:
                point.meter.CopyFrom(convert.meter_aggregate_to_proto(aggregate))
            else:
                point.vehicle.CopyFrom(convert.vehicle_aggregate_to_proto(aggregate))
        return response

    async def ListEfficiencyAnomalies(
        self, request: analytics_pb2.ListEfficiencyAnomaliesRequest, context: _Context
    ) -> analytics_pb2.ListEfficiencyAnomaliesResponse:
        threshold = convert.requested_threshold(request)
        size = convert.requested_page_size(request.page_size)
        position = convert.decode_page_token(request.page_token, _ANOMALIES_TOKEN)
        if request.HasField("window") or not position:
            window = self._window(request)
        else:
            # "The last 24 hours" must not slide between the pages of one listing.
            window = convert.token_window(position)
        query: dict[str, object] = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "threshold": threshold,
        }
        convert.check_same_query(position, query)
        offset = convert.page_offset(position)
        coverage = self._repository.coverage(window)
        anomalies = await self._repository.efficiency_anomalies(
            coverage.window, threshold, offset=offset, limit=size + 1
        )
        response = analytics_pb2.ListEfficiencyAnomaliesResponse(
            window=convert.window_to_proto(coverage.window),
            resolution=convert.resolution_to_proto(coverage.resolution),
            anomalies=[convert.anomaly_to_proto(a) for a in anomalies[:size]],
        )
        if len(anomalies) > size:
            response.next_page_token = convert.encode_page_token({**query, "offset": offset + size})
        return response
