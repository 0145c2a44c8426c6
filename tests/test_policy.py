"""The policy catalog loads, says what it holds, and a bad catalog fails with file, key, line and fix."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import LOG_WORDS, renamed_ids

from detectors import load_detectors
from policy import DEFAULT_DIR, PolicyError, load_policy
from policy.clause import Clause


def test_default_policy_is_derived_from_the_seeds(policy) -> None:
    fields = policy.classification.fields
    assert fields["card_cvn"].jr_class == "C3" and fields["mobile_phone"].jr_class == "C2"
    assert fields["account_open_date"].jr_class == "C1"
    assert len(policy.sdks.sdks) == 11  # seed 004 lists 11 SDKs
    assert policy.sdks.sdks["sensors_analytics"].fields.count("mobile_phone") == 1
    assert policy.organisation.org_levels["sub_branch"].sees == "self"
    assert policy.retention.deletion_request_sla_days == 15
    steps = load_detectors(policy)[0].params.escalation
    assert {(s.min_records, s.severity.value) for s in steps} >= {(50, "high"), (500, "high")}
    # an incident notice names an SDK's fields to the customers in English too, never by its id
    assert [f for f, v in policy.sdks.sdk_fields.items() if not v.en] == []


def _leaves(value: object) -> Iterator[object]:
    """Every value a loaded policy holds, however deep (titles, runbooks, notices, clauses): the
    strings, and the clauses whole."""
    if isinstance(value, (str, Clause)):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from (*_leaves(k), *_leaves(v))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _leaves(v)
    elif fields := getattr(type(value), "model_fields", None):
        for name in fields:
            yield from _leaves(getattr(value, name))


def _texts(value: object) -> list[str]:
    """Every string a loaded policy holds, a clause's both."""
    return [t for v in _leaves(value) for t in ((v.zh, v.en) if isinstance(v, Clause) else (v,))]


def test_no_text_the_policy_shows_a_bank_cites_lifemons_own_issues(policy) -> None:
    """A new user's transfer_policy runbook ended "(issue 14)" in both languages: an issue of
    lifemon's own tracker, meaningless to a bank's analyst. Its references stay in comments."""
    import re

    internal = re.compile(r"\bissue \d+|\bprobe_\w+|\btry_newuser\b", re.I)
    texts = _texts(policy)
    assert len(texts) > 1_000 and any("启动信息泄露评估" in t for t in texts)
    assert [t for t in texts if internal.search(t)] == []


def test_a_law_cited_in_chinese_has_one_english_name(policy) -> None:
    """The English an auditor reads names each law one way: the Implementing Measures were "for
    Financial Consumer Protection" in eleven clauses and "of the PBoC for the Protection of
    Financial Consumers' Rights and Interests" in bulk_query's, one law read as two."""
    import re

    names: dict[str, set[str]] = {}
    clauses = {v for v in _leaves([policy, load_detectors(policy)]) if isinstance(v, Clause)}
    for c in clauses:
        law, article = re.match(r"^[^《:]*《([^》]+)》第", c.zh), re.match(r"^(.+?),? arts?\. ", c.en)
        if law:
            assert article, f"{c.en!r} does not name the law and article {c.zh!r} quotes"
            names.setdefault(law[1], set()).add(article[1])
    assert len(names) >= 4 and names["个人信息保护法"] == {"PIPL"}
    assert {law: n for law, n in names.items() if len(n) > 1} == {}


def test_a_runbooks_english_gives_the_english_of_the_words_it_quotes(policy) -> None:
    """An English-reading analyst read "suspend the account's PFI access (seed 004 流程描述(4)⑤:
    实现异常操作行为的有效监控和干预)": the seed's words, quoted, stay (they are the rule), with their
    English after them, `zh / en`, as a summary cites a clause. Documents, their sections and a
    term glossed beside its English, `(短信审核)`, are names, not quotes."""
    import re

    cjk = "\u4e00-\u9fff"
    names = [
        re.compile(rf"[{cjk}]*《[^》]*》"),  # a document, its publisher before it
        re.compile(rf"§[{cjk}]+|[{cjk}]+(?=[(.\d\u2460-\u2473])"),  # a section: §六, 流程描述(4), 使用②
        re.compile(rf"\([{cjk}]+\)"),  # a term's own words beside its English
    ]
    quoted = re.compile(rf"[{cjk}][^()/;]*[{cjk}]|[{cjk}]")
    untranslated = {}
    for kind, section in policy.detectors.items():
        text = " ".join(section.runbook.en.split())
        for name in names:
            text = name.sub("", text)
        untranslated[kind] = [
            q.group() for q in quoted.finditer(text) if not text[q.end() :].startswith(" / ")
        ]
    assert "实现异常操作行为的有效监控和干预 / effective monitoring" in " ".join(
        policy.detectors["bulk_query"].runbook.en.split()
    )
    assert untranslated == dict.fromkeys(policy.detectors, [])


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "policy"
    shutil.copytree(DEFAULT_DIR, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("field", "old", "new", "key", "said"),
    [
        ("card_cvn", "class: C3", "class: C4", "fields.card_cvn.class", "'C3', 'C2' or 'C1'"),
        # seed 002 §四(3) speaks of C3类别中的支付敏感信息: a C2 field marked so is a mistake, said where
        (
            "mobile_phone",
            "class: C2,",
            "class: C2, payment_sensitive: true,",
            "fields.mobile_phone",
            "payment_sensitive fields are C3",
        ),
    ],
)
def test_a_wrong_class_names_file_key_line_and_fix(policy_copy: Path, field, old, new, key, said) -> None:
    f = policy_copy / "classification.yaml"
    line = next(x for x in f.read_text(encoding="utf-8").splitlines() if x.strip().startswith(f"{field}:"))
    edit(f, line, line.replace(old, new, 1))
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    err = e.value
    assert (err.file, err.key) == (str(f), key), str(err)
    assert err.line == next(
        i for i, x in enumerate(f.read_text().splitlines(), 1) if x.strip().startswith(f"{field}:")
    )
    assert said in str(err) and "Fix:" in str(err)


def test_negative_window_is_rejected_with_its_key(policy, policy_copy: Path) -> None:
    edit(policy_copy / "detectors" / "bulk_query.yaml", "window_minutes: 60", "window_minutes: -5")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.key == "params.window_minutes" and "greater than 0" in str(e.value)
    assert e.value.line is not None and "larger number" in e.value.fix


@pytest.mark.parametrize(
    ("was", "now", "key", "said"),
    [
        ("runbook:\n  zh: >\n", "runbook: >\n  zh: >\n", "runbook", "both languages"),  # one text
        ("  en: >\n    Confirm with", "  fr: >\n    Confirm with", "runbook.en", "required"),
    ],
)
def test_a_runbook_in_one_language_names_its_file_key_and_fix(
    policy_copy: Path, was: str, now: str, key: str, said: str
) -> None:
    """A new user's finding: `alerts show` gave the runbook (处置步骤) in English only. A runbook is
    the policy's, in zh and en; one without either is a config error naming the file and key."""
    path = policy_copy / "detectors" / "bulk_query.yaml"
    edit(path, was, now)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key) == (str(path), key), str(e.value)
    assert said in str(e.value) and "Fix:" in str(e.value)


@pytest.mark.parametrize(
    ("was", "now", "key"),
    [
        ("C1: 0.2}", "C1: -0.2}", "params.class_weights.C1"),
        ("export: 3.0", "export: .nan", "params.action_weights.export"),
        ("    lobby_manager: 40", "    lobby_manager: 0", "params.role_thresholds.lobby_manager"),
    ],
)
def test_a_weight_that_takes_reads_off_the_score_is_rejected(
    policy_copy: Path, was: str, now: str, key: str
) -> None:
    """A probe's C1 weight of -0.2 passed `policy check` ("policy OK"): each C1 read took from the
    score. A weight is 0 or more (0: the class does not count), a threshold more than 0."""
    edit(policy_copy / "detectors" / "bulk_query.yaml", was, now)
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    path = policy_copy / "detectors" / "bulk_query.yaml"
    assert (e.value.key, e.value.line) == (key, line_with(path, now.strip())), str(e.value)


