"""The policy catalog's shape. Policy is data (STYLE.md habit 3): the bank's classes, org levels,
roles, retention rules, SDK declarations and detector thresholds live in YAML beside this module
and are validated here when they load. Code holds no bank-specific constant.
"""

from __future__ import annotations

import re
import unicodedata
from calendar import monthrange
from collections.abc import Callable, Collection
from datetime import date, datetime, time
from enum import StrEnum
from functools import cached_property, lru_cache
from itertools import product
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from policy.clause import Clause, in_both
from policy.incidents import IncidentPolicy
from policy.storage import Storage
from schemas.models import Action, Channel, LegalBasis, RecipientType


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@lru_cache(maxsize=1)
def _alpha_2() -> dict[str, str]:
    """Every ISO 3166-1 code (alpha-2, alpha-3, numeric) -> its alpha-2 code."""
    lines = Path(__file__).with_name("iso3166.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[2:]]  # after the source line and the header
    return {code: row[0] for row in rows for code in row}


@lru_cache(maxsize=1)
def _named() -> dict[str, str]:
    """Every country's and region's name in country_names.csv (English, Chinese, common usage), as
    `key_form` compares it -> its alpha-2 code."""
    lines = Path(__file__).with_name("country_names.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(",", 1) for line in lines if line and not line.startswith("#")][1:]
    return {key_form(name): a2 for a2, name in rows}


def method_key(method: str) -> str:
    """A name as the policy's lists are matched: case, spaces, hyphens and underscores aside, so
    `Delete Index`, `delete-index` and `DELETE_INDEX` are one method (and `tp-fund-distributor`
    the declared tp_fund_distributor)."""
    return _SEPARATORS.sub("_", method.strip().casefold())


_SEPARATORS = re.compile(r"[\s_\-]+")


def method_terms(terms: list[str]) -> re.Pattern[str]:
    """The policy's method terms as one pattern over `method_key`s: a Latin term where a word
    starts (`drop` in DROP TABLE and dropped, not in a backdrop; `rm` in rm -rf, not in a firmware
    reset), a Chinese one anywhere (删除 in 标记为已删除)."""
    keys = sorted(map(method_key, terms), key=len, reverse=True)
    return re.compile("|".join(f"(?<![a-z0-9]){re.escape(k)}" if k.isascii() else re.escape(k) for k in keys))


# an erasing term said not done or yet to come, in a method as `method_key` writes it: a negation and
# the words after it (未覆写, 待覆盖, 后续由存储自动覆盖, 跳过覆写, 未销毁密钥, no_overwrite, not_yet_wiped,
# failed_to_overwrite); a Latin word and what says it failed or is planned after it (wipe_skipped,
# overwrite_scheduled, overwrite_deferred); an erasing verb and, right after it (its task, its tool
# between), what says it failed, stopped, was not run or waits (覆写失败, 覆写中断, 擦除任务已取消, 覆写未执行,
# 擦除未完成, 覆写待审批, 覆写计划下月执行, 覆写工具故障; not 覆写完成待确认, 覆写后取消挂载, 按计划覆写完成);
# or a switch set off (overwrite=false, 覆写: 否). A Chinese negation negates the erasing verb it
# stands before, with a few words between (未能覆写, 无法擦除, 未彻底擦除, 不需要覆写, 待审批后覆写, its object
# with 对: 未对硬盘进行覆写), but not across what says whose the verb is (对不再使用的介质消磁: 不 negates 使用;
# 待报废硬盘消磁: 待 the scrapping; 已 a done step): those erase (a probe's were incomplete destructions
# once every destroy needed an erasing term, a review's 未能覆写 erased once the negation was scoped
# too tightly). 不可恢复, 不可逆, 无法恢复, 无残留 and 无备份 say how well it erased (a review's 不可逆密钥销毁
# read as a key kept); 故障 after a verb is its failure, not a failed disk's (粉碎故障硬盘)
_ERASING_VERBS = "(?:覆写|覆盖|擦除|粉碎|消磁|焚烧|焚毁|销毁|格式化|删除)"
NEGATED = re.compile(
    r"(?:未|不(?!可恢复|可逆)|没有|无(?!法恢复|残留|备份)|待|后续|稍后|拟|跳过)(?:对[^\W_]{1,8}?)?"
    r"(?:(?!的|已|使用|硬盘|磁盘|介质|设备|服务器|报废)[^\W_]){0,6}?" + _ERASING_VERBS + r"[^\W_]*"
    r"|(?<![a-z])(?:not_yet|failed_to|to_be|yet_to|no|not|without|never|awaiting|await|pending|skip|skipped)_[^\W_]+"
    r"|[^\W_]+(?:_skipped|_failed|_pending|_scheduled|_planned|_queued|_later|_deferred|_postponed|_aborted"
    r"|_cancell?ed|_incomplete)(?![a-z])"
    r"|" + _ERASING_VERBS + r"(?:任务|作业|操作|工具|程序)?已?"
    r"(?:失败|计划|故障(?!硬盘|磁盘|介质|设备|服务器|存储|盘|件)|中断|取消|未(?:执行|完成|进行|开始|成功|启动)"
    r"|待(?:审批|执行|处理|进行))"
    r"|[^\W_]+_?[:：=]_?(?:否|false|no|off|n)(?![a-z])"
)


def erases(key: str, erasing: Collection[str]) -> bool:
    """A method (as `method_key` writes it) names an erasing term, one said not done aside
    (`NEGATED`): the destruction record's check and the door's reading of an anonymization."""
    done = NEGATED.sub("", key)
    return any(term in done for term in erasing)


# what says a method did not do what a term after it names (未脱敏, 未经脱敏, 无需掩码, 未对手机号脱敏,
# 跳过脱敏, no_masking, not_masked, without_masking): the term's match is preceded by it
_UNDONE_BEFORE = re.compile(
    r"(?:未|不需?要?|无需|无|没有|跳过)(?:经过?|进行|做|对[^\W_]{1,8}?)?$|(?:^|_)(?:no|not|without|skip|skipped)_$"
)


def affirms(key: str, terms: re.Pattern[str]) -> bool:
    """A method (as `method_key` writes it) names one of `terms` (`method_terms`) not said undone
    before it: 未脱敏，直接泛化 generalizes, it does not mask (a review of the masking terms)."""
    return any(not _UNDONE_BEFORE.search(key[: m.start()]) for m in terms.finditer(key))


def iso_country(code: str | None) -> str | None:
    """An ISO 3166 alpha-2 code as compared: logs and people write `cn`, ` CN` or `Cn` for CN, and
    systems write CHN or 156 (ISO 3166's alpha-3 and numeric codes for it), or the name: China, 中国,
    Hong Kong, 香港, Singapore (a probe's declared insurer "in Singapore" was no transfer abroad, an
    undeclared one "in 中华人民共和国" a critical one). None of these may turn a domestic transfer into
    a cross-border incident, nor hide one. Text neither a code nor a name comes back in upper case,
    so it still differs from the home country."""
    if not code:
        return None
    return _code(code) or _subdivision(code) or _named().get(key_form(code), code.strip().upper())


# ISO 3166-2 lists Hong Kong, Macao and Taiwan under CN (CN-HK, CN-MO, CN-TW); each has its own
# alpha-2 code, and a transfer there leaves the mainland (PIPL art. 38-39 as the bank applies them)
_OWN_CODE = {"CN": frozenset({"HK", "MO", "TW"})}
_SUBDIVISION = re.compile(r"([A-Z]{2})-([A-Z0-9]{1,3})")


def _subdivision(code: str) -> str | None:
    """The country of an ISO 3166-2 subdivision code (`CN-SH` is CN: a probe's SDK posting to its
    declared host in Shanghai was a critical cross-border alert), or the region's own code where
    it has one (`CN-HK` is HK)."""
    found = _SUBDIVISION.fullmatch(code.strip().upper())
    if found is None:
        return None
    country, region = found.groups()
    return region if region in _OWN_CODE.get(country, ()) else _code(country)


def _code(code: str) -> str | None:
    """The alpha-2 code of an ISO 3166 code (alpha-2, alpha-3 or numeric) in any case and spaces."""
    found = code.strip().upper()
    return _alpha_2().get(found.zfill(3) if found.isdigit() else found)


def known_country(code: str | None) -> str | None:
    """The alpha-2 code of a code ISO 3166 assigns, or of a country's name (`iso_country`); None for
    any other text."""
    found = iso_country(code)
    return found if found in _alpha_2() else None


def _country(code: str) -> str:
    """A country the policy names: by its ISO 3166 code, as the bank writes its own configuration."""
    found = _code(code)
    if found is None:
        raise ValueError(f"'{code}' is no ISO 3166 country code; write e.g. CN, HK, SG, US")
    return found


CountryCode = Annotated[str, AfterValidator(_country)]


class JrClass(StrEnum):
    """JR/T 0171-2020 §4.2 sensitivity classes, highest first."""

    C3 = "C3"
    C2 = "C2"
    C1 = "C1"


CLASS_RANK = {JrClass.C1: 1, JrClass.C2: 2, JrClass.C3: 3}
RANK_CLASS = {rank: cls for cls, rank in CLASS_RANK.items()}  # a rank's class


class FieldClass(Strict):
    """One data-catalog field: its JR/T 0171 class and its data category."""

    zh: str = Field(description="the field's name in the bank's own words")
    jr_class: JrClass = Field(alias="class", description="one of C3, C2, C1")
    category: str = Field(description="a category id listed under `categories`")
    auth_helper: bool = Field(default=False, description="user authentication helper (OTP, SMS code, ...)")
    payment_sensitive: bool = Field(
        default=False,
        description="支付敏感信息 (seed 002 §五(4): card track data, expiry, CVN, PIN, payment password): "
        "encrypted in transit on any network (seed 002 §四(3))",
    )
    also: list[str] = Field(
        default_factory=list,
        description="other words the seeds, the privacy policy and logs use for it (交易密码, 存款余额, ACCT_BAL); "
        "a word names one field only",
    )
    addresses: bool = Field(
        default=False,
        description="what addresses a message to the customer (姓名, 手机号码): a push that names it in "
        "`data_used` was not chosen by it (offscope_marketing reads a push's targeting without it)",
    )

    @model_validator(mode="after")
    def _payment_sensitive_is_c3(self) -> FieldClass:
        # seed 002 §四(3) speaks of 'C3类别中的支付敏感信息': payment-sensitive data is C3 data
        if self.payment_sensitive and self.jr_class is not JrClass.C3:
            raise ValueError(
                "payment_sensitive fields are C3 (seed 002 §四(3)); set class: C3 or drop the mark"
            )
        return self


class Category(Strict):
    zh: str
    en: str
    sensitive: bool = Field(
        default=False,
        description="敏感个人信息 (seed 004 定义(10), PIPL art. 28): processing it needs a separate consent",
    )


class Combination(Strict):
    """Fields that together rise to a higher class (JR/T 0171 §4.2: combination raises sensitivity)."""

    fields: list[str | list[str]] = Field(
        min_length=2,
        description="field ids that must all be present; a list in an id's place is any one of its ids",
    )
    jr_class: JrClass = Field(alias="class")
    why: str

    @field_validator("fields")
    @classmethod
    def _places(cls, places: list[str | list[str]]) -> list[str | list[str]]:
        """Each place names at least one id, and no id stands in two places (one field would then
        complete the combination alone)."""
        seen: set[str] = set()
        for i, ids in enumerate(_alternatives(places)):
            if not ids:
                raise ValueError(f"place {i} lists no field id; name one or more alternatives")
            if seen & set(ids):
                raise ValueError(f"{sorted(seen & set(ids))} stands in two places; each field fills one")
            seen |= set(ids)
        return places

    def ids(self) -> list[str]:
        return [f for ids in _alternatives(self.fields) for f in ids]

    def sets(self) -> list[frozenset[str]]:
        """Every set of field ids that completes the combination: one id of each place."""
        return [frozenset(pick) for pick in product(*_alternatives(self.fields))]


def _alternatives(places: list[str | list[str]]) -> list[list[str]]:
    """A combination's places as lists of the ids that may fill each."""
    return [[one] if isinstance(one, str) else one for one in places]


class Classification(Strict):
    categories: dict[str, Category]
    fields: dict[str, FieldClass]
    combinations: list[Combination] = Field(default_factory=list)
    unnamed_takeout_class: JrClass = Field(
        default=JrClass.C2,
        description="the class an export, download or print is judged at when its field list names "
        "no data the catalog knows (none, a wildcard `*`, or only words it does not know, a SQL "
        "text among them): C1 is what C2 and C3 do not include (seed 004 分类(3)③), which such a "
        "list does not show; C1 judges them as any unknown field, as before",
    )
    unnamed_takeout_categories: list[str] = Field(
        default_factory=lambda: ["identity"],
        description="the categories art. 5's counts (bulk_query `legal_thresholds`) take the records "
        "of such a take-out as, where `unnamed_takeout_class` judges it above the catalog's class: "
        "an export of every column of customer data holds at least whom it is about",
    )

    @model_validator(mode="after")
    def _refs(self) -> Classification:
        for fid, f in self.fields.items():
            if f.category not in self.categories:
                raise ValueError(
                    f"fields.{fid}.category '{f.category}' is not a known category; "
                    f"add it under `categories` or use one of {', '.join(sorted(self.categories))}"
                )
        for i, combo in enumerate(self.combinations):
            unknown = [f for f in combo.ids() if f not in self.fields]
            if unknown:
                raise ValueError(
                    f"combinations[{i}].fields names unknown field ids {unknown}; declare them under `fields`"
                )
        unknown = [c for c in self.unnamed_takeout_categories if c not in self.categories]
        if unknown:
            raise ValueError(
                f"unnamed_takeout_categories names unknown categories {unknown}; use categories of `categories`"
            )
        return self

    @model_validator(mode="after")
    def _addresses_only_contact_data(self) -> Classification:
        # a field marked `addresses` leaves a push's targeting unjudged, its off-purpose and
        # separate-consent checks too: a secret or sensitive data (金融账户, 行踪轨迹) so marked would
        # target pushes unseen, and addresses no message anyway
        for fid, f in self.fields.items():
            if not f.addresses:
                continue
            why = (
                "C3"
                if f.jr_class is JrClass.C3
                else "an authentication helper"
                if f.auth_helper
                else f"of the sensitive category {f.category}"
                if self.categories[f.category].sensitive
                else None
            )
            if why is not None:
                raise ValueError(
                    f"fields.{fid}.addresses: the field is {why}, which addresses no message; mark only "
                    "what a message is addressed with (姓名, 手机号码, 电子邮箱)"
                )
        return self

    @model_validator(mode="after")
    def _one_field_a_word(self) -> Classification:
        # a log's word is read as one field (Catalog.field_spelling): a word two fields gave, or a field
        # gave a category's name, would be read as whichever came first, in a tier or grant not meant
        owner: dict[str, str] = {}
        for fid, f in self.fields.items():
            for key, words in (("", [fid]), (".zh", [f.zh]), (".also", f.also)):
                for word in words:
                    form = key_form(word)
                    if owner.setdefault(form, fid) != fid:
                        raise ValueError(
                            f"fields.{fid}{key} {word!r} already names the field {owner[form]}; a word "
                            "names one field only: drop it from one of them"
                        )
        for cid, cat in self.categories.items():
            for name in (cid, cat.zh, cat.en):
                named = owner.get(key_form(name))
                if named is not None and self.fields[named].category != cid:
                    raise ValueError(
                        f"fields.{named} names the category {cid} ({name!r}); a log's word for a category "
                        f"stands for all of it: drop it from fields.{named}"
                    )
        return self


class OrgLevel(Strict):
    """Seed 004, mobile-banker rules: which orgs a level sees."""

    zh: str
    sees: str = Field(
        pattern="^(all|self_and_descendants|self)$", description="all | self_and_descendants | self"
    )
    manages_customers: bool = False


class Role(Strict):
    zh: str
    en: str
    level: str = Field(description="an org level id from `org_levels`")
    marketing_sms: str | None = Field(default=None, pattern="^(submit|approve)$")
    permissions: str | None = Field(default=None, description="a permission set id from `permissions`")
    also: list[str] = Field(
        default_factory=list, description="other words an HR or IAM feed writes for the role (运维, ops)"
    )


class IncompatibleRoles(Strict):
    """Roles no employee holds two of (不相容职责, seed 004 人员管理(6))."""

    roles: list[str] = Field(min_length=2, description="role ids of `roles`: any two held together clash")
    posts: list[str] = Field(
        default_factory=list,
        description="single posts that are two of these by their name (DevOps: development and operations)",
    )
    source: str

    def held(self, roles: Collection[str]) -> list[str]:
        """The roles of this set `roles` hold, in the set's order, where they are two or more; or a
        post that is two of them by name, as the feed wrote it."""
        clash = [r for r in self.roles if r in roles]
        if len(clash) > 1:
            return clash
        # as the policy spells the post, whatever case or punctuation HR wrote it in (`Dev+Ops`)
        combined = self._combined
        return [combined[f] for r in roles if (f := key_form(r)) in combined][:1] if combined else []

    @cached_property
    def _combined(self) -> dict[str, str]:
        return {key_form(p): p for p in self.posts}


class OrgChange(Strict):
    """An outlet merged into another (网点撤并): from `effective` on, its customers and staff are the
    other's, whichever feed says so first (seed 004 客户管理机构(1)(2): customers are managed in one
    sub-branch; 机构设置: the merged one is no longer one). HR moves the staff the day of the
    merger and the core system's batch re-homes the customers a day or two later: without the
    declaration every employee of the outlet read "a customer of the former org" each day."""

    from_: str = Field(alias="from", min_length=1, description="the org merged away (S0105)")
    into: str = Field(min_length=1, description="the org that takes its customers and staff (S0101)")
    effective: date = Field(description="the bank's calendar day the merger takes effect, from 00:00")

    @field_validator("from_", "into")
    @classmethod
    def _code(cls, org: str) -> str:
        return code_form(org)  # as every feed's org ids are compared


class Counter(Strict):
    """The counter (柜面) serves whoever comes to it, a customer of any org. What an org sees and
    where a customer is managed do not limit an access its permission set covers by itself: on
    the set's systems, for one of these purposes, the set's own grants opening the action on the
    data. Anything else its holder does is judged as any employee's. A walk-in from another org is
    served, but a counter that serves more than `walk_ins_per_day` of them reads other books, not
    its customers' business (a teller harvesting six sub-branches at counter pace raised nothing),
    and one that serves more than `customers_per_day` in all harvests its own sub-branch's. A
    service line that answers every branch's callers (95526) has no walk-ins: none."""

    purposes: list[str] = Field(min_length=1, description="purpose ids (purposes.yaml) the counter serves")
    customers_per_day: int = Field(
        ge=1,
        description="the most customers one teller serves at the counter in a rolling 24 h of event "
        "time; the reads of any more count as any reads",
    )
    walk_ins_per_day: int | None = Field(
        ge=1,
        description="the most customers other orgs manage one teller serves at the counter in a "
        "rolling 24 h of event time; the reads of any more count as any reads. null: every org's "
        "customers are the counter's alike (a service line answering every branch's callers)",
    )
    rows_per_customer: int | None = Field(
        default=None,
        ge=1,
        description="the most rows a read naming one customer returns as counter work (a statement "
        "of a few years); a read returning more names one customer but returns others' (a query's "
        "OR 1=1) and counts as any read. Default: fewer than art. 5's smallest tier",
    )
    # as an own book's: whose customers (any) and what data (whatever its grants open) it covers
    scope: ClassVar[str] = "counter"
    reads: ClassVar[None] = None


class OwnBook(Strict):
    """Seed 004 角色设置(5)③: a wealth manager 全面管理名下客户, and a credit officer works the
    sub-branch's own borrowers. A read (view, query) of one customer the holder's own org manages
    (`scope: org`), or of any customer it sees (`scope: sight`, for a post whose book is every
    customer it sees: AML monitoring at head office), for one of these purposes, of data it
    `reads`, the set's grants opening it, is the holder's own work (流程描述(4)④ 完成本职工作时查询): not the unlawful
    obtaining the judicial interpretation's art. 5 counts, up to `customers_per_day` customers: a
    post that reads its whole book in a day is harvesting it, not serving it. Its pace is still the
    role window's."""

    purposes: list[str] = Field(
        min_length=1, description="purpose ids (purposes.yaml) of the post's own work"
    )
    reads: list[str] = Field(
        min_length=1,
        description="classes or categories its own work reads (a wealth manager's: no credit report)",
    )
    scope: Literal["org", "sight"] = Field(
        default="org", description="org: customers the holder's org manages; sight: every customer it sees"
    )
    customers_per_day: int = Field(
        ge=1,
        description="the most customers of its book one holder reads as its own work in a rolling "
        "24 h of event time; the reads of any more count as any reads",
    )
    rows_per_customer: int | None = Field(
        default=None,
        ge=1,
        description="the most rows a read naming one customer returns as the post's own work (a loan "
        "file's monthly repayment history, a case's year of flows); a read returning more names one "
        "customer but returns others' (a query's OR 1=1) and counts as any read. Default: fewer "
        "than art. 5's smallest tier (bulk_query.yaml legal_tiers)",
    )


class PeakDays(Strict):
    """Days of the bank's calendar (recipients.yaml `timezone`) on which a post's day measure is
    another: on pension day (养老金发放日) a county sub-branch's teller serves 180 customers, after a
    mass notice a hotline agent takes 200 callers, and the ordinary day's `customers_per_day`
    counted the rest as a harvest, a high alert and a leakage incident a teller a month (probe_v2
    F9). A cap raised for every day would let an ordinary day's harvest hide under it; the peak's
    measure holds on its days alone, and the reads of its days count apart from the ordinary
    days' (no peak's customers carried into the next morning's measure)."""

    zh: str
    en: str
    dates: list[date] = Field(
        default_factory=list,
        description="declared days, each the first of the peak: a mass notice's send day, a KYC-refresh wave's start",
    )
    monthly: list[int] = Field(
        default_factory=list,
        description="days of every month, each the first of the peak: 1 to 31, or from the month's end, -1 "
        "its last day; a day a month has not (31 in April) begins none that month",
    )
    days: int = Field(
        default=1, ge=1, le=31, description="how many days each listed day begins, itself the first"
    )
    customers_per_day: dict[str, Annotated[int, Field(ge=1)]] = Field(
        min_length=1,
        description="permission set id (one with a `counter` or an `own_book`) -> the most customers one "
        "holder serves a day on the peak's days, above the set's ordinary `customers_per_day`",
    )
    source: str = Field(description="why the day is busy: the bank's calendar or notice it follows")

    @model_validator(mode="after")
    def _some_day(self) -> PeakDays:
        if not self.dates and not self.monthly:
            raise ValueError(
                "has no day: `dates` and `monthly` are both empty; list the peak's days in `dates` (2026-11-11) or "
                "`monthly` (10, or -1 for the month's last day)"
            )
        wrong = [d for d in self.monthly if d == 0 or not -31 <= d <= 31]
        if wrong:
            raise ValueError(
                f"monthly {wrong} is no day of a month; write 1 to 31, or -1 to -31 counted from the month's end"
            )
        return self

    def covers(self, day: date) -> bool:
        """Whether `day` is one of the peak's: a listed day, or one of the `days` it begins."""
        for back in range(self.days):
            first = date.fromordinal(day.toordinal() - back)
            if first in self.dates:
                return True
            last = monthrange(first.year, first.month)[1]
            if first.day in self.monthly or first.day - last - 1 in self.monthly:
                return True
        return False


class PermissionSet(Strict):
    """Seed 004 角色设置(1): a role is a set of function permissions. The systems it may use and,
    per action, the classes (C3, C2, C1) or category ids whose fields it may touch."""

    zh: str
    systems: list[str] = Field(default_factory=list)
    grants: dict[Action, list[str]] = Field(
        default_factory=dict,
        description="action -> class or category ids, or a field id for that field alone (the PIN the "
        "customer sets at the counter's pad)",
    )
    approves: bool = Field(
        default=False, description="its holders sign graded approvals (分级授权审批) of data access"
    )
    counter: Counter | None = Field(
        default=None, description="its holders serve whoever comes to the counter (柜面), for these purposes"
    )
    own_book: OwnBook | None = Field(
        default=None, description="its holders' own customers, read for these purposes, are their work"
    )


class SystemRule(Strict):
    """A system's names, what it never allows, whoever asks and whatever approval they hold; and
    whether the bank manages its customers by org there."""

    zh: str | None = Field(default=None, description="its Chinese name, as staff and logs write it")
    en: str | None = Field(default=None, description="its English name")
    also: list[str] = Field(default_factory=list, description="other names logs give it")

    never: list[Action] = Field(
        default_factory=list, description="actions on its customer data no role or approval opens"
    )
    never_provide_to: list[RecipientType] = Field(
        default_factory=list,
        description="recipient types its customer data is never provided to, whatever the consent or "
        "contract (seed 004 掌上银行家 系统使用要求⑥: 不得向任何第三方单位提供): only what the law requires "
        "leaves it, a legal obligation to a regulator or a declared authority (法律法规另有规定的除外)",
    )
    manages_customers_by_org: bool = Field(
        default=False,
        description="a customer is managed in one sub-branch on this system (seed 004 客户管理机构): "
        "another org only queries it, and changes it only under a covering approval. Elsewhere "
        "(core banking's postings) a change is judged by the org's sight, as a read is",
    )
    source: str | None = Field(
        default=None, description="the passage its rules (never, by org) rest on, for the policy's reader"
    )

    @field_validator("never_provide_to")
    @classmethod
    def _outside(cls, kinds: list[RecipientType]) -> list[RecipientType]:
        # the bank's own systems are no 第三方单位: a system that could not hand data to another of
        # the bank's would stop its own reports
        if RecipientType.internal in kinds:
            raise ValueError(
                "internal is the bank's own systems, not a recipient outside it: list only "
                "processor, third_party, overseas, public or regulator"
            )
        return kinds


# a regular expression's escaped characters, its character classes, and a brace outside both that is
# no quantifier ({7}, {6,8}, {,8}, {6,}: what is left once they are taken out)
_ESCAPED = re.compile(r"\\.")
_CLASSES = re.compile(r"\[\^?\]?[^\]]*\]")
_QUANTIFIER = re.compile(r"\{(?:\d+(?:,\d*)?|,\d+)\}")
_STRAY_BRACE = re.compile(r"[{}]")

# ^ or $ outside a character class, \A or \Z: anchors no id inside a longer name can meet
_ANCHOR = re.compile(r"\\[AZ]|(?<!\\)\$|(?<![\\\[])\^")


class Organisation(Strict):
    customer_id_form: str | None = Field(
        None,
        description="a regular expression of the bank's customer ids (its core system's customer "
        "number): one found inside a name a producer chose (a record id, a folder, a list id) is "
        "replaced by the customer's pseudonym (docs/security.md#customer-ids-in-names)",
    )
    employee_id_form: str | None = Field(
        None,
        description="a regular expression of the bank's employee ids (the entitlements feed's): an "
        "actor id a log writes in another case (e300011) is read in the case the form takes (E300011)",
    )
    customer_id_example: str | None = Field(
        None,
        description="one customer id as the core system writes it: `customer_id_form` must match all of "
        "it, or the policy is refused (a form wrong but valid, 8[0-9]{11 for 8[0-9]{11}, matched no id, "
        "and customer numbers reached alerts in the clear)",
    )
    employee_id_example: str | None = Field(
        None,
        description="one employee id as the entitlements feed writes it: `employee_id_form` must match all of it",
    )
    department_form: str | None = Field(
        None,
        description="a regular expression of the whole id of a department (部室) an HR feed places "
        "under its org (HO_RETAIL, 总行零售银行部): read as that org, at its level",
    )
    head_office: str | None = Field(
        None,
        description="the head office's org id, the root of every org_path: a path a feed writes "
        "without it (`[S0101]`, `[B01]`) is completed from the tree other paths gave "
        "(streams/org_tree.py), never read as the head office's sight",
    )
    org_levels: dict[str, OrgLevel]
    roles: dict[str, Role]
    permissions: dict[str, PermissionSet] = Field(default_factory=dict)
    systems: dict[str, SystemRule] = Field(default_factory=dict)
    approval_exclusions: dict[str, list[str]] = Field(
        default_factory=dict,
        description="approval purpose -> class or category ids an approval for it never covers",
    )
    incompatible_roles: list[IncompatibleRoles] = Field(
        default_factory=list,
        description="sets of roles no one employee may hold two of (seed 004 人员管理(6): 开发、测试、运维)",
    )
    peak_days: dict[str, PeakDays] = Field(
        default_factory=dict,
        description="days of the bank's calendar on which a counter's or a book's day measure is higher "
        "(养老金发放日, a mass notice's surge): on them alone",
    )
    org_changes: list[OrgChange] = Field(
        default_factory=list,
        description="outlets merged into others (网点撤并): from its `effective` day on, an org path "
        "through `from` is read as through `into`, for customers, employees and campaign audiences",
    )

    @field_validator("customer_id_form", "employee_id_form")
    @classmethod
    def _form(cls, form: str | None) -> str | None:
        if form is None:
            return None
        from streams.personal_numbers import whole_token

        try:
            found = re.compile(form)
            re.compile(whole_token(form))  # as the door finds it: a global flag may only lead the whole
        except re.error as e:
            raise ValueError(
                f"'{form}' is not a regular expression of an id inside a name ({e}); write e.g. "
                "C[0-9]{7}, a flag scoped as (?i:c)[0-9]{7}"
            ) from None
        if found.fullmatch(""):
            raise ValueError(
                f"'{form}' matches an empty name; write the customer id's form, e.g. C[0-9]{{7}}"
            )
        stray = _STRAY_BRACE.search(_QUANTIFIER.sub("", _CLASSES.sub("", _ESCAPED.sub("", form))))
        if stray:
            # Python reads a brace that is no quantifier as itself: 8[0-9]{11 is 8, a digit and the
            # text "{11", an id no one has, so no customer number in a name was ever pseudonymized
            raise ValueError(
                f"'{form}' has a {stray[0]} that is no count of repeats (Python reads it as the letter); "
                "pair them as in C[0-9]{7} or C[0-9]{6,8}, or write \\{ for a brace of the id"
            )
        if _ANCHOR.search(form):
            raise ValueError(
                f"'{form}' is anchored, but an id is found inside a longer name; drop ^, $, \\A and \\Z "
                "as in C[0-9]{7}: it is found only where no letter or digit touches it"
            )
        return form

    @field_validator("customer_id_example", "employee_id_example")
    @classmethod
    def _example(cls, example: str | None, info: ValidationInfo) -> str | None:
        form_key = info.field_name.replace("_example", "_form") if info.field_name else ""
        form = info.data.get(form_key)
        if example is not None and form is not None and re.fullmatch(form, example, re.I) is None:
            raise ValueError(
                f"'{example}' is not all matched by {form_key} '{form}'; correct the form (or the example) "
                "so that it matches an id as the bank writes it"
            )
        return example

    @field_validator("department_form")
    @classmethod
    def _department(cls, form: str | None) -> str | None:
        if form is None:
            return None
        try:
            found = re.compile(form)
        except re.error as e:
            raise ValueError(
                f"'{form}' is not a regular expression of an org id ({e}); write e.g. (HO|B[0-9]+)_[A-Z]+"
            ) from None
        if found.groups < 1 or found.fullmatch(""):
            raise ValueError(
                f"'{form}' {'matches an empty org id' if found.groups else 'has no group'}; write e.g. "
                "(HO|B[0-9]+)_[A-Z]+, its first group the id of the department's org"
            )
        return form

    def unit_of(self) -> Callable[[str], str] | None:
        """The org a department (`department_form`) is a unit of, the id its first group holds, and any
        other org itself; None when the bank names no departments. A department sees and manages
        what its org does, at its org's level."""
        if self.department_form is None:
            return None
        department = re.compile(self.department_form).fullmatch
        return lambda org: m.group(1) if (m := department(org)) is not None and m.group(1) else org

    def is_employee_id(self, actor_id: str) -> bool:
        """Whether an id has the form of the bank's employee ids (`employee_id_form`, in any case);
        any id does where the bank gives no form."""
        return (
            self.employee_id_form is None or re.fullmatch(self.employee_id_form, actor_id, re.I) is not None
        )

    def sees_at_depth(self, depth: int) -> str:
        """What an org `depth` deep in the tree sees (its `org_path` length): `org_levels` are listed
        from the head office down, and an org deeper than the list is at its last level."""
        levels = list(self.org_levels.values())
        return levels[min(depth, len(levels)) - 1].sees

    @model_validator(mode="after")
    def _refs(self) -> Organisation:
        for rid, role in self.roles.items():
            if role.level not in self.org_levels:
                raise ValueError(
                    f"roles.{rid}.level '{role.level}' is not an org level; use one of {', '.join(self.org_levels)}"
                )
            if role.permissions is not None and role.permissions not in self.permissions:
                raise ValueError(
                    f"roles.{rid}.permissions '{role.permissions}' is not a permission set; "
                    f"use one of {', '.join(self.permissions)}"
                )
        # a word names one role: an HR feed's 理财经理 read as the teller whose `also` listed it too
        # would take every wealth manager's grants (a review's)
        named: dict[str, str] = {}
        for rid, role in self.roles.items():
            words = [("id", rid), ("zh", role.zh), ("en", role.en), *(("also", w) for w in role.also)]
            for where, word in words:
                other = named.setdefault(key_form(word), rid)
                if other != rid:
                    raise ValueError(
                        f"roles.{rid}.{where} '{word}' already names role {other}; a word may name one role only"
                    )
        # a set's systems are compared with the id a log's system name is folded to: a typo there, or
        # a name not folded, is a system no one of the set may use, and each of their reads on the
        # real one system_not_permitted (a probe's loan_system for loan_sys)
        names = self.system_names()
        for pid, p in self.permissions.items():
            for i, sid in enumerate(p.systems):
                if names and sid not in self.systems:
                    own = names.get(key_form(sid))
                    raise ValueError(
                        f"permissions.{pid}.systems.{i} '{sid}' is "
                        + (
                            f"a name of system {own}; write its id, {own}"
                            if own
                            else "not a system of `systems`; "
                        )
                        + ("" if own else f"use one of {', '.join(self.systems)}")
                    )
        for i, clash in enumerate(self.incompatible_roles):
            unknown = [r for r in clash.roles if r not in self.roles]
            if unknown:
                raise ValueError(
                    f"incompatible_roles.{i}.roles '{unknown[0]}' is not a role; use one of {', '.join(self.roles)}"
                )
            if len(set(clash.roles)) < 2:
                raise ValueError(f"incompatible_roles.{i}.roles names one role; a clash needs two or more")
        measured = [pid for pid, p in self.permissions.items() if p.counter or p.own_book]
        for name, peak in self.peak_days.items():
            for pid, most in peak.customers_per_day.items():
                held = self.permissions.get(pid)
                block = None if held is None else held.counter or held.own_book
                if block is None:
                    what = (
                        "no permission set"
                        if held is None
                        else "a set with no counter nor own_book, so no day measure"
                    )
                    raise ValueError(
                        f"peak_days.{name}.customers_per_day.{pid} is {what}; use one of {', '.join(measured)}"
                    )
                # a peak at or below the ordinary day would lower it on the busiest days: a typo
                if most <= block.customers_per_day:
                    raise ValueError(
                        f"peak_days.{name}.customers_per_day.{pid} {most} is not above the set's ordinary "
                        f"{block.customers_per_day} a day; raise it, or drop {pid} from the peak"
                    )
        self._check_org_changes()
        return self

    def _check_org_changes(self) -> None:
        """Each org merged once, into a real org that is not itself gone by then, with no way back to it."""
        unit_of = self.unit_of()
        into: dict[str, OrgChange] = {}
        for i, c in enumerate(self.org_changes):
            where = f"org_changes.{i}"
            for key, org in (("from", c.from_), ("into", c.into)):
                if unit_of is not None and unit_of(org) != org:
                    raise ValueError(
                        f"{where}.{key} '{org}' is a department (department_form), read as its org "
                        f"{unit_of(org)}; an org change names the org itself"
                    )
            if c.from_ == self.head_office:
                raise ValueError(
                    f"{where}.from '{c.from_}' is the head office, the root of every org path; name the outlet merged away"
                )
            if c.from_ == c.into:
                raise ValueError(
                    f"{where}.into '{c.into}' is the org merged away; name the org that takes it over"
                )
            if c.from_ in into:
                was = into[c.from_]
                raise ValueError(
                    f"{where}.from '{c.from_}' already merges into {was.into} on {was.effective}; an org merges once"
                )
            into[c.from_] = c
        for i, c in enumerate(self.org_changes):
            chain, org = [c.from_], c.into
            while org in into:
                if org in chain:
                    loop = " -> ".join([*chain[chain.index(org) :], org])
                    raise ValueError(
                        f"org_changes.{i}.into '{c.into}' leads back round ({loop}); drop or correct one of them"
                    )
                chain.append(org)
                org = into[org].into
            gone = into.get(c.into)
            if gone is not None and gone.effective <= c.effective:
                raise ValueError(
                    f"org_changes.{i}.into '{c.into}' merged into {gone.into} on {gone.effective}, before "
                    f"'{c.from_}' merges into it on {c.effective}; name {gone.into} as its `into`"
                )

    def system_names(self) -> dict[str, str]:
        """Each declared system's id and names (`key_form`) -> its id; empty where `systems` declares none."""
        return {key_form(n): sid for sid, s in self.systems.items() for n in (sid, s.zh, s.en, *s.also) if n}

    def clashing_roles(self, roles: Collection[str]) -> list[tuple[list[str], str]]:
        """(the roles held that clash, the clause) for each `incompatible_roles` set `roles` hold
        two or more of."""
        return [(held, c.source) for c in self.incompatible_roles if (held := c.held(roles))]


class RetentionClock(StrEnum):
    """The lifecycle stages (schemas.models.LifecycleStage) a retention period may count from."""

    collect = "collect"
    account_closed = "account_closed"
    relationship_ended = "relationship_ended"


class Period(Strict):
    """A period of days or years, and the law or the bank's rule that sets it."""

    keep_days: int | None = Field(default=None, gt=0, description="a period of calendar days")
    keep_years: int | None = Field(
        default=None, gt=0, description="a period of years, to the corresponding day (Civil Code art. 202)"
    )
    source: str

    @model_validator(mode="after")
    def _one_period(self) -> Self:
        if (self.keep_days is None) == (self.keep_years is None):
            raise ValueError(
                "keep_days and keep_years are both set, or neither; give the period as one of them: "
                "days (keep_days: 30) or years (keep_years: 5, the law's 五年)"
            )
        return self

    @property
    def period(self) -> str:
        """The period in words: "5 years", "30 days"."""
        return f"{self.keep_years} years" if self.keep_years else f"{self.keep_days} days"

    @property
    def span(self) -> str:
        """The period as an adjective: "5-year", "30-day"."""
        return f"{self.keep_years}-year" if self.keep_years else f"{self.keep_days}-day"


class RetentionRule(Period):
    categories: list[str] = Field(min_length=1, description="category ids from classification.yaml")
    purposes: list[str] = Field(
        default_factory=list, description="purpose ids from purposes.yaml it covers; none: every purpose"
    )
    after: RetentionClock = Field(description="the lifecycle stage the period counts from")
    in_force: date | None = Field(
        default=None, description="a minimum's: the day the law setting this period took effect"
    )
    earlier: Period | None = Field(
        default=None, description="a minimum's: the period the law set before `in_force`, and its source"
    )

    @model_validator(mode="after")
    def _since(self) -> RetentionRule:
        if (self.in_force is None) != (self.earlier is None):
            raise ValueError(
                "in_force and earlier go together: the day the law's period took effect, and the period "
                "before it (in_force: 2025-01-01, earlier: {keep_years: 5, source: ...})"
            )
        return self

    def in_force_on(self, day: date) -> Period:
        """The period the law in force on `day` sets: a removal is judged by the law of its day."""
        return self.earlier if self.earlier is not None and self.in_force and day < self.in_force else self


class CollectionConsent(Strict):
    """Collection that needs the subject's consent on `pfi.consents`, for the collection's own
    purpose, granted before it (and separate, 单独同意, where `separate`)."""

    categories: list[str] = Field(default_factory=list, description="category ids: collecting any needs it")
    purposes: list[str] = Field(default_factory=list, description="purpose ids: collecting for any needs it")
    separate: bool = False
    unless: list[Literal["contract", "legal_obligation"]] = Field(
        default_factory=list,
        description="the no-consent cases of seed 004 流程描述(1)⑬ that answer it: `contract` a collection "
        "for one of `contract_purposes` (⑬g, ⑬i), `legal_obligation` one for a purposes.yaml "
        "legal_obligation purpose (⑬a); biometrics list none (流程描述(1)② asks consent before any)",
    )
    fires_unfed: bool | None = Field(
        default=None,
        description="where no consents are fed at all, a collection fires (none on record is the "
        "offence the bank must disprove) or decides nothing; unset, as `separate` says",
    )
    source: str

    @property
    def judged_unfed(self) -> bool:
        """A collection it names is judged where the deployment feeds no consents."""
        return self.separate if self.fires_unfed is None else self.fires_unfed


class Minors(Strict):
    """Collection of a minor's data (seed 004 流程描述(1)③, PIPL art. 31): below `adult_at` a separate
    consent of the minor or a guardian, below `guardian_below` the guardian's. Ages are whole years
    reached the day after the birthday (周岁, counted from the day after it)."""

    guardian_below: int = Field(gt=0, description="below this age only a guardian's separate consent will do")
    adult_at: int = Field(gt=0, description="the age of majority: below it, a separate consent is needed")
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> Minors:
        if self.guardian_below > self.adult_at:
            raise ValueError(
                f"guardian_below ({self.guardian_below}) is above adult_at ({self.adult_at}): "
                "set guardian_below to the younger age (14) and adult_at to the age of majority (18)"
            )
        return self


class Retention(Strict):
    deletion_request_sla_days: int = Field(gt=0, description="days to answer a subject's deletion request")
    removal_grace_hours: int = Field(
        default=0,
        ge=0,
        le=168,
        description="a record removed this long after its retention's last day was removed in time: "
        "a nightly purge job runs after midnight",
    )
    rules: dict[str, RetentionRule]
    minimums: dict[str, RetentionRule] = Field(
        default_factory=dict,
        description="periods the law requires a record kept (AML Law art. 34): removed sooner is premature",
    )
    relationship_purposes: list[str] = Field(
        default_factory=list,
        description="purpose ids whose collection starts a business relationship (again): a returning "
        "customer; a legal_obligation purpose starts none (due diligence goes on after an end)",
    )
    account_purposes: list[str] | None = Field(
        default=None,
        description="purpose ids a customer's account is collected for (an account opening): a record "
        "holding account data collected for one is an account, whose closure ends the relationship "
        "once it is the last; a loan's or an adviser's copy of the account number is none. Each is a "
        "relationship purpose. Unset: the relationship_purposes (a folder from before judges as it did)",
    )
    owed_after_end: list[str] = Field(
        default_factory=list,
        description="purpose ids of what the bank still owes a former customer (a complaint answered): "
        "collected after the relationship ended, lawful, and starting nothing",
    )
    contract_purposes: list[str] = Field(
        default_factory=list,
        description="purpose ids of the uses the customer's contract needs: while the relationship "
        "lasts, a record withheld after a deletion request still serves them, reading what was "
        "collected for them (their own or `also_uses`)",
    )
    closing_grace_hours: int = Field(
        default=0,
        ge=0,
        description="a collection for a contract_purposes purpose this long after the relationship "
        "ended is the closure's own settlement (closing interest posted, the balance swept), not a "
        "collection after the end; 0: none is",
    )
    collection_consent: list[CollectionConsent] = Field(
        default_factory=list, description="collections that need the subject's consent first"
    )
    minors: Minors | None = Field(
        default=None, description="a minor's collections need a (guardian's) separate consent first"
    )
    recoverable_methods: list[str] = Field(
        default_factory=list,
        description="terms of destruction methods that leave the data recoverable: a Latin one where a "
        "word of the method starts (drop: DROP TABLE, dropped), a Chinese one anywhere",
    )
    erasing_methods: list[str] = Field(
        default_factory=list,
        description="terms of methods that erase: a method naming one erases, whatever else it names",
    )
    reversible_anonymization: list[str] = Field(
        default_factory=list,
        description="terms of an `anonymize` event's method that only pseudonymize (encryption, a hash of "
        "the id): naming one and no erasing term, the record is still held, as a `store`",
    )
    masking_methods: list[str] = Field(
        default_factory=list,
        description="terms of an `anonymize` event's method that only mask (脱敏, 掩码, masking): naming "
        "one not said undone, the record is still held, as a `store`, whatever erasing term it names",
    )
    restoring_methods: list[str] = Field(
        default_factory=list,
        description="terms of a `collect` event's method that bring back a record from a backup or a "
        "recycle bin: the record that left, not a record anew (deleted_record_use)",
    )
    client_systems: list[str] = Field(
        default_factory=list, description="terminals and client apps: card secrets are never stored on them"
    )
    client_secrets: list[str] | None = Field(
        default=None,
        description="the card secrets a client system may take to send on (an ATM's PIN pad, a POS's "
        "swipe) but never stores (a `store` event); unset: the forbidden_foreign_c3 fields",
    )
    never_on_client: list[str] = Field(
        default_factory=list,
        description="field ids beside the card secrets a client system may capture to send but never "
        "store (a `store` event): biometric samples and templates",
    )
    forbidden_foreign_c3: list[str] = Field(
        default_factory=list, description="C3 field ids never to store for other institutions"
    )

    @model_validator(mode="after")
    def _law_periods_in_minimums(self) -> Retention:
        dated = [name for name, rule in self.rules.items() if rule.in_force is not None]
        if dated:
            raise ValueError(
                f"rules.{dated[0]} has in_force: a law's period that changed on a day belongs in `minimums`; "
                "the bank's own periods are judged as the policy now states them"
            )
        return self


class SdkField(Strict):
    zh: str
    en: str | None = Field(
        default=None, description="its English name, for the notice customers read (the id where none)"
    )
    jr_class: JrClass | None = Field(default=None, alias="class", description="set when the field is PFI")
    auth_helper: bool = Field(default=False, description="user authentication helper (SMS code, OTP, ...)")
    also: list[str] = Field(
        default_factory=list, description="the privacy policy's other words for it (手机型号 for 设备型号)"
    )


class SdkChange(Strict):
    """What a later app version changed in an SDK's declaration (the privacy policy shipped with it)."""

    since: str = Field(description="first app version (dotted numbers) the change applies to")
    add_fields: list[str] = Field(default_factory=list)
    remove_fields: list[str] = Field(default_factory=list)


class SdkDeclaration(Strict):
    """One SDK as the privacy policy declares it (seed 004 §一.(一).6)."""

    name_zh: str
    provider: str
    contact: str | None = None
    privacy_url: str | None = None
    purpose: str
    fields: list[str] = Field(description="SDK field ids from `sdk_fields` the SDK may collect")
    permissions: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list, description="hosts the SDK may send data to")
    endpoints: list[str] = Field(
        default_factory=list,
        description="host/path prefixes of its receivers on hosts it shares (a private deployment "
        "behind the bank's gateway): traffic there is this SDK's, the rest of the host is not",
    )
    countries: list[CountryCode] = Field(default=["CN"], description="ISO country codes its hosts may be in")
    names: list[str] = Field(default_factory=list, description="other names the SDK is reported under")
    package_prefixes: list[str] = Field(default_factory=list, description="its code's package prefixes")
    since_app_version: str | None = Field(default=None, description="first app version that ships it")
    until_app_version: str | None = Field(default=None, description="first app version without it")
    changes: list[SdkChange] = Field(default_factory=list, description="declaration changes by app version")
    max_per_device_hour: int | None = Field(
        default=None, gt=0, description="collections one device may make in an hour; none: unbounded"
    )


class NotCollected(Strict):
    """A negative statement of the policy: these fields are not given to these SDKs (PoliCheck's
    `incorrect` flows contradict one)."""

    fields: list[str] = Field(min_length=1)
    sdks: list[str] | None = Field(default=None, description="SDK ids it speaks of; none: every SDK")
    source: str = Field(description="the clause that says so")


class KnownSdk(Strict):
    """A third-party SDK the bank can recognize but has not declared (name, package, host)."""

    name: str
    package_prefixes: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


def id_spelling(subject_id: str) -> str:
    """One customer as every system writes it: a CHAR column pads the id with blanks, a form
    typed in Chinese input mode writes full-width digits (６２２０). Blanks around it go, and
    compatibility forms become their plain characters (NFKC); case is kept, since an id may be
    case-sensitive."""
    return (subject_id if subject_id.isascii() else unicodedata.normalize("NFKC", subject_id)).strip()


def code_form(code: str) -> str:
    """An org's or an approval's code as every feed's is compared: `id_spelling` in upper case. HR's
    `ho/b01/s0101` is the customers feed's S0101 (a probe's wealth manager "s0101 read a customer
    managed by S0101"), a log's approval AP-10 is HR's ap-10."""
    return id_spelling(code).upper()


def spelling(name: str) -> str:
    """A name as reported or declared (a permission, an SDK field, a purpose), compared whatever its
    case and surrounding spaces."""
    return name.strip().casefold()


@lru_cache(maxsize=65_536)  # asked of each role of each entitlement version judged, of each SDK key
def key_form(name: str) -> str:
    """A key as the vocabulary compares it: case-folded, letters and digits only (CJK included), so
    `$os_version`, `osVersion`, `X-OS-Version` minus its `x` prefix and `os-version` are one key.
    NFKC first: full-width letters, and the Kangxi radicals a PDF's text layer writes for common
    characters (⼿机, 应⽤: U+2F3F, U+2F64 in seed 004), are the characters they look like."""
    return "".join(c for c in unicodedata.normalize("NFKC", name).casefold() if c.isalnum())


class SensitivePermission(Strict):
    """A permission a declaration must name before an SDK uses it (相机, 位置信息, 通讯录 ...)."""

    zh: str
    names: list[str] = Field(
        default_factory=list,
        description="how apps report it: Android and HarmonyOS permission names, iOS Info.plist usage keys",
    )
    also: list[str] = Field(
        default_factory=list,
        description="the privacy policy's other words for it (摄像头, 访问相机, 电话状态), each with 权限 after it too",
    )
    fields: list[str] = Field(
        default_factory=list, description="SDK field ids whose collection needs it: declaring one declares it"
    )

    def spellings(self, pid: str) -> set[str]:
        """Every way an app may report it: its id, its names and their last parts
        (`android.permission.CAMERA`, `CAMERA`), its `zh` and other words as a privacy policy or a
        permission dialog writes them (麦克风, 麦克风权限, 摄像头权限), as `spelling` compares them."""
        words = {s for n in (pid, *self.names) for s in (n, n.rsplit(".", 1)[-1])}
        return {spelling(s) for s in (*words, *(w + t for w in (self.zh, *self.also) for t in ("", "权限")))}


class Sdks(Strict):
    sdk_fields: dict[str, SdkField]
    broad_terms: dict[str, list[str]] = Field(
        default_factory=dict, description="a broad declared term -> the specific fields it covers"
    )
    not_collected: list[NotCollected] = Field(default_factory=list)
    known_sdks: dict[str, KnownSdk] = Field(default_factory=dict)
    sdks: dict[str, SdkDeclaration]
    sensitive_permissions: dict[str, SensitivePermission] = Field(
        default_factory=dict, description="permissions an SDK uses only where its declaration names them"
    )

    @model_validator(mode="after")
    def _refs(self) -> Sdks:
        def check(where: str, ids: list[str]) -> None:
            unknown = [f for f in ids if f not in self.sdk_fields]
            if unknown:
                raise ValueError(f"{where} names undeclared field ids {unknown}; add them to `sdk_fields`")

        for sid, sdk in self.sdks.items():
            check(f"sdks.{sid}.fields", sdk.fields)
            for i, change in enumerate(sdk.changes):
                check(f"sdks.{sid}.changes[{i}]", change.add_fields + change.remove_fields)
        for term, covered in self.broad_terms.items():
            check(f"broad_terms.{term}", [term, *covered])
        named: dict[str, str] = {}
        for pid, permission in self.sensitive_permissions.items():
            check(f"sensitive_permissions.{pid}.fields", permission.fields)
            for name in permission.spellings(pid):
                if named.setdefault(name, pid) != pid:
                    raise ValueError(
                        f"sensitive_permissions: {name!r} names both {named[name]} and {pid}; give it to one"
                    )
        for i, stmt in enumerate(self.not_collected):
            check(f"not_collected[{i}].fields", stmt.fields)
            unknown = [s for s in stmt.sdks or () if s not in self.sdks]
            if unknown:
                raise ValueError(
                    f"not_collected[{i}].sdks names unknown SDK ids {unknown}; use ids under `sdks`"
                )
        return self


class WithdrawalScope(StrEnum):
    """What a contact purpose's withdrawal on one channel ends, where its purpose names no channel."""

    all_channels = "all_channels"  # the customer refused the purpose; the channel is where they said it
    channel = "channel"  # that channel alone, as its own purpose (`marketing_sms`) says always


class Purpose(Strict):
    zh: str
    en: str
    also: list[str] = Field(
        default_factory=list,
        description="other names consent platforms and logs give it (营销推广, promotion): read as the id",
    )
    source: str = Field(description="the seed clause that declares the purpose")
    channels: list[Channel] | None = Field(
        default=None, description="contact purposes: the channels the privacy policy names for it"
    )
    also_uses: list[str] = Field(
        default_factory=list,
        description="purposes whose data a use for this one may read: a customer's question about an "
        "account is answered from what was collected to run it",
    )
    legal_obligation: bool = Field(
        default=False,
        description="a use the law requires (PIPL art. 13 ¶1(3)) reads what the duty needs, whatever it "
        "was collected for",
    )
    withdrawal_scope: WithdrawalScope = Field(
        default=WithdrawalScope.all_channels,
        description="contact purposes: what a withdrawal recorded on one channel ends, where the consent's "
        "purpose does not name that channel too (`marketing_sms` ends SMS alone, whatever this says): "
        "every channel (all_channels), or that channel (channel)",
    )

    @model_validator(mode="after")
    def _scope_of_a_contact_purpose(self) -> Purpose:
        # a purpose without channels has no channel's word to widen: a scope there says nothing, and a
        # bank reading it would think its refusals scoped
        if "withdrawal_scope" in self.model_fields_set and not self.channels:
            raise ValueError(
                "withdrawal_scope is for a purpose the bank contacts customers for: declare its `channels`, "
                "or drop the key"
            )
        return self


class Agreement(Strict):
    """A document a consent agrees to (the app's privacy policy), named as purposes are."""

    zh: str
    en: str
    also: list[str] = Field(default_factory=list, description="other names it goes by")
    source: str = Field(description="the seed clause that names it")


class Purposes(Strict):
    """What each catalog field was collected for (seed 004 流程描述(1)收集⑧, (4)使用⑩: use only for that purpose)."""

    purposes: dict[str, Purpose]
    collected_for: dict[str, list[str]] = Field(description="catalog field id -> purpose ids")
    own_purpose_only: list[str] = Field(
        default_factory=list,
        description="field or category ids a use reads only for a purpose they were collected for "
        "themselves, never through another purpose's `also_uses`",
    )
    agreements: dict[str, Agreement] = Field(
        default_factory=dict,
        description="what a consent may agree to that is no purpose of a use (the privacy policy): "
        "its names, read as its id on the consents stream",
    )

    def agreement(self, written: str | None) -> str | None:
        """The id of the agreement `agreements` declares under `written`, its id or any of its
        names in any case and spacing; unset, the one agreement declared. None: no such agreement
        (or several, none chosen)."""
        if written is None:
            return next(iter(self.agreements)) if len(self.agreements) == 1 else None
        names = {key_form(n): aid for aid, a in self.agreements.items() for n in (aid, a.zh, a.en, *a.also)}
        return names.get(key_form(written))

    def agreement_names(self, aid: str | None) -> list[str]:
        """An agreement's id and names (every agreement's where `aid` is None)."""
        chosen = [aid] if aid is not None else list(self.agreements)
        return [n for i in chosen if (a := self.agreements.get(i)) for n in (i, a.zh, a.en, *a.also)]

    @model_validator(mode="after")
    def _refs(self) -> Purposes:
        named = [(f"collected_for.{fid}", ids) for fid, ids in self.collected_for.items()]
        named += [(f"purposes.{pid}.also_uses", p.also_uses) for pid, p in self.purposes.items()]
        for key, ids in named:
            unknown = [p for p in ids if p not in self.purposes]
            if unknown:
                raise ValueError(
                    f"{key} names unknown purposes {unknown}; "
                    f"use purpose ids from `purposes`: {', '.join(self.purposes)}"
                )
        return self


class VolumePeriod(StrEnum):
    day = "day"
    month = "month"
    year = "year"
    term = "term"  # the contract's whole validity


class AgreedVolume(Strict):
    """How much a contract lets the bank send the recipient (seed 002 §六.2(2): scale is recorded
    and the recipient's obligations are set by contract)."""

    max_records: int = Field(gt=0, description="records the recipient may receive per period")
    per: VolumePeriod = Field(description="day | month | year | term (calendar periods, the bank's timezone)")


class Contract(Strict):
    """A contract with a recipient: what it covers and while it is in force."""

    id: str = Field(min_length=1)
    valid_from: date
    valid_to: date = Field(description="last day in force (inclusive)")
    categories: list[str] = Field(
        min_length=1, description="data category ids it covers (classification.yaml)"
    )
    purposes: list[str] = Field(
        default_factory=list,
        description="the purposes the recipient gets data for, as transfers and consents name them; "
        "none listed: any (seed 002 §六.2(2): 目的; seed 004 流程描述(1)⑦: 处理目的)",
    )
    volume: AgreedVolume | None = None
    may_entrust: list[str] = Field(
        default_factory=list,
        description="recipients (recipients.yaml ids) the contract authorises the recipient in writing to "
        "pass the data on to (seed 002 §六.4(2): 未经书面授权…不应…再次委托); none: it may not",
    )
    identifiable: list[str] = Field(
        default_factory=list,
        description="a processor's contract: the data that names a person (category or field ids of "
        "classification.yaml, within `categories`) its task cannot do without in clear, a call centre's "
        "phone number to dial, a card bureau's name and card number to emboss (seed 004 流程描述(4)⑪: "
        "脱敏处理, 接收方…在约定的…个人信息的种类范围内处理); anything else that names a person, sent to it, "
        "refutes a de-identified flag (transfer_policy LM-TP-003); none: nothing in clear",
    )

    @model_validator(mode="after")
    def _dates(self) -> Contract:
        if self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from; put the later date in valid_to")
        return self


class Assessment(Strict):
    """An impact or outbound-security assessment (seed 004 基本规定(3); seed 002 §六.5(3))."""

    id: str = Field(min_length=1)
    valid_from: date
    valid_to: date


class Recipient(Strict):
    """An approved recipient of PFI: a processor, third party or overseas body, with its contracts."""

    name_zh: str
    name_en: str
    also: list[str] = Field(
        default_factory=list,
        description="the recipient's own names a log may write for it, its legal name say (中国反洗钱监测分析中心): "
        "read as its id; `name_zh` and `name_en` describe, and an undeclared vendor of the kind they "
        "describe is no declared recipient",
    )
    type: RecipientType
    country: CountryCode = Field(description="ISO 3166 alpha-2 country code")
    contracts: list[Contract] = Field(default_factory=list)
    assessments: list[Assessment] = Field(default_factory=list)
    affiliate: bool = Field(
        default=False,
        description="one of the bank's own group (关联机构: head office, parent, branch or subsidiary): "
        "the only recipient abroad the PBoC measures allow (实施办法 art. 34(三), seed 002 §六.5(1))",
    )
    clearing_purposes: list[str] = Field(
        default_factory=list,
        description="purposes (purposes.yaml) for which it is a clearing or settlement institution "
        "(转接清算、登记结算, seed 002 §六.2(5)): such transfers follow the national rules for "
        "clearing, not the consent and C3 sharing rules",
    )

    @model_validator(mode="after")
    def _identifiable_entrusted(self) -> Self:
        named = [c.id for c in self.contracts if c.identifiable]
        if named and self.type is not RecipientType.processor:
            raise ValueError(
                f"contract {named[0]} of a {self.type.value} lists `identifiable`, which only an entrusted "
                "processor's contract declares: a partner or a recipient abroad gets identifiable data on "
                "each customer's separate consent, whatever its contract says; remove the key"
            )
        return self


class AuthorityClass(Strict):
    """A class of authorities the law makes the bank answer case by case (有权机关: courts,
    procuratorates, public security): too many to declare one by one, named by the ids the bank's
    systems give them (seed 004 流程描述(4)①⑩: 法律法规与行业主管部门另有规定的除外)."""

    name_zh: str
    name_en: str
    prefixes: list[str] = Field(
        min_length=1,
        description="a recipient id starting with one of these (case, spaces, hyphens and underscores "
        "aside) is one of the class: court_ for court_bj_chaoyang",
    )


# labels a sending system's log may give that would lift the sharing rules: the bank's own record decides
_LIFTING_LABELS = (RecipientType.internal, RecipientType.regulator)


class Recipients(Strict):
    timezone: str = Field(description="IANA zone of the bank's calendar: contract days and volume periods")
    home_country: CountryCode = Field(description="data sent elsewhere is cross-border")
    recipients: dict[str, Recipient]
    authorities: dict[str, AuthorityClass] = Field(
        default_factory=dict,
        description="classes of authorities answered under a legal obligation, by their ids' prefixes",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{zone}' is not an IANA zone; write e.g. Asia/Shanghai") from None
        return zone

    @model_validator(mode="after")
    def _refs(self) -> Recipients:
        seen: dict[str, str] = {}
        for rid, r in self.recipients.items():
            for i, c in enumerate(r.contracts):
                if c.id in seen:
                    raise ValueError(
                        f"recipients.{rid}.contracts.{i}.id '{c.id}' is also a contract of {seen[c.id]}; "
                        "give each contract its own id"
                    )
                seen[c.id] = rid
                unknown = [m for m in c.may_entrust if m not in self.recipients]
                if unknown:
                    raise ValueError(
                        f"recipients.{rid}.contracts.{i}.may_entrust names {unknown}, no declared recipient; "
                        f"use ids of `recipients`: {', '.join(self.recipients)}"
                    )
        return self

    def kind_of(self, recipient_id: str | None, logged: RecipientType) -> RecipientType:
        """What a recipient is: the type recipients.yaml declares for it, else the one its log
        gives. A sending system's label must not lift a rule the bank's record applies: a recipient
        it calls internal that the bank never declared its own is a third party (a subsidiary or an
        affiliate is another controller, seed 004 定义(14)), and so is one it calls a regulator that
        the bank never declared (50 000 names and accounts to `reg_unknown_bureau` passed every rule)."""
        known = self.recipients.get(recipient_id) if recipient_id else None
        if known is not None:
            return known.type
        return RecipientType.third_party if logged in _LIFTING_LABELS else logged

    def authority_of(self, recipient_id: str | None, logged: RecipientType, basis: LegalBasis) -> str | None:
        """The declared class of authorities (`authorities`) a recipient the bank did not declare one
        by one belongs to, for a provision the law requires of the bank (seed 004 流程描述(4)①, ⑩: 法律
        法规和监管部门另有规定的除外): its log calls it a regulator and claims a legal obligation, and its id
        is of the class. A claim alone lifts nothing: a third party the bank declared stays one, and an
        undeclared recipient of no declared class is judged as a third party (`kind_of`)."""
        if not recipient_id or recipient_id in self.recipients:
            return None
        if logged != RecipientType.regulator or basis != LegalBasis.legal_obligation:
            return None
        key = method_key(recipient_id)
        return next(
            (
                cid
                for cid, c in self.authorities.items()
                if any(key.startswith(method_key(p)) for p in c.prefixes)
            ),
            None,
        )

    def clears(self, recipient_id: str | None, purpose: str | None) -> bool:
        """A transfer to a declared clearing or settlement institution for one of the purposes it
        clears (seed 002 §六.2(5), seed 004 (4)①: 转接清算 is necessary financial business)."""
        known = self.recipients.get(recipient_id) if recipient_id else None
        return known is not None and purpose is not None and purpose in known.clearing_purposes


class Runbook(Strict):
    """What an analyst does with a detector's alert, in Chinese and English: the SOC reads one,
    the regulator and the bank's compliance office the other (a new user's `alerts show` gave the
    regulation in Chinese only and the runbook in English only)."""

    zh: str = Field(min_length=1, description="处置步骤, in Chinese")
    en: str = Field(min_length=1, description="the same steps, in English")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        return in_both(
            data, "`runbook: {zh: 处置步骤…, en: the steps…}` (each a block under `zh: >` and `en: >`)"
        )


class DetectorSection(Strict):
    """A detector's policy section: metadata as in panther-analysis rules, params, and example cases."""

    enabled: bool = True
    rule_id: str
    rule_version: int = Field(ge=1)
    title_zh: str
    title_en: str
    regulation: list[Clause] = Field(min_length=1, description="the clauses the rule enforces")
    runbook: Runbook | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tests: list[dict[str, Any]] = Field(
        default_factory=list, description="example cases: must fire / must not fire"
    )


class Weekday(StrEnum):
    """A day of the week, as `date.weekday()` numbers them from Monday."""

    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"


# what `Calendar.rest_day` says of a weekly rest day no holiday covers
WEEKEND = "weekend"
# a State Council holiday runs 9 days at most (Spring Festival with its weekends); a longer range is
# a year or month mistyped, which would make weeks of deadlines move
LONGEST_HOLIDAY_DAYS = 15


class Holiday(Strict):
    """One holiday of the State Council's annual notice (放假): the whole range it announces, the
    weekend days it swaps in (放假调休) included."""

    name: str = Field(min_length=1, description="as the notice names it: 国庆节, 春节")
    first: date = Field(description="its first day off")
    last: date = Field(description="its last day off (inclusive)")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.last < self.first:
            raise ValueError(f"last {self.last} is before first {self.first}; put the later date in last")
        if (self.last - self.first).days + 1 > LONGEST_HOLIDAY_DAYS:
            raise ValueError(
                f"runs {(self.last - self.first).days + 1} days ({self.first} to {self.last}), longer than "
                f"any State Council holiday ({LONGEST_HOLIDAY_DAYS} days); check the year and month of "
                "first and last against the notice"
            )
        return self

    def ordinals(self) -> range:
        return range(self.first.toordinal(), self.last.toordinal() + 1)


class HolidayYear(Strict):
    """One year's 放假安排 as the State Council's notice announces it (published each November for
    the next year)."""

    notice: str = Field(min_length=1, description="the notice the year is copied from, and its date")
    holidays: list[Holiday] = Field(min_length=1)
    working_days: list[date] = Field(
        default_factory=list,
        description="weekend days the notice makes working days (调休上班): no rest day",
    )


class Calendar(Strict):
    """The bank's rest days (calendar.yaml), for Civil Code art. 203 ¶1: 期间的最后一日是法定休假日
    的, 以法定休假日结束的次日为期间的最后一日. None declared (a folder without the file): no
    deadline moves."""

    weekly_rest_days: list[Weekday] = Field(
        default_factory=list, description="the weekly rest days (休息日) the law counts among its 法定休假日"
    )
    years: dict[int, HolidayYear] = Field(
        default_factory=dict, description="year -> its holidays as the State Council announced them"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        seen: dict[int, str] = {}
        for year, announced in self.years.items():
            for i, h in enumerate(announced.holidays):
                where = f"years.{year}.holidays.{i}"
                # a notice may begin its New Year holiday in the December before (2023's 元旦 ran
                # 31 Dec 2022 - 2 Jan 2023), so a holiday is its year's by its last day
                if h.last.year != year:
                    raise ValueError(
                        f"{where} ({h.name}, {h.first} to {h.last}) is not in {year}; write the dates of "
                        f"{year}'s notice, or move the holiday under its own year"
                    )
                for o in h.ordinals():
                    if o in seen:
                        raise ValueError(
                            f"{where} ({h.name}) overlaps {seen[o]} on {date.fromordinal(o)}; copy both "
                            "ranges from the State Council's notice (a holiday joined to another, as "
                            "国庆节 and 中秋节 in 2025, is one range)"
                        )
                    seen[o] = f"years.{year}.holidays.{i} ({h.name})"
        rest = {list(Weekday).index(d) for d in self.weekly_rest_days}
        for year, announced in self.years.items():
            for i, day in enumerate(announced.working_days):
                where = f"years.{year}.working_days.{i}"
                # 2019's notice made Saturday 29 Dec 2018 a working day for its 元旦
                if not (day.year == year or (day.year == year - 1 and day.month == 12)):
                    raise ValueError(
                        f"{where} {day} is not in {year}; write the dates of {year}'s notice, or move "
                        "the day under its own year"
                    )
                if day.toordinal() in seen:
                    raise ValueError(
                        f"{where} {day} is inside {seen[day.toordinal()]}; a 调休 working day is outside "
                        "the holiday range: check the notice"
                    )
                # a bank counting no weekend keeps the notice's days as copied: they change nothing
                if rest and day.weekday() not in rest:
                    raise ValueError(
                        f"{where} {day} is a {list(Weekday)[day.weekday()].value}, no weekly rest "
                        "day, so working it changes nothing; list only the weekend days the notice "
                        "makes working days (调休上班), or add the weekend to weekly_rest_days"
                    )
                if announced.working_days.index(day) != i:
                    raise ValueError(f"{where} {day} is listed twice; remove one")
        return self

    @cached_property
    def _holidays(self) -> dict[int, str]:
        """Each holiday's days (ordinals) -> its name."""
        return {o: h.name for y in self.years.values() for h in y.holidays for o in h.ordinals()}

    @cached_property
    def _working(self) -> frozenset[int]:
        return frozenset(d.toordinal() for y in self.years.values() for d in y.working_days)

    @cached_property
    def _weekly(self) -> frozenset[int]:
        return frozenset(list(Weekday).index(d) for d in self.weekly_rest_days)

    def rest_day(self, ordinal: int) -> str | None:
        """What makes a day (`date.toordinal()`) a rest day: its holiday's name, or `WEEKEND`; None
        on a working day (a 调休 working weekend day is one)."""
        if ordinal in self._holidays:
            return self._holidays[ordinal]
        if ordinal in self._working or date.fromordinal(ordinal).weekday() not in self._weekly:
            return None
        return WEEKEND

    def last_day(self, ordinal: int) -> int:
        """Art. 203 ¶1: a period whose last day is a rest day ends on the day after the rest days."""
        while self.rest_day(ordinal):
            ordinal += 1
        return ordinal

    def announces(self, year: int) -> bool:
        return year in self.years


@lru_cache(maxsize=65_536)
def _midnight_ms(zone: str, ordinal: int) -> int:
    """00:00 of a calendar day in `zone`, epoch ms: cached, a local time's UTC instant costs
    microseconds and the detector asks for a deadline on every lifecycle event and timer."""
    return int(datetime.combine(date.fromordinal(ordinal), time(), ZoneInfo(zone)).timestamp() * 1000)


class ServiceAccount(Strict):
    """A batch job's or an application's account the bank declares (sources.yaml
    `actors.service_accounts`): no employee, so no HR record, but no account nobody knows either.
    Its scheduled take-out (on one of `systems`, one of `actions`, at most `max_records` records) is
    the standing approval its declaration records: an ETL export of every column at 02:00 was a
    high "account unknown to HR" every night, which no record could quiet. Outside it (another
    system, another action, more records in one access) the declaration vouches for nothing: the
    account is judged as one unknown to HR (unauthorized_lookup `outside_declaration`), a job's
    password used elsewhere being a DBA's or an intruder's."""

    systems: list[str] = Field(
        default_factory=list, description="where its scheduled take-outs run; none: no job declared"
    )
    actions: list[Action] = Field(
        default_factory=lambda: [Action.export, Action.download],
        description="the take-outs its job makes",
    )
    max_records: int = Field(
        default=1,
        ge=1,
        description="the most records one run (one access) takes out; more is no scheduled run, and "
        "outside the declaration",
    )


class Policy(Strict):
    classification: Classification
    organisation: Organisation
    retention: Retention
    sdks: Sdks
    purposes: Purposes
    recipients: Recipients
    incidents: IncidentPolicy
    storage: Storage
    detectors: dict[str, DetectorSection]
    # traffic.yaml's key names of each SDK field (`fields.<id>.keys`: cvv2, 身份证号, 银行卡号): how
    # payloads and telemetry spell it besides its id and the privacy policy's words
    vocabulary: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # traffic.yaml's `first_party_hosts`: the bank's own domains, where a declared SDK deployed on the
    # bank's servers (TMF, 神策 privately deployed) sends to no third party
    first_party_hosts: tuple[str, ...] = ()
    # sources.yaml's service accounts: those `actors.service_accounts` declares, and the accounts its
    # applications and SFTP logins are attributed to (declared with no job)
    service_accounts: dict[str, ServiceAccount] = Field(default_factory=dict)
    # sources.yaml's catalogued tables by the system their database is (organisation.yaml's id):
    # table -> column -> field id, what a field list's SQL text is read by (streams/sources/canonical.py
    # `StatementFields`), as the raw sources read a statement
    table_columns: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    # calendar.yaml's rest days: a deadline's last day falling on one moves past them (art. 203 ¶1)
    calendar: Calendar = Field(default_factory=Calendar)

    def period_end(self, start_ms: int, days: int, rest_days: bool = True) -> int:
        """The end of a period of `days` days that an event at `start_ms` starts, counted as the law
        counts a period of days (Civil Code art. 201: from the day after the event; art. 203: to
        24:00 of the last day, and a last day that is a rest day, calendar.yaml's, moves to the day
        after the rest days) in the bank's calendar (recipients.yaml `timezone`): 15 days from 1 Jan
        at any hour end with 16 Jan, 15 days from 20 Sep 2026 with 8 Oct (5 Oct in the National
        Day holiday). Every deadline in days is this one figure: a deletion request's
        (`deletion_due`), a retention period's (retention.yaml `keep_days`, `retention_end`), for the
        detector, the dashboard and the generator alike. `rest_days=False`: the day counted, unmoved."""
        return self._end_of(self.local_date(start_ms).toordinal() + days, rest_days)

    def retention_end(self, start_ms: int, rule: Period, rest_days: bool = True) -> int:
        """The end of a retention rule's period from `start_ms`: `period_end` for days; for years, 24:00
        of the corresponding day of the last year, or of its month's last day where it has none
        (Civil Code art. 202: five years from 29 Feb 2020 end with 28 Feb 2025), moved past rest days
        as `period_end`'s. Five years are 1 826 or 1 827 days, as the leap days between fall: a year
        count in days is short by one when two 29 Februaries fall inside it. A statutory minimum
        passes `rest_days=False`: art. 203 ¶1 gives whoever must act by a last day until the next
        working day, and a minimum asks nothing done; moved, a removal on the holiday after the
        ten years would be "before the minimum"."""
        if rule.keep_years is None:
            return self.period_end(start_ms, rule.keep_days or 0, rest_days)
        d = self.local_date(start_ms)
        year = d.year + rule.keep_years
        last = date(year, d.month, min(d.day, monthrange(year, d.month)[1]))
        return self._end_of(last.toordinal(), rest_days)

    def _end_of(self, last: int, rest_days: bool) -> int:
        """24:00 of a period's last day (an ordinal), moved past the rest days it falls on."""
        moved = self.calendar.last_day(last) if rest_days else last
        return _midnight_ms(self.recipients.timezone, moved + 1)

    def retention_start(self, ts_ms: int, rule: Period) -> int:
        """The same local time a rule's period before `ts_ms`: a period counted from it has its last
        day on `ts_ms`'s day (a 29 February goes back to 28 February). The generator's lines."""
        if rule.keep_years is None:
            return ts_ms - (rule.keep_days or 0) * 86_400_000
        local = datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(self.recipients.timezone))
        year = local.year - rule.keep_years
        earlier = local.replace(year=year, day=min(local.day, monthrange(year, local.month)[1]))
        return int(earlier.timestamp() * 1000)

    def org_changes_at(self) -> list[tuple[str, str, int]]:
        """(from, into, when it takes effect) of each `organisation.org_changes`: 00:00 of its day in
        the bank's calendar, as the bank announces a merger for a day, not an instant."""
        zone = self.recipients.timezone
        return [
            (c.from_, c.into, _midnight_ms(zone, c.effective.toordinal()))
            for c in self.organisation.org_changes
        ]

    def local_date(self, ts_ms: int) -> date:
        """The bank's calendar day of `ts_ms`: what a compliance officer in Beijing dates it."""
        zone = ZoneInfo(self.recipients.timezone)  # cached by name: no file read per call
        return datetime.fromtimestamp(ts_ms / 1000, zone).date()

    def deletion_due(self, requested_ms: int, rest_days: bool = True) -> int:
        """When a deletion request is due (the bank's `deletion_request_sla_days`, 15): requested 1 Jan at any hour,
        due by the end of 16 Jan (`period_end`). The detector's deadline and the lifecycle dashboard's `due`."""
        return self.period_end(requested_ms, self.retention.deletion_request_sla_days, rest_days)

    @model_validator(mode="after")
    def _data_refs(self) -> Policy:
        """Permission grants and approval exclusions (organisation.yaml) name classes or categories; a
        grant may name a field too, for that field alone."""
        known = {c.value for c in JrClass} | set(self.classification.categories)
        org = self.organisation
        named = [(f"approval_exclusions.{k}", ids, known) for k, ids in org.approval_exclusions.items()]
        named += [
            (f"permissions.{pid}.own_book.reads", p.own_book.reads, known)
            for pid, p in org.permissions.items()
            if p.own_book
        ]
        fields = known | set(self.classification.fields)
        named += [
            (f"permissions.{pid}.grants.{action}", ids, fields)
            for pid, p in org.permissions.items()
            for action, ids in p.grants.items()
        ]
        for where, ids, allowed in named:
            unknown = sorted(set(ids) - allowed)
            if unknown:
                what = "a class, a category nor a field" if allowed is fields else "a class nor a category"
                raise ValueError(
                    f"{where} names {unknown}, neither {what}; use C3, C2, C1 or one of "
                    f"{', '.join(sorted(self.classification.categories))}"
                )
        # an exclusion meets an approval by the purpose id the door folds its purpose to: keyed by a
        # word purposes.yaml does not declare, no other spelling reaches it (a probe's 监管报送
        # approval covered a CVN2 export that `regulatory_report` excluded)
        for key in org.approval_exclusions:
            if key not in self.purposes.purposes:
                raise ValueError(
                    f"approval_exclusions.{key} is no purpose of purposes.yaml; declare it there (with its "
                    f"zh and `also` names, which approvals may write) or key it by one of "
                    f"{', '.join(self.purposes.purposes)}"
                )
        for pid, p in org.permissions.items():
            for key, block in (("counter", p.counter), ("own_book", p.own_book)):
                unknown = sorted(set(block.purposes if block else ()) - set(self.purposes.purposes))
                if unknown:
                    raise ValueError(
                        f"permissions.{pid}.{key}.purposes names {unknown}, not purposes of purposes.yaml; "
                        f"use one of {', '.join(self.purposes.purposes)}"
                    )
        return self
