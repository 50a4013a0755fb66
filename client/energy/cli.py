"""`energy`: the command line of the Energy Ingestion Engine.

Every command talks to the server at `--target` (default `$ENERGY_TARGET`,
else localhost:50051) and prints an aligned table, or JSON with `--json`.
Exit status: 0 on success, 1 when the server refused the call or (for
`ingest`) when any line was malformed or rejected, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf import message as protobuf_message
from grpc_health.v1 import health_pb2

from energy.client import DEFAULT_TARGET, EnergyClient, Tls, Window
from energy.console import Progress, flatten, key_values, table, version_line
from energy.errors import ClientError
from energy.readings import ReadingFormatError, reading_from_fields
from energy.simulation import Fleet
from energy.v1 import analytics_pb2, reading_pb2

__all__ = ["add_connection_options", "connect", "main"]

_KINDS = {"meter": analytics_pb2.DEVICE_KIND_METER, "vehicle": analytics_pb2.DEVICE_KIND_VEHICLE}
_BUCKETS = {
    "1m": analytics_pb2.TIME_BUCKET_ONE_MINUTE,
    "15m": analytics_pb2.TIME_BUCKET_FIFTEEN_MINUTES,
    "1h": analytics_pb2.TIME_BUCKET_ONE_HOUR,
    "1d": analytics_pb2.TIME_BUCKET_ONE_DAY,
}


class _Output:
    """Prints responses as tables, or as JSON objects (one per line) with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def message(self, message: protobuf_message.Message) -> None:
        if self.as_json:
            print(json.dumps(_to_json(message)))
        else:
            print(key_values(flatten(message)))

    def rows(self, messages: Sequence[protobuf_message.Message], title: str = "") -> None:
        if self.as_json:
            print(json.dumps([_to_json(m) for m in messages]))
            return
        if title:
            print(title)
        print(table([flatten(m) for m in messages]))

    def data(self, value: dict[str, Any], text: str) -> None:
        print(json.dumps(value) if self.as_json else text)


