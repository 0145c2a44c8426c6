"""Which SDK a captured request belongs to (docs/har.md), in this order:

1. the policy's declarations (sdks.yaml): a declared SDK's `endpoints` (host/path on a shared host)
   or `hosts` (and their subdomains);
2. the bank's own hosts (traffic.yaml `first_party_hosts`): first-party traffic, no SDK's;
3. SDKs the bank recognizes but never declared (sdks.yaml `known_sdks` hosts);
4. a tracker signature file in the Exodus Privacy format, when the user supplies one: a tracker
   whose code signature matches a declared SDK's package prefix is that SDK (talking to a host its
   declaration does not list), any other is an undeclared SDK under the tracker's name;
5. a host under the registrable domain of exactly one SDK's hosts (declared or known; traffic.yaml
   `shared_domains` aside) is that SDK's: a declared SDK's other host is its host not declared;
6. otherwise an unknown third party, named by its host: a finding in itself (seed 004 §一.(一).6-7:
   every third party that collects is declared).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from policy import PolicyError
from policy.sdk_declarations import SdkDeclarations, host_in
from policy.traffic import Traffic, endpoint_path
from schemas.models import Attribution


@dataclass(frozen=True, slots=True)
class Tracker:
    id: str
    name: str
    network: re.Pattern[str] | None
    code: re.Pattern[str] | None


def load_signatures(path: Path | str) -> list[Tracker]:
    """Trackers of an Exodus Privacy file: `{"trackers": {id: {name, network_signature,
    code_signature, ...}}}`. The user supplies it (its data is GPL-licensed, so lifemon ships none).
    A file lifemon cannot use is a PolicyError naming the tracker and the fix."""
    try:
        doc = orjson.loads(Path(path).read_bytes())
    except OSError as e:
        raise PolicyError(path, "", f"cannot be read ({e.strerror})", "check the path") from None
    except orjson.JSONDecodeError as e:
        raise PolicyError(path, "", f"not JSON ({e.args[0]})", "export the trackers list as JSON") from None
    trackers = doc.get("trackers") if isinstance(doc, dict) else None
    if not isinstance(trackers, dict):
        raise PolicyError(
            path, "trackers", "missing or not an object", 'use the Exodus format {"trackers": {id: {...}}}'
        )
    found = []
    for tid, t in trackers.items():
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise PolicyError(path, f"trackers.{tid}", "not a tracker with a name", "give it a `name`")
        found.append(
            Tracker(
                str(tid),
                t["name"],
                _pattern(path, tid, t, "network_signature"),
                _pattern(path, tid, t, "code_signature"),
            )
        )
    return found


def _pattern(path: Path | str, tid: str, tracker: dict[str, Any], key: str) -> re.Pattern[str] | None:
    text = tracker.get(key) or ""
    if not isinstance(text, str):
        raise PolicyError(
            path, f"trackers.{tid}.{key}", "not a text", "write the signature as a regex string"
        )
    if not text.strip():
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error as e:
        raise PolicyError(
            path, f"trackers.{tid}.{key}", f"not a valid regex ({e})", "fix the regex"
        ) from None


def _endpoint(text: str) -> tuple[str, str]:
    """`host/path/` -> (host, "/path/"): a path prefix matches whole segments only."""
    host, _, path = text.partition("/")
    return host.lower(), "/" + path.strip("/").lower() + "/" if path.strip("/") else "/"


def _signed(network: re.Pattern[str], host: str) -> bool:
    """A network signature names whole labels of the host: `xmpush\\.xiaomi\\.com` matches
    api.xmpush.xiaomi.com, never the look-alike evil-xmpush.xiaomi.com.example."""
    dots = [i for i, c in enumerate(host) if c == "."]
    for pos in (0, *dots, *(i + 1 for i in dots)):
        m = network.match(host, pos)
        if m and (m.end() == len(host) or host[m.end()] == "." or m.group().endswith(".")):
            return True
    return False


# second-level labels under a country code that registries sell names beneath (example.com.cn)
_SECOND_LEVEL = frozenset({"com", "net", "gov", "org", "edu", "ac", "co"})


def vendor_domain(host: str) -> str | None:
    """The registrable domain of a host, by the public-suffix idea taken narrowly: its last two
    labels, three under a country code's com/net/gov/org/edu/ac/co; None for an IP address."""
    labels = host.rstrip(".").split(".")
    if ":" in host or labels[-1].isdigit():
        return None
    n = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-n:]) if len(labels) >= n else None


