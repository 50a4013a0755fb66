"""Admission: the limits that keep the whole server's work bounded.

A `Capacity` is a budget shared by every call: bytes of requests read but
not yet committed, or readings waiting for a write lane. Work takes its
share before it is admitted and gives it back when it is done; when the
budget is spent, new work waits, first come first served, for at most
`wait_s` (None: as long as it takes), and is then refused with Overloaded
(RESOURCE_EXHAUSTED with a retry hint). The limit holds exactly, whatever the concurrency: a share is
taken in the same step that checks it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from energy_server.errors import Overloaded
from energy_server.metrics import LimitSnapshot

__all__ = ["Capacity"]


@dataclass(slots=True)
class _Waiter:
    amount: int
    admitted: asyncio.Future[None]


class Capacity:
    """A counting budget with a bounded, first-come-first-served wait."""

    def __init__(self, name: str, limit: int, wait_s: float | None, unit: str) -> None:
        self.name = name
        self.limit = limit
        self._wait_s = wait_s
        self._unit = unit
        self.in_use = 0
        # The most ever in use at once: proof, in the metrics, that the limit held.
        self.high_water = 0
        self._waiters: deque[_Waiter] = deque()

    def _take(self, amount: int) -> None:
        self.in_use += amount
        self.high_water = max(self.high_water, self.in_use)

    async def acquire(self, amount: int) -> None:
        """Take `amount` (at most the whole limit), waiting `wait_s` at most for it."""
        if amount > self.limit:
            raise Overloaded(f"{amount} {self._unit} exceed the server's limit of {self.limit}")
        if not self._waiters and self.in_use + amount <= self.limit:
            self._take(amount)
            return
        waiter = _Waiter(amount, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._wait_s):
                await waiter.admitted
        except BaseException as error:
            if waiter.admitted.done() and not waiter.admitted.cancelled():
                if isinstance(error, TimeoutError):
                    return  # admitted in the very step the wait ran out
                self.release(amount)  # admitted just as the caller went away
                raise
            if waiter in self._waiters:  # _admit_waiters drops given-up waiters it meets first
                self._waiters.remove(waiter)
            self._admit_waiters()  # a waiter behind this one may fit now
            if isinstance(error, TimeoutError):
                raise Overloaded(
                    f"the server is at its limit of {self.limit} {self._unit}; retry later"
                ) from None
            raise

    def snapshot(self) -> LimitSnapshot:
        return LimitSnapshot(self.name, self.limit, self.in_use, self.high_water)

    def release(self, amount: int) -> None:
        """Give back what `acquire` took."""
        self.in_use -= amount
        self._admit_waiters()

    def _admit_waiters(self) -> None:
        while self._waiters:
            head = self._waiters[0]
            if head.admitted.done():
                self._waiters.popleft()
                continue
            if self.in_use + head.amount > self.limit:
                return
            self._waiters.popleft()
            self._take(head.amount)
            head.admitted.set_result(None)