def test_unknown_role_in_thresholds(policy_copy: Path) -> None:
    edit(policy_copy / "detectors" / "bulk_query.yaml", "    lobby_manager: 40", "    lobby_manger: 40")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.key == "params.role_thresholds.lobby_manger" and "organisation.yaml" in e.value.fix
    assert e.value.line == line_with(policy_copy / "detectors" / "bulk_query.yaml", "    lobby_manger: 40")


def test_unknown_role_in_the_day_measures(policy_copy: Path) -> None:
    path = policy_copy / "detectors" / "bulk_query.yaml"
    edit(
        path,
        "  role_daily_customers:\n    sb_president: 120",
        "  role_daily_customers:\n    sb_presdent: 120",
    )
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.key == "params.role_daily_customers.sb_presdent" and "organisation.yaml" in e.value.fix
    assert e.value.line == line_with(path, "    sb_presdent: 120")


def test_unknown_category_in_an_escalation_tier_names_its_line(policy_copy: Path) -> None:
    """A probe's misspelt category said its key but not its line, as every other policy error does."""
    path = policy_copy / "detectors" / "bulk_query.yaml"
    edit(path, "categories: [credit, property", "categories: [credt, property")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.key == "params.escalation.0.categories" and "unknown category 'credt'" in str(e.value)
    assert e.value.line == line_with(path, "[credt, property")


def line_with(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ("C[0-9{7}", "is not a regular expression"),
        ("C?[0-9]*", "matches an empty name"),
        ("^C[0-9]{7}$", "is anchored"),  # found inside longer names, it never matched: ids left raw
        ("(?i)c[0-9]{7}", "a flag scoped as"),  # a global flag inside the door's pattern: a crash at start
    ],
)
def test_a_customer_id_form_that_cannot_be_one_names_its_key(policy_copy: Path, form: str, said: str) -> None:
    edit(policy_copy / "organisation.yaml", "customer_id_form: 'C[0-9]{7}'", f"customer_id_form: '{form}'")
    with pytest.raises(PolicyError, match=said) as e:
        load_policy(policy_copy)
    assert e.value.file.endswith("organisation.yaml") and e.value.key == "customer_id_form"
    lines = (policy_copy / "organisation.yaml").read_text().splitlines()
    assert "C[0-9]{7}" in e.value.fix and lines[e.value.line - 1].startswith("customer_id_form:")


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ("HO_[A-Z+", "is not a regular expression"),
        ("(HO_)?", "matches an empty"),
        ("HO_[A-Z]+", "has no group"),
    ],
)
def test_a_department_form_that_cannot_be_one_names_its_key(policy_copy: Path, form: str, said: str) -> None:
    edit(
        policy_copy / "organisation.yaml",
        "department_form: '(HO|B[0-9]+)_[A-Z][A-Z0-9_]*'",
        f"department_form: '{form}'",
    )
    with pytest.raises(PolicyError, match=said) as e:
        load_policy(policy_copy)
    assert e.value.file.endswith("organisation.yaml") and e.value.key == "department_form"
    assert "(HO|B[0-9]+)_[A-Z]+" in e.value.fix


def test_every_word_a_field_gives_is_read_as_that_field(policy, catalog) -> None:
    """Each field's id in upper case, its `zh` and each `also` word is that field wherever a log names
    data, none shadowed by an SDK's word or a traffic key (sdks.yaml's 短信内容 was an SDK field,
    and an access log's an unknown C1 field), nor by a category's name."""
    misread = {
        (fid, word): catalog.field_spelling(word)
        for fid, f in policy.classification.fields.items()
        for word in (fid.upper(), f.zh, *f.also)
        if catalog.field_spelling(word) != fid
    }
    assert misread == {}
    assert {w: catalog.field_spelling(w) for w in LOG_WORDS} == LOG_WORDS


# The bank's own words for the kinds of personal financial information (seed 004 定义(2)-(9)) and the
# class and category its 分类 gives each: C2④ property and loan data, C2⑤ transaction data, C2⑦ what
# identifies one person (家庭地址; 电子邮箱 and 固定电话号码 by JR/T 0171 §4.2 C2 g)), C1③ the rest
# (JR/T 0171 §4.2 C1 c)); C2⑥ the photos and recordings KYC collects, C3③ biometrics. A probe's 支付记录, 婚姻状况 and 消费意愿 were unknown C1 fields, counted in no
# art. 5 tier and no marketing purpose's.
SEED_004_KINDS = {
    # 定义(2) 个人基本信息
    "性别": ("C1", "identity"),
    "国籍": ("C1", "identity"),
    "民族": ("C1", "identity"),
    "出生日期": ("C1", "identity"),
    "职业": ("C1", "identity"),
    "婚姻状况": ("C1", "identity"),
    "家庭状况": ("C1", "identity"),
    "固定电话号码": ("C2", "contact"),
    "电子邮箱": ("C2", "contact"),
    "工作及家庭地址": ("C2", "identity"),
    "收入状况": ("C2", "property"),
    "健康信息": ("C2", "health"),
    "行踪信息": ("C2", "location"),
    "照片": ("C2", "kyc_media"),
    "音视频": ("C2", "kyc_media"),
    # 个人生物识别信息: samples, feature values and templates, for telling the customer apart (分类 C3③)
    **dict.fromkeys(
        ["指纹", "人脸", "虹膜", "耳纹", "掌纹", "静脉", "声纹", "眼纹", "步态", "笔迹"], ("C3", "biometric")
    ),
    # 定义(3) 个人财产信息
    "不动产状况": ("C2", "property"),
    "车辆状况": ("C2", "property"),
    "纳税额": ("C2", "property"),
    "公积金缴存金额": ("C2", "property"),
    # 定义(4) 个人账户信息
    "支付账号": ("C2", "account"),
    "证券账户": ("C2", "account"),
    "保险账户": ("C2", "account"),
    "账户开立时间": ("C1", "internal"),
    "开户机构": ("C1", "internal"),
    "开户代理人": ("C2", "identity"),
    "主要联系人": ("C2", "contact"),
    "账户余额": ("C2", "property"),
    "账户交易情况": ("C2", "transaction"),
    "支付标记信息": ("C1", "internal"),
    # 定义(6) 个人金融交易信息
    "交易金额": ("C2", "transaction"),
    "支付记录": ("C2", "transaction"),
    "透支记录": ("C2", "transaction"),
    "交易日志": ("C2", "transaction"),
    "交易凭证": ("C2", "transaction"),
    "证券委托": ("C2", "transaction"),
    "成交": ("C2", "transaction"),
    "保单信息": ("C2", "transaction"),
    "理赔信息": ("C2", "transaction"),
    # 定义(7) 个人信用信息, 定义(8) 个人借贷信息
    "信用卡还款情况": ("C2", "credit"),
    "贷款偿还情况": ("C2", "credit"),
    "授信": ("C2", "loan"),
    "担保情况": ("C2", "loan"),
    # 定义(9) 其他信息
    "消费意愿": ("C1", "internal"),
    "支付习惯": ("C1", "internal"),
}


def test_every_kind_of_data_the_banks_rules_define_is_a_field_of_its_class(policy, catalog) -> None:
    """Each of seed 004 定义(2)-(9)'s words, as a log writes it, is a catalog field (not a category,
    not unknown) of the class and category the seed's 分类 gives it."""
    fields = policy.classification.fields
    read = {}
    for word in SEED_004_KINDS:
        fid = catalog.field_spelling(word)
        read[word] = (fields[fid].jr_class.value, fields[fid].category) if fid in fields else fid
    assert read == SEED_004_KINDS


