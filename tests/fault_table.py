"""The table of faults survived, from the rows the fault matrix's last run wrote (build/faults/, one
JSON file per case; tests/fault_matrix.py `record`). Markdown, for the README:

    python tests/fault_table.py            # after `make faults` or `make test-all`
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULTS_DIR = Path(
    os.environ.get("LIFEMON_FAULT_RESULTS", Path(__file__).resolve().parent.parent / "build" / "faults")
)
ORDER = [
    "broker_cut_off",
    "broker_restart",
    "broker_back_empty",
    "clickhouse_unwritable",
    "clickhouse_outage_stop_native",
    "clickhouse_outage_stop_faust",
    "rebalance_kill_9",
    "receiver_outage",
    "disk_full",
    "disk_full_at_start",
]


def cell(row: dict, kind: str) -> str:
    lost, dup = row.get(f"{kind}_lost"), row.get(f"{kind}_duplicated")
    return "—" if lost is None and dup is None else f"{lost} / {dup}"


def table(rows: list[dict]) -> str:
    rows = sorted(rows, key=lambda r: ORDER.index(r["case"]) if r["case"] in ORDER else len(ORDER))
    lines = [
        "| fault | injected | result | events lost / dup | alerts lost / dup | incidents lost / dup "
        "| alert revisions re-sent | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        resent = "—" if r.get("resent") is None else str(r["resent"])
        lines.append(
            f"| {r['case']} | {r['injected']} | {r['result']} | {cell(r, 'events')} | {cell(r, 'alerts')} "
            f"| {cell(r, 'incidents')} | {resent} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))]
    if not rows:
        print(f"no results in {RESULTS_DIR}: run `make faults` first", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
