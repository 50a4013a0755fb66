"""Domain errors, and the one place where database errors become them."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import psycopg.errors
import psycopg_pool

from energy_server.domain import FieldViolation

__all__ = [
    "DatabaseUnavailable",
    "DomainError",
    "InvalidInput",
    "MissingPartition",
    "NotFound",
    "OutOfRange",
    "Overloaded",
    "PermissionDenied",
    "StorageFailure",
    "StreamIdle",
    "Unauthenticated",
    "WriteConflict",
    "from_database_error",
]


class DomainError(Exception):
    """Base of every error the service reports to a caller on purpose."""


class InvalidInput(DomainError):
    """The request breaks the contract; `violations` name the offending fields."""

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class OutOfRange(InvalidInput):
    """The request asks for data beyond what is kept (a retention horizon)."""


class NotFound(DomainError):
    """The thing asked about does not exist."""


class Overloaded(DomainError):
    """More work is waiting than the service accepts; retry later."""


class DatabaseUnavailable(DomainError):
    """PostgreSQL cannot be reached now; retry later."""


class WriteConflict(DomainError):
    """A transaction lost a serialization or deadlock race; retrying is safe."""


class StorageFailure(DomainError):
    """The database failed in a way the caller cannot fix by retrying soon."""


class MissingPartition(StorageFailure):
    """A row found no partition of its table (one was dropped or never made)."""


def from_database_error(error: Exception, *, database_reachable: bool = True) -> DomainError:
    """Translate a psycopg or pool error; the SQL text stays in the server's log.

    A pool that hands out no connection in time means overload while the
    database answers its health probe, and an outage while it does not.
    """
    if isinstance(error, psycopg_pool.TooManyRequests):
        return Overloaded("too many requests are waiting for a database connection")
    if isinstance(error, psycopg_pool.PoolTimeout):
        if database_reachable:
            return Overloaded("no database connection became free in time; retry later")
        return DatabaseUnavailable("the database is unreachable")
    # Checked before OperationalError, which psycopg makes their base class.
    if isinstance(error, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return WriteConflict("the write lost a concurrency race; retry it")
    if isinstance(error, psycopg.OperationalError):
        return DatabaseUnavailable("the database is unreachable")
    if isinstance(error, psycopg.errors.CheckViolation) and str(error).startswith("no partition of relation"):
        return MissingPartition("a row found no partition of its table")
    return StorageFailure("the database rejected the operation")


class StreamIdle(DomainError):
    """A client stream sent nothing for longer than the idle timeout."""


class Unauthenticated(DomainError):
    """The call carries no valid bearer token where one is required."""


class PermissionDenied(DomainError):
    """The caller's token lacks the scope the call needs."""