@pytest.mark.parametrize(
    ("also", "word", "key", "said"),
    [
        (
            "also: [交易记录",
            "余额",
            "fields.transaction_record.also",
            "'余额' already names the field account_balance",
        ),
        (
            "also: [交易记录",
            "Account-Balance",
            "fields.transaction_record.also",
            "'Account-Balance' already names the field account_balance",
        ),
        ("also: [行踪信息", "征信信息", "fields.location_trace", "names the category credit ('征信信息')"),
    ],
)
def test_a_word_for_two_fields_is_refused_with_key_line_and_fix(
    policy_copy: Path, also, word, key, said
) -> None:
    """A log's word is read as one field: given to two, or a category's name to another category's
    field, it would be read as whichever came first, so the load says where and how to fix it."""
    f = policy_copy / "classification.yaml"
    edit(f, also, also.replace("[", f"[{word}, "))
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key) == (str(f), key) and e.value.line is not None, str(e.value)
    assert said in e.value.message and "drop it from" in e.value.fix


def test_unknown_category_reference(policy_copy: Path) -> None:
    edit(policy_copy / "classification.yaml", "category: credit,", "category: credits,")
    with pytest.raises(PolicyError, match=r"'credits' is not a known category") as e:
        load_policy(policy_copy)
    assert e.value.key == "fields.credit_report.category" and "use one of" in e.value.fix


@pytest.mark.parametrize(
    ("old", "typo", "key", "fix"),
    [
        (
            "sub_branch,",
            "sub_brnch,",
            "roles.sb_president.level",
            "head_office, branch, second_branch, sub_branch",
        ),
        (
            "[customer_service, account_service,",
            "[customer_service, acount_service,",
            "permissions.counter_service.counter.purposes",
            "account_service, authentication",
        ),
        (
            "roles: [it_developer, it_tester,",
            "roles: [it_developer, it_testr,",
            "incompatible_roles.0.roles",
            "it_developer, it_tester, it_operations",
        ),
        (  # a review's: every wealth manager on the HR feed was read as a teller
            "{zh: 柜员, en: counter teller,",
            "{zh: 柜员, en: counter teller, also: [理财经理],",
            "roles.teller.also",
            "a word may name one role only",
        ),
    ],
    ids=["a role's level", "a counter's purpose", "an incompatible role", "a word of two roles"],
)
def test_cross_reference_error_points_at_the_bad_line(
    policy_copy: Path, old: str, typo: str, key: str, fix: str
) -> None:
    f = policy_copy / "organisation.yaml"
    edit(f, old, typo)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    bad_line = next(i for i, line in enumerate(f.read_text().splitlines(), 1) if typo in line)
    assert (e.value.key, e.value.line) == (key, bad_line)
    assert fix in e.value.fix


@pytest.mark.parametrize(
    ("old", "typo", "key", "said", "fix"),
    [
        (
            "{counter_service: 240}",
            "{counter_servce: 240}",
            "peak_days.pension_day.customers_per_day.counter_servce",
            "is no permission set",
            "counter_service, credit_review, aml_monitoring, back_office, hotline_service",
        ),
        (
            "{counter_service: 240}",
            "{system_admin: 240}",
            "peak_days.pension_day.customers_per_day.system_admin",
            "no day measure",
            "use one of customer_management, counter_service",
        ),
        (  # a peak below the ordinary day would lower the busiest days' measure
            "{counter_service: 240}",
            "{counter_service: 100}",
            "peak_days.pension_day.customers_per_day.counter_service",
            "100 is not above the set's ordinary 120 a day",
            "raise it, or drop counter_service",
        ),
        ("monthly: [10]", "monthly: []", "peak_days.pension_day", "has no day", "`monthly` (10"),
        (
            "monthly: [10]",
            "monthly: [0, 32]",
            "peak_days.pension_day",
            "[0, 32] is no day of a month",
            "-1 to -31",
        ),
    ],
    ids=["an unknown set", "a set with no day measure", "a peak below the day", "no day", "no such day"],
)
def test_a_peak_day_that_cannot_raise_a_measure_is_refused_where_it_is(
    policy_copy: Path, old: str, typo: str, key: str, said: str, fix: str
) -> None:
    """probe_v2 F9: a peak day (organisation.yaml `peak_days`) raises a counter's or a book's day
    measure on its days alone; one naming no such set, no day, or a measure below the ordinary
    day's would quietly do nothing, or lower the busiest days', so the load says where and how."""
    f = policy_copy / "organisation.yaml"
    edit(f, old, typo)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    bad_line = next(i for i, line in enumerate(f.read_text().splitlines(), 1) if typo in line)
    assert e.value.key == key and said in e.value.message and fix in e.value.fix, str(e.value)
    assert e.value.line is not None and e.value.line <= bad_line, str(e.value)


def test_a_steady_day_measure_is_every_days_and_none_where_a_peak_raises_it(catalog) -> None:
    """bulk_query takes `Catalog.steady_measure` once per kind of read in place of asking
    `day_measure` at every read: it must be every day's answer, pension day's and a month's end
    included, and absent for a set a peak day raises (the counter's, organisation.yaml `peak_days`)."""
    sets = catalog.policy.organisation.permissions
    days = [_ms(2026, 3, d, h) for d in (9, 10, 31) for h in (0, 12, 23)]
    for perms in ("counter_service", "customer_management", "credit_review", "aml_monitoring", "back_office"):
        block = sets[perms].counter or sets[perms].own_book
        steady = catalog.steady_measure(perms, block)
        measures = {catalog.day_measure(perms, block, ts) for ts in days}
        if perms in catalog._peaks:
            assert steady is None and len(measures) > 1, (perms, measures)
        else:
            assert measures == {steady} == {(block.customers_per_day, "")}, (perms, steady, measures)


def _ms(year: int, month: int, day: int, hour: int) -> int:
    """Epoch milliseconds of that hour, Beijing time (organisation.yaml's bank day)."""
    return int(datetime(year, month, day, hour, tzinfo=timezone(timedelta(hours=8))).timestamp() * 1000)


def test_a_purpose_that_also_uses_an_unknown_purpose_points_at_its_line(policy_copy: Path) -> None:
    f = policy_copy / "purposes.yaml"
    edit(f, "also_uses: [payment, credit_review, kyc_aml", "also_uses: [payments, credit_review, kyc_aml")
    with pytest.raises(PolicyError, match=r"unknown purposes \['payments'\]") as e:
        load_policy(policy_copy)
    bad_line = next(i for i, line in enumerate(f.read_text().splitlines(), 1) if "[payments," in line)
    assert (Path(e.value.file).name, e.value.key, e.value.line) == (
        "purposes.yaml",
        "purposes.account_service.also_uses",
        bad_line,
    )
    assert "account_service, authentication, payment" in e.value.fix


def test_an_approval_exclusion_keyed_by_no_declared_purpose_names_file_key_line_and_fix(
    policy_copy: Path,
) -> None:
    """An exclusion keyed by a word purposes.yaml does not declare is met by that literal word alone:
    a probe's approval saying 监管报送 covered a CVN2 export `regulatory_report` excluded. Refused at
    load, where the key is, with the fix."""
    f = policy_copy / "organisation.yaml"
    edit(f, "  regulatory_report: [C3, authentication]", "  regulatory_reports: [C3, authentication]")
    with pytest.raises(PolicyError, match="is no purpose of purposes.yaml") as e:
        load_policy(policy_copy)
    bad_line = next(
        i for i, line in enumerate(f.read_text().splitlines(), 1) if "regulatory_reports:" in line
    )
    assert (e.value.file, e.value.key, e.value.line) == (
        str(f),
        "approval_exclusions.regulatory_reports",
        bad_line,
    )
    assert "declare it there" in e.value.fix and "regulatory_report," in e.value.fix


@pytest.mark.parametrize(
    ("now", "said", "fix"),
    [
        ("[acount_service]", "'acount_service' is not a known purpose id", "use one of"),
        # an account opened after the end that begins no relationship would itself fire
        ("[account_service, payment]", "'payment' is not in relationship_purposes", "add 'payment' to"),
    ],
)
def test_an_account_purpose_is_a_known_purpose_that_begins_a_relationship(
    policy_copy: Path, now: str, said: str, fix: str
) -> None:
    f = policy_copy / "retention.yaml"
    edit(f, "account_purposes: [account_service]", f"account_purposes: {now}")
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key, e.value.line) == (str(f), "account_purposes", line_with(f, now))
    assert said in str(e.value) and e.value.fix.startswith(fix), str(e.value)


