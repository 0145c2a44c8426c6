"""The privacy policy's SDK declarations as lookups (policy/sdks.yaml, seed 004 §一.(一).6): which
declared SDK an observation is, what it declares for an app version, and the PoliCheck label of
each field it collected (Andow et al., "Actions speak louder than words", USENIX Security 2020):

- `clear`: the SDK declares the field;
- `vague`: only a broad term it declares covers the field (设备参数及系统信息 -> IMEI, OAID, ...);
- `incorrect`: a `not_collected` statement of the policy says the field is not given to it;
- `omitted`: nothing in the policy mentions the field for this SDK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from urllib.parse import urlsplit

from policy.model import FieldClass, JrClass, SdkField, Sdks, key_form, spelling


class Label(StrEnum):
    clear = "clear"
    vague = "vague"
    omitted = "omitted"
    incorrect = "incorrect"


LEADING_DIGITS = re.compile(r"\d+")


def version_key(version: str) -> tuple[int, ...]:
    """ "9.10.1" -> (9, 10, 1). Each part is its leading digits (a build suffix never breaks a
    lookup: 9.2.1-beta is 9.2.1; a part without any is 0), and trailing zeros go: iOS reports the
    release 9.2.0 as 9.2, and either must fall on the same side of a declaration's bounds."""
    key = [
        int(m[0]) if (m := LEADING_DIGITS.match(p)) else 0 for p in version.strip().lstrip("vV").split(".")
    ]
    while key and key[-1] == 0:
        key.pop()
    return tuple(key)


_VERSION_AFTER = re.compile(r"[\s@/:_\-]*v?\d+(?:\.\d+)+\S*$", re.IGNORECASE)


def _sdk_form(name: str) -> str:
    """An SDK's name as compared: `key_form`, without a version after it or the word SDK at its end
    (a probe's `神策SDK 6.8.0`, `sensors_analytics@6.8.0` and `华为推送` were high undeclared-SDK alerts
    for the declared 神策SDK and 华为推送SDK)."""
    form = key_form(_VERSION_AFTER.sub("", name))
    return form.removesuffix("sdk") or form


def in_package(reported: str, prefix: str) -> bool:
    """`reported` names code under the package `prefix` (`com.amap.api.location.` with its dot, so
    that `com.amap.api.locationx` is another's), the package itself too: an app's SDK monitor
    reports an SDK by its root package (`com.amap.api.location`), which a probe's 高德定位SDK and
    华为推送SDK were undeclared SDKs under, high alerts on the fields the policy declares for them."""
    return reported.startswith(prefix) or reported == prefix.rstrip(".")


