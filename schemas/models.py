"""Pydantic models of every lifemon record. Each mirrors `schemas/<name>.avsc` field for field;
`tests/test_schemas.py` fails when the two drift apart.

Timestamps are event time in UTC milliseconds (DESIGN.md §2). Field ids in `fields` / `categories`
are the ids of the policy's data catalog (`policy/classification.yaml`), never the values: a record
says *which* data was touched, not what it was, so no C3 value ever enters the monitor.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Record(BaseModel):
    """Base of every stream record: strict about unknown fields so a typo is a DLQ reason, not silence."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    avro_name: ClassVar[str]


class Action(StrEnum):
    view = "view"
    query = "query"
    export = "export"
    download = "download"
    print = "print"
    update = "update"
    delete = "delete"


# What takes data out of a system, and what changes it. StrEnum members: an action's value, a str,
# is found in them too.
MAX_TS = 4_102_444_800_000  # 2100-01-01: a time past it is microseconds or garbage (and a DateTime overflow)
REFERENCE_MIN_TS = 31_536_000_000  # 1971-01-01: a valid-from in seconds, before 2969, is below it
TAKES_OUT = frozenset({Action.export, Action.download, Action.print})
CHANGES = frozenset({Action.update, Action.delete})
READS = frozenset({Action.view, Action.query})


class Outcome(StrEnum):
    success = "success"
    denied = "denied"


class AccessEvent(Record):
    """Someone read or exported customers' data (topic `pfi.access`, key actor_id)."""

    avro_name: ClassVar[str] = "AccessEvent"
    event_id: str = Field(min_length=1)
    ts: int = Field(ge=0, description="event time, UTC epoch milliseconds")
    actor_id: str = Field(min_length=1)
    actor_org: str | None = None
    system: str
    action: Action
    subject_ids: list[str] = Field(default_factory=list, description="customer ids touched")
    record_ids: list[str] = Field(
        default_factory=list, description="stored record ids read, when the source names them"
    )
    row_count: int = Field(default=0, ge=0, description="rows returned; may exceed len(subject_ids)")
    fields: list[str] = Field(default_factory=list, description="data-catalog field ids read")
    purpose: str | None = None
    approval_id: str | None = None
    outcome: Outcome = Outcome.success
    client_ip: str | None = None


class RecipientType(StrEnum):
    internal = "internal"
    processor = "processor"  # entrusted processing (委托处理)
    third_party = "third_party"  # sharing / transfer (共享、转让)
    overseas = "overseas"  # cross-border provision (境外提供)
    regulator = "regulator"
    public = "public"  # public disclosure (公开披露)


class LegalBasis(StrEnum):
    consent = "consent"
    separate_consent = "separate_consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    none = "none"


class TransferEvent(Record):
    """Data leaving a system or the bank (topic `pfi.transfer`, key recipient_id)."""

    avro_name: ClassVar[str] = "TransferEvent"
    event_id: str = Field(min_length=1)
    ts: int = Field(ge=0)
    transfer_id: str
    sender_system: str
    actor_id: str | None = None
    recipient_id: str
    recipient_type: RecipientType
    recipient_country: str | None = None
    categories: list[str] = Field(default_factory=list, description="data-catalog field ids sent")
    record_count: int = Field(ge=0)
    subject_count: int = Field(ge=0)
    subject_ids: list[str] = Field(
        default_factory=list, description="customer ids the transfer concerns, when it names them"
    )
    subject_list_id: str | None = Field(
        default=None, description="reference to the list of subjects sent, when they are not named here"
    )
    record_ids: list[str] = Field(
        default_factory=list, description="stored record ids sent, when the source names them"
    )
    encrypted: bool
    deidentified: bool
    public_network: bool
    contract_id: str | None = None
    legal_basis: LegalBasis = LegalBasis.none
    assessment_id: str | None = None
    purpose: str | None = None
    approval_id: str | None = Field(
        default=None,
        description="the internal approval (内部授权审批) an employee's provision runs under, as the "
        "entitlements stream carries it",
    )


class FoundIn(StrEnum):
    """Where in a captured request a field was found."""

    path = "path"
    query = "query"
    form = "form"
    json = "json"
    text = "text"  # a plain-text body or a text value inside one (an SMS)
    header = "header"
    cookie = "cookie"


class ValueType(StrEnum):
    """What a captured value is: a recognized form (checksums and patterns), else its shape."""

    imei = "imei"
    cn_ric = "cn_ric"  # 居民身份证号码
    bank_card = "bank_card"
    cn_mobile = "cn_mobile"
    mac = "mac"
    coordinates = "coordinates"
    sms_code = "sms_code"
    text = "text"
    number = "number"
    boolean = "boolean"
    list = "list"
    object = "object"