def test_a_retention_period_is_given_in_days_or_in_years_not_both(policy_copy: Path) -> None:
    edit(policy_copy / "retention.yaml", "    keep_days: 30\n", "    keep_days: 30\n    keep_years: 1\n")
    with pytest.raises(PolicyError, match="keep_days and keep_years") as e:
        load_policy(policy_copy)
    assert e.value.key == "rules.location_trace" and "keep_years: 5" in e.value.fix


def test_a_country_in_lower_case_reads_as_its_code_and_a_name_is_refused(policy_copy: Path) -> None:
    """Its alpha-3 or numeric code reads as its alpha-2 too; two letters ISO 3166 does not assign do not."""
    f = policy_copy / "recipients.yaml"
    edit(f, "home_country: CN", "home_country: cn")
    assert load_policy(policy_copy).recipients.home_country == "CN"
    edit(f, "home_country: cn", "home_country: CHN")
    assert load_policy(policy_copy).recipients.home_country == "CN"
    for wrong in ("China", "XX"):
        edit(f, f"home_country: {'CHN' if wrong == 'China' else 'China'}", f"home_country: {wrong}")
        with pytest.raises(PolicyError, match="no ISO 3166 country code") as e:
            load_policy(policy_copy)
        assert e.value.key == "home_country"


