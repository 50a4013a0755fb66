"""Client of the Energy Ingestion Engine.

`energy.v1` holds the generated stubs; this package adds a typed asyncio
client with deadlines and retries (`EnergyClient`, and `SyncEnergyClient`
for blocking code), an acknowledged uploader that never loses a reading
(`Uploader`), one exception type (`ClientError`), and reading builders.
"""

from energy.client import DEFAULT, DEFAULT_TARGET, EnergyClient, SyncEnergyClient, Timeout, Tls, Window
from energy.errors import ClientError, Violation
from energy.readings import ReadingFormatError, meter, reading_from_fields, vehicle
from energy.retry import RETRYABLE_CODES, RetryPolicy
from energy.uploader import Uploader, UploadReport

__all__ = [
    "DEFAULT",
    "DEFAULT_TARGET",
    "RETRYABLE_CODES",
    "ClientError",
    "EnergyClient",
    "ReadingFormatError",
    "RetryPolicy",
    "SyncEnergyClient",
    "Timeout",
    "Tls",
    "UploadReport",
    "Uploader",
    "Violation",
    "Window",
    "meter",
    "reading_from_fields",
    "vehicle",
]