def host_in(host: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """A host is allowed when it is a listed host or a subdomain of one. Host names are
    case-insensitive and may end in the root's dot (RFC 3986 §3.2.2), and a reported host may carry
    its port (an HTTP Host header's `host:443`): an app may report any of these."""
    host = bare_host(host)
    return any(host == h or host.endswith("." + h) for h in (a.lower() for a in allowed))


def bare_host(host: str) -> str:
    """The host name of `host[:port]` or `[ipv6][:port]`, lower case, without the root's dot; of a
    URL, its host (a probe's `https://datasink.sensorsdata.cn/sa?project=…` was a host not allowed)."""
    host = host.strip().lower()
    # a URL, or a host with a path: the host is what stands between the scheme and the path, after
    # any `user@`, a backslash read as a slash as browsers and OkHttp read it (a review's
    # `https://evil.cn<backslash>@allowed.cn/` was allowed.cn's)
    if "/" in host or "\\" in host:
        host = host.replace("\\", "/")
        host = urlsplit(host if "//" in host else f"//{host}").netloc.rpartition("@")[2]
    if host.startswith("[") and "]" in host:
        return host[1 : host.index("]")]
    if host.count(":") == 1:  # one colon: a port (a bare IPv6 address has several)
        host = host.partition(":")[0]
    return host.rstrip(".")


def _closure(broad: dict[str, list[str]]) -> dict[str, frozenset[str]]:
    """Each broad term -> every field it covers, through nested terms."""
    out: dict[str, frozenset[str]] = {}
    for term in broad:
        seen: set[str] = set()
        todo = list(broad[term])
        while todo:
            f = todo.pop()
            if f not in seen:
                seen.add(f)
                todo.extend(broad.get(f, ()))
        out[term] = frozenset(seen)
    return out


class SdkDeclarations:
    def __init__(
        self,
        sdks: Sdks,
        catalog_fields: Mapping[str, FieldClass] | None = None,
        vocabulary: Mapping[str, Sequence[str]] | None = None,
        first_party_hosts: Sequence[str] = (),
    ):
        self.sdks = sdks.sdks
        self._first_party = tuple(first_party_hosts)
        # the ids SDK telemetry may name: the SDK vocabulary, and the data catalog's (a card PIN
        # reaching an SDK is named by the catalog's id, and is C3 there), the SDK's own entry first
        catalog = {
            fid: SdkField(zh=f.zh, **{"class": f.jr_class}, auth_helper=f.auth_helper, also=f.also)
            for fid, f in (catalog_fields or {}).items()
        }
        # an SDK field the data catalog classifies keeps that class where sdks.yaml names none (a
        # customer's name sent to an SDK is the catalog's C2, not an unclassified device property)
        self.fields: dict[str, SdkField] = catalog | {
            fid: f.model_copy(update={"jr_class": catalog[fid].jr_class})
            if f.jr_class is None and fid in catalog
            else f
            for fid, f in sdks.sdk_fields.items()
        }
        # a field as telemetry spells it: by its id or as the privacy policy writes it (its `zh`:
        # AndroidID, Push Token, IP地址, 手机号, or another of its words, `also`: 手机型号, GPS位置),
        # then as payloads key it (traffic.yaml `keys`, the `vocabulary`: CVV2, 身份证号, 银行卡号: a
        # probe's card code sent to an analytics SDK was an "(unknown field)" of class C1), whatever
        # the case, spaces, punctuation and Unicode form; an id first, then a `zh`, where a name could
        # stand for two. The catalog's words stay where sdks.yaml renames a field
        self._spelled: dict[str, str] = {}
        for fid in self.fields:
            self._spelled.setdefault(key_form(fid), fid)
        for entries in (self.fields, catalog):
            for fid, entry in entries.items():
                self._spelled.setdefault(key_form(entry.zh), fid)
        for entries in (self.fields, catalog):
            for fid, entry in entries.items():
                for word in entry.also:
                    self._spelled.setdefault(key_form(word), fid)
        for fid, keys in (vocabulary or {}).items():
            for key in keys:
                self._spelled.setdefault(key_form(key), fid)
        self.field_id = lru_cache(maxsize=4096)(self._field_id)  # type: ignore[method-assign]
        self.covers = _closure(sdks.broad_terms)
        self.not_collected = sdks.not_collected
        self.known = sdks.known_sdks
        self.c3_or_auth = frozenset(
            f for f, d in self.fields.items() if d.jr_class is JrClass.C3 or d.auth_helper
        )
        # by name whatever its case, spaces and punctuation (the seed writes 旷视 SDK, sdks.yaml
        # 旷视SDK), a version after it and the word SDK aside (`_sdk_form`)
        self._by_name = {_sdk_form(n): sid for sid, d in sdks.sdks.items() for n in (d.name_zh, *d.names)}
        # an id of two words or more in another case or spelling, a version after it (`amap-location`,
        # `Sensors_Analytics@6.8.0`); not one word (`push`), which any vendor may use, nor the id with
        # SDK after it (`Device Fingerprint SDK`: another vendor's, reviews')
        self._by_id = {key_form(sid): sid for sid in sdks.sdks if "_" in sid}
        self._prefixes = sorted(
            ((p, sid) for sid, d in sdks.sdks.items() for p in d.package_prefixes),
            key=lambda x: -len(x[0]),
        )
        # a declared SDK's receivers: its hosts and the hosts of its endpoints (docs/har.md)
        self.allowed_hosts = {
            sid: (*d.hosts, *(e.split("/", 1)[0] for e in d.endpoints)) for sid, d in sdks.sdks.items()
        }
        # an observed permission name -> the sensitive permission it is; a declared field -> the
        # permissions collecting it needs
        self._permission_of = {
            name: pid for pid, p in sdks.sensitive_permissions.items() for name in p.spellings(pid)
        }
        self._needs: dict[str, set[str]] = {}
        for pid, p in sdks.sensitive_permissions.items():
            for f in p.fields:
                self._needs.setdefault(f, set()).add(pid)
        self.resolve = lru_cache(maxsize=4096)(self._resolve)  # type: ignore[method-assign]
        self.declared = lru_cache(maxsize=4096)(self._declared)  # type: ignore[method-assign]
        self.label = lru_cache(maxsize=65536)(self._label)  # type: ignore[method-assign]
        # per permission name and per SDK build, not per observed list: an app reports its
        # permissions in many orders and subsets (3 480 lists in 12 000 observations of the
        # generated day), each a miss of a cache keyed by the list
        self._permission_id = lru_cache(maxsize=4096)(self._permission_of_name)
        self.allowed_permissions = lru_cache(maxsize=4096)(self._allowed_permissions)
        # a build's receivers are few, and host_in's parsing cost 2 µs an observation
        self.host_allowed = lru_cache(maxsize=65536)(self._host_allowed)

    def _resolve(self, reported: str) -> str | None:
        """The declared SDK an observation reports, by id, name or package prefix; None: undeclared."""
        if reported in self.sdks:
            return reported
        bare = _VERSION_AFTER.sub("", reported)  # an id with its version after it (`push@3.2.1`)
        if bare in self.sdks:
            return bare
        if (by_id := self._by_id.get(key_form(bare))) is not None:
            return by_id
        if (by_name := self._by_name.get(_sdk_form(reported))) is not None:
            return by_name
        return next((sid for p, sid in self._prefixes if in_package(reported, p)), None)

    def recognize(self, reported: str, host: str | None) -> str | None:
        """The name of a known but undeclared SDK matching the id, name, package prefix or host."""
        for kid, k in self.known.items():
            if reported in (kid, k.name) or any(in_package(reported, p) for p in k.package_prefixes):
                return k.name
            if host and host_in(host, k.hosts):
                return k.name
        return None

    def host_owner(self, host: str) -> str | None:
        """The declared SDK whose allow-list holds `host`: a reported id that is unknown but sends
        to a declared vendor's endpoint is that SDK under another name."""
        return next((sid for sid, d in self.sdks.items() if d.hosts and host_in(host, d.hosts)), None)

    def _field_id(self, name: str) -> str | None:
        """The field id an SDK observation's name stands for, by id or by the privacy policy's name,
        whatever its case, spaces and punctuation; None if unknown."""
        return name if name in self.fields else self._spelled.get(key_form(name))

    def observed(
        self, reported: str, app_version: str, host: str | None
    ) -> tuple[str | None, frozenset[str] | None]:
        """(declared SDK id, its fields for the app version) of an observation; the id is None for
        an undeclared SDK, the fields None when this app version does not declare it. An unknown id
        sending to a declared vendor's endpoint is that SDK under another (e.g. obfuscated) name."""
        sid = self.resolve(reported) or (self.host_owner(host) if host else None)
        return sid, self.declared(sid, app_version) if sid else None

    def undeclared_permissions(self, sid: str, app_version: str, observed: Iterable[str]) -> list[str]:
        """The sensitive permissions among `observed` that `sid`'s declaration for the app version
        neither names nor implies by a field it declares; a name not known as sensitive is not judged."""
        used = {pid for p in observed if (pid := self._permission_id(p))}
        return sorted(used - self.allowed_permissions(sid, app_version)) if used else []

    def _permission_of_name(self, name: str) -> str | None:
        """A reported permission's id: by its whole name, else by its last dotted part, as another
        platform prefixes the same word (`ohos.permission.READ_CONTACTS`: a probe's HarmonyOS
        contacts permission on an SDK that declares none passed)."""
        said = spelling(name)
        return self._permission_of.get(said) or self._permission_of.get(said.rsplit(".", 1)[-1])

    def _allowed_permissions(self, sid: str, app_version: str) -> frozenset[str]:
        """The permissions `sid`'s declaration for the app version names, or needs to collect a
        field it declares (a broad term's fields too)."""
        fields = self.declared(sid, app_version) or frozenset()
        covered = fields.union(*(self.covers.get(f, ()) for f in fields))
        named = {self._permission_of.get(spelling(p), p) for p in self.sdks[sid].permissions}
        return frozenset(named.union(*(self._needs.get(f, ()) for f in covered)))

    def _host_allowed(self, sid: str, host: str) -> bool:
        """`host` is one of `sid`'s receivers, or the bank's own (traffic.yaml `first_party_hosts`: an
        SDK deployed on the bank's servers, as sdks.yaml says TMF and 神策 often are, gives the data to
        no third party; a probe's were high alerts), or `sid` declares none to judge it against."""
        allowed = self.allowed_hosts[sid]
        return not allowed or host_in(host, allowed) or host_in(host, self._first_party)

    def _declared(self, sid: str, app_version: str) -> frozenset[str] | None:
        """The fields `sid` declares for this app version; None when this version does not ship it."""
        d = self.sdks[sid]
        v = version_key(app_version)
        if d.since_app_version and v < version_key(d.since_app_version):
            return None
        if d.until_app_version and v >= version_key(d.until_app_version):
            return None
        fields = set(d.fields)
        for change in sorted(d.changes, key=lambda c: version_key(c.since)):
            if v >= version_key(change.since):
                fields.update(change.add_fields)
                fields.difference_update(change.remove_fields)
        return frozenset(fields)

    def _label(self, sid: str, app_version: str, field: str) -> Label:
        declared = self.declared(sid, app_version) or frozenset()
        if field in declared:
            return Label.clear
        for stmt in self.not_collected:
            if field in stmt.fields and (stmt.sdks is None or sid in stmt.sdks):
                return Label.incorrect
        if any(field in self.covers.get(term, ()) for term in declared):
            return Label.vague
        return Label.omitted

    def negative_source(self, sid: str, field: str) -> str | None:
        return next(
            (s.source for s in self.not_collected if field in s.fields and (s.sdks is None or sid in s.sdks)),
            None,
        )