class FieldSighting(Record):
    """One field seen in a captured request: where, what form, and a keyed fingerprint of the value
    (HMAC, LIFEMON_PSEUDONYM_KEY): the same IMEI sent twice is countable, the value is never kept."""

    avro_name: ClassVar[str] = "FieldSighting"
    field: str = Field(description="SDK field id")
    found_in: FoundIn
    value_type: ValueType
    fingerprint: str


class Attribution(StrEnum):
    """How a captured request was told to belong to an SDK (docs/har.md)."""

    declared = "declared"  # a declared SDK's host or endpoint (sdks.yaml), or a host of its vendor's domain
    known = "known"  # an SDK the bank recognizes but never declared (sdks.yaml known_sdks)
    signature = "signature"  # a tracker signature file (Exodus Privacy format)
    unknown = "unknown"  # a third-party host nothing names


class SdkTelemetryEvent(Record):
    """An app-side observation that a third-party SDK collected fields or used permissions (`pfi.sdk`)."""

    avro_name: ClassVar[str] = "SdkTelemetryEvent"
    event_id: str = Field(min_length=1)
    ts: int = Field(ge=0)
    app_id: str
    app_version: str
    device_id: str = Field(description="app-scoped device pseudonym, never IMEI itself")
    subject_id: str | None = None
    sdk_id: str
    fields: list[str] = Field(default_factory=list, description="SDK field ids collected")
    permissions: list[str] = Field(default_factory=list)
    dest_host: str | None = None
    policy_consented: bool = Field(description="user had agreed to the privacy policy at collection time")
    dest_country: str | None = Field(default=None, description="ISO country code of dest_host, if known")
    # set when the observation comes from a traffic capture (HAR): the request, never its values
    method: str | None = None
    dest_path: str | None = None
    attribution: Attribution | None = Field(default=None, description="none: the app reported the SDK")
    sightings: list[FieldSighting] = Field(default_factory=list)


class Channel(StrEnum):
    sms = "sms"
    app_push = "app_push"
    phone = "phone"
    email = "email"
    wechat = "wechat"


class PushKind(StrEnum):
    """What the sending platform says a push is: the bank's one SMS/app-push platform sends its
    notices (a rate change, a privacy-policy change, a fraud warning) on the marketing log too."""

    marketing = "marketing"
    notice = "notice"


class MarketingPushEvent(Record):
    """A push to one subject on the marketing platform's log (`pfi.marketing`, key subject_id):
    marketing, or a notice where `kind` says so."""

    avro_name: ClassVar[str] = "MarketingPushEvent"
    event_id: str = Field(min_length=1)
    ts: int = Field(ge=0)
    subject_id: str
    channel: Channel
    campaign_id: str
    purpose: str
    data_used: list[str] = Field(default_factory=list, description="field ids used for targeting")
    personalized: bool
    opt_out_offered: bool
    non_personalized_option: bool
    submitter_id: str
    approver_id: str | None = None
    org_id: str | None = None
    approval_id: str | None = Field(default=None, description="the campaign approval the push ran under")
    approved_audience: list[str] = Field(
        default_factory=list,
        description="org ids whose customers the campaign approval covers; empty: the campaign's org_id",
    )
    kind: PushKind = Field(
        default=PushKind.marketing,
        description="notice: a message every customer concerned must be told, not marketing; "
        "absent (older producers): marketing",
    )


class LifecycleStage(StrEnum):
    collect = "collect"
    store = "store"
    delete = "delete"
    anonymize = "anonymize"
    destroy = "destroy"
    deletion_requested = "deletion_requested"
    account_closed = "account_closed"
    relationship_ended = "relationship_ended"  # the customer's last product closed (AML Law art. 34)
    # the request answered with a refusal the law allows (seed 004 流程描述(5): 依据国家法律法规、
    # 行业主管部门有关规定以及与客户的约定予以响应; PIPL art. 47 ¶2): the record is kept, withheld from every use but the law's
    deletion_refused = "deletion_refused"
    # the customer withdrew the request (PIPL art. 47 is the customer's right to ask, and to stop
    # asking): it closes the request, and nothing is withheld
    deletion_withdrawn = "deletion_withdrawn"


