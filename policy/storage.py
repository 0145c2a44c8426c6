"""How long lifemon keeps the personal information in its own outputs (`policy/storage.yaml`).

Pseudonyms are still personal information: PIPL art. 73(3) calls pseudonymized data de-identified,
re-identifiable with additional information (here the key), and only anonymized data (art. 73(4))
leaves the law's scope (art. 4). So the columns that hold them expire, by a ClickHouse TTL applied by
streams/clickhouse.py, and the Kafka topics that hold them or raw records have a retention
(streams/runtime.py). docs/security.md#how-long-lifemon-keeps-personal-information explains each.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DAY_MS = 86_400_000


class Storage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pseudonym_ttl_days: int = Field(
        ge=1,
        le=18_250,  # ClickHouse's DateTime ends in 2106: a TTL past it would wrap into the past
        description="days after an alert's last event when its pseudonyms (subjects, summary, OCSF "
        "document) are emptied in ClickHouse, and its records leave pfi.alerts and pfi.incidents",
    )
    dead_letter_retention_days: int = Field(
        ge=1, description="days pfi.dlq keeps rejected records, whose original bytes may hold PFI"
    )


def load_storage(folder: Path | str | None = None) -> Storage:
    """The storage section alone (the DDL and topic creation need no other), from the policy
    folder or the built-in one."""
    from policy import DEFAULT_DIR, read_yaml, validate_section

    path = Path(folder or DEFAULT_DIR) / "storage.yaml"
    data, text = read_yaml(path)
    return validate_section(path, Storage, data, text)
