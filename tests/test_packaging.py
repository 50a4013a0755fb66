"""The distributions as a user installs them: wheels built from this tree, each
into a fresh virtual environment, used outside the source tree."""

from __future__ import annotations

import asyncio
import os
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.processes import ServerProcess
from tests.support import fetch

pytestmark = pytest.mark.slow


async def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *map(str, command),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(600):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"{command}:\n{text}"
    return text


async def _fresh_venv_with(tmp_path: Path, source: Path) -> Path:
    """A new virtual environment holding the wheel built from `source` (and its dependencies)."""
    wheels = tmp_path / "wheels"
    await _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source, cwd=tmp_path
    )
    (wheel,) = wheels.glob("*.whl")
    environment = tmp_path / "venv"
    await asyncio.to_thread(venv.create, environment, with_pip=True)
    await _run(environment / "bin" / "pip", "install", "--quiet", wheel, cwd=tmp_path)
    return environment / "bin"


async def test_the_server_wheel_in_a_fresh_venv_migrates_serves_and_ingests(
    tmp_path: Path, new_database: Callable[[], str]
) -> None:
    bin_dir = await _fresh_venv_with(tmp_path, REPO_ROOT)
    url = new_database()
    # Run from elsewhere than the source tree, so nothing of it can be picked up.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    said = await _run(
        bin_dir / "energy-server", "migrate", cwd=elsewhere, env={**os.environ, "DATABASE_URL": url}
    )
    assert "applied 0001_readings" in said
    server = ServerProcess(
        url,
        {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        python=str(bin_dir / "python"),
        cwd=elsewhere,
    )
    port = await server.start()
    try:
        reading = '{"meterId": "M-WHEEL", "kwhConsumedAc": 1.5, "voltage": 230, '
        lines = reading + '"timestamp": "2026-02-11T10:30:00Z"}\n'
        process = await asyncio.create_subprocess_exec(
            str(bin_dir / "energy"),
            "--target",
            f"127.0.0.1:{port}",
            "ingest",
            cwd=elsewhere,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        async with asyncio.timeout(60):
            output, _ = await process.communicate(lines.encode())
        assert process.returncode == 0, output.decode()
    finally:
        assert await server.stop() == 0
    assert await fetch(url, "SELECT meter_id, kwh_consumed_ac FROM meter_readings") == [("M-WHEEL", 1.5)]


async def test_the_client_wheel_alone_gives_the_client_the_stubs_and_the_protos(tmp_path: Path) -> None:
    bin_dir = await _fresh_venv_with(tmp_path, REPO_ROOT / "client")
    checked = await _run(
        bin_dir / "python",
        "-c",
        "import importlib.util, pathlib, energy, energy.v1.ingest_pb2;"
        "here = pathlib.Path(energy.__file__).parent / 'v1';"
        "print(sorted(p.name for p in here.glob('*.proto')), (here / 'descriptors.binpb').is_file(),"
        " importlib.util.find_spec('energy_server'))",
        cwd=tmp_path,
    )
    assert checked.strip() == (
        "['analytics.proto', 'ingest.proto', 'metrics.proto', 'reading.proto'] True None"
    ), checked
    assert "energy" in await _run(bin_dir / "energy", "--help", cwd=tmp_path)
