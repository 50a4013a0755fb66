"""Retries of retryable failures, with backoff, bounded by the call's deadline.

As in OpenTelemetry's OTLP exporter: an explicit set of retryable codes, an
exponential backoff with jitter, the server's retry hint honoured, and no
attempt started that the deadline could not let finish.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from energy.errors import ClientError

__all__ = ["RETRYABLE_CODES", "RetryPolicy", "call_with_retries"]

_T = TypeVar("_T")

# Codes after which the same request may succeed later. Every ingest call is
# safe to repeat (a reading already stored comes back as a duplicate), and
# analytics calls only read.
RETRYABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failed calls are retried. `max_attempts` of 1 turns retries off."""

    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    max_attempts: int | None = None
    retryable_codes: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)
    # Called with the error and the chosen delay before each wait (to log or count retries).
    on_retry: Callable[[ClientError, float], None] | None = None

    def is_retryable(self, error: ClientError) -> bool:
        return error.code in self.retryable_codes

    def delay_s(self, attempt: int, error: ClientError) -> float:
        """Seconds to wait after failed attempt number `attempt` (0 is the first)."""
        if error.retry_delay_s is not None:
            # Never sooner than the server asked; a little later, so that a
            # fleet told the same delay does not come back in one instant.
            return error.retry_delay_s * random.uniform(1.0, 1.2)  # noqa: S311 - jitter, not secrecy
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311


async def call_with_retries(
    attempt: Callable[[float | None], Awaitable[_T]],
    policy: RetryPolicy,
    timeout_s: float | None,
) -> _T:
    """Run `attempt(remaining_s)` until it succeeds, fails for good, or time runs out.

    The deadline covers every attempt and every wait. The error raised is the
    last attempt's, as a ClientError.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    for number in itertools.count():
        remaining = None if deadline is None else deadline - loop.time()
        try:
            return await attempt(remaining)
        except grpc.RpcError as rpc_error:
            error = ClientError.from_rpc_error(rpc_error)
        if not policy.is_retryable(error):
            raise error
        if policy.max_attempts is not None and number + 1 >= policy.max_attempts:
            raise error
        delay = policy.delay_s(number, error)
        if deadline is not None and loop.time() + delay >= deadline:
            raise error
        if policy.on_retry is not None:
            policy.on_retry(error, delay)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")
