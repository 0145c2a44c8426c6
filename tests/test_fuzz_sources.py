"""Fuzzed raw-log records through the raw-source decoder (docs/fuzzing.md): the real servers' lines
(tests/fixtures/raw/) of pgaudit stderr (in English and Chinese), csvlog and jsonlog, MariaDB server_audit and internal-sftp, with
spans replaced by garbage, impossible dates, enormous or non-ASCII digits, truncated, in shipper
envelopes with odd times, and random bytes. Nothing raises or stalls; every dead letter has a kind
and a reason echoing no value; every event the mapping makes keeps the schema's bounds."""

from __future__ import annotations

import json
import time

import pytest
from conftest import T0
from fuzzing import FUZZ, PER_STREAM, SENTINEL, assert_no_leak, assert_round_trips, garbage
from hypothesis import given
from hypothesis import strategies as st
from test_raw_sources import TOPICS, ZH, decode_all, decoder, entries, physical_lines, records

SOURCES = {  # name -> (topic, stream, fixture lines, decoder options)
    "pgaudit": (TOPICS["pgaudit"], "access", entries("pgaudit.log"), {}),
    "pgaudit-csvlog": (TOPICS["pgaudit"], "access", entries("pgaudit.csv"), {"format": "csvlog"}),
    "pgaudit-zh_CN": (TOPICS["pgaudit"], "access", entries("pgaudit_zh_CN.log"), ZH),  # lc_messages zh_CN
    "pgaudit-jsonlog": (TOPICS["pgaudit"], "access", physical_lines("pgaudit.json"), {}),
    "mariadb": (TOPICS["mariadb"], "access", physical_lines("mariadb_audit.log"), {}),
    "sftp": (TOPICS["sftp"], "transfer", physical_lines("sftp.log"), {}),
}
DECODERS = {name: decoder(**opts)[0] for name, (_, _, _, opts) in SOURCES.items()}
# what a field of a log line may become
pieces = st.one_of(
    st.text(max_size=30),
    st.just(SENTINEL),
    st.sampled_from(["²", "٣", "9" * 5000, "0", "-1", "99999999999999999999", "+99", "CST", "\t", "\n", ","]),
    st.sampled_from(
        ["2024-02-30", "2025-02-29 00:00:00", "20241399 25:61:61", "Feb 29", "9999-12-31T23:59:59-23:59"]
    ),
    st.sampled_from(["'", '"', "\\", "AUDIT: ", "LOG:  ", 'close "', "session opened for local user "]),
)


