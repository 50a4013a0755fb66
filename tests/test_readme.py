"""The README's grpcurl examples run verbatim (but for the port) against a real
server, with the real grpcurl binary through server reflection."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

from energy_server.app import RunningServer
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
# Fenced `sh` blocks whose first command is grpcurl.
EXAMPLES = [
    block
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    if block.lstrip().startswith("grpcurl")
]


# Fenced `sh` blocks of the `energy` and `energy-load` commands.
CLI_EXAMPLES = [
    block
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    if re.search(r"(^(\w+=\S+ )*|\|\s*)energy(-load)? ", block, flags=re.MULTILINE)
]
# Complete Python programs (fragments do not start with an import).
PYTHON_EXAMPLES = [
    block
    for block in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    if block.startswith("import")
]
BIN = Path(sys.executable).parent


def grpcurl() -> str:
    found = shutil.which("grpcurl")
    assert found, "grpcurl is not on PATH: `make tools` builds it into .tools/bin"
    return found


async def run(command: str, port: int) -> tuple[int, str]:
    command = command.replace("localhost:50051", f"127.0.0.1:{port}")
    command = re.sub(r"^grpcurl", grpcurl(), command, flags=re.MULTILINE)
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def test_readme_has_the_examples_the_issue_asks_for() -> None:
    joined = "\n".join(EXAMPLES)
    for needed in (
        " list",
        " describe",
        "IngestService/IngestReadings",
        "IngestService/UploadReadings",
        "IngestService/StreamReadings",
        '"meter"',
        '"vehicle"',
        '"meterId"',
        '"vehicleId"',
    ):
        assert needed in joined, needed


async def test_grpcurl_list_shows_the_services(server: RunningServer) -> None:
    code, output = await run("grpcurl -plaintext localhost:50051 list", server.port)
    assert code == 0, output
    for service in ("energy.v1.IngestService", "energy.v1.AnalyticsService", "grpc.health.v1.Health"):
        assert service in output.split()


async def test_readme_examples_run_in_order_and_succeed(server: RunningServer) -> None:
    # In order, as a reader follows them: the analytics examples read what the
    # ingest examples stored.
    for example in EXAMPLES:
        code, output = await run(example, server.port)
        assert code == 0, f"{example}\n{output}"
        assert "ERROR" not in output, f"{example}\n{output}"


def test_readme_shows_every_cli_command_and_the_load_generator() -> None:
    commands = {
        found
        for block in CLI_EXAMPLES
        for found in re.findall(r"(?:^|\|\s*)energy (\w+)", block, flags=re.MULTILINE)
    }
    assert commands >= {
        "ingest",
        "performance",
        "stats",
        "summary",
        "current",
        "timeseries",
        "anomalies",
        "link",
        "health",
        "demo",
    }
    assert any("energy-load" in block for block in CLI_EXAMPLES)
    assert PYTHON_EXAMPLES


async def _run_with_target(program: list[str], port: int) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *program,
        env={
            **os.environ,
            "ENERGY_TARGET": f"127.0.0.1:{port}",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_readme_cli_examples_run_in_order_and_succeed(server: RunningServer) -> None:
    for block in CLI_EXAMPLES:
        code, output = await _run_with_target(["bash", "-euo", "pipefail", "-c", block], server.port)
        assert code == 0, f"{block}\n{output}"


async def test_readme_python_examples_run(server: RunningServer) -> None:
    for example in PYTHON_EXAMPLES:
        program = example.replace("localhost:50051", f"127.0.0.1:{server.port}")
        code, output = await _run_with_target([sys.executable, "-c", program], server.port)
        assert code == 0, f"{example}\n{output}"
        assert "stored" in output


def test_every_test_the_guarantees_name_exists() -> None:
    section = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+)`", section))
    defined = {
        match
        for path in (REPO_ROOT / "tests").glob("test_*.py")
        for match in re.findall(
            r"^(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.MULTILINE
        )
    }
    assert named, "the Guarantees section names no tests"
    assert named <= defined, named - defined


def test_the_contents_line_lists_every_section() -> None:
    (contents,) = [line for line in README.splitlines() if line.startswith("Contents: ")]
    listed = re.findall(r"\[([^\]]+)\]\(#[\w-]+\)", contents)
    sections = [heading.replace("`", "") for heading in re.findall(r"^## (.+)$", README, flags=re.MULTILINE)]
    assert listed == sections