def test_a_key_given_twice_is_an_error(policy_copy: Path) -> None:
    f = policy_copy / "classification.yaml"
    f.write_text(
        f.read_text(encoding="utf-8") + "\nfields:\n  x: {zh: x, class: C1, category: internal}\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match=r"key 'fields' appears twice \(first on line \d+\)"):
        load_policy(policy_copy)


def test_a_registered_detector_needs_its_policy_file(policy_copy: Path) -> None:
    """A detector that was always there has its file in every folder: one missing is a folder
    damaged, not one written before the detector was added."""
    (policy_copy / "detectors" / "bulk_query.yaml").unlink()
    with pytest.raises(PolicyError, match="bulk_query detector has no policy section") as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert "enabled: false" in e.value.fix


def test_a_folder_written_before_a_detector_was_added_runs_it_as_shipped_and_says_so(
    policy, policy_copy: Path, caplog
) -> None:
    """Refusing to start after an upgrade would stop the monitoring: the detector lifemon added
    runs from its shipped file, and one warning names the missing file, the shipped one and how to
    switch it off. A copy with `enabled: false` does."""
    (policy_copy / "detectors" / "deleted_record_use.yaml").unlink()
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    specs = {s.kind: s.params for s in load_detectors(older, policy_copy)}
    assert specs == {s.kind: s.params for s in load_detectors(policy)}
    (record,) = caplog.records
    assert (record.file, record.added) == (str(policy_copy / "detectors" / "deleted_record_use.yaml"), ["deleted_record_use"])  # fmt: skip
    assert str(DEFAULT_DIR / "detectors" / "deleted_record_use.yaml") in record.getMessage()
    assert "enabled: false" in record.getMessage()
    shipped = (DEFAULT_DIR / "detectors" / "deleted_record_use.yaml").read_text(encoding="utf-8")
    (policy_copy / "detectors" / "deleted_record_use.yaml").write_text(
        shipped.replace("rule_id: LM-RO-002", "enabled: false\nrule_id: LM-RO-002"), encoding="utf-8"
    )
    assert "deleted_record_use" not in {s.kind for s in load_detectors(load_policy(policy_copy), policy_copy)}


def test_a_folder_from_before_the_shared_account_detectors_runs_both_as_shipped(
    policy, policy_copy: Path, caplog
) -> None:
    """A bank's folder written before shared_account and shared_workstation came: both run from
    their shipped files (the VPN pool the demo bank has in `pooled_networks` too), one warning each."""
    for kind in ("shared_account", "shared_workstation"):
        (policy_copy / "detectors" / f"{kind}.yaml").unlink()
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    specs = {s.kind: s.params for s in load_detectors(older, policy_copy)}
    assert specs == {s.kind: s.params for s in load_detectors(policy)}
    assert sorted(r.added[0] for r in caplog.records) == ["shared_account", "shared_workstation"]


def test_typo_key_and_yaml_syntax(policy_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a detector's misspelt key is both missing and extra to pydantic: one typo, said once (a probe
    # read it twice); and no setting "added since" the file was written (a probe's first line)
    edit(policy_copy / "detectors" / "bulk_query.yaml", "  window_minutes:", "  window_minute:")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.fix == "rename `window_minute` to `window_minutes`" and "Also" not in str(e.value), str(
        e.value
    )
    assert not [r for r in caplog.records if "added to lifemon since" in r.getMessage()]
    edit(policy_copy / "retention.yaml", "deletion_request_sla_days: 15", "deletion_request_sla_dayz: 15")
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert e.value.key == "deletion_request_sla_days" and e.value.line is not None
    assert e.value.fix == "rename `deletion_request_sla_dayz` to `deletion_request_sla_days`"
    (policy_copy / "retention.yaml").write_text("rules: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(policy_copy)
    # a bracket left open: the parser stops on a later line, and names the one it opened on too
    (policy_copy / "retention.yaml").write_text("a: 1\nb: {x: 1\nc: 2\n", encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert "while parsing a flow mapping on line 2" in str(e.value), str(e.value)


def test_missing_file(policy_copy: Path) -> None:
    # a mistyped folder is said so, not as a folder without its first file
    with pytest.raises(PolicyError, match="nopol: \\(top level\\): no such folder. Fix: point --policy"):
        load_policy(policy_copy.parent / "nopol")
    (policy_copy / "sdks.yaml").unlink()
    with pytest.raises(PolicyError, match="sdks.yaml: .*file not found"):
        load_policy(policy_copy)


def test_what_a_processor_may_get_in_clear_is_data_its_contract_covers(policy_copy: Path) -> None:
    """recipients.yaml `identifiable`: category or field ids of classification.yaml within the
    contract's categories (the call centre's contract covers identity, contact and internal data: a
    card number in clear is none of it), and only a processor's contract lists it."""
    f = policy_copy / "recipients.yaml"
    edit(f, "internal], identifiable: [customer_name, mobile_phone],",
         "internal], identifiable: [customer_name, mobile_phone, payment_account_no],")  # fmt: skip
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.key, e.value.line) == (
        "recipients.proc_call_center.contracts.0.identifiable",
        line_with(f, "identifiable: [customer_name, mobile_phone, payment_account_no]"),
    )
    assert (
        "'payment_account_no' is neither a category of contract CT-proc_call_center nor a field of one"
        in str(e.value)
    )
    assert "mobile_phone" in e.value.fix and "payment_account_no" not in e.value.fix
    edit(f, "identifiable: [customer_name, mobile_phone, payment_account_no],",
         "identifiable: [customer_name, mobile_phone],")  # fmt: skip
    edit(f, "categories: [identity, contact], purposes: [insurance_referral],",
         "categories: [identity, contact], purposes: [insurance_referral], identifiable: [contact],")  # fmt: skip
    with pytest.raises(PolicyError, match="only an entrusted processor's contract declares") as e:
        load_policy(policy_copy)
    assert "tp_insurance_partner" in e.value.key


def test_a_clearing_purpose_must_be_a_declared_purpose(policy_copy: Path) -> None:
    f = policy_copy / "recipients.yaml"
    edit(
        f,
        "clearing_purposes: [payment]\n    contracts:\n      - {id: CT-clr_unionpay",
        "clearing_purposes: [payments]\n    contracts:\n      - {id: CT-clr_unionpay",
    )
    with pytest.raises(PolicyError, match=r"unknown purpose 'payments'") as e:
        load_policy(policy_copy)
    bad_line = next(i for i, line in enumerate(f.read_text().splitlines(), 1) if "[payments]" in line)
    assert (e.value.file, e.value.key, e.value.line) == (
        str(f),
        "recipients.clr_unionpay.clearing_purposes",
        bad_line,
    )
    assert "purposes.yaml" in e.value.fix and "payment," in e.value.fix


def test_alerts_and_notices_name_the_documents_not_seed_numbers(policy, policy_copy: Path) -> None:
    """references.yaml: "seed 004" in a regulation becomes the document an analyst can look up."""
    texts = json.dumps(policy.model_dump(mode="json"), ensure_ascii=False)
    assert "seed 0" not in texts
    assert "汉盛《商业银行互联网贷款视角中个人风险数据在全生命周期中的合规分析》 §六.2(4)" in texts
    # seed 004 holds three documents: a section names its own (a probe's auditor looked for 机构设置 in
    # the privacy policy the alert named)
    assert "本行《掌上银行家系统功能应用与管理规定》 机构设置(1)-(4)" in texts
    assert (
        "本行《个人金融信息保护管理规定》 流程描述(4)④" in texts
        and "本行《掌上银行家隐私政策》 §一.(一)" in texts
    )
    assert "隐私政策》 机构设置" not in texts and "》及个人金融信息保护管理规定 流程描述" not in texts
    # in English where the text is: a clause's, a title's, a runbook's English names the document in
    # English, its Chinese title after it (an English reader met 本行《…》 alone)
    english = [t for v in _leaves([policy, load_detectors(policy)]) if isinstance(v, Clause) for t in [v.en]]
    english += [s.runbook.en for s in policy.detectors.values()]
    assert any(
        "the bank's personal financial information protection rules (本行《个人金融信息保护管理规定》) 流程描述"
        in t
        for t in english
    )
    import re

    bare = re.compile(r"《[^》]*(规定|政策|分析|信息|原则|意见)》")  # a seed document's title, not in (…)
    assert [t for t in english if bare.search(re.sub(r"\([^()]*《[^()]*\)", "", t))] == []
    (policy_copy / "references.yaml").unlink()  # a bank's own folder without it keeps the short form
    assert "seed 002 §六.2(4)" in json.dumps(
        load_policy(policy_copy).model_dump(mode="json"), ensure_ascii=False
    )
    # a bank's file of plain strings, from before the English: each serves both languages
    (policy_copy / "references.yaml").write_text("seed 002: 汉盛《X》\n", encoding="utf-8")
    plain = load_policy(policy_copy)
    assert any("汉盛《X》 §六.2(4)" in c.en for c in _leaves(plain) if isinstance(c, Clause)), (
        "a plain citation in English too"
    )
    (policy_copy / "references.yaml").write_text("seed 4: x\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="seed NNN: citation") as e:
        load_policy(policy_copy)
    assert e.value.file.endswith("references.yaml")


def test_every_rule_cites_the_law_first_and_keeps_its_seed(policy) -> None:
    """The probe: 63 of 64 demo alerts cited no article of the PIPL and 51 led with a law firm's
    commentary. Each rule's regulation now opens with the law it enforces (an article of a law, a
    PBoC rule, JR/T 0171 or the SPC/SPP interpretation), cites the PIPL, and still names the source
    document it was written from (references.yaml), after the law."""
    import yaml

    cited = yaml.safe_load((DEFAULT_DIR / "references.yaml").read_text(encoding="utf-8")).values()
    sources = [c["zh"] if isinstance(c, dict) else c for c in cited]
    primary = ("《个人信息保护法》第", "《反洗钱法》(2024年修订)第", "《广告法》第", "JR/T 0171-2020 §", "《金融消费者权益保护实施办法》第",
               "最高法、最高检《关于办理侵犯公民个人信息刑事案件适用法律若干问题的解释》")  # fmt: skip
    lists = {}
    for kind, section in policy.detectors.items():
        lists[kind] = [c.zh for c in section.regulation]
        for rule, spec in section.params.get("rules", {}).items():
            lists[f"{kind}.{rule}"] = [c["zh"] for c in spec["regulation"]]
    assert (
        len(lists) == 9 + 1 + 11 + 15 + 10 + 14 + 1 + 1
    )  # every detector and rule: 9 sections, then each rule
    traced = set()
    for name, clauses in lists.items():
        assert clauses[0].startswith(primary) and not clauses[0].startswith(tuple(sources)), name
        assert any(c.startswith("《个人信息保护法》第") for c in clauses), name
        seeds = [i for i, c in enumerate(clauses) if any(s in c for s in sources)]
        assert all(c.startswith(primary) for c in clauses[: seeds[0] if seeds else None]), name
        traced |= {name} if seeds else set()
    assert set(lists) - traced == {"bulk_query"}  # its clauses are all law; its YAML comment names the seeds
    # the 2006 numbering of the AML Law is gone; the article in force since 2025-01-01 is cited
    assert not any("反洗钱法》第十九条" in c for c in sum(lists.values(), []))
    assert lists["retention_overrun.removed_before_minimum"][0].startswith(
        "《反洗钱法》(2024年修订)第三十四条"
    )


def test_every_leakage_class_cites_the_notification_duty_first(policy) -> None:
    """An incident is a leakage the bank must remedy and report (PIPL art. 57): each class opens with
    it, then the law its alerts broke; provision abroad names art. 38 and 39."""
    for name, leak in policy.incidents.classes.items():
        assert leak.regulation[0].zh.startswith("《个人信息保护法》第五十七条"), name
    cross_border = [c.zh for c in policy.incidents.classes["cross_border"].regulation]
    assert any(c.startswith("《个人信息保护法》第三十八条") for c in cross_border)
    assert any(c.startswith("《个人信息保护法》第三十九条") for c in cross_border)


@pytest.mark.parametrize(
    ("places", "said"),
    [
        ("[[], [sms_code]]", "lists no field id"),
        ("[[sms_code, otp_code], [otp_code]]", "stands in two places"),
    ],
)
def test_a_combination_place_is_non_empty_and_fields_fill_one_place(
    policy_copy: Path, places: str, said: str
) -> None:
    """An empty place turned the combination off; an id in two places made one field alone C3."""
    edit(
        policy_copy / "classification.yaml",
        "  - fields: [payment_account_no, card_expiry]",
        f"  - fields: {places}",
    )
    with pytest.raises(PolicyError, match=said) as e:
        load_policy(policy_copy)
    assert e.value.key.startswith("combinations.")


def test_an_incidents_file_written_before_a_class_was_added_opens_its_incidents_and_says_so(
    policy, policy_copy: Path, caplog
) -> None:
    """An upgrade probe: a bank's incidents.yaml from before undeclared_host loaded without a word,
    and the SDK that sent card images to an undeclared host stayed an alert nobody was paged for.
    The class applies as lifemon ships it, and a warning names it."""
    import yaml

    path = policy_copy / "incidents.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["classes"]["undeclared_host"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    assert older.incidents.classes["undeclared_host"] == policy.incidents.classes["undeclared_host"]
    (record,) = caplog.records
    assert (record.file, record.key, record.added) == (str(path), "classes", ["undeclared_host"])
    assert str(DEFAULT_DIR / "incidents.yaml") in record.getMessage()


def test_a_folder_written_before_a_setting_was_added_gets_it_as_shipped_and_says_so(
    policy, policy_copy: Path, caplog
) -> None:
    """A review: a bank's folder from before `identifiers`, `least_severity` and sensitive categories
    got none of them, and a batch of names flagged de-identified still passed there. Each applies as
    lifemon ships it, said per file."""
    import yaml

    for kind, key in (("transfer_policy", "identifiers"), ("sdk_overcollection", "least_severity")):
        path = policy_copy / "detectors" / f"{kind}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        del data["params"][key]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    path = policy_copy / "classification.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["categories"] = {
        c: {k: v for k, v in cat.items() if k != "sensitive"} for c, cat in data["categories"].items()
    }
    # and before payment-sensitive fields (seed 002 §四(3)): card data in the clear on a private line passed
    data["fields"] = {
        f: {k: v for k, v in field.items() if k != "payment_sensitive"} for f, field in data["fields"].items()
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # and before `head_office` (org paths completed at the door): said, not applied (the bank's own id)
    org = policy_copy / "organisation.yaml"
    org.write_text(org.read_text(encoding="utf-8").replace("head_office: HO\n", ""), encoding="utf-8")
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    assert older.organisation.head_office is None
    assert {s.kind: s.params for s in load_detectors(older, policy_copy)} == {
        s.kind: s.params for s in load_detectors(policy)
    }
    assert older.classification.categories == policy.classification.categories
    assert older.classification.fields == policy.classification.fields
    said = {(r.file, r.key): r.added for r in caplog.records}
    assert said == {
        (str(policy_copy / "detectors" / "transfer_policy.yaml"), "params"): ["identifiers"],
        (str(policy_copy / "detectors" / "sdk_overcollection.yaml"), "params"): ["least_severity"],
        (str(path), "categories"): ["account", "biometric", "health", "location"],
        (str(path), "fields"): ["card_cvn", "card_expiry", "card_pin", "card_track_data", "payment_password"],
        (str(org), "head_office"): ["head_office"],
    }


def test_a_role_keyed_setting_added_since_keeps_only_the_folders_roles(
    policy, policy_copy: Path, caplog
) -> None:
    """bulk_query's `role_daily_customers`, added since, applies as shipped to a folder without it:
    the shipped bank's roles. A second bank's folder, whose roles are its own, was refused at start
    for them (monitoring stopped by an upgrade); its own file naming an unknown role still is."""
    import yaml

    path = policy_copy / "detectors" / "bulk_query.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["params"]["role_daily_customers"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    renamed_ids(policy_copy, {"ho_marketing_mgmt": "hq_marketing"})
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    (bulk,) = [s for s in load_detectors(older, policy_copy) if s.kind == "bulk_query"]
    shipped = next(s for s in load_detectors(policy) if s.kind == "bulk_query").params.role_daily_customers
    assert bulk.params.role_daily_customers == {r: n for r, n in shipped.items() if r != "ho_marketing_mgmt"}
    data["params"]["role_daily_customers"] = {"ho_marketing_mgmt": 400}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown role 'ho_marketing_mgmt'"):
        load_detectors(load_policy(policy_copy), policy_copy)


def test_an_unknown_identifier_is_told_with_the_folders_own_field_ids(policy_copy: Path) -> None:
    """A probe's second bank was told to use `customer_name, mobile_phone`, the shipped bank's ids."""
    import yaml

    renamed_ids(
        policy_copy,
        {
            "account_balance": "acct_bal",
            "account_status": "acct_status",
            "accommodation_records": "acc_stays",
        },
    )
    path = policy_copy / "detectors" / "transfer_policy.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["params"]["identifiers"].append("customer_nam")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    folder = load_policy(policy_copy)
    with pytest.raises(PolicyError) as e:
        load_detectors(folder, policy_copy)
    own = ", ".join(sorted(folder.classification.fields)[:4])
    assert "unknown field or category 'customer_nam'" in str(e.value)
    assert f"use a field id ({own}, ...)" in str(e.value) and "acc_stays" in own


def test_a_classification_written_before_the_addressing_mark_gets_it_as_shipped_or_is_told(
    policy, policy_copy: Path, caplog
) -> None:
    """classification.yaml's `addresses` (what a message is addressed with: offscope_marketing reads
    a push's targeting without it). A folder that kept the shipped ids takes the shipped mark, said;
    one whose name and number are its own ids (a second bank's `cust_name`) is told to mark them:
    unmarked, its name-only greetings are personalized pushes."""
    path = policy_copy / "classification.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(", addresses: true}", "}"), encoding="utf-8")
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    assert older.classification.fields == policy.classification.fields
    assert {(r.file, r.key): r.added for r in caplog.records} == {
        (str(path), "fields"): ["customer_name", "mobile_phone", "email_address", "landline_phone"]
    }
    caplog.clear()
    renamed_ids(
        policy_copy,
        {
            "customer_name": "cust_name",
            "mobile_phone": "mobile_no",
            "email_address": "cust_email",
            "landline_phone": "home_tel",
        },
    )
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        own = load_policy(policy_copy)
    assert not any(f.addresses for f in own.classification.fields.values())
    (said,) = [r for r in caplog.records if r.key == "fields"]
    assert "no field addresses a message (`addresses`" in said.getMessage()
    assert "mark your name and number fields `addresses: true`" in said.getMessage()


def test_a_detector_file_written_before_a_rule_was_added_loads_with_it_and_says_so(
    policy, policy_copy: Path, caplog
) -> None:
    """A bank's folder from an older lifemon lacks rules added since: each applies as lifemon ships
    it, and one warning per file names the file, the rules and where to copy them from. lifemon's
    own folder lacking a rule is a defect, and still refused."""
    import yaml

    dropped = {
        "retention_overrun": ("rules", ["removed_before_minimum", "card_data_on_client"]),
        "transfer_policy": ("rules", ["sender_not_active"]),
        "unauthorized_lookup": ("reasons", ["suspended", "before_entitlement"]),
    }
    for kind, (key, rules) in dropped.items():
        path = policy_copy / "detectors" / f"{kind}.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for rule in rules:
            del data["params"][key][rule]
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with caplog.at_level("WARNING", logger="lifemon.policy"):
        older = load_policy(policy_copy)
    specs = {s.kind: s.params for s in load_detectors(older, policy_copy)}
    shipped = {s.kind: s.params for s in load_detectors(policy)}
    assert specs == shipped
    said = {r.file: r for r in caplog.records}
    for kind, (key, rules) in dropped.items():
        record = said[str(policy_copy / "detectors" / f"{kind}.yaml")]
        assert (record.key, record.added) == (f"params.{key}", rules)
        assert str(DEFAULT_DIR / "detectors" / f"{kind}.yaml") in record.getMessage()
    assert len(caplog.records) == len(dropped)

    from detectors.unauthorized_lookup import UnauthorizedLookupParams

    own = policy.detectors["unauthorized_lookup"].params
    with pytest.raises(ValueError, match=r"missing \['old_scope_after_transfer'\]"):
        UnauthorizedLookupParams.model_validate(
            {**own, "reasons": {k: v for k, v in own["reasons"].items() if k != "old_scope_after_transfer"}}
        )


# -- a second bank's folder (probe_u2): what loaded silently wrong --------------------------------------
def _rename_agreement(folder: Path, new: str) -> None:
    edit(folder / "purposes.yaml", "agreements:\n  privacy_policy:", f"agreements:\n  {new}:")


@pytest.mark.parametrize("written", ["app_privcy", "marketing"])
def test_a_consent_purpose_no_agreement_declares_is_refused_with_the_ids_available(
    policy_copy: Path, written: str
) -> None:
    """probe_u2 H1: a bank whose agreement is `app_privacy` kept the shipped `privacy_policy`, which
    none of its names gave (or mistyped its own, or named a purpose): `policy check` said OK, and
    the SDKs' consent, withdrawal and minors rules looked up consents no one records."""
    _rename_agreement(policy_copy, "app_privacy")
    path = policy_copy / "detectors" / "sdk_overcollection.yaml"
    edit(path, "  quiet_hours: 24\n", f"  quiet_hours: 24\n  consent_purpose: {written}\n")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert (e.value.file, e.value.key) == (str(path), "params.consent_purpose"), str(e.value)
    assert e.value.line == line_with(path, f"consent_purpose: {written}")
    assert f"unknown agreement '{written}'" in e.value.message and "app_privacy" in e.value.fix


@pytest.mark.parametrize(("written", "read"), [(None, "app_privacy"), ("个人信息保护政策", "app_privacy")])
def test_a_consent_purpose_is_the_only_agreement_unset_and_its_id_by_any_name(
    policy_copy: Path, written: str | None, read: str
) -> None:
    _rename_agreement(policy_copy, "app_privacy")
    if written:
        path = policy_copy / "detectors" / "sdk_overcollection.yaml"
        edit(path, "  quiet_hours: 24\n", f"  quiet_hours: 24\n  consent_purpose: {written}\n")
    specs = load_detectors(load_policy(policy_copy), policy_copy)
    assert next(s for s in specs if s.kind == "sdk_overcollection").params.consent_purpose == read


def test_two_agreements_and_no_consent_purpose_is_refused(policy_copy: Path) -> None:
    edit(
        policy_copy / "purposes.yaml",
        "agreements:\n",
        "agreements:\n  card_terms: {zh: 信用卡领用合约, en: card terms, source: seed 004}\n",
    )
    with pytest.raises(PolicyError, match="no agreement chosen") as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert e.value.key == "params.consent_purpose" and "card_terms, privacy_policy" in e.value.fix


def test_the_shipped_policy_loads_with_its_one_agreement(policy) -> None:
    specs = load_detectors(policy)
    assert next(s for s in specs if s.kind == "sdk_overcollection").params.consent_purpose == "privacy_policy"


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("client_secrets", "client_secrets: [card_track_data,", "client_secrets: [track_data,"),
        ("never_on_client", "never_on_client: [biometric_template,", "never_on_client: [face_template,"),
        (
            "forbidden_foreign_c3",
            "forbidden_foreign_c3: [card_track_data,",
            "forbidden_foreign_c3: [track_data,",
        ),
    ],
)
def test_the_client_and_foreign_c3_lists_name_catalog_fields(
    policy_copy: Path, key: str, old: str, new: str
) -> None:
    """probe_u2 H2: a bank's retention.yaml copied with the shipped field names (card_track_data
    where its catalog says track_data) loaded, and the critical card-data rules matched nothing."""
    path = policy_copy / "retention.yaml"
    edit(path, old, new)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key, e.value.line) == (str(path), key, line_with(path, new)), str(e.value)
    assert new.split("[")[1].rstrip(",") in e.value.message
    # the fix names the folder's own C3 fields, the ones these lists hold
    assert (
        "card_track_data" in e.value.fix and "card_cvn" in e.value.fix and "mobile_phone" not in e.value.fix
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "key"),
    [
        (
            "organisation.yaml",
            "    systems: [core_banking, card_system]",
            "    systems: [core_banking，card_system]",
            "permissions.counter_service.systems.0",
        ),
        (
            "organisation.yaml",
            "also: [系统测试, 系统测试岗,",
            "also: [系统测试、系统测试岗,",
            "roles.it_tester.also.0",
        ),
        (
            "detectors/transfer_policy.yaml",
            "identifiers: [",
            "identifiers: [customer_name；",
            "params.identifiers.0",
        ),
    ],
)
def test_items_run_together_by_a_full_width_comma_are_refused(
    policy_copy: Path, file: str, old: str, new: str, key: str
) -> None:
    """probe_u2 M3: `[loan_sys，ncbs]` typed in a Chinese input mode is one item to YAML: a system
    no role uses (every read flagged), a role's two names one word no feed writes, or an error that
    told the engineer to declare the pasted string."""
    path = policy_copy / file
    edit(path, old, new)
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert (e.value.file, e.value.key, e.value.line) == (str(path), key, line_with(path, new.strip())), str(
        e.value
    )
    assert e.value.fix == "write `,` (ASCII) between items" and "full-width" in e.value.message


