"""Terminal output shared by the `energy` and `energy-load` commands: tables and progress."""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import IO, Any

from google.protobuf import message as protobuf_message
from google.protobuf import timestamp_pb2

__all__ = ["Progress", "flatten", "number", "table", "version_line"]


def version_line(program: str, package: str) -> str:
    """`program VERSION (distribution)`, of the installed distribution that holds `package`."""
    for name in importlib.metadata.packages_distributions().get(package, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{program} {importlib.metadata.version(name)} ({name})"
    return f"{program} (not installed: run from a source tree)"


def number(value: float) -> str:
    """A float with at least four significant digits, so that a small value never
    reads as 0 (0.00042 kWh a minute is data), and no trailing zeros."""
    if not math.isfinite(value) or value == 0:
        return str(value) if not math.isfinite(value) else "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -6:
        return f"{value:.4g}"
    decimals = max(4, 3 - magnitude)
    return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")


def _scalar(field: Any, value: object) -> str:  # a FieldDescriptor, of upb's or pure Python's kind
    if field.enum_type is not None and isinstance(value, int):
        name: str = field.enum_type.values_by_number[value].name
        # DEVICE_KIND_METER -> METER: the enum's prefix repeats its type's name.
        return name.split("_", 2)[-1] if name.count("_") >= 2 else name
    if isinstance(value, float):
        return number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def flatten(message: protobuf_message.Message, prefix: str = "") -> dict[str, str]:
    """A message as `path -> text`, nested messages joined with dots.

    Timestamps print as RFC 3339 in UTC; an optional field left unset prints
    as `-` (efficiency with no AC energy, say), repeated fields are skipped
    (they get tables of their own).
    """
    rows: dict[str, str] = {}
    for field in message.DESCRIPTOR.fields:
        name = prefix + field.name
        if field.is_repeated:
            continue
        value = getattr(message, field.name)
        if field.message_type is not None:
            if not message.HasField(field.name):
                continue
            if isinstance(value, timestamp_pb2.Timestamp):
                rows[name] = value.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")
            else:
                rows.update(flatten(value, name + "."))
        elif field.has_presence and not message.HasField(field.name):
            rows[name] = "-"
        else:
            rows[name] = _scalar(field, value)
    return rows


def table(rows: Sequence[Mapping[str, str]], columns: Sequence[str] | None = None) -> str:
    """Rows as an aligned text table; numeric columns are right-aligned."""
    if not rows:
        return "(none)"
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    cells = [[row.get(column, "") for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    numeric = [all(_looks_numeric(line[i]) for line in cells) for i in range(len(columns))]

    def render(values: Iterable[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [render(columns), render("-" * width for width in widths)]
    lines += [render(line) for line in cells]
    return "\n".join(lines)


def key_values(rows: Mapping[str, str]) -> str:
    """One `name  value` line per entry, names aligned."""
    width = max((len(key) for key in rows), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows.items())


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("%", "")
    try:
        float(stripped)
    except ValueError:
        return text in ("", "-")
    return True


class Progress:
    """A progress display on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, label: str, total: int | None = None, stream: IO[str] | None = None) -> None:
        self._label = label
        self._total = total
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._interval = 0.2 if self._interactive else 2.0
        self._started = time.monotonic()
        self._last_draw = -math.inf
        self._drawn = False

    def update(self, done: int, detail: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self._interval:
            return
        self._last_draw = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        if self._total:
            share = min(done / self._total, 1.0)
            filled = round(share * 24)
            bar = f"[{'#' * filled}{'.' * (24 - filled)}] {share:6.1%} "
            count = f"{done:,}/{self._total:,}"
        else:
            bar, count = "", f"{done:,}"
        text = f"{self._label} {bar}{count}  {rate:,.0f}/s  {elapsed:5.1f} s"
        if detail:
            text += f"  {detail}"
        if self._interactive:
            self._stream.write("\r\x1b[2K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self._drawn = True

    def finish(self, done: int, detail: str = "") -> None:
        self.update(done, detail, force=True)
        if self._interactive and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
