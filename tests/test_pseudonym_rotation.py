"""Pseudonyms carry their key version, so the key can be rotated; state keyed by pseudonyms of one
version is never silently continued under another (docs/security.md#rotating-the-pseudonym-key)."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from conftest import access, entitlement, fed, refs
from test_pipeline import make_config, send

from detectors import load_detectors
from streams.cli import main
from streams.engine import PSEUDONYM_CHECK_KEY, PSEUDONYM_VERSION_KEY, Engine
from streams.keyed_state import Change
from streams.pseudonym import (
    Pseudonymizer,
    PseudonymKeyChanged,
    PseudonymKeyMismatch,
    key_env,
    version_of,
)
from streams.runtime import Monitor, ensure_topics

K1, K2 = b"first-key-0123456789abcdef", b"second-key-0123456789abcdef"


def test_a_pseudonym_names_its_key_version_and_version_1_is_unchanged() -> None:
    old = "p_" + hmac.new(K1, b"C0000001", hashlib.sha256).hexdigest()[:24]  # before key versions
    assert Pseudonymizer(K1)("C0000001") == old  # existing alerts and state keep their pseudonyms
    ring = Pseudonymizer({1: K1, 2: K2})
    new = ring("C0000001")
    assert ring.version == 2 and new.startswith("p2_") and new != old
    assert (version_of(old), version_of(new), version_of("C0000001")) == (1, 2, None)
    assert ring.every_version("C0000001") == {1: old, 2: new}
    assert Pseudonymizer({1: K1, 2: K2}, version=1)("C0000001") == old


def test_the_key_ring_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", K1.decode())
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY_V2", K2.decode())
    assert Pseudonymizer.from_env(allow_ephemeral=False)("C1").startswith("p2_")
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY_VERSION", "1")
    assert Pseudonymizer.from_env(allow_ephemeral=False)("C1") == Pseudonymizer(K1)("C1")
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY_VERSION", "3")
    with pytest.raises(ValueError, match="LIFEMON_PSEUDONYM_KEY_VERSION=3 names a key that is not set") as e:
        Pseudonymizer.from_env(allow_ephemeral=False)
    assert key_env(3) in str(e.value) and K1.decode() not in str(e.value)
    monkeypatch.delenv("LIFEMON_PSEUDONYM_KEY_VERSION")
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY_V2", "short")
    with pytest.raises(ValueError, match="LIFEMON_PSEUDONYM_KEY_V2 must be at least 16 bytes") as e:
        Pseudonymizer.from_env(allow_ephemeral=False)
    assert "short" not in str(e.value)


# -- detector state across a rotation ---------------------------------------------------------------


@pytest.fixture
def bulk(policy, catalog):
    spec = next(s for s in load_detectors(policy) if s.kind == "bulk_query")

    def make(pseudonymize) -> Engine:
        e = Engine([spec], catalog, pseudonymize=pseudonymize)
        e.apply_reference("entitlements", refs("entitlements", [entitlement()]))
        return e

    return make


def looked_up(engine: Engine, offset: int, start: int) -> list:
    """The same 30 customers' balances: below a lobby manager's 40 and art. 5's 50 records (seed
    001 §五) however often they are looked up, as long as each customer is counted once."""
    events = access(customers=30, every_s=5, start=start)
    return engine.process("access", "pfi.access", 0, fed("access", events, "pfi.access", offset))


def without_version(changes: list[Change]) -> list[Change]:
    """Changes as saved before the key version was recorded."""
    return [c for c in changes if PSEUDONYM_VERSION_KEY.encode() not in c[0]]


def test_old_state_restores_under_its_own_key_and_counts_each_customer_once(bulk) -> None:
    first = bulk(Pseudonymizer(K1))
    assert looked_up(first, 0, 0) == []
    saved = without_version(first.changes(0))  # state from before key versions: version 1
    # the ring has version 2, pinned to 1 until the cut-over: the state goes on
    restored = bulk(Pseudonymizer({1: K1, 2: K2}, version=1))
    restored.restore(0, saved)
    assert looked_up(restored, 30, 200_000) + restored.advance() == []
    assert restored.store(0).get(PSEUDONYM_VERSION_KEY) == 1


def test_state_of_one_key_version_is_refused_under_another(bulk) -> None:
    first = bulk(Pseudonymizer(K1))
    looked_up(first, 0, 0)
    saved = first.changes(0)
    with pytest.raises(PseudonymKeyMismatch) as e:
        bulk(Pseudonymizer({1: K1, 2: K2})).restore(0, saved)
    assert (e.value.partition, e.value.saved, e.value.current) == (0, 1, 2)
    assert "LIFEMON_PSEUDONYM_KEY_VERSION=1" in str(e.value) and "new consumer group" in str(e.value)
    # what the refusal prevents: under the new key the same 30 customers count as 60
    unchecked = bulk(lambda cid: Pseudonymizer(K2)(cid))  # no version to check
    unchecked.restore(0, saved)
    (alert,) = looked_up(unchecked, 30, 200_000)
    assert alert.subject_count == 60  # a false bulk-query alert from a key change


def test_state_made_by_one_key_is_refused_under_another_of_the_same_version(bulk) -> None:
    """A restart under a new LIFEMON_PSEUDONYM_KEY with no version change (a probe's went on
    silently: 36 false alerts, 8 lost). State saved before the check was kept takes it on."""
    first = bulk(Pseudonymizer(K1))
    looked_up(first, 0, 0)
    saved = first.changes(0)
    with pytest.raises(PseudonymKeyChanged) as e:
        bulk(Pseudonymizer(K2)).restore(0, saved)
    assert isinstance(e.value, PseudonymKeyMismatch) and e.value.partition == 0
    assert "another key than LIFEMON_PSEUDONYM_KEY now holds, under the same version 1" in str(e.value)
    older = [c for c in saved if PSEUDONYM_CHECK_KEY.encode() not in c[0]]
    assert len(older) < len(saved)
    restored = bulk(Pseudonymizer(K1))
    restored.restore(0, older)
    assert (
        restored.store(0).get(PSEUDONYM_CHECK_KEY)
        == Pseudonymizer(K1).key_check()
        != Pseudonymizer(K2).key_check()
    )


def test_a_monitor_with_a_new_key_stops_before_mixing_versions(broker, ch, names, policy, catalog) -> None:
    """Through Tansu and chDB: state checkpointed under version 1 is refused by an instance whose
    ring's newest key is version 2, and continued once version 1 is pinned."""
    config = make_config(names, broker, "chdb://unused")
    t = config.topics
    ensure_topics(broker, config)
    send(broker, t.entitlements, [entitlement("e1")])
    send(broker, t.access, access("e1", customers=30, every_s=5))

    def run(pseudonymize: Pseudonymizer) -> Exception | None:
        m = Monitor(config, broker, ch, load_detectors(policy), catalog, pseudonymize)
        failure: list[Exception] = []

        def target() -> None:
            try:
                m.run(idle_exit_s=1.5, max_seconds=40)
            except Exception as e:  # noqa: BLE001 - the thread's failure is the test's subject
                failure.append(e)

        runner = threading.Thread(target=target)
        runner.start()
        runner.join(60)
        assert not runner.is_alive()
        return failure[0] if failure else None

    assert run(Pseudonymizer(K1)) is None
    refused = run(Pseudonymizer({1: K1, 2: K2}))
    assert isinstance(refused, PseudonymKeyMismatch) and (refused.saved, refused.current) == (1, 2)
    assert run(Pseudonymizer({1: K1, 2: K2}, version=1)) is None


def test_lifemon_pseudonym_finds_a_customer_under_every_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY", K1.decode())
    monkeypatch.setenv("LIFEMON_PSEUDONYM_KEY_V2", K2.decode())
    assert main(["pseudonym", "C0000001"]) == 0
    old, new = Pseudonymizer(K1)("C0000001"), Pseudonymizer({1: K1, 2: K2})("C0000001")
    assert capsys.readouterr().out == f"v1 {old}  v2 {new}  C0000001\n"