@st.composite
def mutated_line(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    text = draw(st.sampled_from(lines)).decode()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        text = text[:i] + draw(pieces) + text[j:]
    if draw(st.booleans()):  # a digit run made huge or odd: counts, pids, dates
        text = text.replace(draw(st.sampled_from("0123456789")), draw(st.sampled_from(["²", "9" * 30])), 1)
    value = text.encode()
    how = draw(st.sampled_from(["plain", "truncate", "envelope", "bad_utf8"]))
    if how == "truncate":
        value = value[: draw(st.integers(0, len(value)))]
    elif how == "envelope":
        stamp = draw(st.one_of(garbage, st.sampled_from([1e300, -1e300, T0 / 1000, "2026-13-01T00:00:00Z"])))
        value = json.dumps({"message": text, "@timestamp": stamp, "host": draw(garbage)}).encode()
    elif how == "bad_utf8":
        value = value[: len(value) // 2] + b"\xff\xfe" + value[len(value) // 2 :]
    return value


@pytest.mark.parametrize("source", list(SOURCES))
def test_raw_log_records_never_crash_or_leak(source: str) -> None:
    topic, stream, lines, _ = SOURCES[source]
    dec = DECODERS[source]

    @PER_STREAM
    @given(
        st.lists(
            st.one_of(mutated_line(lines), st.sampled_from(lines), st.binary(max_size=200)), max_size=12
        ),
        st.sampled_from([T0, 0, 10**15]),
    )
    def check(values: list[bytes], stamp: int) -> None:
        decoded = decode_all(dec, stream, records(topic, values, stamp))
        assert len(decoded.ok) + len(decoded.dead) <= len(values)
        assert_no_leak(decoded)
        assert_round_trips(stream, decoded)

    check()


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(list(SOURCES)))
def test_random_bytes_never_raise(value: bytes, source: str) -> None:
    topic, stream, _, _ = SOURCES[source]
    assert_no_leak(decode_all(DECODERS[source], stream, records(topic, [value], T0)))


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_long_line_is_judged_in_linear_time(source: str) -> None:
    """A 250 KB line (within max_record_bytes) with no log level in it: the pgaudit prefix's lazy
    fields backtracked quadratically over it (32 KB took 7 s; this one, minutes)."""
    topic, stream, lines, _ = SOURCES[source]
    head = lines[0].decode()[:40]
    long_lines = [f"{head}{'a@b ' * 62_000}".encode(), f"{head}{'a@b LOG: ' * 27_000}".encode()]
    started = time.process_time()
    decode_all(DECODERS[source], stream, records(topic, long_lines, T0))
    assert time.process_time() - started < 2


REGRESSIONS = {  # each raised out of decode before the fix: (source, lines that come before, the line)
    "sftp date that is no date": (
        "sftp",
        0,
        '2024-13-45T00:00:00 h internal-sftp[1]: close "x" bytes read 1 written 2',
    ),
    "sftp Feb 29 in a common year": (
        "sftp",
        0,
        'Feb 29 00:00:00 h internal-sftp[1]: close "x" bytes read 1 written 2',
    ),
    "sftp 5000-digit byte count": (
        "sftp",
        0,
        'Jan  1 00:00:00 h internal-sftp[1]: close "x" bytes read ' + "9" * 5000 + " written 2",
    ),
    "mariadb month 13": ("mariadb", 0, "20241399 25:61:61,srv,u,h,1,2,QUERY,db,'select 1',0"),
    "mariadb superscript return code": ("mariadb", 0, "20240101 00:00:00,srv,u,h,1,2,QUERY,db,'select 1',²"),
    "pgaudit month 99": (
        "pgaudit",
        0,
        "2024-99-01 00:00:00.000 UTC [1] u@d app=x LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,select 1,<none>,1",
    ),
    "pgaudit offset +99": (
        "pgaudit",
        0,
        "2024-01-01 00:00:00.000 +99 [1] u@d app=x LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,select 1,<none>,1",
    ),
    "pgaudit superscript rows": (
        "pgaudit",
        0,
        "2024-01-01 00:00:00.000 UTC [1] u@d app=x LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,t,select 1,<none>,²",
    ),
}


@pytest.mark.parametrize("case", list(REGRESSIONS))
def test_regressions_found_by_fuzzing_are_dead_letters(case: str) -> None:
    source, _, line = REGRESSIONS[case]
    topic, stream, _, _ = SOURCES[source]
    opened = b"Jan  1 00:00:00 h internal-sftp[1]: session opened for local user u from [1.2.3.4]"
    values = [opened, line.encode()] if source == "sftp" else [line.encode()]
    decoded = decode_all(DECODERS[source], stream, records(topic, values, T0))
    assert decoded.ok == [] and [d.kind for d in decoded.dead] == ["unparsed"]
    assert_no_leak(decoded)


def test_a_line_that_fits_no_language_has_a_reason_that_echoes_none_of_it() -> None:
    """Found by fuzzing: the reason for a line in an unknown language named its severity word, and
    a line whose prefix ran into a card number (`analyst_zhao@cor<number>LOG:  AUDIT: ...`) took
    the number for that word and put it on the DLQ."""
    topic, stream, lines, _ = SOURCES["pgaudit"]
    audit = next(line for line in lines if b"analyst_zhao@corebank app=bi-report LOG:  AUDIT" in line)
    line = audit.replace(b"ebank app=bi-report ", SENTINEL.encode())
    decoded = decode_all(DECODERS["pgaudit"], stream, records(topic, [line], T0))
    assert decoded.ok == [] and [d.field for d in decoded.dead] == ["log_line_prefix"]
    assert_no_leak(decoded)


def test_a_statement_naming_parameter_9999_digits_long_is_read() -> None:
    """`customer_id = $999...9` (5000 digits) raised in the mapping; now it names no subject."""
    topic, stream, lines, _ = SOURCES["pgaudit"]
    good = next(line for line in lines if b"$1" in line and b"READ,SELECT" in line)
    decoded = decode_all(
        DECODERS["pgaudit"], stream, records(topic, [good.replace(b"$1", b"$" + b"9" * 5000)], 0)
    )
    assert decoded.dead == [] and len(decoded.ok) == 1
