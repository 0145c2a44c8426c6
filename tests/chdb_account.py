"""Run lifemon's ClickHouse work, and other statements, on chDB as one ClickHouse account.

chDB has no login: its `default` user is whatever its config says. `users_xml` writes a config whose
`default` holds exactly the grants (and readonly setting) that deploy/clickhouse-init gives one
account, so what succeeds or is refused here is what ClickHouse's access control decides for that
account. chDB runs one engine per process, so tests/test_clickhouse_grants.py runs this module once
per account: `python tests/chdb_account.py DATA_DIR CONFIG_XML STEPS_JSON` prints one JSON result
per step.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import clickhouse_connect  # noqa: E402

from policy.storage import Storage  # noqa: E402
from schemas.models import Alert  # noqa: E402
from streams.clickhouse import apply_ddl, error_code  # noqa: E402
from streams.reviews import record_review  # noqa: E402
from streams.sinks.clickhouse import AlertSink  # noqa: E402


def users_xml(path: Path, grants: list[str], readonly: bool = False, admin: bool = False) -> Path:
    """A chDB config whose only user, `default`, has `grants` (GRANT ... ON ..., without TO)."""
    queries = "".join(f"<query>{escape(g)}</query>" for g in grants)
    user = (
        "<password></password><networks><ip>::/0</ip></networks><profile>default</profile>"
        "<quota>default</quota>"
        + ("<access_management>1</access_management>" if admin else f"<grants>{queries}</grants>")
    )
    path.write_text(
        f"<clickhouse><users><default>{user}</default></users>"
        f"<profiles><default>{'<readonly>1</readonly>' if readonly else ''}</default></profiles>"
        f"<quotas><default/></quotas>"
        f"<user_directories><users_xml><path>{escape(str(path))}</path></users_xml></user_directories>"
        "</clickhouse>",
        encoding="utf-8",
    )
    return path


def _alert(alert_id: str) -> Alert:
    now = int(datetime.now(UTC).timestamp() * 1000)
    return Alert(
        alert_id=alert_id, revision=1, status="open", detector="bulk_query", rule_id="LM-BQ-001",
        rule_version=1, severity="high", title_zh="批量查询", title_en="Bulk query", summary="e1 read 60",
        regulation=["seed 001"], jr_class="C2", actor_id="e1", subject_count=60,
        subjects_sample=["p_0123456789abcdef01234567"], counts={"records": 60}, evidence_event_ids=["ev"],
        window_start=now, window_end=now, first_seen=now, last_seen=now,
    )  # fmt: skip


def run_step(client: Any, step: dict[str, Any]) -> dict[str, Any]:
    try:
        if "apply_ddl" in step:  # lifemon's start: the DDL, and the TTL policy says
            apply_ddl(
                client, "lifemon", Storage(pseudonym_ttl_days=step["apply_ddl"], dead_letter_retention_days=7)
            )
        elif "write_review" in step:  # `lifemon alerts ack`: one review row of an alert
            record_review(client, "lifemon", step["write_review"], "acknowledged", "e900001", "on it")
        elif "write_alert" in step:  # lifemon's alert sink: insert, then read the row back
            sink = AlertSink(client, "lifemon.alerts", "alerts→clickhouse")
            sink.add([_alert(step["write_alert"])])
            sink.flush()
        else:
            return {"ok": True, "rows": [list(map(str, r)) for r in client.query(step["sql"]).result_rows]}
        return {"ok": True}
    except Exception as e:  # the step's outcome is the result, whatever failed
        return {"ok": False, "code": error_code(e), "error": str(e).splitlines()[0][:300]}


def main(data_dir: str, config_xml: str, steps_json: str) -> None:
    client = clickhouse_connect.get_client(
        interface="chdb", path=data_dir, chdb_options={"config-file": config_xml}
    )
    for step in json.loads(Path(steps_json).read_text(encoding="utf-8")):
        print(json.dumps(run_step(client, step)), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
