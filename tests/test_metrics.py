"""The server's counters: MetricsService and the Prometheus exporter agree with what clients were told."""

from __future__ import annotations

import asyncio
import math
import re
import urllib.request

import pytest
from grpc import aio

from energy.v1 import ingest_pb2_grpc, metrics_pb2, metrics_pb2_grpc, reading_pb2
from energy_server.app import create_server
from energy_server.settings import SettingsError
from tests.conftest import settings_for_tests
from tests.support import BASE_TIME, meter, minutes, send, vehicle


def _mixed_readings() -> list[reading_pb2.Reading]:
    readings = [meter(f"M-{i % 3}", BASE_TIME + minutes(i)) for i in range(10)]
    readings += [vehicle("V-1", BASE_TIME + minutes(5)), vehicle("V-1", BASE_TIME + minutes(1))]  # stale
    readings += [meter("M-0", BASE_TIME)]  # duplicate of the first
    readings += [meter("M-9", BASE_TIME, voltage=-1.0), vehicle("V-2", BASE_TIME, soc=101.0)]  # rejected
    return readings


@pytest.mark.parametrize("shape", ["unary", "upload", "stream"])
async def test_reading_counters_match_what_clients_were_told(
    ingest: ingest_pb2_grpc.IngestServiceAsyncStub,
    metrics: metrics_pb2_grpc.MetricsServiceAsyncStub,
    shape: str,
) -> None:
    before = await metrics.GetServerMetrics(metrics_pb2.GetServerMetricsRequest())
    told = await send(ingest, shape, _mixed_readings(), per_message=4)
    after = await metrics.GetServerMetrics(metrics_pb2.GetServerMetricsRequest())

    counted = {
        name: getattr(after.readings, name) - getattr(before.readings, name)
        for name in ("accepted", "duplicate", "stale", "rejected")
    }
    assert counted == {
        "accepted": told.accepted,
        "duplicate": len(told.duplicates),
        "stale": len(told.stale),
        "rejected": len(told.rejections),
    }
    assert counted == {"accepted": 11, "duplicate": 1, "stale": 1, "rejected": 2}
    commits = after.commits
    assert commits.readings_committed - before.commits.readings_committed == 13
    assert commits.batches_committed > before.commits.batches_committed
    # Histograms are cumulative, end in +Inf and count every committed batch.
    for histogram in (commits.commit_seconds, commits.batch_readings):
        assert math.isinf(histogram[-1].upper_bound)
        assert histogram[-1].cumulative_count == commits.batches_committed
        counts = [bucket.cumulative_count for bucket in histogram]
        assert counts == sorted(counts)
    assert commits.commit_seconds_total > 0
    assert {pool.name for pool in after.pools} == {"energy-ingest", "energy-analytics"}
    ingest_pool = next(pool for pool in after.pools if pool.name == "energy-ingest")
    assert ingest_pool.requests >= commits.batches_committed
    assert after.start_time == before.start_time


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _sample(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, flags=re.MULTILINE)
    assert found, f"{name}{{{labels}}} missing from the exposition"
    return float(found.group(1))


async def test_prometheus_exposition_serves_the_same_counters(database_url: str) -> None:
    running = await create_server(settings_for_tests(metrics_port=0), database_url)
    try:
        assert running.metrics_port
        async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            told = await send(ingest_pb2_grpc.IngestServiceStub(channel), "unary", _mixed_readings())
            answered = await metrics_pb2_grpc.MetricsServiceStub(channel).GetServerMetrics(
                metrics_pb2.GetServerMetricsRequest()
            )
        text = await asyncio.to_thread(_scrape, running.metrics_port)
    finally:
        await running.stop(0)
    assert (
        _sample(text, "energy_readings_total", 'outcome="accepted"')
        == told.accepted
        == answered.readings.accepted
    )
    assert _sample(text, "energy_readings_total", 'outcome="rejected"') == len(told.rejections)
    assert _sample(text, "energy_commit_duration_seconds_count") == answered.commits.batches_committed
    assert _sample(text, "energy_commit_batch_readings_sum") == answered.commits.readings_committed
    assert _sample(text, "energy_pool_requests_total", 'pool="energy-ingest"') >= 1
    assert "energy_pool_waits_total" in text


async def test_a_busy_metrics_port_fails_start_naming_the_setting(database_url: str) -> None:
    first = await create_server(settings_for_tests(metrics_port=0), database_url)
    try:
        with pytest.raises(SettingsError, match="ENERGY_METRICS_PORT"):
            await create_server(settings_for_tests(metrics_port=first.metrics_port), database_url)
    finally:
        await first.stop(0)


async def test_the_metrics_port_listens_on_loopback_unless_told_otherwise(database_url: str) -> None:
    # The gRPC port on every interface; the unauthenticated counters stay on loopback.
    running = await create_server(settings_for_tests(host="0.0.0.0", metrics_port=0), database_url)
    try:
        assert running.exporter.bound_host == "127.0.0.1"
    finally:
        await running.stop(0)
    running = await create_server(
        settings_for_tests(host="127.0.0.1", metrics_port=0, metrics_host="0.0.0.0"),
        database_url,
    )
    try:
        assert running.exporter.bound_host == "0.0.0.0"
    finally:
        await running.stop(0)
