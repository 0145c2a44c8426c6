"""Keyed HMAC pseudonyms for customer ids in alerts and metrics: stable for one key, so SOC can
correlate alerts, and useless without the key, which lives only in the environment.

Each pseudonym names the version of the key that made it (`p_` for version 1, the key of
LIFEMON_PSEUDONYM_KEY; `p2_`, `p3_`, ... for LIFEMON_PSEUDONYM_KEY_V2, _V3, ...), so the key can be
rotated and a pseudonym read later says which key it belongs to. New pseudonyms use the ring's
highest version, or LIFEMON_PSEUDONYM_KEY_VERSION. Detector state keyed by pseudonyms of one version
cannot be continued under another: the engine refuses to (streams/engine.py, `PseudonymKeyMismatch`),
and docs/security.md#rotating-the-pseudonym-key gives the procedure.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from functools import lru_cache
from itertools import islice

from policy.model import id_spelling
from streams.credentials import Secrets, env_name
from streams.sealed import Sealer

ENV_KEY = env_name("pseudonym_key")
VERSION_ENV = env_name("pseudonym_key_version")
PSEUDONYM = re.compile(r"\bp([0-9]*)_[0-9a-f]{24}\b")
# 128 bits, the strength HMAC-SHA256 pseudonyms need (docs/security.md#the-pseudonym-key)
MIN_KEY_BYTES = 16
GENERATE = "generate one with `openssl rand -hex 32`"
# why a key exported now finds none of a demo's customers (`lifemon incidents subjects --customers`)
ONE_OFF = "the pseudonyms of a demo or a `lifemon run` with no key exported are a one-off key's, gone with it"


def key_env(version: int) -> str:
    """The variable that holds key `version`."""
    return ENV_KEY if version == 1 else f"{ENV_KEY}_V{version}"


def prefix(version: int) -> str:
    return "p_" if version == 1 else f"p{version}_"


def version_of(pseudonym: str) -> int | None:
    """The key version a pseudonym was made with; None if it is not a pseudonym."""
    found = PSEUDONYM.fullmatch(pseudonym)
    return (int(found[1]) if found[1] else 1) if found else None


def spelled_as(form: str | None, within: bool = False, bare: bool = False) -> Callable[[str], str]:
    """An id as its owner's system spells it: `id_spelling`, then, where the bank gives the ids'
    form (organisation.yaml `customer_id_form`, `employee_id_form`), in the case the form takes:
    a CRM's `e300011` is the terminated E300011 of the entitlements feed, `c0000306` the customer
    C0000306 (a probe's fired employee read as an unknown actor, a low gap, not a high alert).
    `within` (employees): an id of the form inside what a log writes, as a whole token and the only
    one, is that id: an account as a directory writes it (`BANK\\E300001`, `E300001@bank.com.cn`:
    a probe's harvest split between two spellings lost its art. 5 alert), a name beside it
    (`E500001(张伟)`: a destruction supervised by its own operator passed). Without a form case is
    kept. `bare`: a number of the form's digits alone is the form's without its letters, where the
    form is letters then a fixed count of digits (`0000001` is C0000001 of `C[0-9]{7}`, `300001`
    E300001 of `E[0-9]{6}`): a probe's CRM writes its customer numbers so, and a wealth manager's own
    book, read on two systems, counted twice into an art. 5 alert; core banking logs a teller by
    the employee number's digits, and a fired teller's reads were an unknown actor's low gap. A
    shorter number (`1`, an app's user id) is none of the form (a review's). Memoized: ids repeat."""
    found = re.compile(form) if form else None
    number = re.fullmatch(r"([A-Za-z]+)\[0-9\]\{([0-9]+)\}", form) if form and bare else None
    inside = (
        re.compile(rf"(?<![A-Za-z0-9])(?:{form})(?![A-Za-z0-9])", re.IGNORECASE) if form and within else None
    )

    def cased(text: str) -> str | None:
        """`text` in the case the form takes, if any does."""
        assert found is not None
        return next((c for c in (text, text.upper(), text.lower()) if found.fullmatch(c)), None)

    @lru_cache(maxsize=100_000)
    def spell(raw: str) -> str:
        plain = id_spelling(raw)
        if found is None:
            return plain
        spelled = cased(plain)
        if spelled is None and number is not None and plain.isdigit() and len(plain) == int(number[2]):
            spelled = number[1] + plain
        if spelled is None and inside is not None:
            ids = {m.group() for m in inside.finditer(plain)}
            spelled = cased(ids.pop()) if len(ids) == 1 else None
        return spelled or plain

    return spell


class PseudonymKeyError(ValueError):
    """The key ring in the environment cannot be used: a key unset, too short, or a version
    pinned that no key has. Said in one line naming the variable to set, as a config error."""


class PseudonymKeyMismatch(RuntimeError):
    """Saved detector state holds pseudonyms of one key version, new events would get another:
    every subject's state would split in two (a withdrawn consent forgotten, a retention deadline
    never met). Said in one line with the two ways out."""

    def __init__(self, partition: int, saved: int, current: int):
        super().__init__(
            f"the saved state of partition {partition} holds pseudonyms of key version {saved}, but new "
            f"pseudonyms would use version {current}; set {VERSION_ENV}={saved} to continue this state, "
            "or rotate with a new consumer group (docs/security.md#rotating-the-pseudonym-key)"
        )
        self.partition, self.saved, self.current = partition, saved, current


class PseudonymKeyChanged(PseudonymKeyMismatch):
    """The key of a version changed under saved state: the same version number, another key (a
    probe's restart under a new LIFEMON_PSEUDONYM_KEY went on silently, 36 false alerts and 8 lost)."""

    def __init__(self, partition: int, version: int):
        RuntimeError.__init__(
            self,
            f"the saved state of partition {partition} holds pseudonyms of another key than "
            f"{key_env(version)} now holds, under the same version {version}: set the key it had, or "
            "rotate to a new version with a new consumer group (docs/security.md#rotating-the-pseudonym-key)",
        )
        self.partition, self.saved, self.current = partition, version, version


class Pseudonymizer:
    CACHE_IDS = 1_000_000  # about 200 MB of ids and pseudonyms at the most

    def __init__(self, key: bytes | Mapping[int, bytes], version: int | None = None):
        """`key`: one key (version 1) or a ring {version: key}; `version`: the one new pseudonyms
        use (default: the highest)."""
        ring = {1: key} if isinstance(key, bytes) else dict(key)
        if not ring:
            raise PseudonymKeyError(f"no pseudonym key: set {ENV_KEY}; {GENERATE}")
        for v, k in ring.items():
            if len(k) < MIN_KEY_BYTES:
                raise PseudonymKeyError(
                    f"{key_env(v)} must be at least {MIN_KEY_BYTES} bytes (it has {len(k)}); {GENERATE}"
                )
        self.version = version if version is not None else max(ring)
        if self.version not in ring:
            raise PseudonymKeyError(
                f"{VERSION_ENV}={self.version} names a key that is not set: set {key_env(self.version)}"
            )
        self._ring = ring
        self._key, self._prefix = ring[self.version], prefix(self.version)
        self._values = hmac.new(self._key, b"value:", hashlib.sha256)
        self._ids = hmac.new(self._key, digestmod=hashlib.sha256)  # keyed once; copied per new id
        # id -> pseudonym, the latest `CACHE_IDS`: the engine looks a batch's ids up here in C
        # (streams/_door.c) and calls this object only for an id not in it
        self.cache: dict[str, str] = {}
        self._spell: Callable[[str], str] = id_spelling

    def spell_ids_as(self, customer_id_form: str | None) -> None:
        """Customer ids in the case the bank's form takes (`spelled_as`): the engine and `lifemon
        pseudonym` set it from organisation.yaml before any id is pseudonymized."""
        self._spell = spelled_as(customer_id_form, bare=True)
        self.cache.clear()

    def __call__(self, subject_id: str) -> str:
        p = self.cache.get(subject_id)
        if p is None:
            h = self._ids.copy()
            h.update(self._spell(subject_id).encode())
            p = self._prefix + h.hexdigest()[:24]
            if len(self.cache) >= self.CACHE_IDS:
                # the oldest eighth goes: a full cache had taken no new id, so a customer first read
                # after the first million paid the keyed hash (~7 µs) on every read, however busy
                for old in list(islice(self.cache, self.CACHE_IDS // 8)):
                    del self.cache[old]
            self.cache[subject_id] = p
        return p

    def sealer(self) -> Sealer:
        """Seals state that may not be kept readable, under keys derived from this ring's."""
        return Sealer(self._ring, self.version)

    def every_version(self, subject_id: str) -> dict[int, str]:
        """The subject's pseudonym under each key of the ring: finds its alerts from before a
        rotation (a subject's access request, PIPL art. 45) while the old key is kept."""
        return {
            v: prefix(v) + hmac.new(k, self._spell(subject_id).encode(), hashlib.sha256).hexdigest()[:24]
            for v, k in sorted(self._ring.items())
        }

    def key_check(self) -> str:
        """A keyed fingerprint of a constant: saved state keeps it beside the key version, so a
        restart under another key of the same version is told, without the key being kept."""
        return self.digest("lifemon:pseudonym-key-check")

    def digest(self, text: str) -> str:
        """A keyed fingerprint of a captured value (docs/har.md): equal values match, the value
        cannot be read back. Never cached, so no value lingers in memory."""
        h = self._values.copy()  # the keyed state is set up once: a copy costs ~25 % less than hmac.new
        h.update(text.encode())
        return "fp_" + h.hexdigest()[:20]

    @classmethod
    def from_env(cls, allow_ephemeral: bool = True, why: str = "") -> Pseudonymizer:
        """The key ring the environment holds; else a one-off key where `allow_ephemeral`, or an
        error saying `why` the key is needed."""
        found = Secrets()
        ring = found.key_ring()
        if ring:
            return cls(ring, found.pseudonym_key_version)
        if not allow_ephemeral:
            raise PseudonymKeyError(
                f"{ENV_KEY} is not set{why}: set it to the key the monitor's pseudonyms are made with "
                f"(a new deployment: {GENERATE})"
            )
        logging.getLogger(__name__).warning(
            f"{ENV_KEY} is not set; using a one-off key, so pseudonyms will differ after a restart"
        )
        return cls(secrets.token_bytes(32))


def fingerprint(pseudonymize: Callable[[str], str], field_id: str) -> str:
    """`gap_` + 12 hex of the keyed HMAC of an unknown field id: countable, not readable. The
    coverage-gap rollups hold it instead of the id, which may be a value typed into the wrong place."""
    return "gap_" + pseudonymize("field:" + field_id).partition("_")[2][:12]
