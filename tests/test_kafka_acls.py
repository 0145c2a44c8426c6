"""The Kafka of docker-compose.yml: clients authenticate (SASL/SCRAM), ACLs decide, and the ACLs of
deploy/kafka/acls.txt keep the promises of docs/security.md#kafka. Who may do what is computed the
way Kafka's StandardAuthorizer matches resources (literal names, prefixes, the `*` wildcard)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from test_deploy import COMPOSE, REQUIRED_INTERPOLATION, ROOT, _environment, _load_yaml, _volumes

from streams.config import Config, Topics, load_config
from streams.runtime import changelog_topic, repartition_topic

KAFKA_DIR = ROOT / "deploy" / "kafka"
ACLS = KAFKA_DIR / "acls.txt"
TOPICS = Topics()
EVENTS = [TOPICS.access, TOPICS.transfer, TOPICS.sdk, TOPICS.marketing, TOPICS.lifecycle]
REFERENCE = [TOPICS.entitlements, TOPICS.consents, TOPICS.customers]
RAW = ["pfi.raw.pgaudit", "pfi.raw.mariadb", "pfi.raw.sftp"]  # streams/config.py RawSources defaults
PFI = EVENTS + REFERENCE + RAW + [TOPICS.dlq]  # every topic holding customers' data as it came


@pytest.fixture(scope="module")
def services() -> dict:
    return _load_yaml(COMPOSE)["services"]


class Acl(NamedTuple):
    principal: str
    operations: frozenset[str]
    resource: str
    pattern: str
    name: str


def acls() -> list[Acl]:
    out = []
    for line in ACLS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            principal, ops, resource, pattern, name = line.split()
            out.append(Acl(principal, frozenset(ops.split(",")), resource, pattern, name))
    return out


def who_may(operation: str, resource: str, name: str) -> set[str]:
    """Principals an allow ACL grants `operation` on the named resource (All implies every one)."""
    return {
        a.principal
        for a in acls()
        if a.resource == resource
        and (operation in a.operations or "All" in a.operations)
        and (
            a.name == "*"
            or (a.pattern == "literal" and a.name == name)
            or (a.pattern == "prefixed" and name.startswith(a.name))
        )
    }


def test_the_acl_file_is_well_formed() -> None:
    known_ops = {"Read", "Write", "Create", "Delete", "Alter", "Describe", "DescribeConfigs", "AlterConfigs"}
    for a in acls():
        assert a.operations <= known_ops, a
        assert a.resource in ("topic", "group") and a.pattern in ("literal", "prefixed"), a
        assert a.principal != "*" and a.name != "*", f"no wildcard grants: {a}"
        assert "All" not in a.operations


@pytest.mark.parametrize("topic", PFI)
def test_only_lifemon_reads_the_pfi_topics(topic: str) -> None:
    readers = who_may("Read", "topic", topic)
    assert readers == ({"dlq_reader"} if topic == TOPICS.dlq else {"lifemon"}), topic


@pytest.mark.parametrize(
    ("topic", "owner"),
    [(TOPICS.entitlements, "iam"), (TOPICS.consents, "consent_platform"), (TOPICS.customers, "crm")],
)
def test_only_its_owner_writes_a_reference_topic(topic: str, owner: str) -> None:
    """Whoever writes pfi.entitlements can grant themselves an approval and silence bulk_query."""
    assert who_may("Write", "topic", topic) == {owner}
    for op in ("Delete", "Alter", "AlterConfigs"):
        assert who_may(op, "topic", topic) == set()


def test_lifemon_may_do_its_work_and_nothing_more() -> None:
    config = Config()
    for topic in [*EVENTS, *REFERENCE, *RAW]:
        assert "lifemon" in who_may("Read", "topic", topic) and "lifemon" not in who_may(
            "Write", "topic", topic
        )
    for topic in (TOPICS.alerts, TOPICS.incidents, TOPICS.dlq):
        assert "lifemon" in who_may("Write", "topic", topic)
    assert "lifemon" in who_may("Read", "topic", TOPICS.incidents)  # `lifemon notify`
    # `lifemon watch` in the monitor's container, as docs/operations.md runs it (an operator probe:
    # the principal could write alerts and not fetch them)
    assert "lifemon" in who_may("Read", "topic", TOPICS.alerts)
    assert "lifemon" in who_may("Read", "group", "lifemon-watch-1a2b3c4d")
    internal = [changelog_topic(config), repartition_topic(config, "access", "subject_ids")]
    for topic in internal:
        assert {"Read", "Write", "Create"} <= {
            op for op in ("Read", "Write", "Create") if "lifemon" in who_may(op, "topic", topic)
        }
    for group in (
        config.kafka.group_id,
        f"{config.kafka.group_id}-reference-1a2b3c4d",
        config.notify.group_id,
    ):
        assert who_may("Read", "group", group) == {"lifemon"}
    # creating is allowed where lifemon's topics live: a missing pfi.dlq gets policy's retention
    assert "lifemon" in who_may("Create", "topic", TOPICS.dlq)


def test_the_dead_letter_topic_is_written_by_lifemon_and_read_by_its_operators_only() -> None:
    assert who_may("Write", "topic", TOPICS.dlq) == {"lifemon"}
    assert who_may("Read", "topic", TOPICS.dlq) == {"dlq_reader"}
    assert who_may("Read", "group", "dlq-fix-shipper") == {"dlq_reader"}


def test_the_broker_authenticates_and_authorizes(services: dict) -> None:
    env = _environment(services["kafka"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        host = address.rsplit(":", 1)[0]
        if protocols[name] in ("PLAINTEXT", "SSL"):  # no authentication: the container's loopback only
            assert host == "127.0.0.1", f"{listener} takes unauthenticated clients from the network"
        else:
            assert protocols[name] in ("SASL_PLAINTEXT", "SASL_SSL"), listener
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:ANONYMOUS"  # who comes over the loopback listeners
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    jaas = env["KAFKA_LISTENER_NAME_SASL__PLAINTEXT_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    assert "ScramLoginModule required" in jaas and "password" not in jaas


@pytest.mark.parametrize("service", ["lifemon", "notify"])
def test_lifemon_connects_as_its_principal_with_a_password_from_the_environment(
    services: dict, service: str
) -> None:
    kafka, lifemon = _environment(services["kafka"]), _environment(services[service])
    mount = dict((t, s) for s, t in _volumes(services[service]))
    command = services[service]["command"]
    config_path = command[command.index("--config") + 1]
    config = load_config(ROOT / mount[config_path])  # refused if it held a secret
    client = config.kafka.client
    advertised = dict(a.split("://") for a in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert (
        client["security.protocol"] in advertised
        and advertised[client["security.protocol"]] == lifemon["LIFEMON_KAFKA_BOOTSTRAP"]
    )
    assert client["sasl.mechanism"] == kafka["KAFKA_SASL_ENABLED_MECHANISMS"]
    assert client["sasl.username"] == "lifemon"
    password = REQUIRED_INTERPOLATION.match(lifemon["LIFEMON_KAFKA_SASL_PASSWORD"])
    assert password and password.group(1) == "LIFEMON_KAFKA_SASL_PASSWORD"
    assert kafka["SCRAM_PASSWORD_LIFEMON"] == lifemon["LIFEMON_KAFKA_SASL_PASSWORD"]
    if service == "notify":  # `lifemon notify` reads incidents in its own group
        assert "lifemon" in who_may("Read", "topic", config.topics.incidents)
        assert "lifemon" in who_may("Read", "group", config.notify.group_id)


def test_every_principal_gets_a_required_password_and_the_acls_are_applied_before_health(
    services: dict,
) -> None:
    kafka = services["kafka"]
    env = _environment(kafka)
    for principal in {a.principal for a in acls()}:
        value = env.get(f"SCRAM_PASSWORD_{principal.upper()}", "")
        assert REQUIRED_INTERPOLATION.match(value), f"{principal} has no required password variable"
    assert not [k for k in env if k.startswith("KAFKA_PASSWORD")], (
        "the image copies KAFKA_* into server.properties"
    )
    assert ("./deploy/kafka", "/opt/lifemon/kafka") in _volumes(kafka)
    assert kafka["command"] == ["/opt/lifemon/kafka/start.sh"]
    assert "/tmp/lifemon-acls-applied" in kafka["healthcheck"]["test"][1]
    start = (KAFKA_DIR / "start.sh").read_text(encoding="utf-8")
    assert start.index("apply-acls.sh") < start.index('touch "$marker"')
    for script in ("start.sh", "apply-acls.sh"):
        assert os.access(KAFKA_DIR / script, os.X_OK), f"{script} must be executable"
        subprocess.run(["bash", "-n", str(KAFKA_DIR / script)], check=True)


def test_apply_acls_gives_each_line_to_kafka_acls_and_passwords_only_through_a_file(tmp_path: Path) -> None:
    """The script run against stand-ins for Kafka's two tools, which record their arguments."""
    calls = tmp_path / "calls"
    for tool in ("kafka-acls.sh", "kafka-configs.sh"):
        stub = tmp_path / tool
        stub.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{tool} $*" >> {calls}\n'
            'for a in "$@"; do [[ -f "$a" ]] && cat "$a" >> ' + f"{calls}.files; done; exit 0\n"
        )
        stub.chmod(0o755)
    principals = {a.principal for a in acls()}
    env = {"PATH": os.environ["PATH"], "KAFKA_BIN": str(tmp_path)}
    env |= {f"SCRAM_PASSWORD_{p.upper()}": f"pw-of-{p}" for p in principals}
    done = subprocess.run(
        ["bash", str(KAFKA_DIR / "apply-acls.sh"), "127.0.0.1:9094"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    configs = [shlex.split(c) for c in lines if c.startswith("kafka-configs.sh")]
    assert sorted(c[c.index("--entity-name") + 1] for c in configs) == sorted(principals)
    assert not any("pw-of-" in c for c in lines), "a password on a command line"
    assert sorted(Path(f"{calls}.files").read_text().splitlines()) == sorted(
        f"SCRAM-SHA-512=[iterations=8192,password=pw-of-{p}]" for p in principals
    )
    added = [shlex.split(c) for c in lines if c.startswith("kafka-acls.sh")]
    assert len(added) == len(acls())
    for args, a in zip(added, acls(), strict=True):
        assert args[args.index("--allow-principal") + 1] == f"User:{a.principal}"
        assert {args[i + 1] for i, v in enumerate(args) if v == "--operation"} == a.operations
        assert args[args.index(f"--{a.resource}") + 1] == a.name
        assert args[args.index("--resource-pattern-type") + 1] == a.pattern
    # a principal without a password stops the script, naming the variable
    del env["SCRAM_PASSWORD_SIEM"]
    done = subprocess.run(
        ["bash", str(KAFKA_DIR / "apply-acls.sh"), "x:1"], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "SCRAM_PASSWORD_SIEM must be set" in done.stderr
