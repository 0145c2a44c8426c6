"""The detector registry: every detector kind registers here, in one place (pySigma's plugin idea),
so `lifemon detectors` can list them and policy sections can be checked against them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from detectors.base import Context, Detector, Finding, Store
from detectors.bulk_query import BulkQueryDetector
from detectors.deleted_record_use import DeletedRecordUseDetector
from detectors.offscope_marketing import OffscopeMarketingDetector
from detectors.retention_overrun import RetentionOverrunDetector
from detectors.sdk_overcollection import SdkOvercollectionDetector
from detectors.shared_account import SharedAccountDetector, SharedWorkstationDetector
from detectors.transfer_policy import TransferPolicyDetector
from detectors.unauthorized_lookup import UnauthorizedLookupDetector
from policy import DEFAULT_DIR, PolicyError, detector_file, line_of, validate_section
from policy.model import DetectorSection, Policy

REGISTRY: dict[str, Any] = {
    cls.kind: cls
    for cls in (
        BulkQueryDetector,
        DeletedRecordUseDetector,
        OffscopeMarketingDetector,
        RetentionOverrunDetector,
        SdkOvercollectionDetector,
        SharedAccountDetector,
        SharedWorkstationDetector,
        TransferPolicyDetector,
        UnauthorizedLookupDetector,
    )
}

log = logging.getLogger("lifemon.policy")

__all__ = ["REGISTRY", "Context", "Detector", "Finding", "DetectorSpec", "load_detectors"]


@dataclass(frozen=True)
class DetectorSpec:
    """A detector kind with its validated policy section: call `new()` for a fresh instance."""

    cls: Any  # a Detector class
    section: DetectorSection
    params: BaseModel

    @property
    def kind(self) -> str:
        return self.cls.kind

    @property
    def inputs(self) -> dict[str, str]:
        return self.cls.inputs

    @property
    def rules(self) -> dict[str, Any]:
        """Its named rules' specs by name (params.rules: a dict, or a model's fields); none for a
        detector of one rule."""
        return dict(getattr(self.params, "rules", None) or {})

    @property
    def needs(self) -> dict[str, str]:
        """stream -> the attribute a record must carry (non-empty) for the detector to read it; optional."""
        return getattr(self.cls, "needs", {})

    def new(self, store: Store) -> Detector:
        return self.cls(self.section, self.params, store)


def load_detectors(
    policy: Policy, policy_dir: Path | str | None = None, only: list[str] | None = None
) -> list[DetectorSpec]:
    """Validate each enabled detector's `params` against its Params model; errors name file, key and fix."""
    specs = []
    for kind in REGISTRY:
        if kind not in policy.detectors:
            raise PolicyError(
                detector_file(kind, policy_dir),
                "",
                f"the {kind} detector has no policy section",
                "restore the file (set `enabled: false` in it to switch the detector off)",
            )
    for kind, section in policy.detectors.items():
        path = detector_file(kind, policy_dir)
        if not path.is_file():  # a detector added since a bank's folder was written: lifemon's file
            path = detector_file(kind)
        if kind not in REGISTRY:
            raise PolicyError(
                path,
                "",
                f"no detector of kind '{kind}' is registered",
                f"rename the file to one of {sorted(REGISTRY)} or remove it",
            )
        if not section.enabled or (only and kind not in only):
            continue
        cls = REGISTRY[kind]
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        params = validate_section(path, cls.Params, section.params, text, prefix=("params",))
        _check_refs(path, text, policy, params)
        params = _with_agreement(path, text, policy, params)
        specs.append(DetectorSpec(cls, section, params))
    return specs


def _check_refs(path: Path, text: str, policy: Policy, params: BaseModel) -> None:
    """Role, purpose, field and category ids in a detector's params must exist in the catalog."""
    roles = policy.organisation.roles
    written = (yaml.safe_load(text) or {}).get("params") or {} if text else {}
    for key in ("role_thresholds", "role_daily_customers"):
        given = getattr(params, key, None) or {}
        for role in [r for r in given if r not in roles]:
            if key not in written:
                # lifemon's shipped value of a key the bank's file lacks (added since): the shipped
                # bank's roles, which another bank's folder refused on upgrade (a helper's finding)
                del given[role]
                continue
            raise PolicyError(
                path,
                f"params.{key}.{role}",
                f"unknown role '{role}'",
                f"use a role id from organisation.yaml ({', '.join(sorted(roles)[:6])}, ...)",
                line_of(text, ("params", key, role)),
            )
    purpose = getattr(params, "marketing_purpose", None)
    if purpose is not None and purpose not in policy.purposes.purposes:
        raise PolicyError(
            path,
            "params.marketing_purpose",
            f"unknown purpose '{purpose}'",
            f"use the purpose id from purposes.yaml that marketing consents are recorded under "
            f"({', '.join(sorted(policy.purposes.purposes))})",
            line_of(text, ("params", "marketing_purpose")),
        )
    cats = policy.classification.categories
    for i, step in enumerate(getattr(params, "escalation", []) or []):
        for c in step.categories:
            if c not in cats:
                raise PolicyError(
                    path,
                    f"params.escalation.{i}.categories",
                    f"unknown category '{c}'",
                    f"use a category id from classification.yaml: {', '.join(sorted(cats))}",
                    line_of(text, ("params", "escalation", i, "categories")),
                )
    for i, ident in enumerate(getattr(params, "identifiers", []) or []):
        if ident not in policy.classification.fields and ident not in cats:
            raise PolicyError(
                path,
                f"params.identifiers.{i}",
                f"unknown field or category '{ident}'",
                # the folder's own ids: a second bank's fields are not the shipped ones (a probe's)
                f"use a field id ({', '.join(sorted(policy.classification.fields)[:4])}, ...) or a "
                "category id from classification.yaml",
                line_of(text, ("params", "identifiers", i)),
            )


def _with_agreement(path: Path, text: str, policy: Policy, params: BaseModel) -> BaseModel:
    """`consent_purpose` as the id of the agreement purposes.yaml declares, which the door records
    the privacy policy's consents under: an id it does not know looks up consents no one records
    (a probe's bank, agreement `app_privacy`, kept the shipped `privacy_policy` and lost every
    before_consent and minors alert, `policy check` OK). Unset: the one agreement declared."""
    if "consent_purpose" not in type(params).model_fields:
        return params
    written = getattr(params, "consent_purpose", "") or None
    agreements = policy.purposes.agreements
    if written is not None and not agreements:
        # a folder from before purposes.yaml named agreements judges as it did: by the id written
        log.warning(
            f"{path}: params.consent_purpose '{written}' is checked against no agreement: purposes.yaml "
            "declares none, so only consents written with that id count; declare the privacy policy "
            f"under `agreements` with its names (see {DEFAULT_DIR / 'purposes.yaml'})",
            extra={"file": str(path), "key": "params.consent_purpose"},
        )
        return params
    found = policy.purposes.agreement(written)
    if found is None:
        said = f"unknown agreement '{written}'" if written is not None else "no agreement chosen"
        raise PolicyError(
            path,
            "params.consent_purpose",
            f"{said}: the privacy policy's consents are recorded under the id of its agreement in purposes.yaml",
            (
                f"use one of {', '.join(sorted(agreements))}, by id or name"
                + (" (or remove the key: the one agreement declared is used)" if len(agreements) == 1 else "")
                if agreements
                else "declare the privacy policy under purposes.yaml `agreements` (its id, zh, en and `also` names)"
            ),
            line_of(text, ("params", "consent_purpose")),
        )
    return params if found == written else params.model_copy(update={"consent_purpose": found})
