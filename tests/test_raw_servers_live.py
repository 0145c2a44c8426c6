"""Slow: run the real PostgreSQL + pgaudit, MariaDB + server_audit and sshd now, and check that
today's lines parse as the committed fixtures do (a new server version changing its format shows
here first). Runs with LIFEMON_REAL_SERVERS=1 on a machine that has the servers (as root)."""

from __future__ import annotations

import os

import pytest
import realservers
from test_raw_sources import PG_EXPECTED, TOPICS, decoder, records, summary

why = realservers.available() or (
    None if os.environ.get("LIFEMON_REAL_SERVERS") else "set LIFEMON_REAL_SERVERS=1"
)
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")


def test_live_servers_write_what_the_parsers_read() -> None:
    with realservers.postgres() as logs:
        stderr = (logs / "postgresql").read_bytes().splitlines()
        csvlog = (logs / "postgresql.csv").read_bytes().splitlines()
    with realservers.mariadb() as audit:
        mariadb = audit.read_bytes().splitlines()
    with realservers.sftp() as lines:
        sftp = [line.encode() for line in lines]
    for values, opts in ((stderr, {}), (csvlog, {"format": "csvlog"})):
        dec, _ = decoder(**opts)
        out = dec.decode("access", records(TOPICS["pgaudit"], values))
        assert out.dead == [] and [summary(ev) for _, ev in out.ok] == PG_EXPECTED
    dec, _ = decoder()
    accesses = dec.decode("access", records(TOPICS["mariadb"], mariadb))
    assert [ev.outcome.value for _, ev in accesses.ok] == [
        "success",
        "success",
        "denied",
        "success",
        "success",
    ]
    transfers = dec.decode("transfer", records(TOPICS["sftp"], sftp))
    assert [ev.recipient_id for _, ev in transfers.ok] == [
        "acme-collections",
        "sunrise-insurance",
        "hk-fx-partner",
    ]