def test_a_date_no_calendar_has_is_refused_with_its_key(policy_copy: Path) -> None:
    """probe_u2 M4: `valid_to: 2027-02-30` crashed the loader with a traceback (exit 1)."""
    path = policy_copy / "recipients.yaml"
    edit(
        path, "valid_from: 2025-01-01, valid_to: 2027-12-31,", "valid_from: 2025-01-01, valid_to: 2027-02-30,"
    )
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key) == (str(path), "recipients.proc_call_center.contracts.0.valid_to")
    assert e.value.line == line_with(path, "valid_to: 2027-02-30") and "2027-02-30" in e.value.message
    assert e.value.fix == "write a real date YYYY-MM-DD"


@pytest.mark.parametrize(
    ("written", "said"),
    [("core_bankng", "not a system of `systems`"), ("核心系统", "a name of system core_banking")],
)
def test_a_permission_sets_system_is_a_declared_systems_id(
    policy_copy: Path, written: str, said: str
) -> None:
    """probe_u2 M2: `systems: [loan_system, ncbs]` for the bank's loan_sys loaded, and every loan
    officer's read on loan_sys was system_not_permitted. A set's systems are compared with the id a
    log's name is folded to, so a name (not folded there) is refused with the id to write."""
    path = policy_copy / "organisation.yaml"
    new = f"    systems: [{written}, card_system]"
    edit(path, "    systems: [core_banking, card_system]", new)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key) == (str(path), "permissions.counter_service.systems.0"), str(e.value)
    assert e.value.line == line_with(path, new) and said in e.value.message and "core_banking" in e.value.fix