@dataclass(frozen=True, slots=True)
class Owner:
    sdk_id: str
    how: Attribution


class Attributor:
    def __init__(self, decl: SdkDeclarations, traffic: Traffic, trackers: list[Tracker] | None = None):
        self.decl, self.traffic = decl, traffic
        # (host, "/path/", sdk) of the declared endpoints, the longest path first
        self.endpoints = sorted(
            ((*_endpoint(e), sid) for sid, d in decl.sdks.items() for e in d.endpoints),
            key=lambda x: -len(x[1]),
        )
        self.trackers = trackers or []
        # a tracker's code signature against the declared SDKs' package prefixes
        self.tracker_sdk = {
            t.id: next(
                (sid for sid, d in decl.sdks.items() if any(t.code.search(p) for p in d.package_prefixes)),
                None,
            )
            for t in self.trackers
            if t.code is not None
        }
        self._by_host: dict[str, Owner | None] = {}
        self._countries = sorted(traffic.host_countries.items(), key=lambda hc: -len(hc[0]))
        self._vendors = self._vendor_domains()
        self._agreements = frozenset(e.key() for e in traffic.consent_endpoints)
        self._withdrawals = frozenset(e.key() for e in traffic.withdrawal_endpoints)

    def owner(self, host: str, path: str) -> Owner | None:
        """The SDK a request to host+path belongs to; None: the bank's own (first-party) traffic."""
        # whatever the case and however many slashes a client wrote (a probe's `//bsfit/collect` and
        # `/BSFIT/collect` reached the SDK and were skipped as the bank's own)
        said = endpoint_path(path).rstrip("/") + "/"
        for ehost, prefix, sid in self.endpoints:
            if host == ehost and said.startswith(prefix):
                return Owner(sid, Attribution.declared)
        if host not in self._by_host:
            if len(self._by_host) > 100_000:
                self._by_host.clear()
            self._by_host[host] = self._host_owner(host)
        return self._by_host[host]

    def _host_owner(self, host: str) -> Owner | None:
        sid = self.decl.host_owner(host)
        if sid is not None:
            return Owner(sid, Attribution.declared)
        if host_in(host, self.traffic.first_party_hosts):
            return None
        known = next((kid for kid, k in self.decl.known.items() if host_in(host, k.hosts)), None)
        if known is not None:
            return Owner(known, Attribution.known)
        for t in self.trackers:
            if t.network is not None and _signed(t.network, host):
                return Owner(self.tracker_sdk.get(t.id) or t.name, Attribution.signature)
        vendor = self._vendors.get(vendor_domain(host) or "")
        if vendor is not None:
            return Owner(vendor, Attribution.declared)
        return Owner(host, Attribution.unknown)

    def _vendor_domains(self) -> dict[str, str]:
        """Registrable domain -> the declared SDK that alone has hosts under it. A domain a known SDK
        also has a host under is two products of one vendor (qq.com: TMF, X5 and Bugly), and a
        shared domain (a cloud's storage, a CDN) many companies': neither names an SDK."""
        owners: dict[str, set[tuple[bool, str]]] = {}
        for declared, table in ((True, self.decl.sdks), (False, self.decl.known)):
            for sid, d in table.items():
                for h in d.hosts:
                    if (domain := vendor_domain(h.lower())) is not None:
                        owners.setdefault(domain, set()).add((declared, sid))
        return {
            domain: sid
            for domain, ((declared, sid),) in ((d, tuple(o)) for d, o in owners.items() if len(o) == 1)
            if declared and not host_in(domain, self.traffic.shared_domains)
        }

    def country(self, host: str) -> str | None:
        """Where the host is, when the bank's table (traffic.yaml `host_countries`) says."""
        return next((c for h, c in self._countries if host_in(host, (h,))), None)

    def is_consent(self, method: str, host: str, path: str) -> bool:
        """The app's call that records the privacy-policy agreement (seed 004 序言), matched as an
        SDK endpoint is (a probe's `/api/privacy/agree/` was no agreement)."""
        return (method.upper(), host, endpoint_path(path)) in self._agreements

    def is_withdrawal(self, method: str, host: str, path: str) -> bool:
        """The app's call that withdraws it (seed 004 §五.(三), 关闭授权)."""
        return (method.upper(), host, endpoint_path(path)) in self._withdrawals