class LifecycleEvent(Record):
    """A step in a stored record's life (`pfi.lifecycle`, key record_id)."""

    avro_name: ClassVar[str] = "LifecycleEvent"
    event_id: str = Field(min_length=1)
    ts: int = Field(ge=0)
    record_id: str
    subject_id: str | None = None
    stage: LifecycleStage
    system: str
    categories: list[str] = Field(default_factory=list)
    purpose: str | None = None
    own_institution: bool = Field(
        default=True, description="false: data of another institution (e.g. its card data)"
    )
    method: str | None = Field(default=None, description="destruction / deletion method")
    operator_id: str | None = None
    supervisor_id: str | None = None


class EmployeeStatus(StrEnum):
    active = "active"
    transferred = "transferred"
    suspended = "suspended"
    terminated = "terminated"


class Approval(Record):
    """A graded approval (分级授权审批) granting an employee a scoped, expiring access."""

    avro_name: ClassVar[str] = "Approval"
    approval_id: str
    purpose: str
    max_records: int = Field(ge=0)
    # past MAX_TS (microseconds, HR's 9999-12-31) or before 1971 (seconds) it is no expiry: the
    # approval covers nothing, and says why (detectors/approvals.py), the rest of the record applies
    expires_ts: int = Field(ge=0, description="epoch milliseconds")
    approver_id: str | None = Field(default=None, description="who approved; never the requester")
    categories: list[str] = Field(default_factory=list, description="category ids it covers")
    fields: list[str] = Field(default_factory=list, description="field ids it covers besides its categories")
    systems: list[str] = Field(default_factory=list, description="systems it covers; none: no system")


class Entitlement(Record):
    """An employee's org, roles and approvals from `ts` on (`pfi.entitlements`, compacted, key actor_id)."""

    avro_name: ClassVar[str] = "Entitlement"
    actor_id: str
    ts: int = Field(ge=0, description="valid from")
    org_id: str
    org_path: list[str] = Field(description="org ids from head office down to org_id")
    roles: list[str] = Field(default_factory=list)
    status: EmployeeStatus = EmployeeStatus.active
    approvals: list[Approval] = Field(default_factory=list)


class ConsentStatus(StrEnum):
    granted = "granted"
    withdrawn = "withdrawn"


class ConsentGiver(StrEnum):
    """Who gave a consent: the customer, or for a minor the parent or other guardian (监护人)."""

    subject = "subject"
    guardian = "guardian"


class Consent(Record):
    """A subject's consent for one purpose (and channel) from `ts` on (`pfi.consents`, key subject_id)."""

    avro_name: ClassVar[str] = "Consent"
    subject_id: str
    ts: int = Field(ge=0)
    purpose: str
    channel: Channel | None = None
    status: ConsentStatus
    separate: bool = Field(default=False, description="separate consent (单独同意), PIPL art. 29")
    given_by: ConsentGiver = Field(
        default=ConsentGiver.subject,
        description="the customer, or a minor's guardian (seed 004 流程描述(1)③, PIPL art. 31)",
    )


class CustomerStatus(StrEnum):
    active = "active"
    dormant = "dormant"
    closed = "closed"  # the account is closed: a retention clock may start (seed 002 §7)


class Customer(Record):
    """A customer's managing org and status from `ts` on (`pfi.customers`, key customer_id).

    Customers are managed only in their sub-branch; other orgs may only query them, and a branch
    sees itself and its sub-branches (seed 004, 掌上银行家系统机构设置): org-scoped visibility is
    judged against this stream, as of the access's time."""

    avro_name: ClassVar[str] = "Customer"
    customer_id: str = Field(min_length=1)
    ts: int = Field(ge=0, description="valid from")
    org_id: str = Field(description="the managing sub-branch")
    org_path: list[str] = Field(description="org ids from head office down to org_id")
    status: CustomerStatus = CustomerStatus.active
    birth_date: str | None = Field(
        default=None,
        description="the customer's date of birth, where core banking knows it (YYYY-MM-DD, YYYYMMDD, "
        "YYYY/MM/DD, YYYY年M月D日, or a DATETIME at its midnight, `2012-09-05 00:00:00`; another form, "
        "05/09/2012 among them, is no date, and the record is kept): a minor's data is collected "
        "only with a separate consent, a guardian's under 14 (seed 004 流程描述(1)③)",
    )