def test_a_databases_system_is_a_declared_system(policy_copy: Path) -> None:
    """probe_u2 M2: sources.yaml's system is every pgaudit access's: one organisation.yaml does not
    declare is a system no role may use. A name organisation.yaml gives one is folded, as logs' are."""
    from policy.sources import load_sources

    path = policy_copy / "sources.yaml"
    edit(path, "    system: core_banking", "    system: 核心业务系统")  # a name of core_banking: folded
    policy = load_policy(policy_copy)
    load_sources(policy_copy, policy.classification, policy.purposes.purposes, policy.organisation)
    edit(path, "    system: 核心业务系统", "    system: core_bankng")
    with pytest.raises(PolicyError) as e:
        load_sources(policy_copy, policy.classification, policy.purposes.purposes, policy.organisation)
    assert e.value.file == str(path) and e.value.key.endswith(".system") and "core_bankng" in e.value.message
    assert e.value.line == line_with(path, "system: core_bankng") and "core_banking" in e.value.fix


@pytest.mark.parametrize(
    ("old", "new", "key", "said"),
    [
        (
            "customer_id_form: 'C[0-9]{7}'",
            "customer_id_form: 'C[0-9]{7'",
            "customer_id_form",
            "no count of repeats",
        ),
        (
            "customer_id_example: C0000022",
            "customer_id_example: C00000022",
            "customer_id_example",
            "not all matched",
        ),
        (
            "employee_id_example: E300011",
            "employee_id_example: e-300011",
            "employee_id_example",
            "not all matched",
        ),
    ],
)
def test_an_id_form_valid_but_wrong_is_refused(
    policy_copy: Path, old: str, new: str, key: str, said: str
) -> None:
    """probe_u2 M8: `8[0-9]{11` (its `}` missing) is a valid regular expression that matches no
    customer number, so numbers in record ids reached alerts in the clear. A brace that is no
    quantifier is refused, and a form must match all of the example id the folder gives."""
    path = policy_copy / "organisation.yaml"
    edit(path, old, new)
    with pytest.raises(PolicyError, match=said) as e:
        load_policy(policy_copy)
    assert (e.value.file, e.value.key, e.value.line) == (str(path), key, line_with(path, new)), str(e.value)


# -- org_changes (organisation.yaml) --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("declaration", "said_"),
    [
        (
            "  - {from: S0105, into: s0105, effective: 2026-01-05}\n",
            "org_changes.0.into: 'S0105' is the org merged away. Fix: name the org that takes it over",
        ),
        ("  - {from: HO, into: B01, effective: 2026-01-05}\n", "org_changes.0.from: 'HO' is the head office"),
        (
            "  - {from: B01_RISK, into: B01, effective: 2026-01-05}\n",
            "org_changes.0.from: 'B01_RISK' is a department (department_form), read as its org B01",
        ),
        (
            "  - {from: S0105, into: S0101, effective: 2026-01-05}\n  - {from: S0105, into: S0102, effective: 2026-02-01}\n",
            "org_changes.1.from: 'S0105' already merges into S0101 on 2026-01-05. Fix: an org merges once",
        ),
        (
            "  - {from: S0105, into: S0101, effective: 2026-01-05}\n  - {from: S0101, into: S0105, effective: 2026-02-01}\n",
            "org_changes.0.into: 'S0101' leads back round (S0105 -> S0101 -> S0105)",
        ),
        (
            "  - {from: S0105, into: S0101, effective: 2026-02-01}\n  - {from: S0101, into: S0102, effective: 2026-01-05}\n",
            "org_changes.0.into: 'S0101' merged into S0102 on 2026-01-05, before 'S0105' merges into it on 2026-02-01. Fix: name S0102",
        ),
        (
            "  - {from: S0105, into: S0101, effective: 5 Jan}\n",
            "org_changes.0.effective: Input should be a valid date",
        ),
        ("  - {from: S0105, effective: 2026-01-05}\n", "org_changes.0.into: Field required"),
    ],
)
def test_a_wrong_org_change_is_refused_naming_its_line_and_what_to_write(
    policy_copy: Path, declaration: str, said_: str
) -> None:
    """A branch merger (网点撤并) names two real orgs once each, with no way back (probe_v2 F7)."""
    f = policy_copy / "organisation.yaml"
    edit(f, "org_changes: []\n", "org_changes:\n" + declaration)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    assert e.value.file == str(f) and said_ in str(e.value), str(e.value)
    entry = int(said_.split(".")[1])  # the line of the declaration it names
    assert f.read_text(encoding="utf-8").splitlines()[e.value.line - 1] == declaration.splitlines()[entry]


