"""The server's log output: lines to stderr, written in batches, as text or JSON.

Every line logged while a call is served carries that call's request id
(`request_id`), so that an answer can be matched with what the server logged
for it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["LOG_FORMATS", "BatchedLogHandler", "configure_logging", "request_id"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOG_FORMATS = ("text", "json")

# The request id of the call being served; each call runs in a context of its own.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        called = request_id.get()
        return line if called is None or "request_id=" in line else f"{line} request_id={called}"


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (ENERGY_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        called = request_id.get()
        if called is not None:
            entry["request_id"] = called
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class BatchedLogHandler(logging.StreamHandler[TextIO]):
    """Log lines to a stream (stderr), written together every `interval_s` at most.

    The access log has a line per RPC. Written one by one, each line is a
    system call on the event loop's thread and a chance for gRPC's threads to
    take the GIL from it: that cost unary ingest of one reading per call
    about a fifth of its calls per second (measured with bench/load.py,
    64 callers). Lines of WARNING and above are written at once, with every
    line before them; closing (at exit, also after SIGTERM) writes the rest.
    """

    def __init__(self, stream: TextIO | None = None, interval_s: float = 0.1, max_lines: int = 512) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._lines: list[str] = []
        self._max_lines = max_lines
        self._interval_s = interval_s
        self._closing = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="log-flush", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # logging's own rule: a bad record must not break the caller
            self.handleError(record)
            return
        self._lines.append(line)  # handle() holds the handler's lock
        if record.levelno >= logging.WARNING or len(self._lines) >= self._max_lines:
            self.flush()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._lines:
                self._lines.append("")
                self.stream.write("\n".join(self._lines))
                self._lines.clear()
            super().flush()
        finally:
            self.release()

    def close(self) -> None:
        self._closing.set()
        self.flush()
        super().close()

    def _flush_periodically(self) -> None:
        while not self._closing.wait(self._interval_s):
            self.flush()


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger writes to stderr through one BatchedLogHandler at `level`."""
    handler = BatchedLogHandler()
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter(_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
