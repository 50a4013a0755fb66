"""`energy-load`: a load generator for the ingest RPCs, like the original's `npm run load`.

`--devices` simulated devices (half meters, half vehicles, from
energy.simulation) each send one reading every `--interval-ms`
(0: as fast as the server acknowledges) for `--duration` seconds, in
messages of `--readings-per-message`, over one shape:

* `unary`:  IngestReadings, one call in flight per sender;
* `stream`: UploadReadings, `--messages-per-stream` messages per stream;
* `bidi`:   StreamReadings through the shipped Uploader, `--window` messages in flight.

Devices are divided among `--processes` processes and, within each, among
`--concurrency` senders; a device belongs to one sender, so its readings go
out in order, with increasing timestamps (wall-clock time when paced;
simulated time, one second a round, from six hours ago when not). A share
of readings can be made late (older than the device's newest: stored as
stale) or repeated (stored once: duplicate).

A live progress line goes to stderr; the final report gives readings/s sent
and acknowledged, ack latency percentiles and errors by code (`--json` for
a machine-readable one). Environment: DEVICES, INTERVAL_MS as in the original.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import random
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from energy.cli import add_connection_options, connect
from energy.client import EnergyClient
from energy.console import Progress, version_line
from energy.errors import ClientError
from energy.simulation import Fleet
from energy.uploader import Uploader
from energy.v1 import ingest_pb2, reading_pb2

__all__ = ["LoadPlan", "main"]

_SIMULATED_START = timedelta(hours=6)
_REPORT_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """Everything a worker process needs (picklable)."""

    target: str
    token: str | None
    timeout_s: float
    tls: tuple[str | None, str | None, str | None, bool]
    devices: int
    interval_ms: float
    duration_s: float
    readings_per_message: int
    shape: str
    processes: int
    concurrency: int
    window: int
    messages_per_stream: int
    late_share: float
    duplicate_share: float
    seed: int


@dataclass(slots=True)
class Tally:
    """What one process saw; summed over processes for the report."""

    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    stale: int = 0
    rejected: int = 0
    failed_readings: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicate + self.stale + self.rejected

    def count(self, summary: ingest_pb2.IngestSummary) -> None:
        self.accepted += summary.accepted_count
        self.duplicate += summary.duplicate_count
        self.stale += summary.stale_count
        self.rejected += summary.rejected_count


class _Device:
    """One simulated device's clock and last reading, for late and repeated readings."""

    __slots__ = ("index", "is_meter", "last", "late_count", "newest")

    def __init__(self, index: int, start: datetime) -> None:
        self.index = index
        self.is_meter = index % 2 == 0
        self.newest = start
        self.last: reading_pb2.Reading | None = None
        self.late_count = 0