class Severity(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class AlertStatus(StrEnum):
    open = "open"
    updated = "updated"
    closed = "closed"


class Alert(Record):
    """lifemon's own alert record; rendered as OCSF for `pfi.alerts` and stored in ClickHouse.

    `alert_id` is hash(detector, rule, key, window start): a replay or restart reproduces it.
    `revision` grows with each update of the same alert; the newest revision wins everywhere.
    """

    avro_name: ClassVar[str] = "Alert"
    alert_id: str
    revision: int = Field(ge=1)
    status: AlertStatus
    detector: str
    rule_id: str
    rule_version: int
    severity: Severity
    title_zh: str
    title_en: str
    summary: str
    regulation: list[str] = Field(description="the clauses the alert cites, as quoted (zh)")
    regulation_en: list[str] = Field(
        default_factory=list,
        description="their English renderings, in the same order; empty on an alert stored before lifemon "
        "kept them",
    )
    jr_class: str
    actor_id: str | None = None
    actor_org: str | None = None
    actor_kind: str = Field(
        default="employee",
        pattern="^(employee|system|recipient|sdk)$",
        description="what actor_id names, where OCSF puts it: an employee, a system, a recipient, an SDK",
    )
    subject_count: int = Field(ge=0)
    subjects_sample: list[str] = Field(description="HMAC pseudonyms, never raw customer ids")
    counts: dict[str, int] = Field(default_factory=dict)
    evidence_event_ids: list[str]
    event_count: int = Field(default=0, ge=0, description="events aggregated (OCSF count); 0: an absence")
    window_start: int
    window_end: int
    first_seen: int
    last_seen: int
    # revision 1 was folded into this later one within one checkpoint (streams.alerts.latest), so
    # this is the first revision of the alert that leaves lifemon. Not a field: no record holds it,
    # and after a restart the detector's state numbers the next revision past 1.
    _folds_first: bool = PrivateAttr(default=False)

    @property
    def first_sent(self) -> bool:
        """Whether this revision is the first of its alert that lifemon sends: OCSF's Create."""
        return self.revision == 1 or self._folds_first

    def folding_first(self) -> Alert:
        """This revision, marked as carrying its folded-in revision 1 (`first_sent`)."""
        folded = self.model_copy()
        folded._folds_first = True
        return folded


EVENT_MODELS: dict[str, type[Record]] = {
    "access": AccessEvent,
    "transfer": TransferEvent,
    "sdk": SdkTelemetryEvent,
    "marketing": MarketingPushEvent,
    "lifecycle": LifecycleEvent,
    "entitlements": Entitlement,
    "consents": Consent,
    "customers": Customer,
}
REFERENCE_STREAMS = ("entitlements", "consents", "customers")
# The Kafka key of each stream (DESIGN.md §2): keyed state needs one key's records in one partition.
STREAM_KEYS = {
    "access": "actor_id",
    "transfer": "recipient_id",
    "sdk": "sdk_id",
    "marketing": "subject_id",
    "lifecycle": "record_id",
    "entitlements": "actor_id",
    "consents": "subject_id",
    "customers": "customer_id",
}
# Attributes whose values repeat: a bank has a few hundred systems, purposes, orgs, field ids,
# SDKs and recipients, seen again in every event. The decoder gives each value one str object
# (streams/codecs.py `Decoder.decode`), hashed once and compared by identity in every dict
# downstream. A str or a list of them, at the top level; never ids of events, customers or
# records, nor free text: those are new in almost every event and would only fill the pool.
REPEATING: dict[str, tuple[str, ...]] = {
    "access": ("system", "purpose", "actor_org", "fields"),
    "transfer": (
        "sender_system",
        "recipient_id",
        "recipient_country",
        "categories",
        "purpose",
        "contract_id",
    ),
    "sdk": (
        "app_id",
        "app_version",
        "sdk_id",
        "fields",
        "permissions",
        "dest_host",
        "dest_country",
        "method",
    ),
    "marketing": ("campaign_id", "purpose", "data_used", "org_id", "approved_audience"),
    "lifecycle": ("system", "categories", "purpose", "method"),
    "entitlements": ("org_id", "org_path", "roles"),
    "consents": ("purpose",),
    "customers": ("org_id", "org_path"),
}
# Attributes that hold customer ids: the engine replaces them with keyed HMAC pseudonyms before
# any detector or registry sees the record, so no state, alert or table can hold a raw id.
SUBJECT_FIELDS: dict[str, tuple[str, ...]] = {
    "access": ("subject_ids",),
    "transfer": ("subject_ids",),
    "sdk": ("subject_id",),
    "marketing": ("subject_id",),
    "lifecycle": ("subject_id",),
    "consents": ("subject_id",),
    "customers": ("customer_id",),
}
ALL_MODELS: list[type[Record]] = [*EVENT_MODELS.values(), Alert]
