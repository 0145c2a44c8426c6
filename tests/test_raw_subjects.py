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


PG_FORMS = [  # how clients write a one-customer look-up, each run on the probe's PostgreSQL 15
    "a.customer_id = E'C000003'",
    "a.customer_id = E'C0000\\'03'",
    "a.customer_id = CAST('C000003' AS text)",
    "a.customer_id = CAST('C000003' AS varchar(20))",
    "a.customer_id = 'C000003' COLLATE \"C\"",
    "'C000003' = a.customer_id",
    "a.customer_id = $$C000003$$",
    "a.customer_id = ANY(ARRAY['C000003','C000006'])",
    "core.accounts.customer_id = 'C000003'",
]
MARIADB_FORMS = [  # and on its MariaDB 10.11
    "'K000002' = customer_id",
    "cards.cardholders.customer_id = 'K000002'",
    "customer_id = 'K000002' LOCK IN SHARE MODE",
    "customer_id <=> 'K000002'",
    "customer_id = _utf8mb4'K000002'",
    "customer_id = _utf8mb4 'K000002' COLLATE utf8mb4_bin",
    "customer_id = BINARY 'K000002'",
    "customer_id = N'K000002'",
    "customer_id = CONVERT('K000002' USING utf8mb4)",
    "customer_id = CAST('K000002' AS CHAR(10))",
]


def test_each_way_of_writing_a_one_customer_look_up_names_the_customer() -> None:
    """probe_q5 #8: each of these named no customer, so a teller's counter day written so lost its
    counter measure and an out-of-scope read went unjudged; a UNION of two named look-ups too."""
    (pg, *union) = fixture("pgaudit_lookup_forms.log")
    lines = [
        pg.replace("a.customer_id = 'C000003'", form.replace('"', '""')).replace("[14276]", f"[{9000 + i}]")
        for i, form in enumerate(PG_FORMS)
    ]
    events, _ = accesses([*lines, *union])
    assert [ev.subject_ids for ev in events] == [
        ["C000003"],
        ["C0000'03"],
        ["C000003"],
        ["C000003"],
        ["C000003"],
        ["C000003"],
        ["C000003"],
        ["C000003", "C000006"],
        ["C000003"],
        ["C000003", "C000006"],
    ]
    table, query = fixture("mariadb_lookup_forms.log")
    lines = []
    for i, form in enumerate(MARIADB_FORMS):
        said = form.replace("'", "\\'")
        lines += [
            table.replace(",930,", f",{940 + i},"),
            query.replace(",930,", f",{940 + i},").replace("customer_id = \\'K000002\\'", said),
        ]
    events, _ = accesses(lines, "mariadb")
    assert [ev.subject_ids for ev in events] == [["K000002"]] * len(MARIADB_FORMS)


def test_a_value_that_only_looks_like_a_look_up_names_no_customer() -> None:
    """What the forms above must not read: a concatenation before a reversed comparison (its value
    is 'xC000003'), an expression after the key, a UNION whose other query reads every row."""
    pg, union, _ = fixture("pgaudit_lookup_forms.log")
    lines = [
        pg.replace("a.customer_id = 'C000003'", form).replace("[14276]", f"[{9100 + i}]")
        for i, form in enumerate(
            ["'x' || 'C000003' = a.customer_id", "a.customer_id = CAST('C000003' AS text) || 'x'"]
        )
    ]
    lines.append(union.replace("WHERE customer_id = 'C000006'", "WHERE balance > 0"))
    events, _ = accesses(lines)
    assert [ev.subject_ids for ev in events] == [[], [], []]


