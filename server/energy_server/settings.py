"""The service's configuration: the one reader of the process environment."""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path

__all__ = ["Settings", "SettingsError", "duration_text", "parse_duration"]


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the service, with its environment variable and default.

    The field's docstring-comment is what the README's configuration table says.
    """

    # PostgreSQL connection string; empty means start the embedded server.
    database_url: str = ""
    # Folder of the embedded PostgreSQL's data; survives restarts.
    embedded_data_dir: Path = Path(".data/postgres")
    # Span of one partition of history and the fleet minute rollups ("1 day", "6 hours"; whole hours).
    partition_interval: timedelta = timedelta(days=1)
    # Span of one partition of the hourly rollups (whole hours; coarser: their rows are 60 times fewer).
    rollup_partition_interval: timedelta = timedelta(days=7)
    # Partitions kept ready ahead of the one holding now, per table (late readings get theirs on demand).
    partitions_ahead: int = 3
    # Seconds between partition maintenance runs inside the server (one instance at a time); 0 turns it off.
    maintenance_interval_s: float = 600.0
    # How long history and the fleet minute rollups are kept ("90 days"); off keeps them forever.
    raw_retention: timedelta | None = None
    # How long the hourly rollups are kept ("730 days"); off keeps them forever. At least the raw retention.
    rollup_retention: timedelta | None = None
    # Interface and TCP port the gRPC server listens on (0 picks a free port).
    host: str = "[::]"
    port: int = 50051
    # Server processes sharing the port (SO_REUSEPORT), each with its own pools and write
    # lanes; the kernel spreads connections, not calls, over them. Above 1 needs a fixed port.
    processes: int = 1
    # Which worker this process is; set by the supervising process for each worker it starts.
    worker_index: int | None = None
    # Connections the analytics (read) pool keeps open at least and at most;
    # writes have a pool of their own, one connection per write lane.
    pool_min_size: int = 2
    pool_max_size: int = 8
    # Seconds a caller waits for a pooled connection before UNAVAILABLE.
    pool_timeout_s: float = 5.0
    # Write lanes: devices are hashed to lanes, each with one connection and one open transaction at most.
    writers: int = 2
    # Readings one write transaction takes at most.
    batch_max_readings: int = 2000
    # Milliseconds a busy lane waits to fill a partial batch (an idle lane never waits).
    batch_linger_ms: float = 5.0
    # Readings waiting for a write lane, over all calls; admitted readings beyond it wait their turn.
    max_pending_readings: int = 100_000
    # Bytes of request messages read but not yet committed, over all calls: the server's
    # memory budget for requests (a stream is read ahead only while it lasts).
    max_pending_bytes: int = 8 * 1024 * 1024
    # Seconds a new request waits for room in that budget before RESOURCE_EXHAUSTED.
    overload_wait_s: float = 2.0
    # Requests of one StreamReadings stream in flight before the server stops reading it.
    stream_window: int = 64
    # Seconds a reading's timestamp may be ahead of the server's clock.
    clock_skew_allowance_s: float = 300.0
    # Readings one request message may carry.
    max_readings_per_message: int = 1000
    # Bytes one request message may have.
    max_message_bytes: int = 4 * 1024 * 1024
    # Seconds open calls get to finish after SIGTERM.
    shutdown_grace_s: float = 10.0
    # Seconds between database health probes.
    health_probe_interval_s: float = 1.0
    # Seconds a StreamReadings/UploadReadings stream may stay silent before it is closed.
    stream_idle_timeout_s: float = 300.0
    # Milliseconds a client is told to wait before retrying after overload or outage.
    retry_delay_ms: int = 1000
    # Apply pending migrations when the server starts.
    migrate_on_start: bool = True
    # Folder of the numbered SQL migration files.
    migrations_dir: Path = Path(str(importlib.resources.files("energy_server.migrations")))
    # Server certificate chain and private key (PEM) for TLS; both unset means plaintext.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # CA certificate (PEM) that signs client certificates; set, every client must present one (mutual TLS).
    tls_client_ca_file: Path | None = None
    # File of bearer tokens with their scopes (see README); unset means no authentication.
    auth_tokens_file: Path | None = None
    # Serve gRPC server reflection (grpcurl's list / describe).
    reflection: bool = True
    # Seconds between keepalive pings to an idle client, and to wait for its answer before dropping it.
    keepalive_time_s: float = 30.0
    keepalive_timeout_s: float = 10.0
    # TCP port of the Prometheus exporter (http://host:port/metrics); 0 picks a free port, `off` disables it.
    metrics_port: int | None = 9464
    # Interface the Prometheus exporter listens on; it is unauthenticated, hence loopback by default.
    metrics_host: str = "127.0.0.1"
    # Logging level name (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"
    # Log lines as `text` or as one JSON object per line (`json`), for log shippers.
    log_format: str = "text"
    # OpenTelemetry's own variables (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT): traces
    # are exported when either asks for them; the exporter reads the rest of OTEL_* itself.
    otel_traces_exporter: str = ""
    otel_exporter_otlp_endpoint: str = ""

    @property
    def tracing(self) -> bool:
        exporter = self.otel_traces_exporter.strip().lower()
        return exporter not in ("", "none") or (exporter == "" and bool(self.otel_exporter_otlp_endpoint))

    @property
    def clock_skew_allowance(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_allowance_s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read `ENERGY_<FIELD>` variables (and plain `DATABASE_URL`), then apply overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = _env_name(field.name)
            if name not in env:
                continue
            raw = env[name]
            try:
                values[field.name] = _parse(field.type, raw)
            except ValueError as error:
                raise SettingsError(f"{name}={raw!r}: {error}") from None
        values.update(overrides)
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def worker_environment(self, index: int, database_url: str) -> dict[str, str]:
        """The environment of worker `index` of a supervising process: this process's own,
        the database it settled on, and a Prometheus port of the worker's own."""
        environment = dict(os.environ)
        environment.update(
            DATABASE_URL=database_url,
            ENERGY_WORKER_INDEX=str(index),
            # The supervisor migrated once before starting the workers.
            ENERGY_MIGRATE_ON_START="false",
        )
        if self.metrics_port:
            environment["ENERGY_METRICS_PORT"] = str(self.metrics_port + index)
        return environment

    def check(self) -> None:
        """Reject combinations that cannot work, naming the variable."""
        positive = (
            "processes",
            "pool_max_size",
            "writers",
            "batch_max_readings",
            "max_pending_readings",
            "max_pending_bytes",
            "stream_window",
            "max_readings_per_message",
            "max_message_bytes",
            "pool_timeout_s",
            "health_probe_interval_s",
            "stream_idle_timeout_s",
            "keepalive_time_s",
            "keepalive_timeout_s",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{_env_name(name)} must be greater than 0")
        non_negative = (
            "port",
            "pool_min_size",
            "batch_linger_ms",
            "clock_skew_allowance_s",
            "overload_wait_s",
            "metrics_port",
            "worker_index",
        )
        for name in non_negative:
            if (getattr(self, name) or 0) < 0:
                raise SettingsError(f"{_env_name(name)} must not be negative")
        if self.otel_traces_exporter.strip().lower() not in ("", "none", "otlp", "console"):
            raise SettingsError("OTEL_TRACES_EXPORTER must be otlp, console or none")
        if self.log_format not in ("text", "json"):
            raise SettingsError("ENERGY_LOG_FORMAT must be text or json")
        if self.processes > 1 and self.port == 0:
            raise SettingsError(
                "ENERGY_PROCESSES above 1 needs a fixed ENERGY_PORT for the processes to share"
            )
        if self.pool_min_size > self.pool_max_size:
            raise SettingsError("ENERGY_POOL_MIN_SIZE must not exceed ENERGY_POOL_MAX_SIZE")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("ENERGY_TLS_CERT_FILE and ENERGY_TLS_KEY_FILE go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError(
                "ENERGY_TLS_CLIENT_CA_FILE needs ENERGY_TLS_CERT_FILE and ENERGY_TLS_KEY_FILE"
            )
        if self.max_pending_bytes < self.max_message_bytes:
            raise SettingsError("ENERGY_MAX_PENDING_BYTES must be at least ENERGY_MAX_MESSAGE_BYTES")
        self._check_lifecycle()
        if self.max_pending_readings < self.max_readings_per_message:
            raise SettingsError(
                "ENERGY_MAX_PENDING_READINGS must be at least ENERGY_MAX_READINGS_PER_MESSAGE"
            )

    def _check_lifecycle(self) -> None:
        if self.partitions_ahead < 1:
            raise SettingsError("ENERGY_PARTITIONS_AHEAD must be at least 1")
        if self.maintenance_interval_s < 0:
            raise SettingsError("ENERGY_MAINTENANCE_INTERVAL_S must not be negative")
        for name in ("partition_interval", "rollup_partition_interval"):
            span: timedelta = getattr(self, name)
            if span < _HOUR or span % _HOUR or span > _LONGEST_PARTITION:
                raise SettingsError(f"{_env_name(name)} must be whole hours, from 1 hour to 366 days")
        for name in ("raw_retention", "rollup_retention"):
            kept: timedelta | None = getattr(self, name)
            if kept is not None and kept < _HOUR:
                raise SettingsError(f"{_env_name(name)} must be at least 1 hour (or off)")
        # Reads take whole hours from the rollups and edges from history: hours
        # whose rollups are gone while their readings remain would be undercounted.
        if self.rollup_retention is not None and (
            self.raw_retention is None or self.raw_retention > self.rollup_retention
        ):
            raise SettingsError(
                "ENERGY_ROLLUP_RETENTION needs ENERGY_RAW_RETENTION set, and at most as long: "
                "hourly rollups must outlive the readings they summarise"
            )


_HOUR = timedelta(hours=1)
_LONGEST_PARTITION = timedelta(days=366)
_DURATION = re.compile(r"^\s*(\d+)\s*(minutes?|m|hours?|h|days?|d|weeks?|w)\s*$", re.IGNORECASE)
_DURATION_UNITS = {"m": timedelta(minutes=1), "h": _HOUR, "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_duration(raw: str) -> timedelta:
    """`90 days`, `6 hours`, `2 weeks`, `30 minutes` (or `90d`, `6h`, `2w`, `30m`)."""
    match = _DURATION.match(raw)
    if match is None:
        raise ValueError("expected a duration such as '90 days', '6 hours', '2 weeks'")
    return int(match[1]) * _DURATION_UNITS[match[2][0].lower()]


def duration_text(span: timedelta) -> str:
    """A duration as the settings spell it: `90 days`, `6 hours`, `30 minutes`."""
    for unit, size in (("day", timedelta(days=1)), ("hour", _HOUR), ("minute", timedelta(minutes=1))):
        if span % size == timedelta(0):
            count = span // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return str(span)


def _env_name(field_name: str) -> str:
    if field_name == "database_url" or field_name.startswith("otel_"):
        return field_name.upper()  # the names other tools already use
    return f"ENERGY_{field_name.upper()}"


def _parse(annotation: object, raw: str) -> object:
    # `from __future__ import annotations` keeps field types as strings.
    match annotation:
        case "int | None":
            return None if raw.strip().lower() in ("", "off") else int(raw)
        case "Path | None":
            return None if not raw.strip() else Path(raw)
        case "int":
            return int(raw)
        case "float":
            return float(raw)
        case "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        case "Path":
            return Path(raw)
        case "timedelta":
            return parse_duration(raw)
        case "timedelta | None":
            return None if raw.strip().lower() in ("", "off") else parse_duration(raw)
        case _:
            return raw