class _Sender:
    """Makes the readings of the devices one sender owns."""

    def __init__(self, plan: LoadPlan, device_indexes: Sequence[int], seed: int, phase: float = 0.0) -> None:
        self._plan = plan
        # Where in each interval this sender sends, from 0 (start) to 1 (end).
        self.phase = phase
        self._random = random.Random(seed)
        self._fleet = Fleet(plan.devices // 2 + 1, seed=plan.seed)
        start = datetime.now(UTC) - (_SIMULATED_START if plan.interval_ms == 0 else timedelta(0))
        start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self.devices = [_Device(index, start) for index in device_indexes]
        self._interval = (
            timedelta(milliseconds=plan.interval_ms) if plan.interval_ms else timedelta(seconds=1)
        )

    def round(self) -> list[reading_pb2.Reading]:
        """One reading from each device."""
        paced_now = datetime.now(UTC) if self._plan.interval_ms else None
        return [self._reading(device, paced_now) for device in self.devices]

    def _reading(self, device: _Device, paced_now: datetime | None) -> reading_pb2.Reading:
        draw = self._random.random()
        if device.last is not None and draw < self._plan.duplicate_share:
            return device.last
        if device.last is not None and draw < self._plan.duplicate_share + self._plan.late_share:
            # Older than the newest, never on the whole-millisecond grid the others use: unique.
            device.late_count += 1
            at = device.newest - timedelta(
                seconds=self._random.randint(1, 600), microseconds=device.late_count % 999 + 1
            )
            return self._make(device, at)
        step = self._interval
        at = max(paced_now or device.newest + step, device.newest + timedelta(milliseconds=1))
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        device.newest = at
        device.last = self._make(device, at)
        return device.last

    def _make(self, device: _Device, at: datetime) -> reading_pb2.Reading:
        meter, vehicle = self._fleet.readings(device.index // 2, at, self._interval)
        return meter if device.is_meter else vehicle


def _messages(readings: list[reading_pb2.Reading], per_message: int) -> list[list[reading_pb2.Reading]]:
    return [readings[i : i + per_message] for i in range(0, len(readings), per_message)]


async def _paced_rounds(plan: LoadPlan, sender: _Sender, deadline: float) -> Any:
    """Yield one round of readings per interval (or back to back when unpaced) until the deadline.

    Senders start at evenly spread phases of the interval, as a real fleet's
    devices do, rather than all in the same instant.
    """
    loop = asyncio.get_running_loop()
    next_round = loop.time() + sender.phase * plan.interval_ms / 1000
    while loop.time() < deadline:
        if plan.interval_ms:
            await asyncio.sleep(max(0.0, next_round - loop.time()))
            next_round += plan.interval_ms / 1000
            if loop.time() >= deadline:
                return
        yield sender.round()


def _record_error(tally: Tally, error: ClientError | grpc.RpcError, readings: int) -> None:
    code = error.code if isinstance(error, ClientError) else ClientError.from_rpc_error(error).code
    tally.errors[code.name] += 1
    tally.failed_readings += readings


async def _unary_sender(
    client: EnergyClient, plan: LoadPlan, sender: _Sender, tally: Tally, deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    async for readings in _paced_rounds(plan, sender, deadline):
        for message in _messages(readings, plan.readings_per_message):
            if loop.time() >= deadline:
                return  # even mid-round: the duration holds while calls fail and retry
            tally.sent += len(message)
            started = loop.time()
            try:
                tally.count(await client.ingest(message))
            except ClientError as error:
                if error.code == grpc.StatusCode.INVALID_ARGUMENT:
                    tally.rejected += len(message)  # all invalid: nothing stored
                else:
                    _record_error(tally, error, len(message))
                continue
            tally.latencies_s.append(loop.time() - started)


async def _upload_sender(
    client: EnergyClient, plan: LoadPlan, sender: _Sender, tally: Tally, deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    rounds = _paced_rounds(plan, sender, deadline)
    pending: list[list[reading_pb2.Reading]] = []
    exhausted = False
    while True:
        while not exhausted and len(pending) < plan.messages_per_stream:
            try:
                pending += _messages(await anext(rounds), plan.readings_per_message)
            except StopAsyncIteration:
                exhausted = True
        if not pending:
            return
        batch, pending = pending[: plan.messages_per_stream], pending[plan.messages_per_stream :]
        count = sum(len(message) for message in batch)
        tally.sent += count
        started = loop.time()
        try:
            response = await client.ingest_stub.UploadReadings(
                iter([ingest_pb2.UploadReadingsRequest(readings=message) for message in batch]),
                timeout=plan.timeout_s,
                metadata=client.metadata,
            )
        except grpc.RpcError as error:
            _record_error(tally, error, count)
            continue
        tally.count(response.summary)
        tally.latencies_s.append(loop.time() - started)


async def _bidi_sender(
    client: EnergyClient, plan: LoadPlan, sender: _Sender, tally: Tally, deadline: float
) -> None:
    def on_ack(ack: Uploader.Ack) -> None:
        tally.count(ack.summary)
        tally.latencies_s.append(ack.latency_s)

    def on_reconnect(error: BaseException) -> None:
        tally.reconnects += 1
        if isinstance(error, ClientError):
            tally.errors[error.code.name] += 1

    uploader = client.uploader(
        max_readings_per_message=plan.readings_per_message,
        linger_s=0.002,
        max_unacknowledged_readings=plan.window * plan.readings_per_message,
        on_ack=on_ack,
        on_reconnect=on_reconnect,
    )
    loop = asyncio.get_running_loop()
    try:
        # Sending until the deadline, then at most one call timeout to drain: an
        # uploader retries for ever, a load run must end.
        async with asyncio.timeout(deadline - loop.time() + plan.timeout_s):
            async for readings in _paced_rounds(plan, sender, deadline):
                tally.sent += len(readings)
                await uploader.add_many(readings)
            await uploader.flush()
    except TimeoutError:
        tally.errors["DEADLINE_EXCEEDED"] += 1
        tally.failed_readings += len(uploader.unacknowledged())
    finally:
        await uploader.abort()


_SENDERS = {"unary": _unary_sender, "stream": _upload_sender, "bidi": _bidi_sender}


async def _run_process(plan: LoadPlan, process_index: int, reports: Any, go: Any) -> None:
    mine = list(range(process_index, plan.devices, plan.processes))
    senders = min(plan.concurrency, len(mine))
    groups = [mine[i::senders] for i in range(senders)] if senders else []
    tally = Tally()
    options = argparse.Namespace(
        target=plan.target,
        token=plan.token,
        timeout=plan.timeout_s,
        tls_ca=_path(plan.tls[0]),
        tls_cert=_path(plan.tls[1]),
        tls_key=_path(plan.tls[2]),
        tls=plan.tls[3],
    )
    async with connect(options) as client:
        await client.check_health()
        reports.put(("ready", process_index, None))
        await asyncio.to_thread(go.wait)
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + plan.duration_s
        tasks = [
            asyncio.create_task(
                _SENDERS[plan.shape](
                    client,
                    plan,
                    _Sender(plan, group, plan.seed * 7919 + process_index * 104729 + i),
                    tally,
                    deadline,
                )
            )
            for i, group in enumerate(groups)
        ]
        while not all(task.done() for task in tasks):
            await asyncio.wait(tasks, timeout=_REPORT_EVERY_S)
            reports.put(
                ("progress", process_index, (tally.sent, tally.acknowledged, sum(tally.errors.values())))
            )
        for task in tasks:
            task.result()
        tally.elapsed_s = loop.time() - started
    payload = asdict(tally)
    payload["errors"] = dict(tally.errors)
    reports.put(("done", process_index, payload))


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def _worker(plan: LoadPlan, process_index: int, reports: Any, go: Any) -> None:
    try:
        asyncio.run(_run_process(plan, process_index, reports, go))
    except BaseException as error:  # the parent must hear of it rather than wait
        reports.put(("failed", process_index, f"{type(error).__name__}: {error}"))
        raise


def _percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, round(share * 1000) - 1)]


def run(plan: LoadPlan, progress: Progress | None = None) -> dict[str, Any]:
    """Run the plan in `plan.processes` processes; the final report as a dict."""
    context = multiprocessing.get_context("spawn")  # gRPC does not survive fork
    reports = context.Queue()
    go = context.Event()
    workers = [
        context.Process(target=_worker, args=(plan, index, reports, go), daemon=True)
        for index in range(plan.processes)
    ]
    for worker in workers:
        worker.start()
    progress_of: dict[int, tuple[int, int, int]] = {}
    finals: dict[int, dict[str, Any]] = {}
    ready = 0
    try:
        while len(finals) < plan.processes:
            try:
                kind, index, payload = reports.get(timeout=1.0)
            except queue.Empty:
                if any(not w.is_alive() and w.exitcode not in (0, None) for w in workers):
                    raise RuntimeError("a load process died; see its error above") from None
                continue
            if kind == "failed":
                raise RuntimeError(f"load process {index} failed: {payload}")
            if kind == "ready":
                ready += 1
                if ready == plan.processes:
                    go.set()
            elif kind == "progress":
                progress_of[index] = payload
                if progress is not None:
                    sent, acked, errors = (sum(values) for values in zip(*progress_of.values(), strict=True))
                    progress.update(acked, f"sent {sent:,}  errors {errors:,}")
            else:
                finals[index] = payload
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    return _report(plan, list(finals.values()))


def _report(plan: LoadPlan, finals: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(value for final in finals for value in final["latencies_s"])
    elapsed = max((final["elapsed_s"] for final in finals), default=0.0) or float("nan")
    totals = {
        name: sum(final[name] for final in finals)
        for name in ("sent", "accepted", "duplicate", "stale", "rejected", "failed_readings", "reconnects")
    }
    acknowledged = totals["accepted"] + totals["duplicate"] + totals["stale"] + totals["rejected"]
    errors: Counter[str] = Counter()
    for final in finals:
        errors.update(final["errors"])
    return {
        "shape": plan.shape,
        "devices": plan.devices,
        "interval_ms": plan.interval_ms,
        "readings_per_message": plan.readings_per_message,
        "processes": plan.processes,
        "concurrency": plan.concurrency,
        "seconds": round(elapsed, 3),
        **totals,
        "acknowledged": acknowledged,
        # Rows this run added to history: accepted and stale readings.
        "stored": totals["accepted"] + totals["stale"],
        "sent_per_s": round(totals["sent"] / elapsed, 1),
        "acknowledged_per_s": round(acknowledged / elapsed, 1),
        "ack_latency_ms": {
            name: round(_percentile(latencies, share) * 1000, 2)
            for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "acks": len(latencies),
        "errors": dict(errors),
    }


def _print_report(report: dict[str, Any]) -> None:
    latency = report["ack_latency_ms"]
    errors = ", ".join(f"{code} {count:,}" for code, count in sorted(report["errors"].items())) or "none"
    print(
        f"shape {report['shape']}, {report['devices']:,} devices, interval {report['interval_ms']:g} ms, "
        f"{report['readings_per_message']} readings/message, {report['processes']} process(es) "
        f"x {report['concurrency']} senders, {report['seconds']:.1f} s\n"
        f"readings sent          {report['sent']:>12,}   {report['sent_per_s']:>10,.0f}/s\n"
        f"readings acknowledged  {report['acknowledged']:>12,}   {report['acknowledged_per_s']:>10,.0f}/s\n"
        f"  accepted {report['accepted']:,}  duplicate {report['duplicate']:,}  stale {report['stale']:,}  "
        f"rejected {report['rejected']:,}  (stored {report['stored']:,})\n"
        f"ack latency            p50 {latency['p50']:.1f} ms  p90 {latency['p90']:.1f} ms  "
        f"p99 {latency['p99']:.1f} ms  ({report['acks']:,} acks)\n"
        f"errors                 {errors}; readings in failed calls {report['failed_readings']:,}; "
        f"reconnects {report['reconnects']:,}"
    )


# Readings one process keeps in flight by default: well under the server's
# default ENERGY_MAX_PENDING_READINGS (100,000), so that a default run measures
# throughput rather than the server refusing overload (ask for more with
# --window / --messages-per-stream to see that).
IN_FLIGHT_BUDGET = 50_000


def _within_budget(preferred: int, senders: int, per_message: int) -> int:
    """Messages per sender in flight: `preferred`, fewer if the budget needs it, at least 1."""
    return max(1, min(preferred, IN_FLIGHT_BUDGET // (senders * per_message)))


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share is between 0 and 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energy-load",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_line("energy-load", "energy"))
    add_connection_options(parser)
    parser.add_argument(
        "--devices", type=int, default=int(os.environ.get("DEVICES", "10")), help="default $DEVICES or 10"
    )
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=float(os.environ.get("INTERVAL_MS", "1000")),
        help="ms between a device's readings, 0 = as fast as acknowledged (default $INTERVAL_MS or 1000)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    parser.add_argument("--readings-per-message", type=int, default=1, help="default 1")
    parser.add_argument("--shape", choices=tuple(_SENDERS), default="bidi", help="default bidi")
    parser.add_argument("--processes", type=int, default=1, help="load processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=64, help="senders per process (default 64)")
    parser.add_argument(
        "--window",
        type=int,
        help="bidi: messages in flight per stream (default: up to 64, within the in-flight budget)",
    )
    parser.add_argument(
        "--messages-per-stream",
        type=int,
        help="stream: messages per UploadReadings (default: up to 100, within the in-flight budget)",
    )
    parser.add_argument("--late-share", type=_share, default=0.0, help="share of late (stale) readings")
    parser.add_argument("--duplicate-share", type=_share, default=0.0, help="share of repeated readings")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.devices < 1 or args.readings_per_message < 1 or args.processes < 1 or args.concurrency < 1:
        print(
            "energy-load: --devices, --readings-per-message, --processes and --concurrency must be >= 1",
            file=sys.stderr,
        )
        return 2
    plan = LoadPlan(
        target=args.target,
        token=args.token,
        timeout_s=args.timeout,
        tls=(
            None if args.tls_ca is None else str(args.tls_ca),
            None if args.tls_cert is None else str(args.tls_cert),
            None if args.tls_key is None else str(args.tls_key),
            args.tls,
        ),
        devices=args.devices,
        interval_ms=args.interval_ms,
        duration_s=args.duration,
        readings_per_message=args.readings_per_message,
        shape=args.shape,
        processes=args.processes,
        concurrency=args.concurrency,
        window=args.window or _within_budget(64, args.concurrency, args.readings_per_message),
        messages_per_stream=args.messages_per_stream
        or _within_budget(100, args.concurrency, args.readings_per_message),
        late_share=args.late_share,
        duplicate_share=args.duplicate_share,
        seed=args.seed,
    )
    progress = Progress(f"load {args.shape}")
    try:
        report = run(plan, progress)
    except (RuntimeError, ClientError) as error:
        print(f"energy-load: {error}", file=sys.stderr)
        return 1
    progress.finish(report["acknowledged"], f"sent {report['sent']:,}")
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return 0 if not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
