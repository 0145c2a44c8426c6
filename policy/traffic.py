"""What captured app traffic means, as policy data (`policy/traffic.yaml`, docs/har.md): the bank's
own hosts, the call that records the privacy-policy agreement, where hosts are, and the field
vocabulary (SDK field ids of sdks.yaml by key name and by value form) that turns a HAR capture into
SDK telemetry. Validated here like sources.yaml (STYLE.md habit 3)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator

from policy import DEFAULT_DIR, read_yaml, validate_section
from policy.model import JrClass, Sdks, Strict, key_form
from schemas.models import ValueType

TRAFFIC_FILE = "traffic.yaml"
RECOGNIZED = frozenset(
    {
        ValueType.imei,
        ValueType.cn_ric,
        ValueType.bank_card,
        ValueType.cn_mobile,
        ValueType.mac,
        ValueType.coordinates,
        ValueType.sms_code,
    }
)


def _host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not host or "/" in host or not re.fullmatch(r"[a-z0-9.-]+", host):
        raise ValueError(
            f"'{value}' is not a host name; write it like api.example.com, without scheme or path"
        )
    return host


class ConsentEndpoint(Strict):
    """A first-party call that records the user's agreement to the privacy policy, or its withdrawal."""

    method: str = "POST"
    host: str
    path: str = Field(
        pattern=r"^/", description="the URL path (no query), matched in any case and however many slashes"
    )

    def key(self) -> tuple[str, str, str]:
        """The call as a request to it is matched: a client writes `/API//privacy/agree/` too."""
        return self.method, self.host, endpoint_path(self.path)

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str) -> str:
        return _host(host)

    @field_validator("method")
    @classmethod
    def _upper(cls, method: str) -> str:
        return method.upper()


def endpoint_path(path: str) -> str:
    """A URL path as endpoints compare it: lower case, repeated and trailing slashes dropped."""
    return _SLASHES.sub("/", path).lower().rstrip("/") or "/"


_SLASHES = re.compile(r"/{2,}")


class VocabularyEntry(Strict):
    keys: list[str] = Field(default_factory=list, description="key names besides the field's zh name")
    values: list[ValueType] = Field(
        default_factory=list, description="value types the field carries itself (not reported separately)"
    )
    ends: list[str] = Field(
        default_factory=list,
        description="a key ending in one of these names the field too (a secret's: payPin, userPwd)",
    )


class Traffic(Strict):
    first_party_hosts: list[str] = Field(default_factory=list)
    consent_endpoints: list[ConsentEndpoint] = Field(default_factory=list)
    withdrawal_endpoints: list[ConsentEndpoint] = Field(
        default_factory=list, description="the app's calls that withdraw the agreement (关闭授权)"
    )
    shared_domains: list[str] = Field(
        default_factory=list,
        description="cloud and CDN domains whose hosts belong to many companies: no vendor's domain",
    )
    host_countries: dict[str, str] = Field(
        default_factory=dict, description="host or parent domain -> ISO code"
    )
    value_types: dict[ValueType, str] = Field(
        default_factory=dict, description="recognized value type -> the SDK field id it is"
    )
    fields: dict[str, VocabularyEntry] = Field(default_factory=dict)

    @field_validator("first_party_hosts", "shared_domains")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        return [_host(h) for h in hosts]

    @field_validator("host_countries")
    @classmethod
    def _countries(cls, table: dict[str, str]) -> dict[str, str]:
        for host, code in table.items():
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"host_countries.{host} '{code}' is no ISO 3166 code; write e.g. CN, SG, US")
        return {_host(h): c for h, c in table.items()}

    @field_validator("withdrawal_endpoints")
    @classmethod
    def _withdrawal_is_no_agreement(
        cls, withdrawals: list[ConsentEndpoint], info: ValidationInfo
    ) -> list[ConsentEndpoint]:
        agreements = {e.key() for e in info.data.get("consent_endpoints", [])}
        for e in withdrawals:
            if e.key() in agreements:
                raise ValueError(
                    f"{e.method} {e.host}{e.path} is a consent endpoint too; a call either records the "
                    "agreement or withdraws it: list it in one of the two (a declining call to a "
                    "consent endpoint withdraws already)"
                )
        return withdrawals

    @model_validator(mode="after")
    def _recognizable(self) -> Traffic:
        for vt in self.value_types:
            if vt not in RECOGNIZED:
                raise ValueError(
                    f"value_types.{vt.value} is a shape, not a recognized form; use one of "
                    f"{', '.join(sorted(RECOGNIZED))}"
                )
        return self

    def check(self, sdks: Sdks) -> None:
        """Every field id is an SDK field of sdks.yaml, and no key names two fields."""
        for vt, fid in self.value_types.items():
            if fid not in sdks.sdk_fields:
                raise ValueError(
                    f"value_types.{vt.value} names unknown field id '{fid}'; use an id of sdks.yaml sdk_fields"
                )
        owner: dict[str, str] = {
            key_form(word): fid for fid, f in sdks.sdk_fields.items() for word in (f.zh, *f.also)
        }
        for fid, entry in self.fields.items():
            if fid not in sdks.sdk_fields:
                raise ValueError(
                    f"fields.{fid} is not an SDK field id; add it to sdks.yaml sdk_fields or fix its spelling"
                )
            secret = sdks.sdk_fields[fid]
            if entry.ends and secret.jr_class is not JrClass.C3 and not secret.auth_helper:
                raise ValueError(
                    f"fields.{fid}.ends only a C3 field or an authentication helper is read by a key's end "
                    "(a secret, where a miss costs most); list whole keys under `keys` instead"
                )
            for key in entry.keys:
                form = key_form(key)
                if owner.get(form, fid) != fid:
                    raise ValueError(
                        f"fields.{fid}.keys '{key}' already names {owner[form]}; a key may name one field only"
                    )
                owner[form] = fid


class _Checked(Traffic):
    sdks: Sdks

    @model_validator(mode="after")
    def _refs(self) -> _Checked:
        self.check(self.sdks)
        return self


def load_traffic(directory: Path | str | None, sdks: Sdks) -> Traffic:
    """Load `traffic.yaml` from a policy folder; its field ids are checked against sdks.yaml."""
    path = (Path(directory) if directory else DEFAULT_DIR) / TRAFFIC_FILE
    data, text = read_yaml(path)
    traffic: Traffic = validate_section(path, Traffic, data, text)
    validate_section(path, _Checked, {**(data or {}), "sdks": sdks}, text)
    return traffic
