"""Every secret lifemon reads, from the environment only (docs/security.md#secrets).

pydantic-settings reads them into `SecretStr`s, so a repr, a `model_dump`, a log line or a validation
error shows `**********`; the value leaves its SecretStr only where a client library needs it
(librdkafka's settings, the ClickHouse driver, the registry client, the HMAC). A config file that
carries a secret (a client setting, or a password inside a DSN or URL) is refused by streams/config.py
with the variable to use instead.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PREFIX = "LIFEMON_"
# The pseudonym key ring beyond version 1 (`LIFEMON_PSEUDONYM_KEY`): LIFEMON_PSEUDONYM_KEY_V2, _V3, ...
KEY_VERSION_ENV = re.compile(rf"{PREFIX}PSEUDONYM_KEY_V([0-9]+)", re.IGNORECASE)

# librdkafka settings that are secrets -> the field below that supplies them.
KAFKA_SECRET_SETTINGS = {
    "sasl.password": "kafka_sasl_password",
    "ssl.key.password": "kafka_ssl_key_password",
    "sasl.oauthbearer.client.secret": "kafka_oauthbearer_client_secret",
}
# Other librdkafka settings that hold secret material and have no variable of their own.
KAFKA_SECRET_WORDS = ("password", "secret", "ssl.key.pem", "sasl.oauthbearer.config")


def env_name(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


def kafka_setting_fix(setting: str) -> str:
    """What to do instead of writing librdkafka's `setting` in a file."""
    field = KAFKA_SECRET_SETTINGS.get(setting)
    if field:
        return f"remove it and set {env_name(field)} instead"
    known = ", ".join(env_name(f) for f in KAFKA_SECRET_SETTINGS.values())
    return f"remove it; lifemon takes Kafka secrets only from {known}"


def url_password(url: str) -> str | None:
    """The password inside a DSN or URL (`https://user:pw@host`), or None."""
    try:
        return urlsplit(url).password
    except ValueError:  # a malformed netloc: validation of the URL itself says what is wrong
        return None


class _KeyRing(PydanticBaseSettingsSource):
    """LIFEMON_PSEUDONYM_KEY_V<n> variables into `pseudonym_keys` (version -> key)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        ring = {int(m[1]): v for k, v in os.environ.items() if (m := KEY_VERSION_ENV.fullmatch(k)) and v}
        return {"pseudonym_keys": ring} if ring else {}


class SecretUnreadable(Exception):
    """A secret's variable the environment spells wrong, said in one line. No ValueError: raised
    while a config is validated, pydantic would take it for the config's own error."""


class Secrets(BaseSettings):
    """The secrets, each `LIFEMON_<FIELD>` in the environment; unset ones are None."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_oauthbearer_client_secret: SecretStr | None = None
    clickhouse_password: SecretStr | None = None
    schema_registry_user_info: SecretStr | None = Field(
        default=None, description="`user:password` for the schema registry's basic auth"
    )
    pseudonym_key: SecretStr | None = Field(default=None, description="pseudonym key version 1")
    pseudonym_keys: dict[int, SecretStr] = Field(
        default_factory=dict, description="versions 2 and up, from LIFEMON_PSEUDONYM_KEY_V<n>"
    )
    pseudonym_key_version: int | None = Field(
        default=None, ge=1, description="the ring's version new pseudonyms use; unset: the highest"
    )

    def __init__(self, **values: Any):
        """A variable the environment spells wrong is named, with what it takes (a probe's
        LIFEMON_PSEUDONYM_KEY_VERSION=two was a traceback, or blamed on the config file)."""
        try:
            super().__init__(**values)
        except ValidationError as e:
            err = e.errors()[0]
            name = env_name(str(err["loc"][0]))
            raise SecretUnreadable(
                f"<environment>: {name}: {err['msg']}. Fix: set {name} as it says, or unset it"
            ) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment (and the key ring in it) only: no .env file is read behind the operator's back
        return init_settings, env_settings, _KeyRing(settings_cls)

    def kafka_settings(self) -> dict[str, str]:
        """The librdkafka secrets that are set, revealed for the client library."""
        return {
            setting: secret.get_secret_value()
            for setting, field in KAFKA_SECRET_SETTINGS.items()
            if (secret := getattr(self, field)) is not None
        }

    def key_ring(self) -> dict[int, bytes]:
        """Pseudonym keys by version (1: LIFEMON_PSEUDONYM_KEY), revealed for the HMAC."""
        ring = {v: k.get_secret_value().encode() for v, k in self.pseudonym_keys.items()}
        if self.pseudonym_key is not None:
            ring[1] = self.pseudonym_key.get_secret_value().encode()
        return ring
