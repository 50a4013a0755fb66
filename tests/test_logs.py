"""The server's log handler: batched writes, nothing lost, warnings at once."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from energy_server.logs import BatchedLogHandler


@contextmanager
def _batched(max_lines: int = 1000) -> Iterator[tuple[io.StringIO, BatchedLogHandler, logging.Logger]]:
    """A logger writing to a StringIO through a handler whose timer never fires in a test."""
    stream = io.StringIO()
    handler = BatchedLogHandler(stream, interval_s=3600, max_lines=max_lines)
    logger = logging.getLogger(f"tests.logs.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield stream, handler, logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_info_lines_wait_for_a_batch_and_closing_writes_every_one_in_order() -> None:
    with _batched() as (stream, handler, logger):
        for n in range(300):
            logger.info("rpc %d", n)
        assert stream.getvalue() == ""  # one write per batch, not per line
        handler.close()
        assert stream.getvalue().splitlines() == [f"rpc {n}" for n in range(300)]


def test_a_warning_is_written_at_once_with_every_line_before_it() -> None:
    with _batched() as (stream, _, logger):
        logger.info("before")
        logger.warning("trouble")
        assert stream.getvalue().splitlines() == ["before", "trouble"]


def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    with _batched(max_lines=10) as (stream, handler, logger):
        for n in range(25):
            logger.info("line %d", n)
        assert stream.getvalue().splitlines() == [f"line {n}" for n in range(20)]
        handler.close()
        assert len(stream.getvalue().splitlines()) == 25
