"""Write every statement of energy_server.storage.sql as plain SQL, one `.sql` file per table group.

`make gen` runs this and `make check-gen` fails when a file is stale, so a
reviewer reads the SQL the server really sends, and a diff shows every change
to it, however the Python composes it. DDL composed per partition is shown
for an example partition.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import ModuleType

from psycopg import sql

from energy_server.storage.sql import analytics, migrations, partitions, readings

MODULES: dict[str, ModuleType] = {
    "readings": readings,
    "analytics": analytics,
    "partitions": partitions,
    "migrations": migrations,
}
# Statements composed per call, for an example: partitions.py's DDL per
# partition, and the snapshot import of analytics.py (SET takes no parameters).
EXAMPLES: dict[str, dict[str, sql.Composable]] = {
    "partitions": {
        "detach_partition(meter_readings, meter_readings_20260101)": partitions.detach_partition(
            "meter_readings", "meter_readings_20260101"
        ),
        "finalize_detach(meter_readings, meter_readings_20260101)": partitions.finalize_detach(
            "meter_readings", "meter_readings_20260101"
        ),
        "drop_detached_partition(meter_readings_20260101)": partitions.drop_detached_partition(
            "meter_readings_20260101"
        ),
    },
    "analytics": {
        "import_snapshot(00000003-0000001B-1)": analytics.import_snapshot("00000003-0000001B-1"),
    },
}


def _text(statement: object) -> str | None:
    if isinstance(statement, bytes):
        return statement.decode()
    if isinstance(statement, str):
        return statement
    if isinstance(statement, sql.Composable):
        return statement.as_string(None)
    return None


def statements(module: ModuleType) -> list[tuple[str, str]]:
    """(name, SQL) of every module-level statement, table groups' fields included."""
    found: list[tuple[str, str]] = []
    for name, value in vars(module).items():
        if not name.isupper() or name.startswith("_"):
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for member in dataclasses.fields(value):
                text = _text(getattr(value, member.name))
                if text is not None and member.name.startswith(("select", "upsert", "insert")):
                    found.append((f"{name}.{member.name}", text))
            continue
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            found += [(f"{name}[{i}]", v) for i, v in enumerate(value) if _looks_like_sql(v)]
            continue
        text = _text(value)
        if text is not None and _looks_like_sql(text):
            found.append((name, text))
    return found


def _looks_like_sql(text: str) -> bool:
    return text.lstrip().split(" ", 1)[0].upper() in {
        "SELECT",
        "INSERT",
        "WITH",
        "LOCK",
        "DELETE",
        "CREATE",
        "UPDATE",
        "ALTER",
        "DROP",
        "SET",
    }


def render(group: str, module: ModuleType) -> str:
    lines = [
        f"-- Every statement of energy_server/storage/sql/{group}.py, as the server sends it.",
        "-- Written by `make gen` (scripts/render_sql.py); do not edit: change the Python.",
        "-- %(name)s is a parameter; values never enter the text.",
        "",
    ]
    entries = statements(module)
    entries += [(name, _text(statement) or "") for name, statement in EXAMPLES.get(group, {}).items()]
    for name, text in entries:
        lines += [f"-- name: {name}", text.strip() + ";", ""]
    return "\n".join(lines)


def main() -> int:
    target = Path(sys.argv[1])
    for group, module in MODULES.items():
        (target / f"{group}.sql").write_text(render(group, module), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
