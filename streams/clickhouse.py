"""ClickHouse through clickhouse-connect: `chdb://` (embedded, the default) or `http(s)://` (a server).

The DDL in `clickhouse/*.sql` is applied at every start; it is idempotent by construction.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import clickhouse_connect

DDL_DIR = Path(__file__).resolve().parent.parent / "clickhouse"
PASSWORD_ENV = "LIFEMON_CLICKHOUSE_PASSWORD"


def connect(dsn: str) -> Any:
    """A clickhouse-connect client. The password, if any, comes from the environment only."""
    kwargs: dict[str, Any] = {}
    if not dsn.startswith("chdb://") and os.environ.get(PASSWORD_ENV):
        kwargs["password"] = os.environ[PASSWORD_ENV]
    return clickhouse_connect.get_client(dsn=dsn, **kwargs)


def ddl_statements(database: str) -> list[str]:
    statements = []
    for path in sorted(DDL_DIR.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        statements += [s.strip().replace("{db}", database) for s in text.split(";") if s.strip()]
    return statements


def apply_ddl(client: Any, database: str) -> None:
    for statement in ddl_statements(database):
        client.command(statement)
