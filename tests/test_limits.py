"""Process settings made at start. The open-files limit: raised to the hard limit at start, with a warning
when that still leaves too few descriptors for the open streams a process
is sized for. Each case runs in a process of its own, started with the
limits it needs (a lowered hard limit cannot be raised again)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

_PROBE = """
import logging, resource, sys
from energy_server.limits import raise_open_files_limit
from energy_server.settings import Settings
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
files = raise_open_files_limit(Settings())
print("result", files.before, files.limit, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def _probe(soft: int, hard: int) -> tuple[list[int], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(soft), str(hard)], capture_output=True, text=True, check=True
    )
    result = next(line for line in done.stdout.splitlines() if line.startswith("result "))
    return [int(n) for n in result.split()[1:]], done.stdout


def _hard_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.skipif(_hard_limit() < 16_384, reason="needs a hard open-files limit of 16,384 or more")
def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    (before, limit, now), log = _probe(1024, 16_384)
    assert (before, limit, now) == (1024, 16_384, 16_384)
    assert "open-files limit raised from 1024 to 16384" in log
    assert "WARNING" not in log


def test_a_hard_limit_too_low_for_the_open_streams_is_said() -> None:
    (before, limit, now), log = _probe(256, 2048)
    assert (before, limit, now) == (256, 2048, 2048)
    assert "WARNING open-files limit 2048 (hard limit 2048) leaves room for about" in log
    assert "raise the hard limit" in log


def test_the_collector_is_tuned_so_a_message_s_objects_die_young() -> None:
    probe = "\n".join(
        [
            "import gc",
            "from energy_server.collector import tune_collector",
            "tune_collector()",
            "print(gc.get_threshold())",
        ]
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(50000, 20, 10)"