def _to_json(message: protobuf_message.Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _datetime(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. {text}Z")
    return at


def _window(args: argparse.Namespace) -> Window | None:
    if args.start or args.end:
        if not (args.start and args.end):
            raise SystemExit("energy: error: --start and --end go together")
        return (args.start, args.end)
    if args.hours is not None:
        end = datetime.now(UTC)
        return (end - timedelta(hours=args.hours), end)
    return None


# ingest


def _input_lines(path: str) -> Iterator[tuple[str, str]]:
    """(name:line, text) of each line of a file, or of stdin for `-`."""
    handle = sys.stdin if path == "-" else Path(path).open(encoding="utf-8", newline="")  # noqa: SIM115
    name = "stdin" if path == "-" else path
    try:
        for number, line in enumerate(handle, 1):
            yield f"{name}:{number}", line
    finally:
        if handle is not sys.stdin:
            handle.close()


def _is_csv(path: str, first_line: str, requested: str) -> bool:
    if requested != "auto":
        return requested == "csv"
    if path.endswith(".csv"):
        return True
    return not first_line.lstrip().startswith("{") and "," in first_line


def _parse(paths: Sequence[str], requested_format: str) -> Iterator[tuple[str, reading_pb2.Reading | str]]:
    """(place, reading or why it is malformed) for every data line of every input."""
    for path in paths:
        lines = _input_lines(path)
        header: list[str] | None = None
        for place, line in lines:
            if not line.strip():
                continue
            if header is None and _is_csv(path, line, requested_format):
                header = next(csv.reader([line]))
                continue
            try:
                if header is not None:
                    cells = next(csv.reader(io.StringIO(line)))
                    if len(cells) != len(header):
                        raise ReadingFormatError(f"expected {len(header)} columns, got {len(cells)}")
                    yield place, reading_from_fields(dict(zip(header, cells, strict=True)))
                else:
                    document = json.loads(line)
                    if not isinstance(document, dict):
                        raise ReadingFormatError("a line must be a JSON object")
                    yield place, reading_from_fields(document)
            except json.JSONDecodeError as error:
                yield place, f"not JSON: {error.msg} (character {error.pos + 1})"
            except (ReadingFormatError, ValueError) as error:
                yield place, str(error)


async def _ingest(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    paths = args.files or ["-"]
    total = _count_lines(paths, args.format)
    progress = Progress("ingest", total)
    # (input order, file:line) of each reading sent, and of each malformed line with its reason.
    places: list[tuple[int, str]] = []
    malformed: list[tuple[int, str, str]] = []
    seen = 0
    async with client.uploader(max_readings_per_message=args.batch) as uploader:
        for place, parsed in _parse(paths, args.format):
            seen += 1
            if isinstance(parsed, str):
                malformed.append((seen, place, parsed))
            else:
                places.append((seen, place))
                await uploader.add(parsed)
            progress.update(seen, f"acknowledged {uploader.report.acknowledged:,}")
        await uploader.flush()
        progress.finish(seen, f"acknowledged {uploader.report.acknowledged:,}")
    report = uploader.report
    found = [
        (*places[index], v.field, v.description)
        for index, violations in report.rejections
        for v in violations
    ] + [(order, place, "", reason) for order, place, reason in malformed]
    problems = [{"line": place, "field": name, "reason": reason} for _, place, name, reason in sorted(found)]
    counts = {
        "accepted": report.accepted,
        "duplicate": report.duplicate,
        "stale": report.stale,
        "rejected": report.rejected,
        "malformed": len(malformed),
    }
    summary = "  ".join(f"{name} {count:,}" for name, count in counts.items())
    text = summary if not problems else summary + "\n\n" + table(problems, ["line", "field", "reason"])
    out.data({**counts, "problems": problems}, text)
    return 1 if problems else 0


def _count_lines(paths: Sequence[str], requested_format: str) -> int | None:
    """Data lines of the inputs, for the progress bar; unknown for stdin."""
    if "-" in paths:
        return None
    count = 0
    for path in paths:
        with Path(path).open(encoding="utf-8", errors="replace") as handle:
            lines = [line for line in handle if line.strip()]
        count += len(lines) - (1 if lines and _is_csv(path, lines[0], requested_format) else 0)
    return count


# analytics and operations


async def _performance(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    out.message(await client.get_vehicle_performance(args.vehicle_id, _window(args)))
    return 0


async def _stats(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    if args.kind is None:
        metrics = await client.get_server_metrics()
        if out.as_json:
            out.message(metrics)
            return 0
        out.message(
            type(metrics)(
                start_time=metrics.start_time,
                readings=metrics.readings,
                pending_readings=metrics.pending_readings,
            )
        )
        commits = metrics.commits
        mean_ms = (
            commits.commit_seconds_total / commits.batches_committed * 1000
            if commits.batches_committed
            else 0
        )
        per_commit = (
            commits.readings_committed / commits.batches_committed if commits.batches_committed else 0
        )
        print(
            f"commits.batches_committed  {commits.batches_committed:,}\n"
            f"commits.batches_failed     {commits.batches_failed:,}\n"
            f"commits.readings_per_batch {per_commit:,.1f}\n"
            f"commits.mean_latency_ms    {mean_ms:,.2f}\n"
        )
        out.rows(list(metrics.pools), "pools")
        return 0
    if args.device_id is None:
        raise SystemExit("energy: error: stats meter|vehicle needs a device id")
    if args.kind == "meter":
        out.message(await client.get_meter_stats(args.device_id, _window(args)))
    else:
        out.message(await client.get_vehicle_stats(args.device_id, _window(args)))
    return 0


async def _summary(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    if args.kind == "meter":
        out.message(await client.get_meter_fleet_summary(_window(args)))
    else:
        out.message(await client.get_vehicle_fleet_summary(_window(args)))
    return 0


async def _collect(items: AsyncIterator[Any], limit: int | None) -> list[Any]:
    collected = []
    async for item in items:
        collected.append(item)
        if limit is not None and len(collected) >= limit:
            break
    return collected


async def _current(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    kind = _KINDS[args.kind]
    if args.device_id:
        reading = await client.get_current_reading(kind, args.device_id)
        out.message(getattr(reading, args.kind))
        return 0
    readings = await _collect(client.list_current_readings(kind, seen_since=args.seen_since), args.limit)
    out.rows([getattr(reading, args.kind) for reading in readings])
    return 0


async def _timeseries(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    response = await client.get_time_series(
        _KINDS[args.kind], args.device_id, _BUCKETS[args.bucket], _window(args)
    )
    if out.as_json:
        out.message(response)
        return 0
    print(key_values(flatten(response.window, "window.")))
    # The table keeps the telling columns; --json has every statistic.
    telling = (
        "start_time",
        "reading_count",
        "kwh_consumed_ac.sum",
        "voltage.mean",
        "soc.mean",
        "kwh_delivered_dc.sum",
        "battery_temp.mean",
    )
    rows = [
        {key.split(".", 1)[-1] if key != "start_time" else key: value for key, value in flatten(p).items()}
        for p in response.points
    ]
    columns = [c for c in telling if any(c in row for row in rows)]
    print(table(rows, columns))
    return 0


async def _anomalies(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    anomalies = await _collect(
        client.list_efficiency_anomalies(_window(args), threshold=args.threshold), args.limit
    )
    out.rows(anomalies)
    return 0


async def _link(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    if args.list:
        out.rows(await _collect(client.list_vehicle_links(), args.limit))
    elif args.vehicle_id is None:
        raise SystemExit("energy: error: link needs VEHICLE_ID [METER_ID], or --list")
    elif args.meter_id is None:
        out.message(await client.get_vehicle_link(args.vehicle_id))
    else:
        out.message(await client.link_vehicle(args.vehicle_id, args.meter_id))
    return 0


async def _health(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    status = await client.check_health(args.service)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    out.data({"service": args.service, "status": name}, name)
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


async def _demo(client: EnergyClient, args: argparse.Namespace, out: _Output) -> int:
    fleet = Fleet(args.devices)
    for vehicle_id, meter_id in fleet.links():
        await client.link_vehicle(vehicle_id, meter_id)
    interval = timedelta(minutes=args.interval_minutes)
    steps = int(timedelta(hours=args.hours) / interval)
    # Whole minutes, ending a minute ago: every reading is in the past.
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    progress = Progress("demo", steps * len(fleet.pairs) * 2)
    async with client.uploader() as uploader:
        for step in range(steps, 0, -1):
            at = end - (step - 1) * interval
            for index in range(len(fleet.pairs)):
                await uploader.add_many(fleet.readings(index, at, interval))
            progress.update(uploader.report.added, f"acknowledged {uploader.report.acknowledged:,}")
        await uploader.flush()
        progress.finish(uploader.report.added, f"acknowledged {uploader.report.acknowledged:,}")
    report = uploader.report
    first_vehicle = fleet.pairs[0].vehicle_id
    out.data(
        {"devices": len(fleet.pairs), "accepted": report.accepted, "duplicate": report.duplicate},
        f"linked {len(fleet.pairs)} vehicles to their meters and stored {report.accepted:,} readings "
        f"({report.duplicate:,} were already there) covering {args.hours:g} h\n"
        f"try:  energy performance {first_vehicle}\n"
        f"      energy summary vehicle\n"
        f"      energy anomalies\n"
        f"      energy timeseries meter {fleet.pairs[0].meter_id} --bucket 1h",
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="energy", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=version_line("energy", "energy"))
    add_connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    # --json is accepted after the command too; SUPPRESS keeps the top-level value when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command = commands.add_parser

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return add_command(name, help=help, parents=[common])

    def window_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--start", type=_datetime, help="window start, RFC 3339 (with --end)")
        command.add_argument("--end", type=_datetime, help="window end, exclusive")
        command.add_argument("--hours", type=float, help="window of this many hours ending now (default 24)")

    ingest = command("ingest", help="store readings from JSON Lines or CSV files, or stdin")
    ingest.add_argument("files", nargs="*", help="input files; - or nothing reads stdin")
    ingest.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto")
    ingest.add_argument("--batch", type=int, default=500, help="readings per message (default 500)")
    ingest.set_defaults(run=_ingest)

    performance = command("performance", help="a vehicle's AC/DC energy and efficiency")
    performance.add_argument("vehicle_id")
    window_options(performance)
    performance.set_defaults(run=_performance)

    stats = command("stats", help="one device's statistics, or the server's counters")
    stats.add_argument("kind", nargs="?", choices=tuple(_KINDS), help="omit for the server's counters")
    stats.add_argument("device_id", nargs="?")
    window_options(stats)
    stats.set_defaults(run=_stats)

    summary = command("summary", help="fleet summary of all meters or all vehicles")
    summary.add_argument("kind", choices=tuple(_KINDS))
    window_options(summary)
    summary.set_defaults(run=_summary)

    current = command("current", help="latest reading of one device, or of every device")
    current.add_argument("kind", choices=tuple(_KINDS))
    current.add_argument("device_id", nargs="?")
    current.add_argument("--seen-since", type=_datetime, help="only devices heard from since then")
    current.add_argument("--limit", type=int, default=100, help="rows at most (default 100)")
    current.set_defaults(run=_current)

    timeseries = command("timeseries", help="a device's readings aggregated per time bucket")
    timeseries.add_argument("kind", choices=tuple(_KINDS))
    timeseries.add_argument("device_id")
    timeseries.add_argument("--bucket", choices=tuple(_BUCKETS), default="1h")
    window_options(timeseries)
    timeseries.set_defaults(run=_timeseries)

    anomalies = command("anomalies", help="vehicles with implausible DC/AC efficiency")
    anomalies.add_argument(
        "--threshold", type=float, help="efficiency below this is an anomaly (server: 0.85)"
    )
    anomalies.add_argument("--limit", type=int, default=50, help="rows at most (default 50)")
    window_options(anomalies)
    anomalies.set_defaults(run=_anomalies)

    link = command("link", help="link a vehicle to its meter, show a link, or --list them")
    link.add_argument("vehicle_id", nargs="?")
    link.add_argument("meter_id", nargs="?")
    link.add_argument("--list", action="store_true", help="list every link")
    link.add_argument("--limit", type=int, default=1000, help="rows at most with --list")
    link.set_defaults(run=_link)

    health = command("health", help="the server's health (exit 1 unless SERVING)")
    health.add_argument("service", nargs="?", default="", help="a service's full name; the server if omitted")
    health.set_defaults(run=_health)

    demo = command("demo", help="link N vehicles and store 24 h of realistic readings")
    demo.add_argument("--devices", type=int, default=20, help="meter/vehicle pairs (default 20)")
    demo.add_argument("--hours", type=float, default=24.0, help="hours of history ending now (default 24)")
    demo.add_argument(
        "--interval-minutes", type=float, default=1.0, help="minutes between readings (default 1)"
    )
    demo.set_defaults(run=_demo)
    return parser


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """--target, --timeout, TLS and token options, shared with energy-load."""
    parser.add_argument(
        "--target",
        default=os.environ.get("ENERGY_TARGET", DEFAULT_TARGET),
        help="server address, or several host:port separated by commas to spread calls and streams "
        "over replicas with gRPC's round_robin (default: $ENERGY_TARGET or %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call, retries included")
    parser.add_argument("--tls", action="store_true", help="TLS, verifying the server with the system's CAs")
    parser.add_argument(
        "--tls-ca", type=Path, help="CA certificate (PEM) to verify the server; implies --tls"
    )
    parser.add_argument("--tls-cert", type=Path, help="client certificate (PEM) for mutual TLS")
    parser.add_argument("--tls-key", type=Path, help="client private key (PEM) for mutual TLS")
    parser.add_argument(
        "--token",
        default=os.environ.get("ENERGY_TOKEN"),
        help="bearer token sent as authorization metadata (default: $ENERGY_TOKEN)",
    )


def connect(args: argparse.Namespace) -> EnergyClient:
    """An EnergyClient configured by the options of add_connection_options."""
    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        tls = Tls.from_files(args.tls_ca, args.tls_cert, args.tls_key)
    elif args.tls:
        tls = Tls()
    return EnergyClient(args.target, tls=tls, token=args.token, timeout_s=args.timeout)


async def _run(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        code: int = await args.run(client, args, _Output(args.json))
        return code


def quiet_on_closed_pipe() -> int:
    """The reader of stdout went away (`energy ... | head -1`): that is its choice, not an
    error. Point stdout at /dev/null so that the interpreter's last flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ClientError as error:
        print(f"energy: {error.code.name}: {error.message}", file=sys.stderr)
        for violation in error.violations:
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return quiet_on_closed_pipe()
    except (OSError, ValueError) as error:
        print(f"energy: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
