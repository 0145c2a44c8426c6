"""The mapping from raw logs to the canonical events, as policy data (`policy/sources.yaml`).

Database audit logs name database users, tables and columns; SFTP logs name accounts and paths.
What those mean (which employee, which JR/T 0171 field, which recipient under which contract) is
the bank's own declaration, validated here like the rest of the policy (STYLE.md habit 3).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, model_validator

from policy import DEFAULT_DIR, read_yaml, validate_section
from policy.model import Classification, Organisation, ServiceAccount, Strict, key_form
from schemas.models import LegalBasis, RecipientType

SOURCES_FILE = "sources.yaml"


class TableEntry(Strict):
    """One table of the data catalog: which columns hold which catalog fields, and the customer key."""

    customer_key: str | None = Field(
        default=None, description="the column holding the customer id; literals compared to it are subjects"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="column -> catalog field id")
    rows: int | None = Field(
        default=None,
        ge=1,
        description="about how many rows the table holds: what a read or export of all of it counts "
        "where its log says no count (COPY <table> TO, a cursor, a folding aggregate); unset: one "
        "record, and a visibility gap",
    )


class Database(Strict):
    """A database as audit logs name it; `tables` keys are `schema.table` (PostgreSQL) or `table`."""

    system: str = Field(description="the AccessEvent.system of every access to this database")
    tables: dict[str, TableEntry] = Field(default_factory=dict)
    ignore_schemas: list[str] = Field(
        default_factory=list, description="schemas whose reads are the server's own (pg_catalog, mysql)"
    )


class Actors(Strict):
    """Who a database login is. An unmapped login is still an actor, under its own name: a coverage
    gap to fix here, never a silent drop."""

    db_users: dict[str, str] = Field(default_factory=dict, description="database user -> employee id")
    applications: dict[str, str] = Field(
        default_factory=dict,
        description="application_name -> actor id; a shared service login is attributed to its application",
    )
    service_users: list[str] = Field(
        default_factory=list,
        description="logins shared by an application: the application name decides the actor",
    )
    purposes: dict[str, str] = Field(
        default_factory=dict,
        description="application_name -> purpose id (purposes.yaml) its statements serve: a teller "
        "desk's are customer_service, so the counter's and the own book's measures apply to them; "
        "a log states no purpose, and an access without one is judged as anyone's",
    )
    service_accounts: dict[str, ServiceAccount] = Field(
        default_factory=dict,
        description="actor id -> the batch job or application account the bank runs, and its "
        "scheduled take-outs: no account unknown to HR (unauthorized_lookup), its runs covered; "
        "outside its declaration, judged as an account unknown to HR (`outside_declaration`)",
    )


class SftpDirectory(Strict):
    """Files under `pattern` (fnmatch, chroot-relative path as internal-sftp logs it)."""

    pattern: str
    sends_on: str = Field(
        default="write",
        pattern="^(write|read)$",
        description="write: an upload into the recipient's drop box; read: the recipient fetches it",
    )
    fields: list[str] = Field(min_length=1, description="catalog field ids the files carry")
    bytes_per_record: int = Field(default=0, ge=0, description="0: record count unknown (reported as 0)")
    deidentified: bool = False


class SftpAccount(Strict):
    """An SFTP login used to hand data to one recipient (seed 002 §四-六: sharing, entrusted processing,
    cross-border provision)."""

    recipient_id: str
    recipient_type: RecipientType
    recipient_country: str | None = None
    contract_id: str | None = None
    legal_basis: LegalBasis = LegalBasis.none
    assessment_id: str | None = None
    actor: str | None = Field(default=None, description="the employee or service account behind the login")
    sender_system: str = "sftp"
    public_network: bool = True
    directories: list[SftpDirectory] = Field(min_length=1)


class SourceMapping(Strict):
    databases: dict[str, Database] = Field(default_factory=dict)
    actors: Actors = Field(default_factory=Actors)
    sftp_accounts: dict[str, SftpAccount] = Field(default_factory=dict)

    def table(self, database: str, name: str) -> tuple[str, TableEntry] | None:
        """(qualified name, entry) of a table as a log names it: exact, or unqualified when unique."""
        db = self.databases.get(database)
        if db is None:
            return None
        if name in db.tables:
            return name, db.tables[name]
        found = [(q, t) for q, t in db.tables.items() if q.rsplit(".", 1)[-1] == name]
        return found[0] if len(found) == 1 else None

    def service_accounts(self) -> dict[str, ServiceAccount]:
        """Every service account this file knows: those `actors.service_accounts` declares, then those
        an application or an SFTP login is attributed to, with no job declared."""
        found = dict(self.actors.service_accounts)
        named = [
            *self.actors.applications.values(),
            *(a.actor for a in self.sftp_accounts.values() if a.actor),
        ]
        for actor in named:
            found.setdefault(actor, ServiceAccount())
        return found

    def directory(self, account: SftpAccount, path: str) -> SftpDirectory | None:
        return next((d for d in account.directories if fnmatch.fnmatchcase(path, d.pattern)), None)

    def check_fields(self, classification: Classification) -> None:
        """Every field id named here must be one the data catalog classifies."""
        for dbname, db in self.databases.items():
            for tname, t in db.tables.items():
                for col, fid in t.columns.items():
                    if fid not in classification.fields:
                        raise ValueError(
                            f"databases.{dbname}.tables.{tname}.columns.{col} names unknown field id "
                            f"'{fid}'; use a field id from classification.yaml"
                        )
        for acc, a in self.sftp_accounts.items():
            for i, d in enumerate(a.directories):
                unknown = [f for f in d.fields if f not in classification.fields]
                if unknown:
                    raise ValueError(
                        f"sftp_accounts.{acc}.directories[{i}].fields names unknown field ids {unknown}; "
                        "use field ids from classification.yaml"
                    )


class _Checked(SourceMapping):
    classification: Classification
    purpose_ids: list[str] | None = None
    system_names: dict[str, str] | None = None

    @model_validator(mode="after")
    def _refs(self) -> _Checked:
        self.check_fields(self.classification)
        # every access of a database is on its system: one organisation.yaml does not declare (the
        # shipped core_banking in a bank's folder) is a system no role may use, each read flagged
        for name, db in self.databases.items():
            if self.system_names and key_form(db.system) not in self.system_names:
                raise ValueError(
                    f"databases.{name}.system '{db.system}' is not a system of organisation.yaml; use one "
                    f"of {', '.join(dict.fromkeys(self.system_names.values()))} (or a name it gives one)"
                )
        for actor, account in self.actors.service_accounts.items():
            for system in account.systems:
                if self.system_names and key_form(system) not in self.system_names:
                    raise ValueError(
                        f"actors.service_accounts.{actor}.systems names '{system}', not a system of "
                        f"organisation.yaml; use one of {', '.join(dict.fromkeys(self.system_names.values()))}"
                    )
        for app, purpose in self.actors.purposes.items():
            if self.purpose_ids is not None and purpose not in self.purpose_ids:
                raise ValueError(
                    f"actors.purposes.{app} names unknown purpose '{purpose}'; use a purpose id from "
                    f"purposes.yaml: {', '.join(self.purpose_ids)}"
                )
        return self


def load_sources(
    directory: Path | str | None = None,
    classification: Classification | None = None,
    purposes: Iterable[str] | None = None,
    organisation: Organisation | None = None,
) -> SourceMapping:
    """Load `sources.yaml` from a policy folder; field ids are checked against the classification,
    purpose ids against `purposes` (purposes.yaml's) and systems against `organisation`'s
    declared systems where given."""
    path = (Path(directory) if directory else DEFAULT_DIR) / SOURCES_FILE
    data, text = read_yaml(path)
    mapping: SourceMapping = validate_section(path, SourceMapping, data, text)
    if classification is not None:
        known = None if purposes is None else list(purposes)
        systems = organisation.system_names() if organisation is not None else None
        validate_section(
            path,
            _Checked,
            {**(data or {}), "classification": classification, "purpose_ids": known, "system_names": systems},
            text,
        )
    return mapping