NATIONAL_DAY = "{name: 国庆节, first: 2026-10-01, last: 2026-10-07}"


@pytest.mark.parametrize(
    ("old", "new", "key", "said", "fix"),
    [
        # two ranges sharing a day: one copied wrong from the notice
        (
            "{name: 中秋节, first: 2026-09-25, last: 2026-09-27}",
            "{name: 中秋节, first: 2026-09-25, last: 2026-10-01}",
            "years.2026.holidays.6",
            "(国庆节) overlaps years.2026.holidays.5 (中秋节) on 2026-10-01",
            "copy both ranges from the State Council's notice",
        ),
        (
            NATIONAL_DAY,
            "{name: 国庆节, first: 2026-10-07, last: 2026-10-01}",
            "years.2026.holidays.6",
            "last 2026-10-01 is before first 2026-10-07",
            "put the later date in last",
        ),
        # a year mistyped: a year of deadlines would move
        (
            NATIONAL_DAY,
            "{name: 国庆节, first: 2026-10-01, last: 2027-10-07}",
            "years.2026.holidays.6",
            "runs 372 days (2026-10-01 to 2027-10-07)",
            "check the year and month of first and last against the notice",
        ),
        (
            NATIONAL_DAY,
            "{name: 国庆节, first: 2025-10-01, last: 2025-10-07}",
            "years.2026.holidays.6",
            "(国庆节, 2025-10-01 to 2025-10-07) is not in 2026",
            "write the dates of 2026's notice, or move the holiday under its own year",
        ),
        # a 调休 working day is a weekend day: a weekday listed is a typo
        (
            "2026-10-10]",
            "2026-10-09]",
            "years.2026.working_days.5",
            "2026-10-09 is a friday, no weekly rest day",
            "list only the weekend days the notice makes working days",
        ),
        (
            "2026-10-10]",
            "2026-02-30]",
            "years.2026.working_days.5",
            "'2026-02-30' is no real date",
            "real date",
        ),
    ],
)
def test_a_wrong_holiday_calendar_names_file_key_line_and_fix(
    policy_copy: Path, old, new, key, said, fix
) -> None:
    """calendar.yaml moves deadlines past the State Council's holidays (Civil Code art. 203 ¶1): a
    range copied wrong would move, or fail to move, every deadline in it, so it is refused at start-up."""
    f = policy_copy / "calendar.yaml"
    edit(f, old, new)
    with pytest.raises(PolicyError) as e:
        load_policy(policy_copy)
    err = e.value
    assert err.file == str(f) and err.key == key and said in err.message and fix in err.fix, str(err)
    line = f.read_text(encoding="utf-8").splitlines()[err.line - 1]
    assert ("国庆节" if ".holidays." in key else "working_days") in line, (err.line, line)


def _clauses(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every clause a policy file holds (a `regulation`, `source` or `waiver`), with its key."""
    if isinstance(node, dict):
        for k, v in node.items():
            at = f"{key}.{k}" if key else str(k)
            if k in ("regulation", "source", "waiver"):
                yield from ((f"{at}.{i}", c) for i, c in enumerate(v)) if isinstance(v, list) else [(at, v)]
            else:
                yield from _clauses(v, at)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _clauses(v, f"{key}.{i}")


# 《个人信息保护法》第五十一条 -> PIPL art. 51: the Chinese numeral of an article, and its digits
_NUMERALS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def _article(numeral: str) -> int:
    tens, _, units = numeral.rpartition("十")
    if "十" not in numeral:
        return _NUMERALS[numeral]
    return (_NUMERALS[tens] if tens else 1) * 10 + (_NUMERALS[units] if units else 0)


def test_every_clause_is_quoted_and_rendered_in_english_with_its_article() -> None:
    """An English-reading analyst or auditor saw the policy's clauses in Chinese only (fix_regulation
    #1). Each clause of the shipped policy holds the text as quoted and an English rendering, and the
    English names the same PIPL articles as the Chinese, in the same order."""
    import re

    import yaml

    files = sorted((DEFAULT_DIR / "detectors").glob("*.yaml")) + [DEFAULT_DIR / "incidents.yaml"]
    seen = 0
    for path in files:
        for key, clause in _clauses(yaml.safe_load(path.read_text(encoding="utf-8"))):
            assert isinstance(clause, dict) and set(clause) == {"zh", "en"}, (path.name, key)
            # a clause from an English source (seed 000) is quoted in Chinese too: `lifemon
            # detectors` printed its English twice, in the Chinese reader's line and the English
            assert re.search(r"[\u4e00-\u9fff]", clause["zh"]) and clause["en"] != clause["zh"], (
                path.name,
                key,
            )
            # the law by its Chinese name where the clause is quoted: `incidents show` read "PIPL
            # 第五十七条" among the Chinese of every report's basis
            assert "PIPL" not in clause["zh"], (path.name, key, clause["zh"])
            articles = [
                _article(n)
                for n in re.findall(r"《个人信息保护法》第([零一二三四五六七八九十]+)条", clause["zh"])
            ]
            rendered = [int(n) for n in re.findall(r"PIPL arts?\. (\d+)", clause["en"])]
            assert rendered == articles, (path.name, key, clause["en"])
            seen += 1
    assert seen == 328  # every regulation, source and waiver of the shipped files


# a clause as it was written before, one string: the first `regulation: {zh: …, en: …}` on one line
_ONE_STRING = (r'regulation: \{zh: (".*?"), en: ".*?"\}', r"regulation: \1")
# the English of the first clause of a rule's own list left out
_NO_EN = (r'\n    en: "PIPL art\. 51: take measures[^\n]*', "")


@pytest.mark.parametrize(
    ("file", "change", "key", "said"),
    [
        ("detectors/bulk_query.yaml", _NO_EN, "regulation.0.en", ("required", "add the key")),
        ("incidents.yaml", _ONE_STRING, "deadlines.0.regulation", ("both languages", "en: ")),
        (
            "detectors/bulk_query.yaml",
            _ONE_STRING,
            "params.escalation.0.regulation",
            ("both languages", "en: "),
        ),
    ],
)
def test_a_clause_in_one_language_is_a_config_error_naming_file_and_key(
    policy_copy: Path, file: str, change: tuple[str, str], key: str, said: tuple[str, str]
) -> None:
    """A bank's own policy file whose clause lacks its English fails to load, saying the file, the
    key, the line and the form to write (fix_regulation #1): a rule's list, an incident report's
    clause, and a clause inside a detector's params, checked where the detector loads."""
    import re

    path = policy_copy / file
    text = path.read_text(encoding="utf-8")
    changed = re.sub(*change, text, count=1)
    assert changed != text, "test setup: nothing to change"
    path.write_text(changed, encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        load_detectors(load_policy(policy_copy), policy_copy)
    assert (e.value.file, e.value.key) == (str(path), key), str(e.value)
    assert all(words in str(e.value) for words in said) and e.value.line is not None, str(e.value)
