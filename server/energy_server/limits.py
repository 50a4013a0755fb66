"""The process's open-files limit: every client connection is a file descriptor.

Firmware keeps one stream per charger open for hours, each on a connection
of its own, so the soft limit most systems start a service with (1,024)
would refuse connections long before memory or CPU run out. The server
raises it to the hard limit at start, which any process may do, and says
how many client connections that leaves room for.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

from energy_server.settings import Settings

__all__ = ["OPEN_STREAMS_TARGET", "OpenFiles", "raise_open_files_limit"]

_log = logging.getLogger(__name__)

# Open charger streams one process is built to hold (see README, Performance).
OPEN_STREAMS_TARGET = 10_000
# Descriptors the server itself keeps besides its pools: listening sockets,
# the health probe's and maintenance's connections, logs, the Prometheus
# exporter, the embedded PostgreSQL's pipes, Python's own.
_OWN_FILES = 64
# Where a hard limit is "unlimited", a soft limit the kernel accepts (nr_open's default).
_UNLIMITED_SOFT = 1_048_576


@dataclass(frozen=True, slots=True)
class OpenFiles:
    before: int
    limit: int
    for_clients: int


def raise_open_files_limit(settings: Settings) -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard one; log the outcome, and warn
    when fewer than OPEN_STREAMS_TARGET client connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _UNLIMITED_SOFT if hard == resource.RLIM_INFINITY else hard
    limit = soft
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            limit = wanted
        except (ValueError, OSError) as error:
            _log.warning("could not raise the open-files limit from %d to %d: %s", soft, wanted, error)
    own = settings.writers + settings.pool_max_size + _OWN_FILES
    for_clients = max(limit - own, 0)
    if for_clients < OPEN_STREAMS_TARGET:
        _log.warning(
            "open-files limit %d (hard limit %s) leaves room for about %d client connections, fewer than "
            "the %d open charger streams a process is sized for; raise the hard limit (ulimit -Hn, "
            "LimitNOFILE= in systemd, --ulimit nofile= in Docker)",
            limit,
            "unlimited" if hard == resource.RLIM_INFINITY else hard,
            for_clients,
            OPEN_STREAMS_TARGET,
        )
    elif limit != soft:
        _log.info(
            "open-files limit raised from %d to %d: room for about %d client connections",
            soft,
            limit,
            for_clients,
        )
    return OpenFiles(soft, limit, for_clients)
