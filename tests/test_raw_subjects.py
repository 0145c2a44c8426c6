"""Which customers a real server's audited statement names: bound parameters as pgaudit logs them,
the ways a one-customer look-up is written, stored routines, and values the log does not carry.
The lines are PostgreSQL 15.18 + pgaudit 1.7 and MariaDB 10.11 server_audit's own, from QA's
probe of real servers (probe_q5), JDBC and Connector/J clients among them."""

from __future__ import annotations

from typing import Any

from test_raw_sources import FIXTURES, TOPICS, decode_all, decoder, records


def accesses(lines: list[str], source: str = "pgaudit", **config: Any) -> tuple[list[Any], dict]:
    """The access events of these log lines, and the coverage gaps they reported."""
    dec, stats = decoder(**config)
    out = decode_all(dec, "access", records(TOPICS[source], [line.encode() for line in lines]))
    assert out.dead == []
    return [ev for _, ev in out.ok], dict(stats.gaps)


def fixture(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def test_pgaudits_one_parameter_field_binds_each_value_to_its_own_placeholder() -> None:
    """pgaudit 1.7 writes every bound value in ONE CSV field (`"savings,C000006"`): read as $1, a
    JDBC screen binding two values named no customer, `savings,C000006`, or five customers glued
    into one that does not exist, and a wealth manager's own book became an art. 5 incident. Each
    value is its placeholder's, a value holding a comma (pgaudit quotes it again) stays one."""
    lines = fixture("pgaudit_bound_parameters.log")
    lines[-1] = lines[-1].removesuffix(",0") + ",1"  # the server found no `C000021,x`; say it did
    events, _ = accesses(lines)
    assert sorted(ev.subject_ids for ev in events) == sorted(
        [
            ["C000002", "C000005", "C000008", "C000011", "C000014"],
            ["C000006"],
            ["C000021"],
            ["C000006"],
            ["C000021,x"],
        ]
    )