def test_a_stored_routines_statement_names_the_customer_its_log_carries() -> None:
    """probe_q5 #7. MariaDB logs a procedure's statement with its variable as `NAME_CONST('p_cust',
    _utf8mb4'K000002' COLLATE ...)`, the caller on the QUERY line; PL/pgSQL's statement names the
    variable (`= p_cust`) and pgaudit gives its value among the function's variables
    (`"C000003,,,,"`). Both named no customer: a wealth manager's out-of-scope CALLs went unjudged,
    a teller's counter day through `core.get_balance` was a high art. 5 alert."""
    events, _ = accesses(fixture("mariadb_procedures.log"), "mariadb")
    assert [(ev.actor_id, ev.subject_ids) for ev in events] == [
        ("wm_li", ["K000002"]),
        ("wm_li", ["K000005"]),
        ("card_ops", ["K000002"]),
    ]
    lines = fixture("pgaudit_plpgsql_function.log")
    events, gaps = accesses(lines)
    assert sorted(
        ev.subject_ids for ev in events if ev.fields == ["payment_account_no", "account_balance"]
    ) == [
        ["C000003"],
        ["C000006"],
    ]
    # a function whose variables hold two values (a branch beside the customer): which is unknown
    events, gaps = accesses([lines[0].replace('"C000003,,,,"', '"C000003,S0101,,,"')])
    assert [ev.subject_ids for ev in events] == [[]]
    assert gaps["routine_variable corebank.core.accounts"] == 1


def test_a_customer_bound_where_the_log_carries_no_value_is_a_gap_naming_the_setting() -> None:
    """probe_q5 #5: pgaudit with log_parameter off (its default) logs `<not logged>`, MariaDB
    server_audit a server-side prepared statement with its `?`: the customer is unknown, and the
    only gap was `rows_unknown`, which points the bank to row counts. The gap says the values are
    not logged; the rows still count (as a report's), and an IN list of five `?` is five records."""
    events, gaps = accesses(fixture("pgaudit_parameters_not_logged.log"))
    assert [(ev.subject_ids, ev.row_count) for ev in events] == [([], 1), ([], 2), ([], 1)]
    assert gaps == {"parameters_not_logged corebank.core.accounts": 3}
    table, query = fixture("mariadb_server_prepared.log")[:2]
    listed = query.replace(",911,", ",912,").replace("= ?", "IN (?, ?, ?, ?, ?)")
    events, gaps = accesses([table, query, table.replace(",911,", ",912,"), listed], "mariadb")
    assert [(ev.subject_ids, ev.row_count) for ev in events] == [([], 1), ([], 5)]
    assert gaps == {"parameters_not_logged cards.credit_limits": 2, "db_user wm_li": 2}


def test_a_query_naming_one_customer_but_joining_everyones_rows_names_none() -> None:
    """probe_q5 #2: `accounts a1 JOIN accounts a2 ON a2.product = a1.product WHERE a1.customer_id =
    'C000003'` returned 1 000 balances of every branch, booked as C000003's: the counter's 2 000
    rows per customer passed them. Its rows are no one customer's, counted as the rows they are;
    a join on the customer key, or a key compared on each table, is still the customer's."""
    events, _ = accesses(fixture("pgaudit_one_named_many_joined.log"))
    assert sorted((ev.subject_ids, ev.row_count) for ev in events) == [([], 499), ([], 1000)]
    events, gaps = accesses(fixture("mariadb_one_named_many_joined.log"), "mariadb")
    assert [ev.subject_ids for ev in events] == [[]]
    assert (
        [gap for gap in gaps if gap.startswith("rows_unknown")]
        == [
            "rows_unknown cards.cardholders+cardholders+credit_limits"  # server_audit names a self-join's table twice
        ]
    )
    pg = fixture("pgaudit_one_named_many_joined.log")[0]
    own = [
        "core.accounts a1 JOIN core.customers c ON c.customer_id = a1.customer_id",
        "core.accounts a1 JOIN core.customers c USING (customer_id)",
        "core.accounts a1, core.customers c WHERE c.customer_id = a1.customer_id AND",
        "core.accounts a1 JOIN core.accounts a2 ON a2.product = a1.product AND a2.customer_id = 'C000003'",
    ]
    lines = [
        pg.replace(
            "core.accounts a1 JOIN core.accounts a2 ON a2.product = a1.product WHERE",
            form + ("" if form.endswith("AND") else " WHERE"),
        ).replace("[14053]", f"[{9200 + i}]")
        for i, form in enumerate(own)
    ]
    events, _ = accesses(lines)
    assert [ev.subject_ids for ev in events] == [["C000003"]] * len(own)
